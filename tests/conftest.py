"""Fixtures of the runtime test suite.

* ``transport`` / ``codec``: every usable transport variant (``tcp``,
  ``uds``, ``nng``, ``nng+ipc``, ``zmq``, ``zmq+ipc``... from
  ``tractor.transports.available_transports()``) and every codec. Only the
  core tests (spawn and call, streaming, error propagation, cancellation)
  take them; the rest run on the default transport and codec.
  ``$TRACTOR_TEST_TRANSPORTS=tcp,uds`` restricts the transports.
* ``arb_addr``: a fresh arbiter address per test, so that tests (and
  concurrent test runs) never share an arbiter.
* leaked processes: a test that leaves a process behind fails. That is
  the ``tractor.testing`` plugin's leak check, which ``setup.cfg``'s
  ``addopts`` turn on for this suite (``--tractor-leak-check``, with
  ``--tractor-leak-grace`` seconds for a test's processes to exit).
* ``@pytest.mark.alone``: a test that keeps the machine's cores busy (a
  benchmark run, a thousand calls at once) runs with no other test beside
  it when the suite runs on several pytest-xdist workers, so that it
  neither starves nor is starved by tests that bound how long something
  may take (an example that streams for one second, a liveness timeout).
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tractor_testing import (
    MACHINE_ENV,
    codec_names,
    free_port,
    machine_share,
    runtime_transport_names,
)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'alone: no other test runs beside this one (it keeps the '
        "machine's cores busy); see tests/conftest.py")
    if not hasattr(config, 'workerinput'):
        # the xdist controller (or the one process of -n 0): the lock
        # files its workers share, removed when the run ends
        config._machine_dir = tempfile.mkdtemp(prefix='tractor-tests-')
        os.environ[MACHINE_ENV] = config._machine_dir


def pytest_unconfigure(config):
    where = getattr(config, '_machine_dir', None)
    if where is not None:
        shutil.rmtree(where, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # outside pytest-timeout's own wrapper: the wait for a turn on the
    # machine is not part of a test's time
    with machine_share(item.get_closest_marker('alone') is not None):
        yield


@pytest.fixture(params=runtime_transport_names())
def transport(request):
    return request.param


@pytest.fixture(params=codec_names())
def codec(request):
    return request.param


@pytest.fixture
def arb_addr():
    return ('127.0.0.1', free_port())
