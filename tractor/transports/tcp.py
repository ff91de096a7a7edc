"""``'tcp'`` and ``'uds'``: length-prefixed frames over stream sockets.

Each frame is a 4-byte big-endian length followed by that many bytes. The
stream owns a plain non-blocking socket and waits on it with trio's
low-level I/O primitives, which keeps a send or receive that can complete
at once down to one system call and no trip through the scheduler.

Writers that find another task mid-write queue their frame and let that
task flush everything queued in one ``send`` call (group commit), so many
concurrent senders coalesce into few system calls. Reads pull up to
256 KiB at a time and hand out every complete frame in the buffer before
touching the socket again.
"""
from __future__ import annotations

import errno
import os
import socket
import struct

import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

from ._addr import Addr
from ._base import DEFAULT_MAX_FRAME, HandshakeError, TransportClosed
from ._kit import (
    YIELD_EVERY as _YIELD_EVERY,
    claim_ipc_path,
    release_ipc_path,
    set_tcp_keepalive,
    too_large_received,
    too_large_to_send,
)

_HDR = struct.Struct('!I')
_HDR_SIZE = _HDR.size
_unpack_hdr = _HDR.unpack_from
_pack_hdr = _HDR.pack
_READ_SIZE = 256 * 1024
# a read this short was one small message, not a burst
_SMALL_READ = 1024
# frames at most this long are copied together with their header into one
# write; longer ones go out as header + payload without a copy
_JOIN_BELOW = 64 * 1024
# SO_LINGER on, 0 s: close() resets the connection (abort)
_LINGER_NONE = struct.pack('ii', 1, 0)

# TCP liveness: keepalive (see _kit.KEEPALIVE) notices a dead host; the
# Channel's heartbeat covers a hung peer and a dead host with data in
# flight. TCP_USER_TIMEOUT is deliberately not set: Linux also applies it
# to zero-window probes, so it would reset a healthy connection whose
# reader is merely slower than the timeout -- dropping data instead of
# applying back-pressure.

_GONE_ERRNOS = {
    errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT,
    errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENOTCONN, errno.EBADF,
}


def _closed_error(err: BaseException, what: str) -> TransportClosed:
    return TransportClosed(f'{what}: {err}')


