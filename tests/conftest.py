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
"""
from __future__ import annotations

import pytest

from tractor_testing import codec_names, free_port, runtime_transport_names


@pytest.fixture(params=runtime_transport_names())
def transport(request):
    return request.param


@pytest.fixture(params=codec_names())
def codec(request):
    return request.param


@pytest.fixture
def arb_addr():
    return ('127.0.0.1', free_port())
