"""``examples/pipeline.py`` as its users run it: the right total over every
transport and codec (``test_examples``), a crashing stage's error at the
root with the pipeline torn down, and Ctrl-C stopping everything.

Leftover processes fail the test (the suite's ``no_leaked_processes``
fixture), so "torn down" is checked for every case.
"""
import signal

import pytest

from tractor_testing import (
    EXAMPLES,
    free_port,
    python_env,
    read_line,
    run_python,
    spawn_python,
)

pytestmark = pytest.mark.timeout(120)


def test_crashing_stage_tears_the_pipeline_down(transport):
    env = python_env(TRACTOR_TRANSPORT=transport,
                     TRACTOR_ARBITER_ADDR=f'127.0.0.1:{free_port()}')
    proc = run_python(['pipeline.py', '100000', '--crash-at', '500'],
                      cwd=EXAMPLES, env=env, timeout=90)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert ('pipeline failed: ValueError: ' in proc.stderr
            and 'square stage cannot take 500' in proc.stderr
            and "(in stage 'square')" in proc.stderr), (
        proc.stderr[-3000:])
    assert 'sink got' not in proc.stdout


def test_ctrl_c_stops_everything():
    env = python_env(TRACTOR_ARBITER_ADDR=f'127.0.0.1:{free_port()}')
    proc = spawn_python(['pipeline.py', '-1'], cwd=EXAMPLES, env=env)
    try:
        line = read_line(proc, timeout=60)
        assert line.startswith('pipeline running'), (
            line + proc.stderr.read()[-3000:] if not line else line)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        # an uncaught KeyboardInterrupt: death by SIGINT, or exit 1
        assert proc.returncode in (-signal.SIGINT, 1), err[-3000:]
        assert 'KeyboardInterrupt' in err
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate(timeout=10)
