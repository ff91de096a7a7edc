"""An async function is run in the task that reads its caller's channel,
up to its first suspension, instead of in a task of its own (see
``tractor._actor._step``): most calls never suspend, and a task per
call cost a third of a round trip. None of that may show: a call that suspends
hands the reading on, so other calls, cancels and results on the same
channel keep flowing; each call sees its own contextvars; errors raised
before and after the first suspension come back alike."""
import contextvars
from functools import partial

import pytest
import trio

import tractor

pytestmark = pytest.mark.timeout(90)

_var = contextvars.ContextVar('_var', default='unset')
_gate: trio.Event | None = None
_cancelled: list = []


def _the_gate() -> trio.Event:
    global _gate
    if _gate is None:
        _gate = trio.Event()
    return _gate


async def double(x):
    return x * 2


async def wait_at_gate():
    await _the_gate().wait()
    return 'through'


async def open_gate():
    _the_gate().set()


async def nap(i):
    await trio.sleep(0.01 * (i % 5))
    return i


async def swap_var(value):
    before = _var.get()
    _var.set(value)
    return before


async def fail_at_once():
    raise ValueError('before suspending')


async def fail_after_suspending():
    await trio.sleep(0)
    raise KeyError('after suspending')


async def sleep_until_cancelled():
    try:
        await trio.sleep_forever()
    finally:
        _cancelled.append(True)


async def was_cancelled():
    return bool(_cancelled)


_scoped: list = []


async def scope_then_sleep(deadline: float):
    """Opens a nursery and a cancel scope before it first suspends, so
    both were entered while the call ran inline; they must nest inside
    the call's own scope (or trio reports a corrupted scope stack on
    exit)."""
    async with trio.open_nursery() as n:
        n.start_soon(trio.sleep_forever)
        with trio.move_on_after(deadline) as cs:
            try:
                await trio.sleep_forever()
            finally:
                _scoped.append('inner')
        n.cancel_scope.cancel()
    return 'timed out' if cs.cancelled_caught else 'no'


async def scoped():
    return list(_scoped)


def test_suspended_call_does_not_block_its_channel(transport, arb_addr):
    """A call waiting for another call on the same channel gets it: the
    reading passed on when the first call suspended. Meanwhile quick calls
    and calls that nap are all answered, each with its own result."""
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('inline', rpc_module_paths=[
                __name__])
            got = {}

            async def call(key, fn, **kw):
                got[key] = await portal.run(__name__, fn, **kw)

            with trio.fail_after(30):
                async with trio.open_nursery() as tn:
                    tn.start_soon(call, 'gate', 'wait_at_gate')
                    for i in range(40):
                        tn.start_soon(partial(call, ('nap', i), 'nap', i=i))
                        tn.start_soon(partial(call, ('double', i), 'double',
                                              x=i))
                    await call('open', 'open_gate')
            await an.cancel()
        return got

    got = tractor.run(main, arbiter_addr=arb_addr, transport=transport)
    assert got.pop('gate') == 'through' and got.pop('open') is None
    assert got == {**{('nap', i): i for i in range(40)},
                   **{('double', i): 2 * i for i in range(40)}}


def test_each_call_has_its_own_context(arb_addr):
    """A contextvar set by one call is not seen by the next, even though
    both ran in the same (reading) task."""
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('ctx', rpc_module_paths=[
                __name__])
            seen = [await portal.run(__name__, 'swap_var', value=v)
                    for v in ('a', 'b', 'c')]
            await an.cancel()
        return seen

    assert tractor.run(main, arbiter_addr=arb_addr) == ['unset'] * 3


def test_errors_before_and_after_suspending(arb_addr):
    async def main():
        out = []
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('err', rpc_module_paths=[
                __name__])
            for fn in ('fail_at_once', 'fail_after_suspending'):
                try:
                    await portal.run(__name__, fn)
                except tractor.RemoteActorError as err:
                    out.append((err.type_name, 'suspending' in str(err)))
            # and the actor goes on serving
            out.append(await portal.run(__name__, 'double', x=21))
            await an.cancel()
        return out

    assert tractor.run(main, arbiter_addr=arb_addr) == [
        ('ValueError', True), ('KeyError', True), 42]


def test_suspended_call_is_cancelled_by_its_caller(arb_addr):
    """A caller that gives up cancels the remote call, which was started
    inline and then suspended."""
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('cancel', rpc_module_paths=[
                __name__])
            with trio.move_on_after(0.5) as cs:
                await portal.run(__name__, 'sleep_until_cancelled')
            assert cs.cancelled_caught
            with trio.fail_after(10):
                while not await portal.run(__name__, 'was_cancelled'):
                    await trio.sleep(0.01)
            await an.cancel()
        return True

    assert tractor.run(main, arbiter_addr=arb_addr)


def test_scopes_opened_before_suspending_nest_in_the_call(arb_addr):
    """A call that enters a nursery and a cancel scope before its first
    suspension (so while it runs inline, in the reading task) behaves as
    in a task of its own: its own deadline fires and it returns; the
    caller's cancel reaches it through both; and the actor goes on
    serving after either."""
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('scoped', rpc_module_paths=[
                __name__])
            with trio.fail_after(30):
                first = await portal.run(__name__, 'scope_then_sleep',
                                         deadline=0.05)
                with trio.move_on_after(0.3) as cs:
                    await portal.run(__name__, 'scope_then_sleep',
                                     deadline=3600)
                assert cs.cancelled_caught
                while len(await portal.run(__name__, 'scoped')) < 2:
                    await trio.sleep(0.01)
                again = await portal.run(__name__, 'double', x=4)
            await an.cancel()
        return first, again

    assert tractor.run(main, arbiter_addr=arb_addr) == ('timed out', 8)
