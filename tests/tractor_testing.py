"""Helpers shared by the runtime test suite (``tests/test_*.py``).

Importable from test modules *and* from the actor processes that import
those modules, so it imports nothing from pytest.

Everything here works with real processes and sockets: free ports, the
transport/codec matrix, subprocess runners and ``/proc`` based process
inspection (psutil is not a dependency).
"""
from __future__ import annotations

import fcntl
import math
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

from tractor.codecs import available_codecs
from tractor.transports import available_transports, get_transport

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SCRIPTS = os.path.join(HERE, 'scripts')
EXAMPLES = os.path.join(REPO, 'examples')


# -- sharing the machine between pytest-xdist workers ----------------------
#: the directory of the run's machine locks, made by the xdist controller
#: (tests/conftest.py) and inherited by its workers
MACHINE_ENV = 'TRACTOR_TEST_MACHINE'


@contextmanager
def machine_share(alone: bool):
    """Hold a share of the machine for one test: shared by every test of
    the run's xdist workers, whole for an ``alone`` test (see conftest.py).
    Two ``flock``s across the workers' processes: a test passes the
    turnstile before it takes the machine, and an ``alone`` test holds the
    turnstile while it waits for the running tests to end, so that new
    ones queue behind it instead of starving it. Outside xdist: nothing."""
    where = os.environ.get(MACHINE_ENV)
    if not where or not os.environ.get('PYTEST_XDIST_WORKER'):
        yield
        return
    with open(os.path.join(where, 'turnstile'), 'a') as turn, \
            open(os.path.join(where, 'machine'), 'a') as machine:
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            fcntl.flock(machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)


# -- the transport/codec matrix ------------------------------------------
#: the secured variant of each transport that has one (``tls=True``)
SECURED = {'tcp': 'tcp+tls', 'nng': 'nng+tls', 'zmq': 'zmq+curve'}

#: what nng prints when its TLS layer aborts the process: a native panic
#: as connections close or are set up while others come and go
#: (nanomsg/nng#2238, open upstream; README, "Limits of nng's TLS layer")
NNG_PANIC = 'panic: pthread_mutex_lock: Invalid argument'
NNG_PANIC_XFAIL = ('nng aborted the process (nanomsg/nng#2238, '
                   'open upstream)')


def xfail_if_nng_aborted(proc: subprocess.CompletedProcess) -> None:
    """Report a script that nng's TLS layer aborted (SIGABRT with
    :data:`NNG_PANIC` on stderr) as an expected failure naming the
    upstream bug; any other outcome is the caller's to check. Only for
    scripts that run nng+tls: nothing else aborts that way."""
    import pytest
    if proc.returncode == -signal.SIGABRT and NNG_PANIC in proc.stderr:
        pytest.xfail(NNG_PANIC_XFAIL)


def transport_matrix() -> list[tuple[str, str, str]]:
    """``(transport, scheme, variant)`` for every usable transport and
    every scheme it speaks; ``variant`` is the ``tractor.run(transport=)``
    name: the plain name for a transport's first (default) scheme,
    ``name+scheme`` for the others, and the secured one of :data:`SECURED`
    (``tcp+tls``: tcp with ``tls=True``) for a transport that supports
    TLS. A newly registered transport shows up here by itself.
    ``$TRACTOR_TEST_TRANSPORTS=tcp,uds`` restricts the list (plain names,
    variants, or ``name+scheme``; a secured variant only by its name)."""
    only = _named_in_env()
    out = []
    for name in available_transports():
        tr = get_transport(name)
        schemes = getattr(tr, 'schemes', None) or ('tcp',)
        for i, scheme in enumerate(schemes):
            variant = name if i == 0 else f'{name}+{scheme}'
            if only and not only & {name, variant, f'{name}+{scheme}'}:
                continue
            out.append((name, scheme, variant))
        secured = SECURED.get(name)
        if (secured and hasattr(tr, 'tls') and _tls_usable()
                and (not only or secured in only)):
            out.append((name, schemes[0], secured))
    return out


