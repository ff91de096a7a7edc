"""``tractor.open_root_actor()``: the root actor inside any trio program.

A program that already runs trio (a service, a pytest-trio test) opens the
root around a block; leaving the block, by any path, tears down what it
started and releases its listener, so another root can follow in the same
process on the same arbiter port.
"""
import inspect

import pytest
import trio

import tractor
from tractor_testing import free_port

pytestmark = pytest.mark.timeout(90)


async def whoami():
    return tractor.current_actor().name


async def spawn_and_ask(name='child'):
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor(name, whoami)
        return await portal.result()


async def test_root_inside_a_pytest_trio_test(transport, codec, arb_addr):
    """Two roots one after the other, in one test, on one arbiter port:
    each spawns and calls, and the second binds what the first let go."""
    for i in range(2):
        async with tractor.open_root_actor(
                arbiter_addr=arb_addr, transport=transport,
                codec=codec) as actor:
            assert actor.is_arbiter
            assert tractor.current_actor() is actor
            assert await spawn_and_ask(f'child{i}') == f'child{i}'
    with pytest.raises(RuntimeError, match='no actor is running'):
        tractor.current_actor()


def test_root_inside_trio_run_twice(transport, arb_addr):
    async def main():
        async with tractor.open_root_actor(arbiter_addr=arb_addr,
                                           transport=transport):
            return await spawn_and_ask()

    assert trio.run(main) == 'child'
    assert trio.run(main) == 'child'


async def test_root_beside_other_trio_tasks(arb_addr):
    """The root is one part of a bigger trio program: its block runs next
    to the program's own tasks, and leaving it leaves them alone."""
    ticks = []

    async def ticker(task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        while True:
            ticks.append(1)
            await trio.sleep(0.01)

    async with trio.open_nursery() as n:
        await n.start(ticker)
        async with tractor.open_root_actor(arbiter_addr=arb_addr):
            assert await spawn_and_ask() == 'child'
        before = len(ticks)
        await trio.sleep(0.05)
        assert len(ticks) > before  # still ticking after the root left
        n.cancel_scope.cancel()


async def test_error_in_block_tears_down_and_raises_itself(arb_addr):
    """An error in the block comes out as itself (no exception group from
    the runtime's nursery), after the children are gone; the next root
    binds the same port."""
    class Oops(Exception):
        pass

    with pytest.raises(Oops):
        async with tractor.open_root_actor(arbiter_addr=arb_addr):
            async with tractor.open_nursery() as n:
                await n.start_actor('daemon', rpc_module_paths=[__name__])
                raise Oops()
    async with tractor.open_root_actor(arbiter_addr=arb_addr) as actor:
        assert actor.is_arbiter


async def test_cancelled_block_releases_everything(arb_addr):
    with trio.move_on_after(1) as cs:
        async with tractor.open_root_actor(arbiter_addr=arb_addr):
            async with tractor.open_nursery() as n:
                await n.start_actor('daemon', rpc_module_paths=[__name__])
                await trio.sleep_forever()
    assert cs.cancelled_caught
    async with tractor.open_root_actor(arbiter_addr=arb_addr) as actor:
        assert actor.is_arbiter


async def test_one_root_at_a_time(arb_addr):
    async with tractor.open_root_actor(arbiter_addr=arb_addr):
        with pytest.raises(RuntimeError, match='already running'):
            async with tractor.open_root_actor(arbiter_addr=arb_addr):
                pass


def test_failed_start_leaves_nothing_bound(transport):
    """``tractor.run(None)`` raises TypeError, as the original did, and so
    does a root whose module cannot be imported; neither keeps the port."""
    port = free_port()
    addr = ('127.0.0.1', port)
    with pytest.raises(TypeError):
        tractor.run(None, arbiter_addr=addr, transport=transport)
    with pytest.raises(ModuleNotFoundError):
        tractor.run(whoami, arbiter_addr=addr, transport=transport,
                    rpc_module_paths=['no_such_module_here'])

    async def main():
        return tractor.current_actor().is_arbiter
    assert tractor.run(main, arbiter_addr=addr, transport=transport)


def test_run_and_open_root_actor_take_the_same_options():
    def options(fn):
        return {name for name, p in inspect.signature(fn).parameters.items()
                if p.kind is p.KEYWORD_ONLY}
    assert options(tractor.run) == options(tractor.open_root_actor)
