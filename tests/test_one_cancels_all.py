"""One-cancels-all: an error in one child cancels its siblings and reaches
the nursery's owner, as itself when it is alone, as a group otherwise."""
import os

import pytest
import trio

import tractor
from tractor._exceptions import BaseExceptionGroup
from tractor_testing import pid_alive

pytestmark = pytest.mark.timeout(60)


async def assert_err():
    assert 0, 'remote assertion'


async def name_error():
    await trio.sleep(0)
    return undefined_name  # noqa: F821


def getpid():
    return os.getpid()


async def sleep_forever():
    await trio.sleep_forever()


def test_single_error_raised_as_itself(transport, codec, arb_addr):
    """A failing main among live daemons and a sleeping main: the nursery
    raises one RemoteActorError(.type AssertionError) and every other
    actor is cancelled and gone."""
    pids = []

    async def main():
        async with tractor.open_nursery() as n:
            for i in range(2):
                p = await n.start_actor(f'daemon_{i}',
                                        rpc_module_paths=[__name__])
                pids.append(await p.run(__name__, 'getpid'))
            await n.run_in_actor('sleeper', sleep_forever)
            await n.run_in_actor('extra', assert_err)

    with pytest.raises(tractor.RemoteActorError) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                    codec=codec)
    err = exc_info.value
    assert err.type is AssertionError
    assert err.actor_uid[0] == 'extra'
    assert 'remote assertion' in str(err)
    assert not [p for p in pids if pid_alive(p)]


def test_several_errors_raise_a_group(arb_addr):
    """A child's error and a different error in the nursery's own block
    come up together as one ExceptionGroup -- if the child's arrived before
    the block's error cancelled it."""
    async def main():
        async with tractor.open_nursery() as n:
            await n.start_actor('bystander', rpc_module_paths=[__name__])
            await n.run_in_actor('a', assert_err)
            raise KeyError('block failed too')

    with pytest.raises((BaseExceptionGroup, KeyError)) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    err = exc_info.value
    excs = err.exceptions if isinstance(err, BaseExceptionGroup) else [err]
    remote = [e for e in excs if isinstance(e, tractor.RemoteActorError)]
    local = [e for e in excs if isinstance(e, KeyError)]
    assert len(local) == 1
    # the child's error is in only if it arrived before the block's error
    # cancelled it
    assert len(remote) <= 1 and len(excs) == 1 + len(remote)


def test_error_taken_with_result_is_not_raised_again(arb_addr):
    """An error received through ``portal.result()`` belongs to the code
    that received it: handled there, it does not come up again."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('a', assert_err)
            try:
                await portal.result()
            except tractor.RemoteActorError as err:
                return err.type

    assert tractor.run(main, arbiter_addr=arb_addr) is AssertionError


async def value_error():
    raise ValueError(f'{tractor.current_actor().name} failed')


def test_concurrent_errors(arb_addr):
    """Two actors failing on their own at about the same time: whichever
    errors reach the parent before it cancels the other come up (one as
    itself, two as a group), each a RemoteActorError of the remote type."""
    async def main():
        async with tractor.open_nursery() as n:
            await n.run_in_actor('x', value_error)
            await n.run_in_actor('y', value_error)

    with pytest.raises((BaseExceptionGroup,
                        tractor.RemoteActorError)) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    err = exc_info.value
    excs = err.exceptions if isinstance(err, BaseExceptionGroup) else [err]
    assert 1 <= len(excs) <= 2
    for e in excs:
        assert isinstance(e, tractor.RemoteActorError)
        assert e.type is ValueError
        assert e.actor_uid[0] in ('x', 'y')


def test_local_error_cancels_children(arb_addr):
    """An error in the nursery's own block cancels every child and is
    raised as itself."""
    pids = []

    async def main():
        async with tractor.open_nursery() as n:
            p = await n.start_actor('daemon', rpc_module_paths=[__name__])
            pids.append(await p.run(__name__, 'getpid'))
            await n.run_in_actor('sleeper', sleep_forever)
            raise KeyError('local')

    with pytest.raises(KeyError, match='local'):
        tractor.run(main, arbiter_addr=arb_addr)
    assert not [p for p in pids if pid_alive(p)]


def test_error_in_grandchild_reaches_root(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            await n.run_in_actor('middle', spawn_failing_child)

    with pytest.raises(tractor.RemoteActorError) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    err = exc_info.value
    # the middle actor raised the leaf's error as a RemoteActorError
    assert err.type is tractor.RemoteActorError
    assert err.src_type is AssertionError
    assert [uid[0] for uid in err.relay_path] == ['leaf', 'middle']
    assert 'remote assertion' in str(err)


async def spawn_failing_child():
    async with tractor.open_nursery() as n:
        await n.run_in_actor('leaf', assert_err)
