"""Two-way streams over a context (``@tractor.context`` and
``portal.open_context``): order and flow control in both directions at
once, and errors, cancels and a lost peer crossing either way.
"""
import os
import signal

import pytest
import trio

import tractor
from tractor._flow import STREAM_WINDOW

pytestmark = pytest.mark.timeout(90)


def _backlog(stream) -> int:
    """Items received but not yet consumed on this side (what a fast peer
    would grow without flow control)."""
    return sum(1 for msg in stream._d._items if 'yield' in msg)


async def _both_ways(stream, n, peak):
    """Send 0..n-1 and receive n items in order, at once; the largest
    backlog seen goes into ``peak[0]``."""
    async def send():
        for i in range(n):
            await stream.send(i)

    got = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send)
        async for item in stream:
            assert item == got, f'item {item} arrived as number {got}'
            got += 1
            if got % 512 == 0:
                peak[0] = max(peak[0], _backlog(stream))
                await trio.sleep(0)  # let the backlog build if it can
            if got == n:
                break
    return got


@tractor.context
async def mirror(ctx, n):
    """The callee of test_order_both_ways_with_bounded_memory."""
    await ctx.started(os.getpid())
    peak = [0]
    async with ctx.open_stream() as stream:
        got = await _both_ways(stream, n, peak)
    return got, peak[0]


def test_order_both_ways_with_bounded_memory(transport, codec, arb_addr):
    n = 100_000

    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('mirror',
                                          rpc_module_paths=[__name__])
            peak = [0]
            async with portal.open_context(__name__, 'mirror', n=n) as (
                    ctx, pid):
                assert pid != os.getpid()
                async with ctx.open_stream() as stream:
                    got = await _both_ways(stream, n, peak)
                remote = await ctx.result()
            await portal.cancel_actor()
            return got, peak[0], remote

    got, peak, (remote_got, remote_peak) = tractor.run(
        main, arbiter_addr=arb_addr, transport=transport, codec=codec)
    assert got == remote_got == n
    # neither side ever held more than a window (plus one batch) unread
    assert peak <= STREAM_WINDOW + 128
    assert remote_peak <= STREAM_WINDOW + 128


# -- a fast sender against a reader that does not read ---------------------
@tractor.context
async def flood(ctx):
    """Send as fast as the window allows; report how far it got."""
    await ctx.started()
    sent = 0
    async with ctx.open_stream() as stream:
        with trio.move_on_after(1):
            while True:
                await stream.send(sent)
                sent += 1
    return sent


@tractor.context
async def sink(ctx):
    """Never read; report the backlog once the caller stops sending."""
    await ctx.started()
    async with ctx.open_stream() as stream:
        await trio.sleep(1)
        backlog = _backlog(stream)
        count = 0
        async for _ in stream:
            count += 1
    return backlog, count


def test_window_holds_in_both_directions(arb_addr):
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('p', rpc_module_paths=[__name__])
            # callee -> caller: the caller does not read for a second
            async with portal.open_context(__name__, 'flood') as (ctx, _):
                async with ctx.open_stream() as stream:
                    await trio.sleep(1.5)
                    backlog = _backlog(stream)
                flooded = await ctx.result()
            # caller -> callee: the callee does not read for a second
            sent = 0
            async with portal.open_context(__name__, 'sink') as (ctx, _):
                async with ctx.open_stream() as stream:
                    with trio.move_on_after(1):
                        while True:
                            await stream.send(sent)
                            sent += 1
                remote_backlog, count = await ctx.result()
            await portal.cancel_actor()
            return backlog, flooded, sent, remote_backlog, count

    backlog, flooded, sent, remote_backlog, count = tractor.run(
        main, arbiter_addr=arb_addr)
    assert backlog <= STREAM_WINDOW
    assert flooded <= STREAM_WINDOW + 1
    assert sent <= STREAM_WINDOW + 1
    assert remote_backlog <= STREAM_WINDOW
    assert count == sent  # nothing lost once it read


# -- errors and cancels, both ways -----------------------------------------
@tractor.context
async def fails_at(ctx, at):
    await ctx.started()
    async with ctx.open_stream() as stream:
        async for i in stream:
            if i == at:
                raise ValueError(f'stage failed at {i}')
            await stream.send(i)


@tractor.context
async def records_its_end(ctx, key, mode='stream'):
    """Wait on the stream (or sleep, or send); record how it ended."""
    state = tractor.current_actor().statespace
    state[key] = 'running'
    await ctx.started()
    try:
        async with ctx.open_stream() as stream:
            if mode == 'sleep':
                await trio.sleep_forever()
            elif mode == 'send':
                while True:
                    await stream.send('x')
            async for _ in stream:
                pass
        state[key] = 'returned'
    except tractor.RemoteActorError as err:
        state[key] = f'remote error {err.type_name}'
        raise
    except trio.Cancelled:
        state[key] = 'cancelled'
        raise
    finally:
        state[key + '.finally'] = True


