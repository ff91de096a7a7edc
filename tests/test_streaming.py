"""Streams between actors: async generators and ``@tractor.stream``
functions, flow control, and stopping a stream from the reading side.

Whether the remote task really stopped is asked of the remote actor
itself: each stream marks its progress and its end in the actor's
statespace, and ``stream_state()`` waits for the end and reports it.
"""
import pytest
import trio

import tractor

pytestmark = pytest.mark.timeout(60)

_stopped: dict[str, trio.Event] = {}


def _stop_event(key) -> trio.Event:
    ev = _stopped.get(key)
    if ev is None:
        ev = _stopped[key] = trio.Event()
    return ev


async def counter(key, limit=None):
    """Yield 0, 1, 2... (forever unless ``limit``), recording progress."""
    state = tractor.current_actor().statespace
    state[key] = {'sent': 0, 'stopped': False}
    ev = _stop_event(key)
    try:
        i = 0
        while limit is None or i < limit:
            yield i
            i += 1
            state[key]['sent'] = i
            await trio.sleep(0)
    finally:
        state[key]['stopped'] = True
        ev.set()


@tractor.stream
async def ctx_counter(ctx, key):
    state = tractor.current_actor().statespace
    state[key] = {'sent': 0, 'stopped': False}
    ev = _stop_event(key)
    try:
        i = 0
        while True:
            await ctx.send_yield(i)
            i += 1
            state[key]['sent'] = i
            await trio.sleep(0)
    finally:
        state[key]['stopped'] = True
        ev.set()


async def stream_state(key, timeout=10):
    """Wait until the stream ``key`` has ended; report its state and the
    number of RPC tasks still running here (this call's own included)."""
    with trio.fail_after(timeout):
        await _stop_event(key).wait()
    actor = tractor.current_actor()
    return {**actor.statespace[key], 'rpc_tasks': len(actor._rpc_tasks)}


async def failing_stream(n):
    for i in range(n):
        yield i
    raise ValueError(f'stream broke after {n}')


def long_value(i: int):
    """A 1 MiB value each codec carries beside its encoding (see
    ``tractor.codecs``): bytes under msgpack, text under JSON (every kind
    of character a JSON string escapes or holds, 1- to 4-byte UTF-8)."""
    if tractor.current_actor().codec == 'msgpack':
        return bytes([i % 256]) * (1 << 20)
    return (f'{i} \x00 "q" \\ \n λ ☃ 日本語 😀 ' * 40_000)[:1 << 20]


async def long_items(count):
    for i in range(count):
        yield long_value(i) if i % 2 else {'frame': long_value(i), 'i': i}


def long_result(i):
    return [i, long_value(i)]


async def spawn_daemon(n):
    return await n.start_actor('streamer', rpc_module_paths=[__name__])


def test_stream_round_trip(transport, codec, arb_addr):
    """A finite stream, longer than the flow-control window, arrives whole
    and in order over every transport and codec; the remote generator
    then ends by itself."""
    from tractor._flow import STREAM_WINDOW
    count = 2 * STREAM_WINDOW + 7  # credits must flow back, twice

    async def main():
        async with tractor.open_nursery() as n:
            portal = await spawn_daemon(n)
            got = [i async for i in await portal.run(
                __name__, 'counter', key='whole', limit=count)]
            state = await portal.run(__name__, 'stream_state', key='whole')
            await portal.cancel_actor()
        return got, state

    got, state = tractor.run(main, arbiter_addr=arb_addr,
                             transport=transport, codec=codec)
    assert got == list(range(count))
    assert state['stopped'] and state['sent'] == count
    assert state['rpc_tasks'] == 1


@pytest.mark.parametrize('how', ['break', 'aclose', 'cancel_scope'])
@pytest.mark.parametrize('func', ['counter', 'ctx_counter'])
def test_stopping_a_stream_stops_the_remote_task(arb_addr, how, func):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await spawn_daemon(n)
            stream = await portal.run(__name__, func, key='k')
            got = []
            if how == 'break':
                async for i in stream:
                    got.append(i)
                    if len(got) == 5:
                        break
                del stream  # let the generator be finalized
            elif how == 'aclose':
                for _ in range(5):
                    got.append(await stream.__anext__())
                await stream.aclose()
            else:
                with trio.CancelScope() as cs:
                    async for i in stream:
                        got.append(i)
                        if len(got) == 5:
                            cs.cancel()
                assert cs.cancelled_caught
            state = await portal.run(__name__, 'stream_state', key='k')
            # the actor keeps serving: a new stream works
            again = [i async for i in await portal.run(
                __name__, 'counter', key='again', limit=3)]
            await portal.cancel_actor()
        return got, state, again

    got, state, again = tractor.run(main, arbiter_addr=arb_addr)
    assert got == [0, 1, 2, 3, 4]
    assert state['stopped']
    # only the stream_state call itself was still running
    assert state['rpc_tasks'] == 1
    assert again == [0, 1, 2]


def test_long_values_arrive_whole(transport, codec, arb_addr):
    """1 MiB items and results, alone or inside a message, arrive equal
    over every transport and codec: what the codecs carry beside their
    encoding (whole frames, or frames in parts over zmq) is put back in
    place."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await spawn_daemon(n)
            got = [x async for x in await portal.run(
                __name__, 'long_items', count=6)]
            result = await portal.run(__name__, 'long_result', i=7)
            want = [long_value(i) if i % 2 else {'frame': long_value(i),
                                                 'i': i} for i in range(6)]
            await portal.cancel_actor()
        return got == want, result == [7, long_value(7)]

    assert tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                       codec=codec) == (True, True)


def test_stream_error_reaches_reader(transport, codec, arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await spawn_daemon(n)
            got = []
            try:
                async for i in await portal.run(
                        __name__, 'failing_stream', n=3):
                    got.append(i)
            except tractor.RemoteActorError as err:
                return got, err.type, str(err)
            finally:
                await portal.cancel_actor()

    got, etype, text = tractor.run(main, arbiter_addr=arb_addr,
                                   transport=transport, codec=codec)
    assert got == [0, 1, 2]
    assert etype is ValueError
    assert 'stream broke after 3' in text


def test_slow_reader_bounds_the_producer(arb_addr):
    """A producer never runs more than the credit window ahead of a
    reader that stops reading."""
    from tractor._flow import STREAM_WINDOW

    async def main():
        async with tractor.open_nursery() as n:
            portal = await spawn_daemon(n)
            stream = await portal.run(__name__, 'counter', key='slow')
            first = await stream.__anext__()
            # the producer runs until its credits are spent, then waits;
            # ask it how far it got (a second call on the same channel)
            sent = await portal.run(__name__, 'wait_stalled', key='slow')
            await stream.aclose()
            await portal.cancel_actor()
        return first, sent

    first, sent = tractor.run(main, arbiter_addr=arb_addr)
    assert first == 0
    assert sent <= STREAM_WINDOW + 1


async def wait_stalled(key):
    """The ``sent`` count of stream ``key`` once it stopped growing: the
    producer is parked waiting for credit."""
    from trio.testing import wait_all_tasks_blocked
    state = tractor.current_actor().statespace[key]
    with trio.fail_after(10):
        while True:
            before = state['sent']
            await wait_all_tasks_blocked(cushion=0.05)
            if state['sent'] == before:
                return before
