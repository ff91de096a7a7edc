"""Stream flow control by bytes as well as items: a stream of large items
must not run ``STREAM_WINDOW`` items (GiBs) ahead of a reader that stalls,
yet must never deadlock when the byte window fills before the reader's
regular credit is due."""
import pytest
import trio

import tractor
from tractor._flow import STREAM_WINDOW_BYTES

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024


async def big_items(key, count, size):
    state = tractor.current_actor().statespace
    state[key] = 0
    payload = b'x' * size
    for i in range(count):
        yield payload
        state[key] = i + 1


async def sent_so_far(key):
    """How many items stream ``key`` has handed to the runtime, once that
    number stops growing (the producer is parked on its window)."""
    from trio.testing import wait_all_tasks_blocked
    state = tractor.current_actor().statespace
    with trio.fail_after(10):
        while True:
            before = state.get(key, 0)
            await wait_all_tasks_blocked(0.2)
            if state.get(key, 0) == before:
                return before


def test_large_items_flow_and_stay_within_the_byte_window(transport,
                                                           arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('big', rpc_module_paths=[__name__])
            # the whole stream arrives: credit flows back although the byte
            # window fills after a handful of items
            got = 0
            async for item in await portal.run(
                    __name__, 'big_items', key='all', count=40, size=MIB):
                assert len(item) == MIB
                got += 1
            # a reader that stops: the producer parks near the byte window
            stream = await portal.run(
                __name__, 'big_items', key='stalled', count=1000, size=MIB)
            await stream.__anext__()
            sent = await portal.run(__name__, 'sent_so_far', key='stalled')
            await stream.aclose()
            await portal.cancel_actor()
        return got, sent

    got, sent = tractor.run(main, arbiter_addr=arb_addr, codec='msgpack',
                            transport=transport)
    assert got == 40
    # one item may be in flight beyond the window, plus the one consumed
    assert sent <= STREAM_WINDOW_BYTES // MIB + 2