class SocketFrameStream:
    """A FrameStream over one connected stream socket (TCP or Unix)."""

    def __init__(
        self,
        sock: socket.socket,
        local_addr: Addr,
        peer_addr: Addr,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.local_addr = local_addr
        self.peer_addr = peer_addr
        self.max_frame = max_frame
        self._closed = False
        self._error: TransportClosed | None = None
        # receive side
        self._rbuf = bytearray()
        self._rpos = 0
        self._big: bytearray | None = None  # a large frame being filled
        self._big_fill = 0
        self._rcount = 0
        self._small_read = False
        # send side
        self._writing = False
        self._queue: list = []
        self._batch_done = trio.Event()
        self._qseq = 0  # frames queued so far
        self._fseq = 0  # frames flushed so far
        self._wcount = 0

    def __repr__(self) -> str:
        return f'<SocketFrameStream {self.local_addr} -> {self.peer_addr}>'

    # -- sending -------------------------------------------------------
    async def send(self, data) -> None:
        n = len(data)
        if n > self.max_frame:
            raise too_large_to_send(n, self.max_frame)
        if n >= _JOIN_BELOW:
            await self._send_chunks((_pack_hdr(n), data), 1)
            return
        await self._send_small(_pack_hdr(n) + data)

    async def _send_small(self, buf) -> None:
        """Send one small frame, header included."""
        if self._writing or self._closed or self._wcount >= _YIELD_EVERY - 1:
            await self._send_chunks((buf,), 1)
            return
        # fast path: nobody is writing, so try the system call right here,
        # without the layers of the general path
        await checkpoint_if_cancelled()
        try:
            sent = self._sock.send(buf)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = -1
        if sent == len(buf):
            self._wcount += 1
            return
        if sent <= 0:
            await self._send_chunks((buf,), 1)
            return
        # part of the frame went out: finish it (shielded) before anyone
        # else may write
        self._writing = True
        try:
            await self._write(memoryview(buf)[sent:], True)
            await self._flush_queue()
        finally:
            self._writer_left()

    async def send_many(self, frames) -> None:
        """Send several frames with as few system calls as possible (one,
        when they are small): the batching path for streams. A frame of
        ``_JOIN_BELOW`` bytes or more is written from where it lies, not
        copied into the batch (a 1 MiB stream item goes out as it does
        through :meth:`send`)."""
        parts = []
        chunks = []
        for data in frames:
            n = len(data)
            if n > self.max_frame:
                raise too_large_to_send(n, self.max_frame)
            parts.append(_pack_hdr(n))
            if n >= _JOIN_BELOW:
                chunks.append(b''.join(parts))
                chunks.append(data)
                parts = []
            else:
                parts.append(data)
        if parts:
            chunks.append(b''.join(parts))
        await self._send_chunks(chunks, len(frames))

    async def _send_chunks(self, chunks, nframes: int) -> None:
        await checkpoint_if_cancelled()
        if self._closed:
            raise self._error or TransportClosed(f'{self} is closed')
        if self._writing:
            # another task is writing: queue the frames for the batch it
            # flushes next (group commit), or take over as writer if that
            # task left (it was cancelled before its own frame went out)
            self._queue.extend(chunks)
            self._qseq += 1
            mine = self._qseq
            while True:
                with trio.CancelScope(shield=True):
                    await self._batch_done.wait()
                if self._error is not None:
                    raise self._error
                if self._fseq >= mine:
                    return
                if not self._writing:
                    break
            self._writing = True
            try:
                await self._flush_queue()
            finally:
                self._writer_left()
            return
        self._writing = True
        try:
            started = False
            for chunk in chunks:
                await self._write(chunk, started)
                started = True
            await self._flush_queue()
        finally:
            self._writer_left()
        self._wcount += nframes
        if self._wcount >= _YIELD_EVERY:
            self._wcount = 0
            await cancel_shielded_checkpoint()

    async def _flush_queue(self) -> None:
        while self._queue:
            batch = b''.join(self._queue)
            upto = self._qseq
            self._queue.clear()
            done, self._batch_done = self._batch_done, trio.Event()
            try:
                with trio.CancelScope(shield=True):
                    await self._write(batch, started=True)
                self._fseq = upto
            finally:
                done.set()

    def _writer_left(self) -> None:
        self._writing = False
        if self._queue or self._error is not None:
            # wake the queued senders: one of them takes over, or all of
            # them see the error
            done, self._batch_done = self._batch_done, trio.Event()
            done.set()

    async def _write(self, data, started: bool = False) -> None:
        """Write all of ``data``. Cancellable only until the first byte of
        a frame is out; after that the frame is completed (or the stream
        fails), because half a frame would corrupt the stream."""
        sock = self._sock
        view = memoryview(data)
        total = len(view)
        sent = 0
        while sent < total:
            try:
                sent += sock.send(view[sent:])
                continue
            except BlockingIOError:
                pass
            except OSError as err:
                exc = _closed_error(err, 'send failed, peer gone')
                self._close_now(exc)
                raise exc from None
            try:
                if sent or started:
                    with trio.CancelScope(shield=True):
                        await wait_writable(sock)
                else:
                    await wait_writable(sock)
            except (trio.ClosedResourceError, OSError) as err:
                raise self._error or _closed_error(
                    err, 'stream closed during send') from None

    def _fail(self, err: TransportClosed) -> None:
        if self._error is None:
            self._error = err
        self._batch_done.set()

    # -- receiving -----------------------------------------------------
    async def recv(self):
        await checkpoint_if_cancelled()
        while True:
            if self._closed:
                raise self._error or TransportClosed(f'{self} is closed')
            frame = self._next_frame()
            if frame is not None:
                self._rcount += 1
                if self._rcount >= _YIELD_EVERY:
                    self._rcount = 0
                    await cancel_shielded_checkpoint()
                return frame
            await self._fill()

    async def recv_many(self, limit: int = 64) -> list:
        """The next frame and those right behind it already in the read
        buffer (up to ``limit``), without another system call. Blocks only
        for the first; cancel-safe like ``recv``."""
        frames = [await self.recv()]
        next_frame = self._next_frame
        while len(frames) < limit and not self._closed:
            try:
                frame = next_frame()
            except TransportClosed:
                break  # raised again by the next call
            if frame is None:
                break
            frames.append(frame)
        self._rcount += len(frames) - 1
        return frames

    def _next_frame(self):
        big = self._big
        if big is not None:
            if self._big_fill == len(big):
                self._big = None
                return big
            return None
        buf, pos = self._rbuf, self._rpos
        avail = len(buf) - pos
        if avail < _HDR_SIZE:
            return None
        (n,) = _unpack_hdr(buf, pos)
        if n > self.max_frame:
            from ._tls_tcp import tls_hint
            hint = tls_hint(bytes(buf[pos:pos + 3]))
            err = HandshakeError(f'peer {self.peer_addr}: {hint}') if hint \
                else too_large_received(self.peer_addr, n, self.max_frame)
            self._close_now(err)
            raise err
        end = pos + _HDR_SIZE + n
        if end <= len(buf):
            frame = bytes(buf[pos + _HDR_SIZE:end])
            if end == len(buf):
                buf.clear()
                self._rpos = 0
            else:
                self._rpos = end
                if end > _READ_SIZE:
                    del buf[:end]
                    self._rpos = 0
            return frame
        if n >= _JOIN_BELOW:
            # receive the rest straight into the frame's own buffer
            big = bytearray(n)
            have = avail - _HDR_SIZE
            big[:have] = buf[pos + _HDR_SIZE:]
            buf.clear()
            self._rpos = 0
            self._big, self._big_fill = big, have
        return None

    async def _fill(self) -> None:
        sock = self._sock
        while True:
            try:
                if self._big is not None:
                    view = memoryview(self._big)[self._big_fill:]
                    got = sock.recv_into(view)
                    if got:
                        self._big_fill += got
                        return
                else:
                    if self._small_read:
                        # the last read was a lone small message (request/
                        # reply traffic): the socket is most likely empty,
                        # so wait before trying, saving a failing recv
                        self._small_read = False
                        raise BlockingIOError
                    chunk = sock.recv(_READ_SIZE)
                    got = len(chunk)
                    if got:
                        self._small_read = got < _SMALL_READ
                        self._rbuf += chunk
                        return
            except BlockingIOError:
                try:
                    await wait_readable(sock)
                except (trio.ClosedResourceError, OSError) as err:
                    raise self._error or _closed_error(
                        err, 'stream closed during recv') from None
                continue
            except OSError as err:
                exc = _closed_error(err, f'connection to {self.peer_addr} lost')
                self._close_now(exc)
                raise exc from None
            self._eof()  # got == 0: orderly EOF

    def _eof(self) -> None:
        pending = len(self._rbuf) - self._rpos
        if self._big is not None or pending:
            msg = 'peer closed the connection in the middle of a frame'
        else:
            msg = f'peer {self.peer_addr} closed the connection'
        exc = TransportClosed(msg)
        self._close_now(exc)
        raise exc

    # -- closing -------------------------------------------------------
    def _close_now(self, err: TransportClosed | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._fail(err or TransportClosed(f'{self} was closed locally'))
        try:
            notify_closing(self._sock)
        except Exception:
            pass
        self._sock.close()

    async def aclose(self) -> None:
        self._close_now()
        await checkpoint()

    def abort(self) -> None:
        """Drop the connection now: what the kernel still holds for the
        peer is discarded (a reset, where the socket has one), not sent."""
        if not self._closed:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      _LINGER_NONE)
            except OSError:
                pass
        self._close_now(TransportClosed(f'{self} was aborted'))


class SocketListener:
    def __init__(self, sock: socket.socket, addr: Addr, transport) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.addr = addr
        self._transport = transport
        # TLS as it was when listening started, for every peer accepted
        self._tls = getattr(transport, 'tls', None)
        self._closed = False

    def __repr__(self) -> str:
        return f'<SocketListener {self.addr}>'

    async def accept(self) -> SocketFrameStream:
        while True:
            if self._closed:
                raise TransportClosed(f'{self} is closed')
            try:
                conn, peer = self._sock.accept()
            except BlockingIOError:
                try:
                    await wait_readable(self._sock)
                except (trio.ClosedResourceError, OSError) as err:
                    raise TransportClosed(f'{self} closed: {err}') from None
                continue
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                 errno.ENOMEM):
                    # out of descriptors: back off rather than spin
                    await trio.sleep(0.05)
                    continue
                if self._closed:
                    raise TransportClosed(f'{self} is closed') from None
                continue
            await cancel_shielded_checkpoint()
            return self._transport._wrap(conn, self.addr, peer, self._tls)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            notify_closing(self._sock)
        except Exception:
            pass
        self._sock.close()
        self._transport._cleanup(self.addr)
        await checkpoint()


