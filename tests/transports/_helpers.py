"""Helpers for the transport conformance suite: which transports to test,
fresh addresses, connected stream pairs, child peer processes, a Channel
echo server that records the peers it refuses, and raw byte sockets for the
length-prefixed transports.

Everything here uses real sockets and real processes; nothing is mocked.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import asynccontextmanager, contextmanager
from typing import AsyncIterator, Iterator

import trio

import tractor
from tractor import Channel
from tractor.codecs import available_codecs
from tractor.log import get_logger
from tractor.testing import _check_transport as _kit
from tractor.testing._check_transport import (  # noqa: F401 (re-exported)
    accept_each,
    close_all,
    connect_accepted,
    pattern,
)
from tractor.transports import (
    Addr,
    Listener,
    FrameStream,
    TransportClosed,
    get_transport,
)
from tractor.transports._addr import PATH_SCHEMES
from tractor import _tls
from tractor_testing import SECURED, transport_matrix

log = get_logger('tests.transports')

#: the shared secret of every test cluster; children get it in the env
SECRET = 'conformance-suite-secret'
PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           '_peer.py')
#: transports whose streams are plain length-prefixed byte streams that a
#: raw socket can corrupt byte by byte (see :func:`raw_connect`)
RAW_TRANSPORTS = ('tcp', 'uds')


# -- what to test --------------------------------------------------------
def transport_variants() -> list[tuple[str, str, str]]:
    """``(transport, scheme, variant)`` for every usable transport and
    every scheme it speaks, and the secured variants (``tcp+tls``...):
    ``('tcp', 'tcp', 'tcp')``, ``('uds', 'ipc', 'uds')``, ``('nng', 'ipc',
    'nng+ipc')``, ``('tcp', 'tcp', 'tcp+tls')``... (the runtime suite's
    matrix, so ``$TRACTOR_TEST_TRANSPORTS`` restricts both alike)."""
    return transport_matrix()


def variant_id(variant: tuple[str, str, str]) -> str:
    name, scheme, full = variant
    if full in SECURED.values():
        return full
    schemes = get_transport(name).schemes
    return name if len(schemes) == 1 else f'{name}+{scheme}'


@contextmanager
def secured(variant: tuple[str, str, str]) -> Iterator[None]:
    """The shared transport instance of ``variant`` speaks TLS (with the
    zero-config keys) inside the block if ``variant`` is a secured one,
    as it does under ``tractor.run(transport='tcp+tls')``; plain again
    after."""
    name, _, full = variant
    if full not in SECURED.values():
        yield
        return
    tr = get_transport(name)
    before = _tls.install(tr, _tls.TLSConfig())
    try:
        yield
    finally:
        tr.tls = before


def codecs() -> list[str]:
    return list(available_codecs())


def fresh_addr(name: str, scheme: str) -> Addr:
    """A new address nobody listens on: port 0 on 127.0.0.1, or a new
    socket file."""
    if scheme in PATH_SCHEMES:
        return Addr.parse(('x', 0), f'{name}+{scheme}')
    return Addr.parse(('127.0.0.1', 0), f'{name}+{scheme}')


def nfds() -> int:
    """Open file descriptors of this process (for leak checks)."""
    return len(os.listdir('/proc/self/fd'))


def nthreads() -> int:
    """Threads of this process (for leak checks)."""
    return len(os.listdir('/proc/self/task'))


# -- streams -------------------------------------------------------------
# connected pairs, and many peers on one listener, come from the
# conformance kit (tractor.testing.check_transport) that the contract
# tests run through
def stream_pair(addr: Addr):
    """``async with stream_pair(addr) as (listener, client, server)``: a
    connected pair of ``addr``'s transport, one frame each way already
    exchanged."""
    return _kit.stream_pair(get_transport(addr.transport), addr)


async def many_peers_served(transport, addr: Addr, peers: int = 100,
                            msgs: int = 10) -> list:
    """The kit's many-peers scenario; returns the accepted streams."""
    with trio.fail_after(40):
        return await _kit.serve_many_peers(transport, addr, peers, msgs)


async def accept_from(listener: Listener, proc: trio.Process,
                      timeout: float = 20.0) -> FrameStream:
    """Accept the connection of child ``proc``; fail at once if the child
    dies first instead of waiting for the timeout."""
    got = []
    with trio.fail_after(timeout):
        async with trio.open_nursery() as n:
            async def accept():
                got.append(await listener.accept())
                n.cancel_scope.cancel()

            async def watch():
                await proc.wait()
                n.cancel_scope.cancel()
            n.start_soon(accept)
            n.start_soon(watch)
    if not got:
        raise AssertionError(
            f'peer process exited with code {proc.returncode} before it '
            f'connected (its stderr is in the captured output)')
    return got[0]


# -- child processes -----------------------------------------------------
def _reap(proc: trio.Process) -> None:
    if proc.returncode is None:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass


