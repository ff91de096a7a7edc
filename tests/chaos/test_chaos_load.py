"""Load: many concurrent calls, many actors at once, a long stream with a
slow consumer -- on every transport.

* 1,000 ``portal.run`` calls in flight at once from 20 tasks to one actor:
  every one answers, correctly.
* 50 actors spawned at once (on the CI's two cores; 150 in the full run):
  all come up, answer, and are all gone afterwards.
* a stream of ``$TRACTOR_CHAOS_STREAM_N`` (1,000,000 in the full run) small
  messages to a consumer slower than its producer: everything arrives in
  order, and the resident memory (``VmRSS`` from ``/proc/<pid>/status``)
  of both producer and consumer stays within a fixed bound -- streams are
  credit flow-controlled (``STREAM_WINDOW``), so memory must not grow with
  the message count.
"""
from __future__ import annotations

import os

import pytest

from _chaos import FULL
from tractor_testing import wait_pids_gone

#: load is what these tests make: no other test runs beside them
pytestmark = pytest.mark.alone

#: growth of either side's RSS over the stream allowed, in KiB
RSS_GROWTH_BOUND = 48 * 1024
STREAM_N = int(os.environ.get('TRACTOR_CHAOS_STREAM_N',
                              1_000_000 if FULL else 20_000))


@pytest.mark.timeout(60)
def test_1000_concurrent_calls(chaos, chaos_transport):
    res = chaos.run('load_calls', chaos_transport, timeout=50,
                    tasks=20, per_task=50)
    assert not res['errors'], res['errors'][:3]
    assert not res['wrong'], res['wrong'][:3]
    assert res['good'] == 1000
    chaos.assert_all_gone(10)


def _spawn(chaos, transport, count):
    res = chaos.run('load_spawn', transport, timeout=100, count=count)
    assert len(set(res['pids'])) == count, res
    assert not wait_pids_gone(res['pids'], 10), 'actors outlived their nursery'
    chaos.assert_all_gone(10)
    return res


@pytest.mark.timeout(60)
def test_spawn_50_at_once(chaos, chaos_transport):
    _spawn(chaos, chaos_transport, 50)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_spawn_150_at_once(chaos, chaos_transport):
    _spawn(chaos, chaos_transport, 150)


def _stream(chaos, transport, n):
    res = chaos.run('load_stream', transport, timeout=max(60, n / 5000),
                    n=n)
    assert res['received'] == n and not res['wrong'], res
    for side in ('consumer', 'producer'):
        growth = res['peak_kib'][side] - res['base_kib'][side]
        assert growth < RSS_GROWTH_BOUND, (
            f'{side} RSS grew by {growth} KiB over {n} messages: {res}')
    chaos.assert_all_gone(10)
    return res


@pytest.mark.timeout(120)
def test_stream_slow_consumer_bounded_memory(chaos, chaos_transport):
    _stream(chaos, chaos_transport, min(STREAM_N, 20_000))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_stream_million_slow_consumer(chaos, chaos_transport):
    _stream(chaos, chaos_transport, STREAM_N)
