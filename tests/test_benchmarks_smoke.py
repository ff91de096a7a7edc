"""The benchmark harness runs end to end (``python -m benchmarks --quick``):
a smoke check that every workload works on every installed transport. No
figure is asserted here; the numbers are for humans and the README.

The workloads of issue 17 (rpc_inflight, spawn_many, memory, the batched
floors) also run alone with tiny counts, each a fresh process in its own
process group exactly as the harness runs it (``_cli.run_job``), and their
results are checked for shape: every metric there, counts as asked."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks import _cli  # noqa: E402
from benchmarks._floor import BATCHED, floor_library  # noqa: E402
from benchmarks._workloads import INFLIGHT  # noqa: E402

#: benchmark runs keep both cores busy: no other test runs beside them
pytestmark = pytest.mark.alone

#: the transport variants with a floor that are installed here
FLOOR_VARIANTS = [v for v in _cli.select_variants([])
                  if floor_library(v) is not None]


# two transports (one of each framing kind) and both codecs: every workload
# and floor end to end; the per-workload tests below cover the variants
@pytest.mark.timeout(600)
def test_quick_benchmark_run(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks', '--quick', '--transports',
         'tcp,zmq+ipc', '--json', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=580)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the markdown table, and the JSON with every raw sample
    assert '| workload' in proc.stdout or '|workload' in proc.stdout, \
        proc.stdout[-2000:]
    data = json.loads(out.read_text())
    assert data
    # every workload the CLI knows was planned and has rows (a new one
    # that the plan forgets would otherwise pass unnoticed)
    asked = set(data['config']['workloads']) - {'floor'}
    seen = {r['workload'] for r in data['rows']}
    assert asked <= seen, f'no rows for {sorted(asked - seen)}'


def run(workload, variant='tcp', n=0, warmup=0, floor=False,
        batched=False, timeout=60.0) -> dict:
    """One measurement as the harness makes it; its metrics, after
    checking that it succeeded and left nothing to kill."""
    job = dict(workload=workload, variant=variant, codec='msgpack',
               floor=floor, batched=batched, start_method=None, n=n,
               warmup=warmup)
    sample = _cli.run_job(job, timeout)
    assert sample['ok'], sample
    assert not sample.get('stragglers_killed'), sample
    return sample['metrics']


def test_pipeline_asyncgen_reference():
    """The batch64 chain whose stages are one-item async generators runs
    and delivers every item (it checks the total itself)."""
    m = run('pipeline', 'mp.Queue-batch64-asyncgen', n=20000, floor=True)
    assert m['count'] == 20000 and m['items_per_s'] > 0


def test_rpc_inflight():
    m = run('rpc_inflight', n=2 * INFLIGHT[-1], warmup=5)
    assert m['count'] == 2 * INFLIGHT[-1]
    for c in INFLIGHT:
        assert m[f'calls_per_s_{c}'] > 0
        assert m[f'seconds_{c}'] > 0


@pytest.mark.parametrize('variant', FLOOR_VARIANTS)
def test_rpc_inflight_floor(variant):
    m = run('rpc_inflight', variant, n=2 * INFLIGHT[-1], warmup=5,
            floor=True)
    assert m['count'] == 2 * INFLIGHT[-1]
    for c in INFLIGHT:
        assert m[f'calls_per_s_{c}'] > 0


def test_rpc_inflight_needs_enough_calls():
    """Fewer calls than the most in flight cannot keep them outstanding:
    refused with the count to give, not measured as something else."""
    job = dict(workload='rpc_inflight', variant='tcp', codec='msgpack',
               floor=True, start_method=None, n=INFLIGHT[-1] - 1, warmup=0)
    sample = _cli.run_job(job, 60.0)
    assert not sample['ok']
    assert f'--n {INFLIGHT[-1]}' in sample['error'], sample


@pytest.mark.parametrize('workload', BATCHED)
@pytest.mark.parametrize('variant', FLOOR_VARIANTS)
def test_batched_floor(variant, workload):
    # 1,000 messages: bursts of 64 and a last, shorter one (500 a peer
    # for fanin's two)
    m = run(workload, variant, n=1000, floor=True, batched=True)
    assert m['count'] == 1000
    assert m['msgs_per_s'] > 0


def test_spawn_many():
    m = run('spawn_many', n=3, warmup=1)
    assert m['count'] == 3
    assert m['up_ms'] > 0 and m['teardown_ms'] > 0
    assert m['per_actor_ms'] == pytest.approx(m['up_ms'] / 3)


def test_spawn_many_killed_leaves_nothing():
    """A spawn_many that runs out of time is killed with every actor it
    started (its process group), and says so; the leak check of
    conftest.py fails this test if any process of it survived. (2.5 s
    in, the forkserver and some tens of the 1,000 actors are up.)"""
    job = dict(workload='spawn_many', variant='tcp', codec='msgpack',
               floor=False, start_method=None, n=1000, warmup=0)
    sample = _cli.run_job(job, timeout=2.5)
    assert not sample['ok']
    assert 'timed out' in sample['error']


def test_memory():
    m = run('memory', n=2)
    assert m['count'] == 2
    # a process's proportional share never exceeds what it maps
    assert 0 < m['pss_mib'] <= m['rss_mib']
    assert 0 < m['uss_mib'] <= m['pss_mib']
    assert m['pss_mib_total'] >= m['pss_mib_max'] >= m['pss_mib']
    assert 0 < m['root_pss_mib'] <= m['root_rss_mib']


@pytest.mark.timeout(180)
def test_report_names_each_floor(tmp_path):
    """The table says which floor each ratio is against, the batched
    floors have rows of their own, and the chart is written when
    matplotlib is installed."""
    out = tmp_path / 'bench.json'
    chart = tmp_path / 'bench.png'
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks', '--quick', '--transports',
         'tcp', '--codecs', 'msgpack', '--workloads', 'rpc_inflight',
         'stream_small', 'floor', '--json', str(out), '--chart',
         str(chart)],
        cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = proc.stdout
    assert '| stream_small | tcp | floor-batched |' in table, table
    small = [line for line in table.splitlines()
             if line.startswith('| stream_small | tcp | msgpack |')]
    assert len(small) == 1 and 'x floor, ' in small[0] \
        and small[0].rstrip(' |').endswith('x floor-batched'), small
    top = [line for line in table.splitlines()
           if line.startswith(f'| rpc {INFLIGHT[-1]} in flight | tcp | '
                              f'msgpack |')]
    assert len(top) == 1 and f'x {INFLIGHT[0]} in flight' in top[0], top
    rows = json.loads(out.read_text())['rows']
    ratios = {(r['label'], x['against']) for r in rows
              for x in r.get('ratios', ())}
    assert ('stream_small', 'floor-batched') in ratios
    assert (f'rpc {INFLIGHT[-1]} in flight', 'floor') in ratios
    # tcp's secured variant came along: its own floor (trio.SSLStream)
    # and its plaintext self
    secured = [line for line in table.splitlines()
               if line.startswith('| stream_small | tcp+tls | msgpack |')]
    assert len(secured) == 1 and 'x floor, ' in secured[0] \
        and secured[0].rstrip(' |').endswith('x tcp'), secured
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not chart.exists()
    else:
        assert chart.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # --report redraws the same table (and chart) from the JSON alone
    again = tmp_path / 'again.png'
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks', '--report', str(out),
         '--chart', str(again)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert small[0] in proc.stdout and top[0] in proc.stdout
    assert again.exists() == chart.exists()
