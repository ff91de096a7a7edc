"""What the generic conformance suite cannot see about the ``'nng'``
transport: that it really is nng's SP protocol on the wire, that the
rendezvous listener keeps peers apart, that nng's threads and descriptors
are given back, and that peer death is noticed although nng itself would
redial forever. Real sockets and real processes throughout.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import trio

pynng = pytest.importorskip('pynng')

from tractor.transports import (  # noqa: E402
    Addr,
    FrameTooLarge,
    TransportClosed,
    connect,
    listen,
)
from tractor.transports.nng import NNGTransport, _HELLO  # noqa: E402

from ._helpers import (  # noqa: E402
    close_all,
    connect_accepted,
    fresh_addr,
    many_peers_served,
    nfds,
    nthreads,
)

pytestmark = pytest.mark.timeout(60)

SCHEMES = ['tcp', 'ipc']


def fresh(scheme: str) -> Addr:
    return fresh_addr('nng', scheme)


async def open_pair(addr: Addr, transport=None):
    """``(listener, client, server)``."""
    if transport is None:
        listener = await listen(addr)
    else:
        listener = await transport.listen(addr)
    client, server = await connect_accepted(
        listener, lambda: connect(listener.addr))
    return listener, client, server




# -- it is SP on the wire -------------------------------------------------
async def test_listener_greets_with_sp_header():
    """A raw TCP client gets nng's 8-byte SP header: 0x00 'SP' 0x00, the
    protocol (rep0 = 0x31 for the rendezvous socket), two reserved 0s."""
    listener = await listen(fresh('tcp'))
    try:
        sock = socket.create_connection((listener.addr.host,
                                         listener.addr.port))
        sock.settimeout(5)
        try:
            hdr = b''
            while len(hdr) < 8:
                chunk = await trio.to_thread.run_sync(sock.recv, 8 - len(hdr))
                assert chunk, 'listener hung up without an SP header'
                hdr += chunk
        finally:
            sock.close()
        assert hdr[:4] == b'\x00SP\x00'
        assert hdr[4:6] == b'\x00\x31'  # NNG_REP0_SELF
        assert hdr[6:] == b'\x00\x00'
    finally:
        await listener.aclose()


@pytest.mark.parametrize('scheme', SCHEMES)
async def test_plain_pynng_peer_interoperates(scheme):
    """A peer written with nothing but pynng (req0 to ask, pair0 to talk)
    gets a working stream: the protocol is plain nng, no hidden framing."""
    listener = await listen(fresh(scheme))
    req = pynng.Req0(recv_timeout=5000, send_timeout=5000)
    pair = pynng.Pair0(recv_timeout=5000, send_timeout=5000)
    try:
        async with trio.open_nursery() as n:
            got = []

            async def accept():
                got.append(await listener.accept())
            n.start_soon(accept)

            def client_side():
                req.dial(listener.addr.url, block=True)
                req.send(_HELLO)
                kind, where = req.recv().split(b' ', 1)
                if kind == b'tcp':
                    url = listener.addr.with_port(int(where)).url
                else:
                    url = 'ipc://' + where.decode()
                pair.dial(url, block=True)
                pair.send(b'hello from pynng')
            await trio.to_thread.run_sync(client_side)
        server = got[0]
        assert await server.recv() == b'hello from pynng'
        await server.send(b'hello back')
        assert await trio.to_thread.run_sync(pair.recv) == b'hello back'
        await server.aclose()
    finally:
        req.close()
        pair.close()
        await listener.aclose()


# -- resources ------------------------------------------------------------
@pytest.mark.parametrize('scheme', SCHEMES)
async def test_200_streams_leak_no_threads_or_fds(scheme):
    """Open and close 200 streams: nng's thread pool stays as it was and
    every descriptor (sockets, poll fds) is given back; ipc socket files
    are removed."""
    pair_paths = []

    async def one_round(listener):
        async with trio.open_nursery() as n:
            got = []

            async def accept():
                got.append(await listener.accept())
            n.start_soon(accept)
            client = await connect(listener.addr)
        server = got[0]
        if scheme == 'ipc':
            pair_paths.append(server._endpoint.url[len('ipc://'):])
            assert os.path.exists(pair_paths[-1])
        await client.send(b'x')
        assert await server.recv() == b'x'
        await server.send(b'y')
        assert await client.recv() == b'y'
        await client.aclose()
        with pytest.raises(TransportClosed):
            with trio.fail_after(5):
                await server.recv()
        await server.aclose()

    # warm up: nng starts its thread pool, trio its worker thread
    listener = await listen(fresh(scheme))
    await one_round(listener)
    await listener.aclose()
    await trio.sleep(0.2)
    threads0, fds0 = nthreads(), nfds()
    pair_paths.clear()

    listener = await listen(fresh(scheme))
    rendezvous = listener.addr.path
    for _ in range(200):
        await one_round(listener)
    await listener.aclose()

    # closing is synchronous in nng, but give stray callbacks a moment
    for _ in range(50):
        if nthreads() <= threads0 and nfds() <= fds0:
            break
        await trio.sleep(0.1)
    assert nthreads() <= threads0, 'threads leaked'
    assert nfds() <= fds0, 'file descriptors leaked'
    if scheme == 'ipc':
        # (other processes may use the runtime dir: check our own files)
        assert len(set(pair_paths)) == 200
        leftover = [p for p in pair_paths + [rendezvous] if os.path.exists(p)]
        assert not leftover, leftover


# -- peer death -------------------------------------------------------------
CHILD = r'''
import sys, trio
from tractor.transports import connect, listen

async def main(mode, addr):
    if mode == 'dial':
        s = await connect(addr)
    else:
        l = await listen(addr)
        print(l.addr, flush=True)
        s = await l.accept()
    await s.send(b'ready')
    await trio.sleep_forever()

trio.run(main, sys.argv[1], sys.argv[2])
'''


async def _spawn(mode: str, addr: Addr) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, '-c', CHILD, mode, str(addr)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if mode == 'listen' else None)


async def _reap(proc: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if proc.returncode is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


async def _time_to_closed(stream, proc) -> float:
    """SIGKILL ``proc`` while a recv is pending; seconds until the recv
    raises TransportClosed, and check send fails too."""
    result = {}

    async def pending_recv():
        try:
            await stream.recv()
        except TransportClosed:
            result['t'] = time.monotonic()

    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(pending_recv)
            await trio.sleep(0.1)
            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(TransportClosed):
        with trio.fail_after(2):
            for _ in range(100_000):
                await stream.send(b'anyone there?')
    return result['t'] - t0


@pytest.mark.parametrize('scheme', SCHEMES)
async def test_sigkilled_dialer_detected_within_2s(scheme):
    listener = await listen(fresh(scheme))
    proc = await _spawn('dial', listener.addr)
    try:
        with trio.fail_after(20):
            stream = await listener.accept()
            assert await stream.recv() == b'ready'
        took = await _time_to_closed(stream, proc)
        assert took < 2.0, f'peer death noticed after {took:.2f} s'
        print(f"peer death noticed after {took * 1000:.1f} ms")
        await stream.aclose()
    finally:
        await _reap(proc)
        await listener.aclose()


@pytest.mark.parametrize('scheme', SCHEMES)
async def test_sigkilled_listener_detected_and_no_redial(scheme):
    """The dialing side of a stream notices its listener's death and stops:
    nng's dialer is closed instead of redialling forever."""
    proc = await _spawn('listen', fresh(scheme))
    try:
        with trio.fail_after(20):
            line = b''
            while not line.endswith(b'\n'):
                chunk = await proc.stdout.receive_some(1024)
                assert chunk, 'child died before listening'
                line += chunk
            stream = await connect(line.decode().strip())
            assert await stream.recv() == b'ready'
        took = await _time_to_closed(stream, proc)
        assert took < 2.0, f'peer death noticed after {took:.2f} s'
        print(f"peer death noticed after {took * 1000:.1f} ms")
        assert stream._sock.dialers == ()
        await stream.aclose()
    finally:
        await _reap(proc)


