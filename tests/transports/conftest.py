"""Fixtures of the transport conformance suite.

Every contract test takes ``transport_addr``: a fresh address for each
registered transport and each scheme it speaks (``tcp``, ``uds``,
``nng+tcp``, ``nng+ipc``, ``zmq+tcp``, ``zmq+ipc``, ... and the secured
``tcp+tls``, ``nng+tls``...), built from
:func:`tractor.transports.available_transports` and the transport's
``schemes``. A new transport is judged by registering it: nothing here
names one. Channel tests also take ``codec``, one per available codec.

``TRACTOR_TEST_TRANSPORTS=tcp,uds`` restricts the run to some transports.
"""
import pytest

from tractor.transports import get_transport

from ._helpers import (
    codecs,
    fresh_addr,
    secured,
    stream_pair,
    transport_variants,
    variant_id,
)

TRANSPORT_VARIANTS = transport_variants()
CODECS = codecs()


@pytest.fixture(params=TRANSPORT_VARIANTS, ids=variant_id)
def transport_variant(request):
    """``(transport name, scheme)``; a secured variant (``tcp+tls``...)
    is its transport with TLS on for the test (see ``secured``)."""
    name, scheme, _ = request.param
    with secured(request.param):
        yield name, scheme


@pytest.fixture
def transport_addr(transport_variant):
    """A fresh :class:`~tractor.transports.Addr` nobody listens on yet."""
    return fresh_addr(*transport_variant)


@pytest.fixture
def transport(transport_addr):
    return get_transport(transport_addr.transport)


@pytest.fixture(params=CODECS)
def codec(request):
    return request.param


@pytest.fixture
async def pair(transport_addr):
    """``(listener, client, server)``: two connected streams."""
    async with stream_pair(transport_addr) as p:
        yield p
