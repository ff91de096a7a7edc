"""Busy is not dead: an actor whose trio loop is held by user code (a sync
function computing, an async function that never yields) for several
liveness timeouts keeps its channels, while a SIGSTOPped actor is still
declared dead within the bound. See :mod:`tractor._liveness`.

The busy functions spin in pure Python (not ``time.sleep``, which releases
the GIL and so would prove less): the case the responder thread must
survive."""
import os
import signal
import threading
import time

import pytest
import trio

import tractor
from tractor import _liveness
from tractor.transports import TransportClosed

#: a short heartbeat so that "several liveness timeouts" stays short
HEARTBEAT = (0.2, 1.0)
#: seconds the busy functions hold the loop: 3 x the liveness timeout
BUSY = 3.0


def spin(secs: float) -> dict:
    """Hold the CPU (and, when called from the loop, the loop) for
    ``secs`` in pure Python."""
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < secs:
        n += 1
    return {'pid': os.getpid(), 'spins': n,
            'took': time.monotonic() - start}


def busy_sync(secs):
    return spin(secs)


async def busy_async(secs):
    # never awaits: the whole call runs without giving the loop back
    return spin(secs)


def getpid():
    return os.getpid()


def _call_busy_twice(kind, secs, **run_kw):
    """Spawn an actor, call ``kind`` in it for ``secs``, then call it again
    (a quick one): both must return, over the same channel."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('busy', rpc_module_paths=[__name__])
            pid = await portal.run(__name__, 'getpid')
            first = await portal.run(__name__, kind, secs=secs)
            second = await portal.run(__name__, kind, secs=0.01)
            still = await portal.run(__name__, 'getpid')
            await portal.cancel_actor()
        return pid, first, second, still

    pid, first, second, still = tractor.run(main, **run_kw)
    assert first['pid'] == pid and second['pid'] == pid and still == pid
    # the loop really was held for the whole time (several timeouts)
    assert first['took'] >= secs and first['spins'] > 0
    return first


@pytest.mark.timeout(90)
@pytest.mark.parametrize('kind', ['busy_sync', 'busy_async'])
def test_busy_actor_keeps_its_channel(transport, arb_addr, kind):
    """A sync function holding the CPU, or an async function that never
    yields, for 3 x the liveness timeout returns its result, and the actor
    answers again afterwards: the caller was not told it died, and the
    actor, whose own watch saw the long gap it caused, did not drop its
    parent either (it would have cancelled itself)."""
    _call_busy_twice(kind, BUSY, arbiter_addr=arb_addr,
                     transport=transport, heartbeat=HEARTBEAT)


@pytest.mark.alone  # (a core busy for 30 s)
@pytest.mark.timeout(150)
def test_busy_30s_at_default_settings(arb_addr):
    """The reported case, at the default heartbeat (1 s, 5 s timeout): a
    sync function computing for 30 s returns, and its actor lives on."""
    _call_busy_twice('busy_sync', 30.0, arbiter_addr=arb_addr)


@pytest.mark.timeout(60)
def test_sigstopped_actor_declared_dead_through_probe(arb_addr):
    """A SIGSTOPped actor answers neither heartbeats nor liveness probes:
    a call to it fails with TransportClosed within the liveness bound, and
    the error says the probe went unanswered (so the probe path ran: the
    actor had advertised its responder)."""
    interval, timeout = HEARTBEAT

    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('frozen',
                                         rpc_module_paths=[__name__])
            pid = await portal.run(__name__, 'getpid')
            os.kill(pid, signal.SIGSTOP)
            try:
                start = trio.current_time()
                # generous: timeout + probe wait + scheduling on a loaded
                # machine; the point is "bounded", not how tight
                with trio.fail_after(timeout + 15):
                    with pytest.raises(TransportClosed) as info:
                        await portal.run(__name__, 'getpid')
                took = trio.current_time() - start
            finally:
                # (SIGKILL ends a stopped process too: nothing is left)
                os.kill(pid, signal.SIGKILL)
            await n.cancel()
        return pid, took, str(info.value)

    pid, took, err = tractor.run(main, arbiter_addr=arb_addr,
                                 heartbeat=HEARTBEAT)
    assert took >= timeout * 0.5, f'declared dead after {took:.2f}s'
    assert 'did not answer a liveness probe' in err, err


# -- the responder on its own --------------------------------------------
def _probe_from_thread(host, port, wait, out):
    """Probe from a trio run of its own in another thread: this process's
    own loop is the one being held."""
    out.append(trio.run(_liveness.probe, host, port, wait))


async def test_responder_answers_while_loop_is_held():
    """The responder answers "blocked" while the loop of its process is
    held by pure-Python code, "running" while it is free, and nothing once
    stopped (its thread gone, its port closed)."""
    r = _liveness.acquire('127.0.0.1')
    try:
        host, port = r.host, r.port
        assert _liveness.hello_field() == ['127.0.0.1', port]
        assert await _liveness.probe(host, port, 5.0) == \
            _liveness.LOOP_RUNNING
        got = []
        prober = threading.Thread(target=_probe_from_thread,
                                  args=(host, port, 10.0, got))
        prober.start()
        # hold this loop until the prober is done (it has 10 s to get an
        # answer; we hold at most 15 s so a failure cannot hang)
        start = time.monotonic()
        while prober.is_alive() and time.monotonic() - start < 15:
            pass
        prober.join()
        assert got == [_liveness.LOOP_BLOCKED]
    finally:
        _liveness.release()
    assert _liveness.hello_field() is None
    assert not [t for t in threading.enumerate()
                if t.name == 'tractor-liveness']
    # the port is closed: the probe learns it at once (ICMP) or times out
    assert await _liveness.probe(host, port, 1.0) is None


def _probe_many_from_thread(host, port, n, wait, out):
    async def main():
        async def one():
            out.append(await _liveness.probe(host, port, wait))
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(one)
    trio.run(main)


async def test_many_probes_answered_while_loop_is_held():
    """Forty peers probing a busy process at once are all answered
    "blocked" within their wait: the responder checks the held loop once,
    not once per probe (LOOP_CHECK each, one after the other, would make
    the later ones miss their wait and declare a busy actor dead)."""
    r = _liveness.acquire('127.0.0.1')
    try:
        got = []
        prober = threading.Thread(target=_probe_many_from_thread,
                                  args=(r.host, r.port, 40, 2.0, got))
        prober.start()
        start = time.monotonic()
        while prober.is_alive() and time.monotonic() - start < 15:
            pass  # hold the loop
        prober.join()
        assert got == [_liveness.LOOP_BLOCKED] * 40
    finally:
        _liveness.release()


async def test_responder_ignores_anything_but_probes():
    """Answers and noise get no reply -- so two responders cannot be made
    to bounce datagrams at each other -- and a probe still does."""
    r = _liveness.acquire('127.0.0.1')
    try:
        with trio.socket.socket(type=trio.socket.SOCK_DGRAM) as s:
            await s.connect((r.host, r.port))
            nonce = os.urandom(_liveness.NONCE_LEN)
            await s.send(_liveness.ANSWER + nonce + b'B')
            await s.send(b'noise')
            await s.send(_liveness.PROBE + b'short')
            await s.send(_liveness.PROBE + nonce)
            with trio.fail_after(10):
                data = await s.recv(64)
            # the first reply is the probe's: the others were not answered
            assert data == _liveness.ANSWER + nonce + _liveness.LOOP_RUNNING
    finally:
        _liveness.release()


async def test_responder_is_reference_counted():
    """Two users share one responder; it stops with the last."""
    a = _liveness.acquire('127.0.0.1')
    b = _liveness.acquire('127.0.0.1')
    try:
        assert a is b
        _liveness.release()
        assert _liveness.hello_field() == ['127.0.0.1', a.port]
        assert await _liveness.probe(a.host, a.port, 5.0) == \
            _liveness.LOOP_RUNNING
    finally:
        _liveness.release()
    assert _liveness.hello_field() is None


def test_parse_field():
    """A peer's "alive" field is used only when well formed; anything else
    leaves that peer judged by silence alone, as before."""
    assert _liveness.parse_field(['', 4000]) == ('', 4000)
    assert _liveness.parse_field(['10.0.0.1', 1]) == ('10.0.0.1', 1)
    for bad in (None, [], ['h'], ['h', '1'], ['h', 0], ['h', 70000],
                [1, 2], 'h:1', ['h', True], ['x' * 300, 1]):
        assert _liveness.parse_field(bad) is None, bad
