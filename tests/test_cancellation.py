"""Cancellation: trio cancel scopes around a nursery reach every actor
under it (streams included), and an actor that ignores a polite cancel is
killed after the grace period."""
import os
import socket
import time

import pytest
import trio

import tractor
from tractor import _portal, _supervise
from tractor_testing import pid_alive

pytestmark = pytest.mark.timeout(60)


def getpid():
    return os.getpid()


async def stream_forever():
    i = 0
    while True:
        yield i
        i += 1
        await trio.sleep(0.001)


async def sleep_forever():
    await trio.sleep_forever()


async def spawn_sleeper_tree():
    """A middle actor with a sleeping child of its own: report both pids
    (as a stream, so the tree stays up)."""
    async with tractor.open_nursery() as n:
        leaf = await n.start_actor('leaf', rpc_module_paths=[__name__])
        yield [os.getpid(), await leaf.run(__name__, 'getpid')]
        await trio.sleep_forever()


def test_move_on_after_cancels_everything(transport, codec, arb_addr):
    """A cancel scope around the nursery: a consumed stream, a daemon, a
    sleeping main and a grandchild all go away and the scope reports it."""
    async def main():
        pids = []
        with trio.move_on_after(30) as cs:
            async with tractor.open_nursery() as n:
                daemon = await n.start_actor('daemon',
                                             rpc_module_paths=[__name__])
                pids.append(await daemon.run(__name__, 'getpid'))
                await n.run_in_actor('sleeper', sleep_forever)
                tree = await n.start_actor('middle',
                                           rpc_module_paths=[__name__])
                async for both in await tree.run(
                        __name__, 'spawn_sleeper_tree'):
                    pids.extend(both)
                    break
                async for i in await daemon.run(__name__, 'stream_forever'):
                    if i == 10:
                        # cancel from inside the stream loop
                        cs.cancel()
        assert cs.cancelled_caught
        assert n.cancelled
        return pids

    pids = tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                       codec=codec)
    assert len(pids) == 3
    assert not [p for p in pids if pid_alive(p)]


def test_timeout_cancels_stream(arb_addr):
    """The README's shape: ``move_on_after`` expiring mid-stream."""
    async def main():
        got = 0
        with trio.move_on_after(0.5) as cs:
            async with tractor.open_nursery() as n:
                portal = await n.start_actor('donny',
                                             rpc_module_paths=[__name__])
                async for _ in await portal.run(__name__, 'stream_forever'):
                    got += 1
        return cs.cancelled_caught, n.cancelled, got

    caught, cancelled, got = tractor.run(main, arbiter_addr=arb_addr)
    assert caught and cancelled and got > 0


def block_in_sync_call(host, port):
    """Tell the test we are about to block, then block the whole actor
    (its trio loop included) in a sync call that ignores cancellation."""
    with socket.create_connection((host, port)) as s:
        s.sendall(str(os.getpid()).encode())
    time.sleep(100)


async def _start_blocker(n, how):
    """Spawn an actor that blocks in ``time.sleep(100)``; return its pid
    once it is blocking (it connects to us just before)."""
    listeners = await trio.open_tcp_listeners(0, host='127.0.0.1')
    port = listeners[0].socket.getsockname()[1]
    try:
        if how == 'run_in_actor':
            await n.run_in_actor('stubborn', block_in_sync_call,
                                 host='127.0.0.1', port=port)
        else:
            portal = await n.start_actor('stubborn',
                                         rpc_module_paths=[__name__])
            n._n.start_soon(_call_ignoring_errors, portal, port)
        with trio.fail_after(20):
            stream = await listeners[0].accept()
            data = b''
            while chunk := await stream.receive_some():
                data += chunk
        await stream.aclose()
    finally:
        await listeners[0].aclose()
    return int(data)


async def _call_ignoring_errors(portal, port):
    try:
        await portal.run(__name__, 'block_in_sync_call', host='127.0.0.1',
                         port=port)
    except (tractor.TransportClosed, tractor.RemoteActorError):
        pass


@pytest.mark.parametrize('how', ['nursery_cancel', 'cancel_actor'])
def test_unresponsive_actor_is_killed(arb_addr, how):
    """An actor stuck in ``time.sleep(100)`` cannot answer a polite cancel:
    it is SIGKILLed once the grace period is over, well before the sleep
    would end."""
    bound = _portal.CANCEL_GRACE + _supervise.KILL_GRACE + 5

    async def main():
        async with tractor.open_nursery() as n:
            if how == 'nursery_cancel':
                pid = await _start_blocker(n, 'run_in_actor')
                start = time.monotonic()
                await n.cancel()
            else:
                pid = await _start_blocker(n, 'start_actor')
                portal = next(iter(n._children.values())).portal
                start = time.monotonic()
                # the polite request times out: False
                assert await portal.cancel_actor() is False
        return pid, time.monotonic() - start

    pid, took = tractor.run(main, arbiter_addr=arb_addr)
    assert not pid_alive(pid)
    assert took < bound, f'took {took:.1f}s to get rid of the actor'
