"""The zmq rendezvous: the listener, and the transport that opens
streams through it.

**One PAIR socket per peer, handed out by a rendezvous.** The listen
address is a ROUTER that speaks one tiny exchange: a dialer's DEALER sends
``TRACTOR-ZMQ/1``, the listener binds a *fresh* PAIR socket for that peer
(``tcp://<host>:*`` or a new ipc path) and answers with its port or path;
the dialer then connects its own PAIR there and the DEALER is dropped.
Every stream is therefore an exclusive, ordered, back-pressured pipe:
a PAIR's high-water mark blocks the sender (we wait on the fd, never
drop, never spin). The alternative -- one ROUTER carrying all peers --
was rejected: ROUTER drops silently by default, and with
``ROUTER_MANDATORY`` one slow peer makes the socket look writable while
sends to that peer fail, which needs per-peer outboxes and timers to avoid
both loss and spinning. ``accept()`` only returns a stream once its peer
has finished the ZMTP handshake on the fresh PAIR (pending PAIRs are
watched together, so a hundred peers dialling at once do not queue
behind each other; a peer that never shows up is dropped after
``handshake_timeout``).

**Socket options.** Dialers set a huge ``RECONNECT_IVL`` so a lost
connection is *not* silently re-dialled; ``RECONNECT_IVL=-1`` is not used
because libzmq then discards messages that already arrived. Frames that
arrived before the peer went are still delivered, then ``recv`` raises
TransportClosed. TCP keepalive (5 s idle, 3 x 2 s: ``_kit.KEEPALIVE``)
covers idle connections to dead hosts, like the ``tcp`` transport; dead
hosts with data in flight and hung-but-alive peers are the Channel
heartbeat's job. TCP_MAXRT is deliberately not set: on Linux libzmq makes
it TCP_USER_TIMEOUT, which also bounds zero-window probing, so it reset a
healthy connection whose reader stalled longer than it (a busy actor)
while more than its HWM was queued toward it -- see the ``tcp``
transport. ZMTP heartbeats are off by default
(``ZMQTransport(heartbeat=(ivl, timeout))`` turns them on): measured,
they kill a connection whose reader merely stops reading for longer than
the timeout while the writer is blocked at the high-water mark, which
would break the no-loss back-pressure guarantee. HWM is counted in
messages (``hwm``, default 1000 per side), the credit window in bytes
(``window``). Sockets close with a bounded LINGER (``linger_ms``) so
pending frames are flushed on ``aclose`` and nothing ever hangs.

``listen`` raises OSError for an address in use, like the ``tcp``
transport.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import uuid

from typing import cast

import trio
from trio.lowlevel import checkpoint, notify_closing, wait_readable
import zmq

from .._addr import Addr, runtime_dir
from .. import _tls_zmq
from .._base import DEFAULT_MAX_FRAME, HandshakeError, TransportClosed
from .._kit import (
    KEEPALIVE,
    RECONNECT_NEVER_MS as _RECONNECT_NEVER_MS,
    AcceptQueue,
    claim_ipc_path,
    release_ipc_path,
)
from ._fdwait import (
    EVENTS as _EVENTS,
    NOBLOCK as _NOBLOCK,
    POLLIN as _POLLIN,
    ZSock,
    context,
)
from ._stream import ZMQFrameStream, closed_error

_MAGIC = b'TRACTOR-ZMQ/1'
_Again = zmq.Again
_ZMQError = zmq.ZMQError


class ZMQListener:
    """The rendezvous ROUTER on the advertised address."""

    def __init__(self, router: zmq.Socket, addr: Addr, transport) -> None:
        self._router = router
        self._router_fd = cast(int, router.getsockopt(zmq.FD))
        self.addr = addr
        self._t = transport
        self._closed = False
        self._lock = trio.Lock()
        self._ep = select.epoll()
        self._ep.register(self._router_fd, select.EPOLLIN)
        # streams bound for a peer that has not finished its handshake
        self._queue: AcceptQueue[ZMQFrameStream] = AcceptQueue(
            transport.handshake_timeout)

    def __repr__(self) -> str:
        return f'<ZMQListener {self.addr}>'

    async def accept(self) -> ZMQFrameStream:
        if self._closed:
            raise TransportClosed(f'{self} is closed')
        async with self._lock:
            while True:
                if self._closed:
                    raise TransportClosed(f'{self} is closed')
                self._serve_rendezvous()
                self._check_pending()
                stream = self._queue.get()
                if stream is not None:
                    await checkpoint()
                    return stream
                try:
                    with trio.move_on_at(self._queue.deadline):
                        await wait_readable(self._ep.fileno())
                except (trio.ClosedResourceError, OSError):
                    raise TransportClosed(f'{self} is closed') from None
                if self._closed:
                    raise TransportClosed(f'{self} is closed')
                try:
                    self._ep.poll(0)
                except OSError:
                    pass

    def _serve_rendezvous(self) -> None:
        router = self._router
        while True:
            try:
                if not cast(int, router.getsockopt(_EVENTS)) & _POLLIN:
                    return
                frames = router.recv_multipart(_NOBLOCK)
            except _Again:
                return
            except _ZMQError:
                return
            if len(frames) != 2 or frames[1] != _MAGIC:
                continue  # not one of ours: ignore
            try:
                stream, where = self._t._bind_peer(self.addr)
            except (OSError, _ZMQError):
                continue  # out of ports/fds: the dialer times out
            try:
                router.send_multipart(
                    [frames[0], _MAGIC + b' ' + where.encode()], _NOBLOCK)
            except _ZMQError:
                # the dialer is gone already (EHOSTUNREACH) or stuck
                stream.abort()
                continue
            self._queue.add(stream)
            try:
                self._ep.register(stream.monitor_fd, select.EPOLLIN)
            except OSError:
                pass

    def _check_pending(self) -> None:
        queue = self._queue
        for stream in queue.pending():
            ok = stream.poll_handshake()
            if ok is None and not queue.overdue(stream):
                continue
            try:
                self._ep.unregister(stream.monitor_fd)
            except (OSError, ValueError):
                pass
            if ok:
                queue.attached(stream)
            else:
                queue.discard(stream)
                stream.abort()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            notify_closing(self._ep.fileno())
        except Exception:
            pass
        for stream in self._queue.clear():
            stream.abort()
        self._ep.close()
        try:
            self._router.close(linger=0)
        except Exception:
            pass
        if self.addr.scheme == 'ipc':
            # libzmq removes it too, but later, from its reaper thread
            release_ipc_path(self.addr.path)
            await checkpoint()
        else:
            await _port_released(self.addr)


async def _port_released(addr: Addr, timeout: float = 1.0) -> None:
    """libzmq closes a listening socket later, from its own thread: wait
    (briefly) until the port can be bound again, so that closing a
    listener frees its address at once, as with the ``tcp`` transport."""
    host = addr.host or '0.0.0.0'
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    deadline = trio.current_time() + timeout
    while True:
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, addr.port))
            return
        except OSError as err:
            if (err.errno != errno.EADDRINUSE
                    or trio.current_time() >= deadline):
                return
        finally:
            probe.close()
            await checkpoint()
        await trio.sleep(0.001)


class ZMQTransport:
    """Frames over ZeroMQ. See the module docstring for the design."""

    name = 'zmq'
    schemes = ('tcp', 'ipc')
    #: key material (:class:`tractor._tls.Keys`) when ``tcp://`` streams
    #: are CURVE-secured (see :mod:`.._tls_zmq`); set for the whole
    #: process, like ``max_frame``, by the tree's ``tls=`` option
    tls = None

    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        hwm: int = 1000,
        window: int = 8 * 1024 * 1024,
        linger_ms: int = 1000,
        connect_timeout: float = 5.0,
        handshake_timeout: float = 10.0,
        heartbeat: tuple[float, float] | None = None,
    ) -> None:
        self.max_frame = max_frame
        self.hwm = hwm
        self.window = window
        self.linger_ms = linger_ms
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.heartbeat = heartbeat

    # -- sockets -------------------------------------------------------
    def _stream_socket(self, kind: int, dialer: bool,
                       ipv6: bool = False, curve: bool = False) -> ZSock:
        sock = context().socket(kind)
        try:
            if curve:
                _tls_zmq.secure(sock, self.tls, server=not dialer)
            so = sock.setsockopt
            so(zmq.LINGER, self.linger_ms)
            so(zmq.SNDHWM, self.hwm)
            so(zmq.RCVHWM, self.hwm)
            # (under CURVE libzmq counts a message's encrypted size: the
            # command name, nonce and MAC around the frame)
            so(zmq.MAXMSGSIZE, self.max_frame
               + (_tls_zmq.MESSAGE_OVERHEAD if curve else 0))
            so(zmq.TCP_KEEPALIVE, 1)
            so(zmq.TCP_KEEPALIVE_IDLE, KEEPALIVE['idle'])
            so(zmq.TCP_KEEPALIVE_INTVL, KEEPALIVE['interval'])
            so(zmq.TCP_KEEPALIVE_CNT, KEEPALIVE['count'])
            if ipv6:
                so(zmq.IPV6, 1)
            if dialer:
                so(zmq.RECONNECT_IVL, _RECONNECT_NEVER_MS)
                so(zmq.RECONNECT_IVL_MAX, 0)
            if self.heartbeat:
                ivl, timeout = self.heartbeat
                so(zmq.HEARTBEAT_IVL, int(ivl * 1000))
                so(zmq.HEARTBEAT_TIMEOUT, int(timeout * 1000))
                so(zmq.HEARTBEAT_TTL, int(timeout * 1000))
            return ZSock(sock, monitor=True)
        except BaseException:
            sock.close(linger=0)
            raise

    def _bind_peer(self, laddr: Addr) -> tuple[ZMQFrameStream, str]:
        """Listener side: a fresh PAIR bound for one new peer."""
        if laddr.scheme == 'ipc':
            path = os.path.join(runtime_dir(),
                                f'zmq-{uuid.uuid4().hex[:16]}.sock')
            endpoint, where = f'ipc://{path}', path
            zs = self._stream_socket(zmq.PAIR, dialer=False)
        else:
            host = laddr.host or '0.0.0.0'
            h = f'[{host}]' if ':' in host else host
            endpoint = f'tcp://{h}:*'
            zs = self._stream_socket(zmq.PAIR, dialer=False, ipv6=':' in host,
                                     curve=self.tls is not None)
        stream = ZMQFrameStream(zs, laddr, laddr, max_frame=self.max_frame,
                              linger_ms=self.linger_ms, dialer=False,
                              window=self.window)
        try:
            zs.sock.bind(endpoint)
            stream.bound_endpoint = endpoint
            if laddr.scheme != 'ipc':
                bound = cast(bytes, zs.sock.getsockopt(zmq.LAST_ENDPOINT)
                             ).decode()
                where = bound.rpartition(':')[2]
        except BaseException:
            stream.abort()
            raise
        return stream, where

    # -- the Transport API ---------------------------------------------
    async def connect(self, addr) -> ZMQFrameStream:
        addr = Addr.parse(addr, self.name)
        deadline = trio.current_time() + self.connect_timeout
        ipv6 = ':' in addr.host
        curve = self.tls is not None and addr.scheme == 'tcp'
        # 1. rendezvous: ask the listener for a socket of our own
        try:
            zs = self._stream_socket(zmq.DEALER, dialer=True, ipv6=ipv6,
                                     curve=curve)
            zs.sock.setsockopt(zmq.MAXMSGSIZE, 4096)
        except _ZMQError as err:
            raise closed_error(err, f'cannot connect to {addr}') from None
        rdv = ZMQFrameStream(zs, addr, addr, max_frame=4096, linger_ms=0,
                           dialer=True)
        rdv._curve = curve
        try:
            zs.sock.connect(addr.url)
            await rdv.send(_MAGIC)
            reply = None
            with trio.move_on_at(deadline):
                reply = await rdv.recv()
            if reply is None:
                raise TransportClosed(
                    f'cannot connect to {addr}: no answer within '
                    f'{self.connect_timeout} s')
        except _ZMQError as err:
            raise closed_error(err, f'cannot connect to {addr}') from None
        except HandshakeError:
            raise
        except TransportClosed as err:
            msg = str(err)
            if not msg.startswith('cannot connect'):
                msg = f'cannot connect to {addr}: {msg}'
            raise TransportClosed(msg) from None
        finally:
            rdv.abort()
        magic, _, where = bytes(reply).partition(b' ')
        if magic != _MAGIC or not where:
            raise TransportClosed(
                f'{addr} does not speak the tractor zmq rendezvous')
        place = where.decode('utf-8', 'replace')
        if addr.scheme == 'ipc':
            endpoint = f'ipc://{place}'
        else:
            endpoint = f'tcp://{addr.with_port(int(place)).location}'
        # 2. our own PAIR to the socket the listener bound for us
        try:
            zs = self._stream_socket(zmq.PAIR, dialer=True, ipv6=ipv6,
                                     curve=curve)
        except _ZMQError as err:
            raise closed_error(err, f'cannot connect to {addr}') from None
        stream = ZMQFrameStream(zs, addr, addr, max_frame=self.max_frame,
                              linger_ms=self.linger_ms, dialer=True,
                              window=self.window)
        stream._curve = curve
        try:
            zs.sock.connect(endpoint)
            await stream._wait_connected(deadline)
        except _ZMQError as err:
            stream.abort()
            raise closed_error(err, f'cannot connect to {addr}') from None
        except BaseException:
            stream.abort()
            raise
        return stream

    async def listen(self, addr) -> ZMQListener:
        addr = Addr.parse(addr, self.name)
        if addr.scheme == 'ipc':
            # libzmq would silently unlink a live path: refuse it
            claim_ipc_path(addr.path)
            endpoint = f'ipc://{addr.path}'
        else:
            h = f'[{addr.host}]' if ':' in addr.host else (addr.host or '*')
            endpoint = f'tcp://{h}:{addr.port or "*"}'
        router = context().socket(zmq.ROUTER)
        try:
            router.setsockopt(zmq.LINGER, 0)
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            router.setsockopt(zmq.MAXMSGSIZE, 256)
            # a raw connection that never completes ZMTP is dropped after
            # this long, instead of libzmq's 30 s default
            router.setsockopt(zmq.HANDSHAKE_IVL, 5000)
            if self.tls is not None and addr.scheme == 'tcp':
                _tls_zmq.secure(router, self.tls, server=True)
                # CURVE's handshake commands are bigger than that limit
                router.setsockopt(zmq.MAXMSGSIZE, 4096)
            if ':' in addr.host:
                router.setsockopt(zmq.IPV6, 1)
            router.bind(endpoint)
            bound = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        except _ZMQError as err:
            router.close(linger=0)
            raise OSError(err.errno, f'cannot listen on {addr}: {err}') \
                from None
        except BaseException:
            router.close(linger=0)
            raise
        if addr.scheme == 'ipc':
            baddr = addr
        else:
            port = int(bound.rpartition(':')[2])
            host = addr.host or '0.0.0.0'
            baddr = Addr(self.name, 'tcp', host=host, port=port)
        await checkpoint()
        return ZMQListener(router, baddr, self)

