"""The pytest plugin of :mod:`tractor.testing` (registered through the
``pytest11`` entry point): fixtures and options for testing actors, and
an opt-in check for leaked processes.

The leak check (``--tractor-leak-check``, or ``@pytest.mark.
tractor_leak_check`` on some tests) fails a test that leaves a process
behind, naming each by pid and command line, and SIGKILLs them so the next
test starts clean. Every process the test session starts inherits
``$TRACTOR_TEST_SESSION`` (a value of its own per session), so actors
spawned through a forkserver, and orphans reparented to init, are found
too (through ``/proc/*/environ``: Linux only). Processes already running
when the test began (a session fixture's server) are not the test's;
multiprocessing's forkserver and resource tracker, started once per
session by the test process, are long-lived by design and excluded.
"""
from __future__ import annotations

import os
import signal
import socket
import time
import uuid

import pytest

#: the variable every process of a leak-checked test session inherits
LEAK_ENV = 'TRACTOR_TEST_SESSION'


def pytest_addoption(parser):
    group = parser.getgroup('tractor')
    group.addoption('--tractor-transport', default=None,
                    help='transport for the tractor_transport fixture '
                         '(default: $TRACTOR_TRANSPORT, else tcp)')
    group.addoption('--tractor-codec', default=None,
                    help='codec for the tractor_codec fixture '
                         '(default: $TRACTOR_CODEC, else msgpack)')
    group.addoption('--spawn-method', default=None,
                    help='start method of the start_method fixture '
                         '(forkserver, spawn, trio)')
    group.addoption('--tractor-loglevel', default=None,
                    help='log level of the loglevel fixture')
    group.addoption('--tractor-leak-check', action='store_true',
                    default=False,
                    help='fail a test that leaves a process it started '
                         'running (named by pid and command line; they '
                         'are SIGKILLed)')
    group.addoption('--tractor-leak-grace', type=float, default=5.0,
                    metavar='SECONDS',
                    help="how long a test's processes get to exit after "
                         'it ended (default 5)')


def pytest_configure(config):
    config.addinivalue_line(
        'markers',
        'tractor_leak_check(on=True): check this test for leaked '
        'processes (on=False: never), whatever --tractor-leak-check says')
    if config.getoption('--tractor-leak-check'):
        _mark_session()


def pytest_collection_modifyitems(session, config, items):
    if any(_leak_check_on(item) for item in items):
        _mark_session()


# -- the leak check --------------------------------------------------------
#: this session's value of LEAK_ENV, once a leak check is on
_SESSION: str | None = None


def _mark_session() -> None:
    """Make every process started from now on carry this session's mark
    (once; a session started by a test of another keeps its own)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = uuid.uuid4().hex
        os.environ[LEAK_ENV] = _SESSION


def _leak_check_on(item) -> bool:
    marker = item.get_closest_marker('tractor_leak_check')
    if marker is not None:
        return bool(marker.args[0]) if marker.args else True
    return bool(item.config.getoption('--tractor-leak-check'))


def marked_processes(name: str, value: str) -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live (not zombie)
    process whose environment holds ``name=value``, read from ``/proc``."""
    mark = f'{name}={value}'.encode()
    out = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if mark not in f.read().split(b'\0'):
                    continue
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
            with open(f'/proc/{pid}/stat') as f:
                # the command name is in parentheses and may hold spaces
                stat = f.read().rpartition(')')[2].split()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if stat[0] == 'Z':
            continue  # exited; its parent has yet to reap it
        out[pid] = (int(stat[1]), cmd.strip())
    return out


def session_processes() -> dict[int, str]:
    """pid -> command line of every live process of this session but the
    test process and its multiprocessing helpers."""
    if _SESSION is None:
        return {}
    me = os.getpid()
    return {
        pid: cmd
        for pid, (ppid, cmd) in marked_processes(LEAK_ENV, _SESSION).items()
        if pid != me and not (ppid == me and ('forkserver' in cmd
                                              or 'resource_tracker' in cmd))}


def kill_survivors(find, grace: float) -> dict:
    """Wait up to ``grace`` seconds for ``find()`` (a dict keyed by pid)
    to come back empty; SIGKILL what it still finds then, and return
    that."""
    deadline = time.monotonic() + grace
    while True:
        left = find()
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return left


@pytest.fixture(autouse=True)
def _tractor_leak_check(request):
    """Fail the test if processes it started outlive it (see the module
    docstring)."""
    if not _leak_check_on(request.node):
        yield
        return
    if not os.path.isdir('/proc'):
        import warnings
        warnings.warn(pytest.PytestWarning(
            'the tractor leak check needs /proc (Linux): not checked'))
        yield
        return
    before = set(session_processes())
    yield
    grace = request.config.getoption('--tractor-leak-grace')
    left = kill_survivors(
        lambda: {pid: cmd for pid, cmd in session_processes().items()
                 if pid not in before}, grace)
    if left:
        pytest.fail(
            f'the test left {len(left)} process(es) running {grace:g} s '
            f'after it ended (now SIGKILLed): ' + '; '.join(
                f'pid {pid}: {cmd[:200]}'
                for pid, cmd in sorted(left.items())),
            pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='session')
def arb_addr():
    """A free arbiter address on 127.0.0.1 for this test session."""
    return ('127.0.0.1', _free_port())


@pytest.fixture
def start_method(request):
    return request.config.getoption('--spawn-method')


@pytest.fixture
def loglevel(request):
    return request.config.getoption('--tractor-loglevel')


@pytest.fixture
def tractor_transport(request):
    import os
    return (request.config.getoption('--tractor-transport')
            or os.environ.get('TRACTOR_TRANSPORT') or 'tcp')


@pytest.fixture
def tractor_codec(request):
    import os
    return (request.config.getoption('--tractor-codec')
            or os.environ.get('TRACTOR_CODEC') or 'msgpack')
