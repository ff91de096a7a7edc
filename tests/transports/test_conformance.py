"""The transport contract (see ``tractor/transports/_base.py``), checked
against every registered transport and every address scheme it speaks.

The contract itself runs through :func:`tractor.testing.check_transport`,
the kit a third-party transport's author runs on theirs: one test per
rule (:data:`tractor.testing.RULES`) and transport variant. Beside it,
what the kit cannot do from inside one process or over a frame-level
API: peers in child processes (one SIGKILLed), raw bytes written to the
length-prefixed socket transports (garbage, truncated frames, forged
length prefixes, a frame trickled in), a TCP socket option, and the
registry's names. Real sockets and real processes throughout.
"""
from __future__ import annotations

import os
import struct

import pytest
import trio
import trio.testing

import tractor
from tractor.testing import RULES, check_transport
from tractor.transports import (
    Addr,
    FrameTooLarge,
    Transport,
    TransportClosed,
    UnknownTransport,
    available_transports,
    get_transport,
)

from ._helpers import (
    accept_from,
    close_all,
    connect_accepted,
    pattern,
    peer_process,
    raw_connect,
    raw_unfit,
    raw_wait_closed,
    stream_pair,
)

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024


def need_raw(addr: Addr) -> None:
    why = raw_unfit(addr)
    if why:
        pytest.skip(why)


# -- the contract, through the kit ---------------------------------------
@pytest.mark.timeout(150)
@pytest.mark.parametrize('rule', RULES)
async def test_contract(transport: Transport, transport_addr: Addr, rule):
    """One rule of the contract (its text is in the failure message)."""
    report = await check_transport(transport, transport_addr, rules=[rule])
    if report.skipped:
        (_, _, why), = report.skipped
        pytest.skip(f'{transport.name}: {why}')
    assert report.passed == [(rule, str(transport_addr))]


