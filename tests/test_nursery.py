"""``tractor.open_nursery()``: spawning, waiting, cancelling."""
import os

import pytest
import trio

import tractor
from tractor_testing import pid_alive

pytestmark = pytest.mark.timeout(60)


def sync_main(x):
    return x * 2


async def async_main(x):
    await trio.sleep(0)
    return x + 1


async def agen_main(n):
    for i in range(n):
        yield i
        await trio.sleep(0)


async def sleep_forever():
    await trio.sleep_forever()


def getpid():
    return os.getpid()


def test_run_in_actor_function_kinds(arb_addr):
    """A sync function, an async function and an async generator as an
    actor's main: ``portal.result()`` gives the value, or a stream."""
    async def main():
        async with tractor.open_nursery() as n:
            p_sync = await n.run_in_actor('sync', sync_main, x=21)
            p_async = await n.run_in_actor('async', async_main, x=41)
            p_gen = await n.run_in_actor('gen', agen_main, n=5)
            stream = await p_gen.result()
            items = [i async for i in stream]
        return await p_sync.result(), await p_async.result(), items

    assert tractor.run(main, arbiter_addr=arb_addr) == (
        42, 42, [0, 1, 2, 3, 4])


def test_result_is_available_after_block(arb_addr):
    """The block waits for run_in_actor mains; results can be read after."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('late', async_main, x=1)
        assert not n.cancelled
        return await portal.result()

    assert tractor.run(main, arbiter_addr=arb_addr) == 2


def test_unclaimed_stream_result_does_not_hang(arb_addr):
    """An async generator main nobody reads is drained at block exit."""
    async def main():
        async with tractor.open_nursery() as n:
            await n.run_in_actor('gen', agen_main, n=1000)
        return True

    assert tractor.run(main, arbiter_addr=arb_addr)


def test_start_actor_lives_until_cancelled(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('daemon',
                                         rpc_module_paths=[__name__])
            pid = await portal.run(__name__, 'getpid')
            # still serving after a call
            assert await portal.run(__name__, 'getpid') == pid
            assert await portal.cancel_actor()
        return pid

    pid = tractor.run(main, arbiter_addr=arb_addr)
    assert pid != os.getpid()


def test_nursery_cancel(arb_addr):
    """``ActorNursery.cancel()`` stops daemons and running mains alike and
    sets ``.cancelled``; the block then exits without error."""
    async def main():
        async with tractor.open_nursery() as n:
            daemons = [await n.start_actor(f'd{i}', rpc_module_paths=[
                __name__]) for i in range(2)]
            pids = [await p.run(__name__, 'getpid') for p in daemons]
            sleeper = await n.run_in_actor('sleeper', sleep_forever)
            assert not n.cancelled
            with trio.fail_after(20):
                await n.cancel()
            assert n.cancelled
        with pytest.raises(tractor.ActorFailure, match='cancelled'):
            await sleeper.result()
        return pids

    pids = tractor.run(main, arbiter_addr=arb_addr)
    assert not [pid for pid in pids if pid_alive(pid)]


def test_nursery_wait(arb_addr):
    """``ActorNursery.wait()`` returns once every main has finished."""
    async def main():
        async with tractor.open_nursery() as n:
            p1 = await n.run_in_actor('one', async_main, x=1)
            p2 = await n.run_in_actor('two', sync_main, x=2)
            with trio.fail_after(20):
                await n.wait()
            # after wait() both results are ready without blocking
            with trio.fail_after(0.5):
                return await p1.result(), await p2.result()

    assert tractor.run(main, arbiter_addr=arb_addr) == (2, 4)


def test_plain_with_is_an_error(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            with n:
                pass

    with pytest.raises(RuntimeError, match='async with'):
        tractor.run(main, arbiter_addr=arb_addr)


def test_run_in_actor_rejects_local_function(arb_addr):
    async def main():
        def local():
            return 1
        async with tractor.open_nursery() as n:
            await n.run_in_actor('local', local)

    with pytest.raises(TypeError, match='module-level'):
        tractor.run(main, arbiter_addr=arb_addr)


def test_nested_nurseries(arb_addr):
    """A child can spawn its own children: a tree three levels deep."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('middle', spawn_leaf)
        return await portal.result()

    mid_pid, leaf_pid = tractor.run(main, arbiter_addr=arb_addr)
    assert len({mid_pid, leaf_pid, os.getpid()}) == 3


async def spawn_leaf():
    async with tractor.open_nursery() as n:
        leaf = await n.run_in_actor('leaf', getpid)
    return os.getpid(), await leaf.result()
