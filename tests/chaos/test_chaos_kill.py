"""SIGKILL a child, a grandchild, the root (which is also the arbiter) at
seeded points during RPC calls and streams.

What must hold, on every transport:

* the nearest living parent gets a clear error naming the dead actor
  (``ActorFailure``/``TransportClosed`` in the child's parent,
  ``RemoteActorError`` relayed above it) within a bounded time;
* every call that returned a result returned the right one, and every
  stream item arrived once and in order up to the kill;
* no process of the tree survives (checked through ``/proc``).
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tractor_testing import pid_alive, wait_pids_gone

#: seconds from the kill to the parent's error: the liveness timeout of
#: ``heartbeat=(0.5, 3.0)`` plus slack for a loaded 2-core CI machine
ERROR_BOUND = 8.0
#: seconds for a whole tree to go once its root is killed: the liveness
#: timeout, then each level's polite cancel (KILL_GRACE) at worst
TREE_GONE_BOUND = 15.0

ROUNDS = [
    {'target': 'child', 'phase': 'rpc'},
    {'target': 'child', 'phase': 'stream'},
    {'target': 'grandchild', 'phase': 'rpc'},
    {'target': 'grandchild', 'phase': 'stream'},
]


def check_round(r: dict) -> None:
    what = f"{r['target']}/{r['phase']} killed after {r['kill_at']}"
    assert r['killed'], f'{what}: the kill point was never reached: {r}'
    assert not r['wrong'], f'{what}: wrong results {r["wrong"][:5]}'
    assert r['good'] >= r['kill_at'] - 1, f'{what}: results lost: {r}'
    if r['target'] == 'child':
        # the supervising nursery fails with ActorFailure naming the child
        err = r.get('nursery_error')
        assert err, f'{what}: the nursery saw no error: {r}'
        errs = err.get('subs') or [err]
        assert any(e['type'] == 'ActorFailure' and "'child'" in e['msg']
                   for e in errs), f'{what}: no ActorFailure naming the ' \
                                   f'child: {err}'
        # callers in flight got a clear error naming the child, or were
        # cancelled by the failing nursery (then nothing is recorded)
        for e in r['call_errors']:
            assert e['type'] in ('TransportClosed', 'RemoteActorError'), e
            assert 'child' in e['msg'], e
    else:
        # the child (the grandchild's parent) saw it die and says so
        assert 'nursery_error' not in r, f'{what}: {r["nursery_error"]}'
        assert len(r['call_errors']) == 1, r
        e = r['call_errors'][0]
        assert e['type'] == 'RemoteActorError', e
        assert e['remote_type'] in ('ActorFailure', 'TransportClosed',
                                    'ExceptionGroup'), e
        assert 'grandchild' in e['msg'], e
        assert r['error_after'] < ERROR_BOUND, r
        assert r['child_answers'] == [7, 49], r
    assert r['elapsed_after_kill'] < ERROR_BOUND + 5, r


def run_rounds(chaos, transport, seed, rounds, n=200):
    t0 = time.monotonic()
    res = chaos.run('kill', transport, seed=seed, timeout=100,
                    rounds=[dict(r, n=n) for r in rounds])
    for r in res['rounds']:
        check_round(r)
    pids = [p for r in res['rounds'] for p in r['pids']]
    assert not [p for p in pids if pid_alive(p)], 'killed actors linger'
    chaos.assert_all_gone(10)
    return time.monotonic() - t0


@pytest.mark.timeout(120)
def test_kill_child_and_grandchild(chaos, chaos_transport):
    """One tree per transport; four rounds: child killed during calls,
    during a stream, grandchild killed during calls, during a stream."""
    run_rounds(chaos, chaos_transport, seed=0, rounds=ROUNDS)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize('seed', [1, 2, 3, 4, 5])
def test_kill_child_and_grandchild_seeds(chaos, chaos_transport, seed):
    """The same at other seeded kill points, longer runs."""
    run_rounds(chaos, chaos_transport, seed=seed, rounds=ROUNDS * 2, n=2000)


def _kill_root(chaos, transport, depth, ready_after, own_arbiter=False):
    sc = chaos.start('kill_root', transport, depth=depth,
                     ready_after=ready_after, own_arbiter=own_arbiter)
    arb_pid = None
    if own_arbiter:
        arb_pid = sc.next_event(30, 'arbiter_started')['pid']
    tree = sc.next_event(30, 'tree')
    assert tree['root_is_arbiter'] is (not own_arbiter)
    sc.next_event(20, 'streaming')
    pids = tree['pids']
    assert len(pids) == depth + 1
    t0 = time.monotonic()
    sc.kill()  # SIGKILL the root (the arbiter too, unless own_arbiter)
    alive = wait_pids_gone(pids, TREE_GONE_BOUND)
    gone_after = time.monotonic() - t0
    assert not alive, (
        f'actors {alive} outlived their SIGKILLed root by '
        f'{TREE_GONE_BOUND}s; stderr:\n{sc.stderr()[-3000:]}')
    if arb_pid is not None:
        # a separate arbiter is not part of the tree: it lives on
        assert pid_alive(arb_pid), 'the arbiter died with a root'
        os.kill(arb_pid, signal.SIGKILL)
    chaos.assert_all_gone(5)
    return gone_after


@pytest.mark.timeout(90)
def test_kill_root_arbiter(chaos, chaos_transport):
    """SIGKILL the root (the arbiter) mid-stream: its child, grandchild and
    great-grandchild notice and exit; nothing is left behind."""
    _kill_root(chaos, chaos_transport, depth=2, ready_after=300)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize('ready_after', [1, 999, 5000])
def test_kill_root_arbiter_points(chaos, chaos_transport, ready_after):
    _kill_root(chaos, chaos_transport, depth=3, ready_after=ready_after)


@pytest.mark.timeout(90)
def test_kill_root_not_arbiter(chaos, chaos_transport):
    """SIGKILL a root that joined a separate arbiter: its tree goes, the
    arbiter stays."""
    _kill_root(chaos, chaos_transport, depth=2, ready_after=300,
               own_arbiter=True)
