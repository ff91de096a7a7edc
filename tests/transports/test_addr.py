"""Addresses: tuple and string forms, ``str(Addr)`` round trips, what a
listener reports as its bound address, and ipc socket files."""
from __future__ import annotations

import os
import socket

import pytest
import trio

from tractor.transports import (
    Addr,
    AddressError,
    get_transport,
    listen,
    runtime_dir,
)
from tractor.transports._addr import PATH_SCHEMES

from ._helpers import close_all, connect_accepted, fresh_addr, stream_pair

pytestmark = pytest.mark.timeout(60)


# -- parsing -------------------------------------------------------------
@pytest.mark.parametrize('text,transport,scheme,where', [
    ('tcp://127.0.0.1:1616', 'tcp', 'tcp', ('127.0.0.1', 1616)),
    ('tcp://localhost:0', 'tcp', 'tcp', ('localhost', 0)),
    ('tcp://[::1]:5000', 'tcp', 'tcp', ('::1', 5000)),
    ('ipc:///tmp/tractor-x/a.sock', 'uds', 'ipc', '/tmp/tractor-x/a.sock'),
    ('unix:///tmp/a.sock', 'uds', 'ipc', '/tmp/a.sock'),
    ('uds:///tmp/a.sock', 'uds', 'ipc', '/tmp/a.sock'),
    ('nng+tcp://127.0.0.1:1616', 'nng', 'tcp', ('127.0.0.1', 1616)),
    ('nng+ipc:///tmp/n.sock', 'nng', 'ipc', '/tmp/n.sock'),
    ('zmq+tcp://10.0.0.1:9', 'zmq', 'tcp', ('10.0.0.1', 9)),
    ('zmq+ipc:///tmp/z.sock', 'zmq', 'ipc', '/tmp/z.sock'),
    ('nng://127.0.0.1:1', 'nng', 'tcp', ('127.0.0.1', 1)),
    ('nng:///tmp/n.sock', 'nng', 'ipc', '/tmp/n.sock'),
])
def test_parse_strings(text, transport, scheme, where):
    a = Addr.parse(text)
    assert (a.transport, a.scheme) == (transport, scheme)
    if scheme in PATH_SCHEMES:
        assert a.path == where and a.as_tuple() == (where, 0)
    else:
        assert (a.host, a.port) == where and a.as_tuple() == where
    # the canonical string parses back to the same address
    assert Addr.parse(str(a)) == a
    assert Addr.parse(a) is a


@pytest.mark.parametrize('transport', ['tcp', 'uds', 'nng', 'nng+ipc',
                                       'zmq', 'zmq+ipc'])
def test_parse_tuples(transport):
    a = Addr.parse(('127.0.0.1', 1616), transport)
    assert a.transport == transport.partition('+')[0]
    assert Addr.parse(str(a)) == a
    assert Addr.parse(['127.0.0.1', 1616], transport) == a
    if a.scheme in PATH_SCHEMES:
        # a well-known (host, port) is one well-known socket file...
        assert a.path.startswith(runtime_dir())
        assert Addr.parse(('127.0.0.1', 1616), transport).path == a.path
        assert Addr.parse(('127.0.0.1', 1617), transport).path != a.path
        # ...and port 0 a fresh one every time
        z1 = Addr.parse(('127.0.0.1', 0), transport)
        z2 = Addr.parse(('127.0.0.1', 0), transport)
        assert z1.path != z2.path
        assert len(z1.path.encode()) < 108  # sun_path limit
    else:
        assert (a.host, a.port) == ('127.0.0.1', 1616)
        assert str(a).endswith('tcp://127.0.0.1:1616')


def test_str_forms():
    assert str(Addr.parse(('127.0.0.1', 1616))) == 'tcp://127.0.0.1:1616'
    assert str(Addr.parse('ipc:///x/y.sock')) == 'ipc:///x/y.sock'
    assert str(Addr.parse('unix:///x/y.sock')) == 'ipc:///x/y.sock'
    assert str(Addr.parse('nng+tcp://h:1')) == 'nng+tcp://h:1'
    assert str(Addr.parse('tcp://[::1]:7')) == 'tcp://[::1]:7'
    assert Addr.parse('nng+ipc:///a.sock').url == 'ipc:///a.sock'


def test_fresh():
    a = Addr.parse('tcp://127.0.0.1:1616')
    assert a.fresh() == a.with_port(0)
    u = Addr.parse('ipc:///tmp/whatever.sock')
    f1, f2 = u.fresh(), u.fresh()
    assert f1.path != f2.path and f1.transport == 'uds'


@pytest.mark.parametrize('bad', [
    '127.0.0.1:1616',           # no scheme
    'tcp://127.0.0.1',          # no port
    'tcp://127.0.0.1:http',     # not a number
    'ipc://',                   # no path
    'carrier+pigeon://coop:1',  # unknown scheme
    ('127.0.0.1',),             # not a pair
    ('127.0.0.1', 1, 2),
    1616,                       # not an address at all
    None,
])
def test_bad_addresses(bad):
    with pytest.raises(AddressError) as info:
        Addr.parse(bad)
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


# -- bound addresses (every transport) -----------------------------------
async def test_listener_reports_bound_address(transport_addr):
    """Port 0 resolves to a real port, an ipc path is absolute and exists
    while listening, and the advertised string dials back."""
    async with stream_pair(transport_addr) as (listener, client, server):
        bound = listener.addr
        assert isinstance(bound, Addr)
        assert bound.transport == transport_addr.transport
        assert bound.scheme == transport_addr.scheme
        if bound.is_inet:
            assert bound.port != 0
            assert bound.host == '127.0.0.1'
        else:
            assert os.path.isabs(bound.path)
            assert os.path.exists(bound.path)
        assert Addr.parse(str(bound)) == bound
        # a second peer dials the string form
        transport = get_transport(bound.transport)
        other = None
        try:
            with trio.fail_after(10):
                async def dial():
                    stream = await transport.connect(Addr.parse(str(bound)))
                    await stream.send(b'by string')
                    return stream
                other, accepted = await connect_accepted(listener, dial)
                assert await accepted.recv() == b'by string'
                await accepted.aclose()
        finally:
            await close_all(other)


async def test_ipc_socket_file_removed_on_close(transport_addr):
    if transport_addr.scheme not in PATH_SCHEMES:
        pytest.skip('not a path address')
    listener = await listen(transport_addr)
    try:
        assert os.path.exists(listener.addr.path)
    finally:
        await listener.aclose()
    assert not os.path.exists(listener.addr.path)
    # and the address can be listened on again at once
    again = await listen(transport_addr)
    await again.aclose()
    assert not os.path.exists(transport_addr.path)


async def test_tcp_port_reusable_after_close(transport_addr):
    if not transport_addr.is_inet:
        pytest.skip('not an inet address')
    async with stream_pair(transport_addr) as (listener, _, _):
        port = listener.addr.port
    # the listener and its streams are closed: the port is free again
    again = await listen(transport_addr.with_port(port))
    try:
        assert again.addr.port == port
    finally:
        await again.aclose()


async def test_uds_stale_socket_file_is_reclaimed():
    """A socket file left by a dead process does not block a new
    listener; a live one does."""
    addr = fresh_addr('uds', 'ipc')
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(addr.path)
    dead.close()  # the file stays, nobody listens
    assert os.path.exists(addr.path)
    listener = await listen(addr)
    try:
        with pytest.raises(OSError):
            await listen(addr)  # live: somebody's address
    finally:
        await listener.aclose()
    assert not os.path.exists(addr.path)
