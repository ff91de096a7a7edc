"""Streams with a lifetime: leaving ``async with portal.open_stream_from()``
(or ``async with`` the stream ``portal.run`` returns) by any path stops the
remote producer, and the block does not end before the producer's
``finally`` has run.

That is asked of the producer's actor right after the block: no waiting,
no polling. The block itself must not take more than a second.
"""
import pytest
import trio

import tractor

pytestmark = pytest.mark.timeout(60)


async def numbers(key):
    """0, 1, 2... forever; records its end in the actor's statespace."""
    state = tractor.current_actor().statespace
    state[key] = 'running'
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        state[key] = 'stopped'


@tractor.stream
async def ctx_numbers(ctx, key):
    state = tractor.current_actor().statespace
    state[key] = 'running'
    try:
        i = 0
        while True:
            await ctx.send_yield(i)
            i += 1
    finally:
        state[key] = 'stopped'


async def state_of(key):
    return tractor.current_actor().statespace.get(key)


async def just_a_value():
    return 42


class Boom(Exception):
    pass


async def leave(portal, func, how, form):
    """Read 5 items from ``func``'s stream and leave its block by
    ``how``; return what was read."""
    got = []

    async def read(stream):
        async for i in stream:
            got.append(i)
            if len(got) == 5:
                if how == 'break':
                    break
                if how == 'error':
                    raise Boom()
                scope.cancel()
                await trio.sleep_forever()  # the cancel lands here

    with trio.CancelScope() as scope:
        try:
            if form == 'open_stream_from':
                async with portal.open_stream_from(
                        __name__, func, key=func) as stream:
                    await read(stream)
            else:
                async with await portal.run(__name__, func,
                                            key=func) as stream:
                    await read(stream)
        except Boom:
            pass
    return got


@pytest.mark.parametrize('how', ['break', 'error', 'cancel'])
def test_leaving_the_block_stops_the_producer(transport, codec, arb_addr,
                                              how):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('producer',
                                         rpc_module_paths=[__name__])
            results = {}
            for form in ('open_stream_from', 'run'):
                for func in ('numbers', 'ctx_numbers'):
                    got = await leave(portal, func, how, form)
                    # asked right away: the producer's finally has run
                    state = await portal.run(__name__, 'state_of',
                                             key=func)
                    results[form, func] = (got, state)
            # the actor still serves
            assert await portal.run(__name__, 'just_a_value') == 42
            await portal.cancel_actor()
            return results

    results = tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                          codec=codec)
    for key, (got, state) in results.items():
        assert got == [0, 1, 2, 3, 4], key
        assert state == 'stopped', key


def test_open_stream_from_a_plain_function_is_a_type_error(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('p', rpc_module_paths=[__name__])
            with pytest.raises(TypeError, match='not a stream'):
                async with portal.open_stream_from(__name__, 'just_a_value'):
                    pass
            assert await portal.run(__name__, 'just_a_value') == 42
            await portal.cancel_actor()

    tractor.run(main, arbiter_addr=arb_addr)


def test_stream_read_to_its_end_needs_no_cancel(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('p', rpc_module_paths=[
                'test_streaming'])
            async with portal.open_stream_from(
                    'test_streaming', 'counter', key='k', limit=3) as s:
                got = [i async for i in s]
            await portal.cancel_actor()
            return got

    assert tractor.run(main, arbiter_addr=arb_addr) == [0, 1, 2]
