"""Fixtures of the runtime test suite.

* ``transport`` / ``codec``: every usable transport variant (``tcp``,
  ``uds``, ``nng``, ``nng+ipc``, ``zmq``, ``zmq+ipc``... from
  ``tractor.transports.available_transports()``) and every codec. Only the
  core tests (spawn and call, streaming, error propagation, cancellation)
  take them; the rest run on the default transport and codec.
  ``$TRACTOR_TEST_TRANSPORTS=tcp,uds`` restricts the transports.
* ``arb_addr``: a fresh arbiter address per test, so that tests (and
  concurrent test runs) never share an arbiter.
* ``no_leaked_processes`` (autouse): fails a test that leaves a process
  behind. Every process the session starts inherits ``$TRACTOR_TEST_SESSION``;
  after each test, any process carrying our value (found through
  ``/proc/*/environ``, so orphans reparented to init count too) must be
  gone within a few seconds. multiprocessing's forkserver and resource
  tracker, started once per session by this process, are long-lived by
  design and excluded.
"""
from __future__ import annotations

import os
import time
import uuid

import pytest

from tractor_testing import (
    SESSION_ENV,
    codec_names,
    free_port,
    kill_pids,
    transport_names,
)

_SESSION = uuid.uuid4().hex
os.environ[SESSION_ENV] = _SESSION
_MARK = f'{SESSION_ENV}={_SESSION}'.encode()

#: seconds a test's processes get to exit after the test ended
LEAK_GRACE = 10.0


@pytest.fixture(params=transport_names())
def transport(request):
    return request.param


@pytest.fixture(params=codec_names())
def codec(request):
    return request.param


@pytest.fixture
def arb_addr():
    return ('127.0.0.1', free_port())


# -- leak check ----------------------------------------------------------
def _session_procs() -> dict[int, str]:
    """pid -> cmdline of every live process of this session but ours and
    our long-lived multiprocessing helpers."""
    me = os.getpid()
    out = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == me:
            continue
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = f.read()
            if _MARK not in env.split(b'\0'):
                continue
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
            with open(f'/proc/{pid}/stat') as f:
                stat = f.read().rpartition(')')[2].split()
        except OSError:
            continue
        state, ppid = stat[0], int(stat[1])
        if state == 'Z':
            continue
        if ppid == me and ('forkserver' in cmd or 'resource_tracker' in cmd):
            continue
        out[pid] = cmd.strip()
    return out


@pytest.fixture(autouse=True)
def no_leaked_processes():
    yield
    deadline = time.monotonic() + LEAK_GRACE
    while True:
        left = _session_procs()
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if left:
        kill_pids(left)
        pytest.fail(
            f'the test left {len(left)} process(es) running (now '
            f'SIGKILLed): ' + '; '.join(
                f'{pid}: {cmd[:150]}' for pid, cmd in sorted(left.items())),
            pytrace=False)
