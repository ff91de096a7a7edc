"""The pytest plugin of :mod:`tractor.testing` (registered through the
``pytest11`` entry point): fixtures and options for testing actors."""
from __future__ import annotations

import socket

import pytest


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