async def state_of(key):
    state = tractor.current_actor().statespace
    return [state.get(key), state.get(key + '.finally', False)]


@tractor.context
async def cancels_itself(ctx):
    await ctx.started()
    tractor.current_actor().cancel_soon()
    await trio.sleep_forever()


class CallerError(Exception):
    pass


def test_errors_and_cancels_cross_both_ways(transport, codec, arb_addr):
    async def main():
        out = {}
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('stage',
                                          rpc_module_paths=[__name__])

            # the callee fails: the caller's block is cancelled and the
            # error comes out of open_context as a plain RemoteActorError,
            # whether the block was receiving or doing something else
            for blocked_in in ('receive', 'sleep'):
                with pytest.raises(tractor.RemoteActorError) as info:
                    async with portal.open_context(
                            __name__, 'fails_at', at=3) as (ctx, _):
                        async with ctx.open_stream() as stream:
                            for i in range(4):
                                await stream.send(i)
                            if blocked_in == 'sleep':
                                await trio.sleep_forever()
                            async for _ in stream:
                                pass
                assert info.value.type is ValueError
                assert 'stage failed at 3' in str(info.value)

            # the caller fails: its own error leaves its block, and the
            # callee's stream raises it as a RemoteActorError
            with pytest.raises(CallerError):
                async with portal.open_context(
                        __name__, 'records_its_end', key='err') as (ctx, _):
                    async with ctx.open_stream() as stream:
                        await stream.send(1)
                        raise CallerError()
            out['caller error'] = await portal.run(__name__, 'state_of',
                                                   key='err')

            # the caller cancels: explicitly, by a cancel scope, and while
            # the callee is blocked sending into a full window
            async with portal.open_context(
                    __name__, 'records_its_end', key='cancel') as (ctx, _):
                await ctx.cancel()
            out['ctx.cancel'] = await portal.run(__name__, 'state_of',
                                                 key='cancel')
            with trio.move_on_after(0.2) as cs:
                async with portal.open_context(
                        __name__, 'records_its_end', key='scope',
                        mode='sleep') as (ctx, _):
                    await trio.sleep_forever()
            assert cs.cancelled_caught
            out['scope'] = await portal.run(__name__, 'state_of',
                                            key='scope')
            with trio.move_on_after(0.5):
                async with portal.open_context(
                        __name__, 'records_its_end', key='send',
                        mode='send') as (ctx, _):
                    async with ctx.open_stream():
                        await trio.sleep_forever()  # never reads
            out['blocked sender'] = await portal.run(__name__, 'state_of',
                                                     key='send')
            # and the actor still serves
            out['still serving'] = await portal.run(__name__, 'state_of',
                                                    key='nothing')

            # the callee's actor is cancelled under it
            worker = await an.start_actor('quitter',
                                          rpc_module_paths=[__name__])
            with pytest.raises((tractor.ContextCancelled,
                                tractor.TransportClosed)):
                async with worker.open_context(
                        __name__, 'cancels_itself') as (ctx, _):
                    async with ctx.open_stream() as stream:
                        async for _ in stream:
                            pass
            await portal.cancel_actor()
        return out

    out = tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                      codec=codec)
    assert out['caller error'] == ['remote error CallerError', True]
    assert out['ctx.cancel'] == ['cancelled', True]
    assert out['scope'] == ['cancelled', True]
    assert out['blocked sender'] == ['cancelled', True]
    assert out['still serving'] == [None, False]


@tractor.context
async def serve_forever(ctx):
    await ctx.started(os.getpid())
    async with ctx.open_stream() as stream:
        async for item in stream:
            await stream.send(item)


def test_lost_peer_is_transport_closed(transport, arb_addr):
    """The callee's process freezes (SIGSTOP) mid-stream: the caller's
    block ends with TransportClosed within the liveness bound. (A process
    that exits is its supervisor's news first: ActorFailure, tested with
    the nursery.)"""
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('victim',
                                          rpc_module_paths=[__name__])
            pid = None
            try:
                with pytest.raises(tractor.TransportClosed):
                    with trio.fail_after(30):
                        async with portal.open_context(
                                __name__, 'serve_forever') as (ctx, pid):
                            async with ctx.open_stream() as stream:
                                await stream.send(1)
                                assert await stream.receive() == 1
                                os.kill(pid, signal.SIGSTOP)
                                while True:
                                    await stream.send(2)
                                    await stream.receive()
            finally:
                await an.cancel(hard_kill=True)

    tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                heartbeat=(0.2, 2.0))