@asynccontextmanager
async def peer_process(
    mode: str,
    addr: Addr,
    codec: str = 'msgpack',
    **env: str,
) -> AsyncIterator[trio.Process]:
    """Run ``_peer.py MODE ADDR TRANSPORT CODEC`` in a child python that
    dials ``addr``. Modes: ``echo``, ``idle`` (both first send
    ``b'ready'``), ``channel-echo`` (handshake, heartbeat, echo) and
    ``channel-mute`` (handshake, then silence); see ``_peer.py``. The
    child is SIGCONTed, SIGKILLed and waited for on the way out, whatever
    happened."""
    cmd = [sys.executable, PEER_SCRIPT, mode, str(addr), addr.transport,
           codec]
    full_env = {**os.environ, 'TRACTOR_SECRET': SECRET, **env}
    if getattr(get_transport(addr.transport), 'tls', None) is not None:
        full_env['TRACTOR_TLS'] = '1'  # see _peer.py
    proc = await trio.lowlevel.open_process(
        cmd, env=full_env, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        with trio.CancelScope(shield=True):
            _reap(proc)
            await proc.wait()


# -- a Channel server ----------------------------------------------------
class EchoServer:
    """Accepts every peer on ``listener``, handshakes it as an actor would
    and echoes its messages. A peer refused during the handshake is logged,
    dropped, and its error is put on ``self.refused`` (a trio memory
    channel) so a test can wait for it without sleeping."""

    def __init__(self, listener: Listener, codec: str, *,
                 handshake_timeout: float = 5.0, **chan_kw) -> None:
        self.listener = listener
        self.codec = codec
        self.handshake_timeout = handshake_timeout
        self.chan_kw = chan_kw
        self._refused_tx, self.refused = trio.open_memory_channel(100)
        self.served = 0

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await accept_each(self.listener, self._handle,
                          task_status=task_status)

    async def _handle(self, stream: FrameStream) -> None:
        chan = Channel(stream, self.codec, **self.chan_kw)
        try:
            await chan.handshake(('echo-server', '0'), secret=SECRET,
                                 role='listen',
                                 timeout=self.handshake_timeout)
        except (TransportClosed, trio.TooSlowError) as err:
            log.warning('refused connection from %s: %s',
                        stream.peer_addr, err)
            await chan.aclose()
            self._refused_tx.send_nowait(err)
            return
        self.served += 1
        try:
            async for msg in chan:
                await chan.send(msg)
        except TransportClosed:
            pass
        finally:
            await chan.aclose()


@asynccontextmanager
async def echo_server(addr: Addr, codec: str, **kw
                      ) -> AsyncIterator[EchoServer]:
    listener = await tractor.transports.listen(addr)
    server = EchoServer(listener, codec, **kw)
    try:
        async with trio.open_nursery() as n:
            await n.start(server.serve)
            try:
                yield server
            finally:
                await close_all(listener)
                n.cancel_scope.cancel()
    finally:
        await close_all(listener)


# -- raw bytes -----------------------------------------------------------
def raw_unfit(addr: Addr) -> str | None:
    """Why raw bytes cannot reach ``addr``'s frames (a reason to skip a
    raw-byte test), None if they can."""
    if addr.transport not in RAW_TRANSPORTS:
        return (f'{addr.transport} is not a raw length-prefixed byte '
                f'stream; its frame-level cases are tested instead')
    if getattr(get_transport(addr.transport), 'tls', None) is not None:
        return ('with TLS the bytes are records, so raw bytes are refused '
                'by the TLS handshake before any frame (tests/test_tls.py '
                'checks that refusal)')
    return None


async def raw_connect(addr: Addr) -> trio.SocketStream:
    """A plain socket to a length-prefixed transport's listener, to write
    bytes no well-behaved stream would."""
    if addr.transport == 'tcp':
        return await trio.open_tcp_stream(addr.host, addr.port)
    if addr.transport == 'uds':
        return await trio.open_unix_socket(addr.path)
    raise NotImplementedError(addr.transport)


async def raw_wait_closed(sock: trio.SocketStream) -> None:
    """Read until the other side drops the connection."""
    while True:
        try:
            if not await sock.receive_some(65536):
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


@asynccontextmanager
async def channel_pair(addr: Addr, codec, *, peer_codec=None, **chan_kw
                       ) -> AsyncIterator[tuple[Channel, Channel]]:
    """Two handshaken Channels over a fresh stream pair: ``(dialer,
    listener side)``; the listener side uses ``peer_codec`` if given."""
    async with stream_pair(addr) as (_, client, server):
        a = Channel(client, codec, **chan_kw)
        b = Channel(server, peer_codec or codec, **chan_kw)
        with trio.fail_after(10):
            async with trio.open_nursery() as n:
                n.start_soon(lambda: a.handshake(('dialer', '1'),
                                                 secret=SECRET, role='dial'))
                n.start_soon(lambda: b.handshake(('listener', '2'),
                                                 secret=SECRET,
                                                 role='listen'))
        try:
            yield a, b
        finally:
            await close_all(a, b)
