"""``tractor.testing`` as a user meets it: a test file of their own,
outside this repository, using ``tractor_test``, the plugin's fixtures and
options, and a plain pytest-trio test around ``open_root_actor``."""
import os
import textwrap

import pytest

from tractor_testing import (
    kill_pids,
    pid_alive,
    python_env,
    run_python,
    wait_pids_gone,
)

pytestmark = pytest.mark.timeout(180)

USER_TESTS = textwrap.dedent('''
    import tractor
    from tractor.testing import tractor_test


    async def double(x):
        return 2 * x


    @tractor_test
    async def test_with_the_decorator(arb_addr, start_method):
        assert tractor.current_actor().is_arbiter
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('doubler', double, x=21)
            assert await portal.result() == 42


    @tractor_test
    async def test_without_asking_for_fixtures():
        assert tractor.current_actor().name == 'arbiter'


    async def test_plain_pytest_trio(arb_addr, tractor_transport,
                                     tractor_codec):
        async with tractor.open_root_actor(arbiter_addr=arb_addr,
                                           transport=tractor_transport,
                                           codec=tractor_codec):
            async with tractor.open_nursery() as n:
                portal = await n.run_in_actor('doubler', double, x=2)
                assert await portal.result() == 4
''')


@pytest.mark.parametrize('options', [
    [],
    ['--tractor-transport', 'zmq', '--tractor-codec', 'json',
     '--spawn-method', 'trio'],
])
def test_user_suite_with_the_plugin(tmp_path, options):
    (tmp_path / 'test_user.py').write_text(USER_TESTS)
    env = python_env()
    env.pop('PYTHONPATH', None)  # only what `pip install tractor` gives
    proc = run_python(
        ['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-o', 'trio_mode=true', 'test_user.py', *options],
        cwd=str(tmp_path), env=env, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '3 passed' in proc.stdout


def test_importing_tractor_testing_does_not_import_pytest():
    proc = run_python(
        ['-c', 'import sys, tractor.testing; print("pytest" in sys.modules)'],
        timeout=30, cwd=os.path.dirname(__file__))
    assert proc.stdout.strip() == 'False', proc.stderr


# -- the leak check --------------------------------------------------------
LEAKY_TESTS = textwrap.dedent('''
    import os
    import subprocess
    import sys

    import pytest

    SLEEPER = [sys.executable, '-c', 'import time; time.sleep(300)',
               'leaked-by-a-test']


    def leave_one_behind():
        proc = subprocess.Popen(SLEEPER)
        with open(os.environ['PIDFILE'], 'a') as f:
            f.write(f'{proc.pid}\\n')


    def test_leaks():
        leave_one_behind()


    def test_cleans_up():
        proc = subprocess.Popen(SLEEPER)
        proc.kill()
        proc.wait()


    @pytest.mark.tractor_leak_check(False)
    def test_leaks_but_opted_out():
        leave_one_behind()
''')


def run_leaky(tmp_path, *options, tests: str = LEAKY_TESTS):
    (tmp_path / 'test_leaky.py').write_text(tests)
    pidfile = tmp_path / 'pids'
    if pidfile.exists():
        pidfile.unlink()
    env = python_env(PIDFILE=str(pidfile))
    env.pop('PYTHONPATH', None)
    try:
        proc = run_python(
            ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rA',
             '--tractor-leak-grace=0.5', 'test_leaky.py', *options],
            cwd=str(tmp_path), env=env, timeout=120)
    finally:
        pids = ([int(p) for p in pidfile.read_text().split()]
                if pidfile.exists() else [])
    return proc, pids


def test_leak_check_fails_a_test_that_leaves_a_process(tmp_path):
    proc, pids = run_leaky(tmp_path, '--tractor-leak-check')
    try:
        out = proc.stdout
        assert proc.returncode == 1, out[-3000:] + proc.stderr[-2000:]
        # the leaking test fails at teardown, naming pid and command line
        assert 'ERROR test_leaky.py::test_leaks' in out, out[-3000:]
        leaked = pids[0]
        assert f'pid {leaked}:' in out and 'leaked-by-a-test' in out, \
            out[-3000:]
        assert 'now SIGKILLed' in out
        # the clean test and the opted-out one pass
        assert 'PASSED test_leaky.py::test_cleans_up' in out
        assert 'PASSED test_leaky.py::test_leaks_but_opted_out' in out
        assert '3 passed, 1 error' in out
        # and the leaked process is gone (the opted-out one is not)
        assert wait_pids_gone([leaked], 10) == []
        assert pid_alive(pids[1])
    finally:
        kill_pids(pids)


def test_leak_check_is_off_by_default_and_a_marker_turns_it_on(tmp_path):
    marked = LEAKY_TESTS.replace(
        'def test_leaks():',
        '@pytest.mark.tractor_leak_check\ndef test_leaks():')
    proc, pids = run_leaky(tmp_path)
    try:
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert '3 passed' in proc.stdout
    finally:
        kill_pids(pids)
    proc, pids = run_leaky(tmp_path, tests=marked)
    try:
        assert proc.returncode == 1, proc.stdout[-3000:]
        assert 'ERROR test_leaky.py::test_leaks' in proc.stdout
        assert f'pid {pids[0]}:' in proc.stdout
    finally:
        kill_pids(pids)


def test_leak_check_passes_a_tractor_suite(tmp_path):
    """Actors torn down with their tree, the forkserver and the resource
    tracker that live for the session: no false alarm."""
    (tmp_path / 'test_user.py').write_text(USER_TESTS)
    env = python_env()
    env.pop('PYTHONPATH', None)
    proc = run_python(
        ['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-o', 'trio_mode=true', 'test_user.py', '--tractor-leak-check'],
        cwd=str(tmp_path), env=env, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '3 passed' in proc.stdout