# -- many peers ---------------------------------------------------------------
@pytest.mark.parametrize('scheme', SCHEMES)
async def test_100_concurrent_peers_get_their_own_replies(scheme):
    """100 peers connect at once to one listener and each gets exactly its
    own replies: the rendezvous hands every peer its own pair socket."""
    served = await many_peers_served(NNGTransport(), fresh(scheme),
                                     msgs=20)
    assert len({id(s._sock) for s in served}) == len(served)


async def test_intruder_on_a_pair_socket_is_refused():
    """Someone dialing a stream's private pair socket is refused by pair0;
    the stream keeps its one peer and sees none of the intruder's data."""
    listener, client, server = await open_pair(fresh('tcp'))
    intruder = pynng.Pair0()
    try:
        port = socket.ntohs(server._endpoint.local_address.port)
        try:
            intruder.dial(f'tcp://127.0.0.1:{port}', block=True)
            intruder.send(b'intruder', block=False)
        except pynng.NNGException:
            pass
        await trio.sleep(0.2)
        await client.send(b'legit')
        assert await server.recv() == b'legit'
        await server.send(b'reply')
        assert await client.recv() == b'reply'
        with trio.move_on_after(0.2):
            assert await server.recv() != b'intruder'
    finally:
        intruder.close()
        await close_all(client, server, listener)


