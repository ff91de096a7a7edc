"""Many calls in flight on one portal.

Calls issued in one scheduler pass travel together (``Channel.send_request``)
and the replies of a burst of requests leave together (``Channel.cork``):
none of that may show. Each caller gets its own result or its own error,
whatever else shares its burst (quick calls, calls that suspend and hand the
reading on, calls that fail), and nothing waits for a heartbeat to be
written: the heartbeat is set to a minute here, so a queued message that
nobody flushes would stall the test past its bound.
"""
from functools import partial

import pytest
import trio

import tractor

pytestmark = pytest.mark.timeout(120)

#: a heartbeat no test here may wait for (interval, liveness timeout)
SLOW_BEAT = (60.0, 120.0)


def echo(x):
    return x


async def aecho(x):
    return x


async def nap_echo(x):
    await trio.sleep(0)
    return x


async def fail(x):
    raise ValueError(f'call {x} fails')


def _expected(kind: str, i: int):
    return ('error', f'call {i} fails') if kind == 'fail' else i


async def _burst(portal, kinds: list, rounds: int, stop_after=None):
    """``len(kinds)`` concurrent callers, each calling its kind of function
    ``rounds`` times (caller ``i`` stops after ``stop_after(i)`` rounds,
    if given); returns {(caller, round): outcome}."""
    got = {}

    async def caller(i, kind):
        last = rounds if stop_after is None else stop_after(i)
        for r in range(last):
            x = i * 1000 + r
            try:
                got[i, r] = await portal.run(__name__, kind, x=x)
            except tractor.RemoteActorError as err:
                got[i, r] = ('error', str(err).splitlines()[-1])
                assert err.type_name == 'ValueError'

    async with trio.open_nursery() as tn:
        for i, kind in enumerate(kinds):
            tn.start_soon(partial(caller, i, kind))
    return got


def test_64_callers_each_get_their_own_results(transport, arb_addr):
    kinds = ['echo', 'aecho', 'nap_echo', 'fail'] * 16

    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('many', rpc_module_paths=[
                __name__])
            with trio.fail_after(60):
                got = await _burst(portal, kinds, rounds=20)
            await an.cancel()
        return got

    got = tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                      heartbeat=SLOW_BEAT)
    assert len(got) == 64 * 20
    for (i, r), outcome in got.items():
        x = i * 1000 + r
        if kinds[i] == 'fail':
            assert outcome[0] == 'error' and f'call {x} fails' in outcome[1]
        else:
            assert outcome == x


def test_callers_that_stop_early_stall_nobody(transport, arb_addr):
    """A burst of replies wakes 64 callers, and their next requests are
    expected together; callers dropping out one by one (so that the
    expected number never comes) must not hold the others' requests."""
    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('dropouts', rpc_module_paths=[
                __name__])
            with trio.fail_after(60):
                got = await _burst(portal, ['aecho'] * 64, rounds=64,
                                   stop_after=lambda i: i + 1)
                # and a lone call after them all
                lone = await portal.run(__name__, 'echo', x='lone')
            await an.cancel()
        return got, lone

    got, lone = tractor.run(main, arbiter_addr=arb_addr,
                            transport=transport, heartbeat=SLOW_BEAT)
    assert lone == 'lone'
    assert got == {(i, r): i * 1000 + r
                   for i in range(64) for r in range(i + 1)}


def test_looping_callers_requests_leave_together(transport, arb_addr):
    """64 callers calling in a loop: a burst of replies wakes many of them
    in one scheduler pass, and their next requests leave in a few writes,
    not one write each. Counted at the root's side of the channel: without
    batching the 1,280 requests take 1,280 writes, and 676-810 on some
    transports when the service task flushed each burst's first request
    alone (the bug this guards against); batched, 125-380 over every
    transport here (the callers' first 64 requests go one by one)."""
    calls = 64 * 20

    async def main():
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('looping', rpc_module_paths=[
                __name__])
            chan = portal.channel
            with trio.fail_after(60):
                before = chan.writes
                got = await _burst(portal, ['aecho'] * 64, rounds=20)
                writes = chan.writes - before
            await an.cancel()
        return got, writes

    got, writes = tractor.run(main, arbiter_addr=arb_addr,
                              transport=transport, heartbeat=SLOW_BEAT)
    assert len(got) == calls
    assert writes * 2 <= calls, (
        f'{calls} requests took {writes} writes: the callers a burst of '
        f'replies woke did not send their next requests together')