@contextmanager
def speaking(variant: str):
    """Inside the block this process's transport of ``variant`` speaks it
    as a tree of that variant does (``tcp+tls``: tcp with TLS, this user's
    keys), for code that dials without a runtime; yields the transport's
    name (``tcp``). Plain again after."""
    from tractor import _tls
    name, tls = _tls.split_transport(variant, None)
    tr = get_transport(name)
    before = _tls.install(tr, _tls.from_option(tls or False))
    try:
        yield name
    finally:
        if tls or before is not None:
            tr.tls = before


def _tls_usable() -> bool:
    """TLS keys can be had: ``cryptography`` to create them, or a key
    directory already there."""
    from tractor import _tls
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return os.path.isdir(_tls.default_dir())
    return True


def transport_names(secured: bool = True) -> list[str]:
    """``tractor.run(transport=...)`` names of :func:`transport_matrix`:
    ``tcp``, ``uds``, ``nng``, ``nng+ipc``, ``zmq``, ``zmq+ipc``... and,
    with ``secured``, ``tcp+tls``, ``nng+tls``, ``zmq+curve``."""
    return [variant for _, _, variant in transport_matrix()
            if secured or variant not in SECURED.values()
            or variant in _named_in_env()]


def runtime_transport_names() -> list[str]:
    """The transports the runtime suite (actors, streams, supervision,
    examples) runs over: the plain variants. TLS sits below the Channel,
    so the secured variants run the suites that are about transports --
    the conformance kit, channels, chaos kills and bad input -- and
    tests/test_tls.py; repeating every runtime test over them would double
    the suite's time and test nothing the runtime does differently.
    ``$TRACTOR_TEST_TRANSPORTS=tcp+tls`` (or ``$TRACTOR_TEST_SECURED=1``
    for all) puts them back."""
    return transport_names(
        secured=os.environ.get('TRACTOR_TEST_SECURED', '') not in ('', '0'))


def deselect(config, items: list, drop) -> None:
    """Deselect (not skip) the collected ``items`` for which
    ``drop(params)`` is true, ``params`` being the item's parametrization
    (a dict, empty for an unparametrized test): a narrower matrix, which
    pytest reports as deselected."""
    keep, dropped = [], []
    for item in items:
        callspec = getattr(item, 'callspec', None)
        params = callspec.params if callspec else {}
        (dropped if drop(item, params) else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _named_in_env() -> set:
    return {s.strip() for s in
            os.environ.get('TRACTOR_TEST_TRANSPORTS', '').split(',')
            if s.strip()}


def codec_names() -> list[str]:
    return list(available_codecs())


def same(a, b) -> bool:
    """Equal and of the same types all the way down (True is not 1, 1.0
    is not 1, -0.0 is not 0.0), NaN being the same as NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    if type(a) is dict:
        return (list(a) == list(b)
                and all(same(a[k], b[k]) for k in a))
    return a == b


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# -- processes -----------------------------------------------------------
def proc_state(pid: int) -> str | None:
    """The state letter of ``pid`` (``R``, ``S``, ``Z``...), None if it
    does not exist."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            stat = f.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces
    return stat.rpartition(')')[2].split()[0]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    state = proc_state(pid)
    return state is not None and state != 'Z'


def wait_pids_gone(pids, timeout: float) -> list[int]:
    """Poll until none of ``pids`` is alive or ``timeout`` passed; return
    the ones still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if pid_alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def kill_pids(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def python_env(**extra: str | None) -> dict:
    """The environment for a child ``python``: ours, with the repo first on
    ``PYTHONPATH`` so scripts import this checkout's tractor, and
    ``extra`` applied (None removes a variable)."""
    env = dict(os.environ)
    path = env.get('PYTHONPATH')
    env['PYTHONPATH'] = REPO + (os.pathsep + path if path else '')
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(args, *, timeout: float, cwd: str | None = None,
               env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` to completion, capturing text output; kill it
    (and fail loudly) if it outlives ``timeout``."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env or python_env(),
        stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout)


def spawn_python(args, *, cwd: str | None = None,
                 env: dict | None = None) -> subprocess.Popen:
    """Start ``python -u ARGS`` with piped text stdout/stderr."""
    return subprocess.Popen(
        [sys.executable, '-u', *args], cwd=cwd, env=env or python_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The next line ``proc`` prints, waiting at most ``timeout`` seconds
    (an empty string if it exited first)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise TimeoutError(
                f'{proc.args} printed nothing within {timeout}s')
    finally:
        sel.close()
    return proc.stdout.readline()
