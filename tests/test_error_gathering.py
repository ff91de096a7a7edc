"""Errors are gathered as trio gathers them: none is lost.

While the nursery's block runs, a ``run_in_actor`` function's error
cancels nothing; once the block is done, the first error cancels the rest,
politely, so errors already on their way still arrive. Everything leaves
the block together, as one ``BaseExceptionGroup`` of ``RemoteActorError``
when there are several.
"""
import pytest
import trio

import tractor
from tractor._exceptions import BaseExceptionGroup

pytestmark = pytest.mark.timeout(120)


async def fail(n):
    raise ValueError(f'actor {n} failed')


async def fail_after_wait(n, delay):
    await trio.sleep(delay)
    raise ValueError(f'actor {n} failed')


def _remote_errors(exc_info) -> list:
    err = exc_info.value
    excs = list(err.exceptions) if isinstance(err, BaseExceptionGroup) \
        else [err]
    assert all(isinstance(e, tractor.RemoteActorError) for e in excs), excs
    return excs


def test_every_concurrent_failure_arrives(transport, arb_addr):
    """Four actors started one after another, failing at once: the parent
    sees all four, in start order, as one group."""
    nursery = []

    async def main():
        async with tractor.open_nursery() as n:
            nursery.append(n)
            for i in range(4):
                await n.run_in_actor(f'a{i}', fail, n=i)

    with pytest.raises(BaseExceptionGroup) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr, transport=transport)
    excs = _remote_errors(exc_info)
    assert [e.actor_uid[0] for e in excs] == ['a0', 'a1', 'a2', 'a3']
    assert all(e.type is ValueError for e in excs)
    assert [str(e).splitlines()[0] for e in excs] == [
        f'ValueError: actor {i} failed' for i in range(4)]
    assert nursery[0].cancelled  # torn down by an error: cancelled


def test_failures_while_the_block_runs_cancel_nothing(arb_addr):
    """Failures that happen while the block still works on are kept for
    its end: the block finishes what it does, then sees every error."""
    done = []

    async def main():
        async with tractor.open_nursery() as n:
            for i in range(3):
                await n.run_in_actor(f'a{i}', fail, n=i)
            await trio.sleep(0.5)  # the block's own work goes on
            done.append(True)

    with pytest.raises(BaseExceptionGroup) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    assert done == [True]
    assert len(_remote_errors(exc_info)) == 3


def test_first_error_after_the_block_cancels_the_rest(arb_addr):
    """Once the block is done, the first error cancels what still runs (a
    sleeping main, a daemon): only that error comes up."""
    async def main():
        async with tractor.open_nursery() as n:
            await n.start_actor('daemon', rpc_module_paths=[__name__])
            await n.run_in_actor('sleeper', fail_after_wait, n=1, delay=60)
            await n.run_in_actor('quick', fail, n=0)

    with pytest.raises(tractor.RemoteActorError) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    assert exc_info.value.actor_uid[0] == 'quick'


def test_twenty_five_at_once(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            for i in range(25):
                await n.run_in_actor(f'a{i}', fail, n=i)

    with pytest.raises(BaseExceptionGroup) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    excs = _remote_errors(exc_info)
    assert sorted(e.actor_uid[0] for e in excs) == sorted(
        f'a{i}' for i in range(25))


async def spawn_failing_children(count):
    async with tractor.open_nursery() as n:
        for i in range(count):
            await n.run_in_actor(f'leaf{i}', fail, n=i)


def test_nested_group_arrives_whole(arb_addr):
    """A middle actor's group of errors reaches the root whole: one
    RemoteActorError from the middle actor that carries every leaf's."""
    async def main():
        async with tractor.open_nursery() as n:
            await n.run_in_actor('middle', spawn_failing_children, count=3)

    with pytest.raises(tractor.RemoteActorError) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    err = exc_info.value
    assert err.actor_uid[0] == 'middle'
    text = str(err)
    for i in range(3):
        assert f'actor {i} failed' in text, text