# -- flow ------------------------------------------------------------------
def _kernel_buffered_frames(scheme: str, size: int) -> int:
    """Frames of ``size`` the kernel may hold between the two nng pipes,
    from the tcp autotuning limits (send side + receive side, which Linux
    may double), plus two frames in transit."""
    if scheme != 'tcp':
        return 4
    def top(name):
        with open(f'/proc/sys/net/ipv4/{name}') as f:
            return int(f.read().split()[2])
    return (top('tcp_wmem') + 2 * top('tcp_rmem')) // size + 2


@pytest.mark.parametrize('scheme', SCHEMES)
@pytest.mark.parametrize('size,count', [(1024, 20_000), (1 << 20, 150)],
                         ids=['1KiB', '1MiB'])
async def test_slow_reader_loses_nothing(scheme, size, count):
    """The reader sleeps, then reads slowly: the sender is held back (it
    cannot push more than nng's bounded queues and the kernel take) and
    every frame arrives once, in order."""
    listener, client, server = await open_pair(fresh(scheme))
    sent = 0
    pad = b'p' * (size - 8)

    async def sender():
        nonlocal sent
        for i in range(count):
            await client.send(i.to_bytes(8, 'big') + pad)
            sent += 1

    try:
        with trio.fail_after(50):
            async with trio.open_nursery() as n:
                n.start_soon(sender)
                await trio.sleep(1.0)
                stalled_at = sent
                assert stalled_at < count, 'sender was never held back'
                for i in range(count):
                    got = await server.recv()
                    assert int.from_bytes(got[:8], 'big') == i, \
                        f'frame {i} lost (sender stalled at {stalled_at})'
                    assert len(got) == size
                    if i % 1000 == 0:
                        await trio.sleep(0.01)
        if size >= 1 << 20:
            # bounded: nng's queues count messages (a buffer's worth each
            # side plus one in each pipe), the kernel holds the rest
            assert stalled_at <= 2 * NNGTransport().buffer + 2 + \
                _kernel_buffered_frames(scheme, size)
    finally:
        await close_all(client, server, listener)


@pytest.mark.parametrize('scheme', SCHEMES)
async def test_send_then_close_delivers_everything(scheme):
    """nng drops what is queued when a socket closes; aclose lingers until
    nng has written every sent frame, so nothing sent is lost."""
    listener, client, server = await open_pair(fresh(scheme))
    try:
        N = 60  # more than nng's queues hold: aclose must wait for the reader
        async with trio.open_nursery() as n:
            async def produce():
                for i in range(N):
                    await client.send(i.to_bytes(4, 'big') + b'z' * 65536)
                await client.aclose()
            n.start_soon(produce)
            await trio.sleep(0.1)  # aclose is waiting by now
            for i in range(N):
                got = await server.recv()
                assert int.from_bytes(got[:4], 'big') == i
        with pytest.raises(TransportClosed):
            with trio.fail_after(2):
                await server.recv()
    finally:
        await close_all(client, server, listener)


async def test_frame_over_peer_max_frame_fails_not_hangs():
    """nng's recv-size-max is our max_frame (nng's own default is 1 MiB):
    16 MiB passes by default, and a frame over a smaller peer's limit
    drops the stream on both sides instead of hanging."""
    small = NNGTransport(max_frame=64 * 1024)
    listener, client, server = await open_pair(fresh('tcp'), small)
    try:
        assert server.max_frame == 64 * 1024
        with pytest.raises(FrameTooLarge):
            await server.send(b'x' * (64 * 1024 + 1))
        await client.send(b'y' * (64 * 1024))  # exactly the limit: fine
        assert len(await server.recv()) == 64 * 1024
        await client.send(b'y' * (64 * 1024 + 1))
        with trio.fail_after(2):
            with pytest.raises(TransportClosed):
                await server.recv()
            with pytest.raises(TransportClosed):
                await client.recv()
    finally:
        await close_all(client, server, listener)


async def test_connect_to_a_non_nng_server_times_out():
    """A plain TCP server that never speaks SP: connect gives up after
    ``handshake_timeout`` with TransportClosed, it does not hang."""
    srv = trio.socket.socket()
    await srv.bind(('127.0.0.1', 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    t = NNGTransport(handshake_timeout=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(TransportClosed):
            with trio.fail_after(5):
                await t.connect(Addr('nng', 'tcp', host='127.0.0.1',
                                     port=port))
        assert time.monotonic() - t0 < 3
    finally:
        srv.close()


async def test_connect_refused_is_prompt():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for addr in (Addr('nng', 'tcp', host='127.0.0.1', port=port),
                 fresh('ipc')):
        t0 = time.monotonic()
        with pytest.raises(TransportClosed):
            await connect(addr)
        assert time.monotonic() - t0 < 1
