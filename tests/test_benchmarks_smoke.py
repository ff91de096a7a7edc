"""The benchmark harness runs end to end (``python -m benchmarks --quick``):
a smoke check that every workload works on every installed transport. No
figure is asserted here; the numbers are for humans and the README."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(400)
def test_quick_benchmark_run(tmp_path):
    out = tmp_path / 'bench.json'
    proc = subprocess.run(
        [sys.executable, '-m', 'benchmarks', '--quick', '--json', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=380)
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
