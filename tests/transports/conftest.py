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


#: secured variants that do not run in the test process itself: nng over
#: TLS can abort the whole process (a native panic in nng when a TLS
#: connection closes while it still moves data: nanomsg/nng#2238, open),
#: which would end the suite, not fail a test. It runs the contract in a
#: process of its own instead (tests/test_tls.py), and the runtime and
#: chaos suites over it, whose actors are processes of their own.
OUT_OF_PROCESS = {'nng+tls'}


def pytest_collection_modifyitems(config, items):
    """A secured variant runs the channel tests with the first codec only:
    TLS is below the frames, and the codecs have a suite of their own."""
    from tractor_testing import SECURED, deselect
    secured = set(SECURED.values())

    def drop(item, params) -> bool:
        variant = params.get('transport_variant')
        return variant is not None and (
            variant[2] in OUT_OF_PROCESS
            or (variant[2] in secured
                and params.get('codec', CODECS[0]) != CODECS[0]))
    deselect(config, items, drop)
