"""No actor outlives its tree: SIGKILL the root and every descendant
exits; Ctrl-C (SIGINT) the root and the tree is torn down, the root
exiting with KeyboardInterrupt."""
import json
import os
import signal

import pytest

from tractor_testing import (
    SCRIPTS,
    kill_pids,
    pid_alive,
    read_line,
    spawn_python,
    wait_pids_gone,
)

pytestmark = pytest.mark.timeout(90)

TREE = os.path.join(SCRIPTS, 'tree.py')
#: seconds the descendants get to notice their root is gone
GONE_BOUND = 10.0


def _start_tree(start_method, port, depth=2):
    proc = spawn_python([TREE, start_method, str(port), str(depth)])
    line = read_line(proc, timeout=60)
    if not line:
        proc.wait(5)
        pytest.fail(f'tree did not start: {proc.stderr.read()[-3000:]}')
    pids = json.loads(line)
    assert len(pids) == depth + 1
    assert all(pid_alive(p) for p in pids)
    return proc, pids


def _cleanup(proc, pids):
    proc.kill()
    proc.communicate(timeout=10)
    kill_pids(pids)


@pytest.mark.parametrize('start_method', ['forkserver', 'spawn', 'trio'])
def test_sigkill_root_takes_tree_down(arb_addr, start_method):
    proc, pids = _start_tree(start_method, arb_addr[1])
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        alive = wait_pids_gone(pids, GONE_BOUND)
        assert not alive, (
            f'actors {alive} outlived their SIGKILLed root by {GONE_BOUND}s'
            f'; stderr: {proc.stderr.read()[-3000:]}')
    finally:
        _cleanup(proc, pids)


def test_sigint_root_tears_tree_down(arb_addr):
    proc, pids = _start_tree('forkserver', arb_addr[1])
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        # Python re-raises an uncaught KeyboardInterrupt as death by SIGINT
        assert proc.returncode in (-signal.SIGINT, 1), err
        assert 'KeyboardInterrupt' in err
        # the root waited for its tree: nothing left by the time it exits
        alive = [p for p in pids if pid_alive(p)]
        assert not alive, f'actors {alive} outlived the Ctrl-C; {err[-3000:]}'
    finally:
        _cleanup(proc, pids)