# -- what needs a socket option ------------------------------------------
async def test_tcp_stalled_reader_is_not_a_dead_peer(transport_addr):
    """Regression: TCP_USER_TIMEOUT also bounds zero-window probing on
    Linux, so with it set a reader that stalls longer than the timeout
    (15 s then) got its connection reset and the sender's data dropped.
    A slow reader must back-pressure, never kill the stream."""
    if transport_addr.transport != 'tcp':
        pytest.skip('TCP socket option')
    import socket
    if not hasattr(socket, 'TCP_USER_TIMEOUT'):
        pytest.skip('no TCP_USER_TIMEOUT on this platform')
    async with stream_pair(transport_addr) as (_, client, server):
        for s in (client, server):
            assert s._sock.getsockopt(
                socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0



# -- raw bytes: a frame trickled in ------------------------------------
@pytest.mark.parametrize('size', [1000, 16 * MiB], ids=['1000B', '16MiB'])
async def test_recv_cancelled_mid_frame_raw(transport_addr, size):
    """A peer writes a frame slowly, in pieces. recvs cancelled while only
    part of it has arrived lose nothing: the next recv returns it whole,
    and the frame after it too."""
    need_raw(transport_addr)
    transport = get_transport(transport_addr.transport)
    listener = await transport.listen(transport_addr)
    raw = stream = None
    try:
        with trio.fail_after(30):
            raw, stream = await connect_accepted(
                listener, lambda: raw_connect(listener.addr))
            data = pattern(size, 9)
            wire = struct.pack('!I', size) + data
            pieces = 4 if size < MiB else 32
            step = len(wire) // pieces + 1
            got = None
            mid_frame_cancels = 0
            async with trio.open_nursery() as n:
                async def slow_writer():
                    for off in range(0, len(wire), step):
                        await raw.send_all(wire[off:off + step])
                        await trio.sleep(0.02)  # a slow peer
                    await raw.send_all(struct.pack('!I', 3) + b'end')
                n.start_soon(slow_writer)
                while got is None:
                    with trio.move_on_after(0.005) as cs:
                        got = await stream.recv()
                    if cs.cancelled_caught:
                        mid_frame_cancels += 1
            assert got == data, f'frame came back as {len(got)} B'
            assert mid_frame_cancels >= pieces // 2
            assert await stream.recv() == b'end'
    finally:
        if raw is not None:
            await raw.aclose()
        await close_all(stream, listener)



# -- peers in other processes -------------------------------------------
async def test_sigkilled_peer_detected_within_2s(transport: Transport,
                                                 transport_addr: Addr):
    """A peer process killed with SIGKILL: the pending recv on this side
    raises TransportClosed within 2 s, and so does sending."""
    listener = await transport.listen(transport_addr)
    stream = None
    try:
        async with peer_process('idle', listener.addr) as proc:
            stream = await accept_from(listener, proc)
            with trio.fail_after(10):
                assert await stream.recv() == b'ready'
            closed = trio.Event()
            async with trio.open_nursery() as n:
                async def recv_until_closed():
                    with pytest.raises(TransportClosed):
                        await stream.recv()
                    closed.set()
                n.start_soon(recv_until_closed)
                await trio.testing.wait_all_tasks_blocked()
                proc.kill()
                with trio.fail_after(2):
                    await closed.wait()
            await proc.wait()
            with trio.fail_after(2):
                with pytest.raises(TransportClosed):
                    while True:
                        await stream.send(b'anyone?')
    finally:
        await close_all(stream, listener)


async def test_echo_via_child_process(transport: Transport,
                                      transport_addr: Addr):
    """Frames of every size survive a round trip through another process;
    when this side closes, the child sees TransportClosed and exits 0."""
    listener = await transport.listen(transport_addr)
    stream = None
    try:
        async with peer_process('echo', listener.addr) as proc:
            stream = await accept_from(listener, proc)
            with trio.fail_after(30):
                assert await stream.recv() == b'ready'
                for size in (0, 1, 1000, MiB, 16 * MiB):
                    data = pattern(size, size)
                    async with trio.open_nursery() as n:
                        n.start_soon(stream.send, data)
                        got = await stream.recv()
                    assert got == data, f'{size} B frame came back as ' \
                                        f'{len(got)} B'
                await stream.aclose()
                assert await proc.wait() == 0, \
                    'the child did not see TransportClosed and exit cleanly'
    finally:
        await close_all(stream, listener)



# -- misbehaving peers on raw byte streams -------------------------------
RAW_CASES = {
    # name: (bytes, then close?, what the listener-side recv says)
    'garbage': (b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', False, 'max_frame'),
    'oversized-prefix': (b'\xff\xff\xff\xff' + b'x' * 100, False,
                         'max_frame'),
    'truncated-frame': (struct.pack('!I', 100) + b'only ten b', True,
                        'middle of a frame'),
    'truncated-header': (b'\x00\x00', True, 'closed'),
}


@pytest.mark.parametrize('case', list(RAW_CASES))
async def test_raw_bad_bytes_fail_the_stream(transport: Transport,
                                             transport_addr: Addr, case):
    """Bytes that are not a well-formed frame make that stream's recv
    raise TransportClosed (FrameTooLarge for a forged length) with a
    message saying what happened, and the connection is dropped."""
    need_raw(transport_addr)
    data, close, says = RAW_CASES[case]
    listener = await transport.listen(transport_addr)
    raw = stream = None
    try:
        with trio.fail_after(10):
            raw, stream = await connect_accepted(
                listener, lambda: raw_connect(listener.addr))
            await raw.send_all(data)
            if close:
                await raw.send_eof()
            with pytest.raises(TransportClosed) as info:
                await stream.recv()
            assert says in str(info.value)
            if says == 'max_frame':
                assert isinstance(info.value, FrameTooLarge)
            # dropped: the raw peer sees the connection end
            await raw_wait_closed(raw)
            with pytest.raises(TransportClosed):
                await stream.recv()
    finally:
        if raw is not None:
            await raw.aclose()
        await close_all(stream, listener)



# -- names ---------------------------------------------------------------
async def test_unknown_transport_lists_available():
    with pytest.raises(UnknownTransport) as info:
        get_transport('carrier-pigeon')
    msg = str(info.value)
    assert 'carrier-pigeon' in msg
    for name in available_transports():
        assert name in msg
    with pytest.raises(UnknownTransport) as info:
        await tractor.transports.connect('pigeon+tcp://127.0.0.1:9')
    assert 'pigeon' in str(info.value) and 'tcp' in str(info.value)
    with pytest.raises(LookupError):  # UnknownTransport is a LookupError
        await tractor.transports.listen(('127.0.0.1', 0), 'pigeon')


def test_every_transport_has_a_variant():
    from .conftest import TRANSPORT_VARIANTS
    if os.environ.get('TRACTOR_TEST_TRANSPORTS'):
        pytest.skip('restricted by $TRACTOR_TEST_TRANSPORTS')
    names = {name for name, _, _ in TRANSPORT_VARIANTS}
    assert names == set(available_transports())
    assert {'tcp', 'uds'} <= names
    pairs = {(name, scheme) for name, scheme, _ in TRANSPORT_VARIANTS}
    for name in names:
        for scheme in get_transport(name).schemes:
            assert (name, scheme) in pairs