async def _connect_sock(sock: socket.socket, sockaddr) -> None:
    sock.setblocking(False)
    try:
        sock.connect(sockaddr)
        return
    except BlockingIOError:
        pass
    await wait_writable(sock)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


class TCPTransport:
    """Frames over TCP. Addresses: ``tcp://host:port`` or ``(host, port)``."""

    name = 'tcp'
    schemes = ('tcp',)

    #: key material (:class:`tractor._tls.Keys`) when this transport
    #: speaks TLS (see :mod:`._tls_tcp`); set for the whole process, like
    #: ``max_frame``, by the tree's ``tls=`` option
    tls = None

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame

    @staticmethod
    def _tune(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        set_tcp_keepalive(sock)

    def _addr(self, sockaddr) -> Addr:
        return Addr(self.name, 'tcp', host=sockaddr[0], port=sockaddr[1])

    def _wrap(self, conn, local: Addr, peer, tls=None,
              server_side: bool = True) -> SocketFrameStream:
        self._tune(conn)
        args = (conn, self._addr(conn.getsockname()), self._addr(peer),
                self.max_frame)
        if tls is not None:
            from ._tls_tcp import TLSFrameStream
            return TLSFrameStream(
                *args, context=tls.ssl_context(server_side),
                server_side=server_side)
        return SocketFrameStream(*args)

    def _cleanup(self, addr: Addr) -> None:
        pass

    async def connect(self, addr) -> SocketFrameStream:
        addr = Addr.parse(addr, self.name)
        infos = await trio.socket.getaddrinfo(
            addr.host, addr.port, type=socket.SOCK_STREAM)
        family, type_, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            await _connect_sock(sock, sockaddr)
        except BaseException as err:
            sock.close()
            if isinstance(err, OSError):
                raise TransportClosed(
                    f'cannot connect to {addr}: {err.strerror or err}') from None
            raise
        tls = self.tls
        stream = self._wrap(sock, addr, sock.getpeername(), tls, False)
        if tls is not None:
            try:
                await stream.handshake()
            except BaseException:
                stream._close_now()
                raise
        return stream

    async def listen(self, addr) -> SocketListener:
        addr = Addr.parse(addr, self.name)
        infos = await trio.socket.getaddrinfo(
            addr.host or None, addr.port, type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE)
        family, type_, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(512)
        except BaseException:
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        cls = SocketListener
        if self.tls is not None:
            from ._tls_tcp import TLSListener as cls
        return cls(sock, Addr(self.name, 'tcp', host=host, port=port), self)


class UDSTransport(TCPTransport):
    """Frames over Unix domain sockets, for peers on the same host.
    Addresses: ``ipc:///path/to.sock``; the file is removed on close."""

    name = 'uds'
    schemes = ('ipc',)

    def _wrap(self, conn, local: Addr, peer, tls=None,
              server_side: bool = True) -> SocketFrameStream:
        # local: no TLS (see tractor._tls)
        return SocketFrameStream(conn, local, local, self.max_frame)

    def _cleanup(self, addr: Addr) -> None:
        release_ipc_path(addr.path)

    async def connect(self, addr) -> SocketFrameStream:
        addr = Addr.parse(addr, self.name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await _connect_sock(sock, addr.path)
        except BaseException as err:
            sock.close()
            if isinstance(err, OSError):
                raise TransportClosed(
                    f'cannot connect to {addr}: {err.strerror or err}') from None
            raise
        return SocketFrameStream(sock, addr, addr, self.max_frame)

    async def listen(self, addr) -> SocketListener:
        addr = Addr.parse(addr, self.name)
        path = addr.path
        claim_ipc_path(path, addr)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(512)
        except BaseException:
            sock.close()
            raise
        return SocketListener(sock, addr, self)
