"""``tcp`` with TLS 1.3: the same length-prefixed frames, encrypted.

The stream is the plain :class:`~tractor.transports.tcp.SocketFrameStream`
with its byte I/O replaced: an :class:`ssl.SSLObject` over two
:class:`ssl.MemoryBIO` turns plaintext into records and back, and the
records move through the very same non-blocking socket with the same
group commit, big-frame receive buffer and scheduler shortcuts. (A
:class:`trio.SSLStream` would put a ``trio.SocketStream`` and its
per-call checkpoints back under every frame.)

What TLS changes
----------------
* **Encrypt once, at write time.** A frame is encrypted by the task that
  writes it to the socket, in write order, so the record sequence numbers
  follow the byte stream. Encrypted bytes *must* then reach the socket:
  a record dropped half way would break every record after it. So a write
  is cancellable only before its frame is encrypted (while waiting for a
  socket that was full), and shielded from there on, as the plain stream
  is after a frame's first byte.
* **Both sides hand out authenticated streams only.** ``connect()``
  returns once the handshake is done; ``accept()`` runs the handshakes of
  all the peers it has taken side by side (each under
  the tractor handshake's ``$TRACTOR_HANDSHAKE_TIMEOUT``, at most
  ``MAX_PENDING`` at a time) and returns
  the first to complete, so a silent or slow client never holds up the
  others, and a refused one is logged at WARNING while the listener goes
  on serving. Handshakes still pending when ``accept()`` returns resume
  at its next call.
* **Refusals say why.** A handshake failure is a :class:`HandshakeError`
  naming the cause: another CA, an expired or wrong-purpose certificate
  (ours, as the peer's alert tells, or theirs), or a peer speaking
  plaintext tractor frames. A plaintext stream that receives a TLS record
  says so too (see ``tls_hint``).
"""
from __future__ import annotations

import ssl
from collections import deque
from typing import cast

import trio
from trio.lowlevel import (
    checkpoint_if_cancelled,
    wait_readable,
    wait_writable,
)

from ..log import get_logger
from ._base import HandshakeError, TransportClosed
from .tcp import (
    _READ_SIZE,
    _SMALL_READ,
    _YIELD_EVERY,
    SocketFrameStream,
    SocketListener,
    _closed_error,
)

log = get_logger(__name__)

#: handshakes run at once by one listener; more peers wait in the
#: kernel's accept queue
MAX_PENDING = 256

#: what a TLS record header starts with: handshake (22) or alert (21)
#: content type, then major version 3
_TLS_RECORD = (0x15, 0x16)
#: the start of a plaintext tractor hello frame, past its length prefix
_PLAIN_HELLO = b'TRACTOR\x01'
#: a fatal protocol_version alert record: what we answer a peer that does
#: not speak TLS when OpenSSL has no alert of its own to send, so that a
#: plaintext tractor peer learns why it was dropped (see tls_hint)
_ALERT_NOT_TLS = b'\x15\x03\x03\x00\x02\x02\x46'


def tls_hint(head: bytes) -> str | None:
    """Why a frame header that claims more than ``max_frame`` is really
    TLS: what a plaintext stream says when a TLS peer talks to it."""
    if len(head) >= 3 and head[0] in _TLS_RECORD and head[1] == 3:
        return ('the peer speaks TLS and this side does not: start every '
                'program of the cluster with tls=True (or $TRACTOR_TLS=1), '
                'or none of them')
    return None


def _why(err: ssl.SSLError) -> str:
    """A TLS failure in words a user can act on."""
    reason = (getattr(err, 'reason', None) or '').upper()
    verify = getattr(err, 'verify_message', None)
    if isinstance(err, ssl.SSLCertVerificationError) or verify:
        return (f'its certificate was refused: {verify or err}. Every peer '
                f'needs a certificate issued by this cluster\'s CA, still '
                f'valid, for TLS client and server use (copy the tls '
                f'directory from the host that created it, or pass '
                f'tls=TLSConfig(ca=, cert=, key=))')
    if 'ALERT_' in reason:
        what = reason.split('ALERT_', 1)[1].replace('_', ' ').lower()
        return (f'it refused our certificate ({what}): it trusts another CA, '
                f'or ours is expired or not for TLS client/server use')
    if reason in ('WRONG_VERSION_NUMBER', 'HTTP_REQUEST', 'UNKNOWN_PROTOCOL',
                  'RECORD_LAYER_FAILURE', 'PACKET_LENGTH_TOO_LONG',
                  'UNEXPECTED_RECORD', 'BAD_RECORD_TYPE'):
        return 'it does not speak TLS'
    return f'TLS failed: {err}'


class TLSFrameStream(SocketFrameStream):
    """A :class:`SocketFrameStream` whose bytes are TLS records."""

    def __init__(self, sock, local_addr, peer_addr, max_frame, *,
                 context: ssl.SSLContext, server_side: bool) -> None:
        super().__init__(sock, local_addr, peer_addr, max_frame)
        self._bio_in = ssl.MemoryBIO()
        self._bio_out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._bio_in, self._bio_out,
                                     server_side=server_side)
        self._server_side = server_side
        self._shaken = False
        self._shaking = trio.Lock()
        # the last raw write found the socket full: wait (cancellably)
        # before encrypting the next frame
        self._wfull = False

    def __repr__(self) -> str:
        return f'<TLSFrameStream {self.local_addr} -> {self.peer_addr}>'

    # -- handshake -----------------------------------------------------
    async def handshake(self) -> None:
        """Run the TLS handshake (once; later calls return at once).
        Raises :class:`HandshakeError` saying why the peer was refused,
        and closes the stream."""
        if self._shaken:
            return
        async with self._shaking:
            if self._shaken:
                return
            if self._closed:
                raise self._error or TransportClosed(f'{self} is closed')
            try:
                await self._handshake()
            except ssl.SSLError as err:
                exc = self._refused(_why(err))
                self._push_out()  # the alert, so the peer knows why
                self._close_now(exc)
                raise exc from None
            except HandshakeError as exc:
                self._push_out()
                self._close_now(exc)
                raise
            self._shaken = True

    def _refused(self, why: str) -> HandshakeError:
        side = 'accepted from' if self._server_side else 'dialed at'
        return HandshakeError(
            f'TLS handshake with the peer {side} {self.peer_addr} failed: '
            f'{why}')

    async def _handshake(self) -> None:
        tls = self._tls
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            out = self._bio_out.read()
            if out:
                await self._write_raw(out)
            if done:
                return
            raw = await self._read_raw()
            if not raw:
                raise self._refused(
                    'it closed the connection (it speaks plaintext, or it '
                    'refused our certificate)')
            if raw[4:4 + len(_PLAIN_HELLO)] == _PLAIN_HELLO:
                raise self._refused(
                    'it speaks plaintext tractor frames, not TLS: start '
                    'every program of the cluster with tls=True (or '
                    '$TRACTOR_TLS=1), or none of them')
            self._bio_in.write(raw)

    def _push_out(self) -> None:
        """Best effort, never waiting: send the alert TLS queued, else one
        saying we speak TLS (for a plaintext peer)."""
        out = self._bio_out.read() or _ALERT_NOT_TLS
        if not self._closed:
            try:
                self._sock.send(out)
            except OSError:
                pass

    # -- raw bytes -----------------------------------------------------
    async def _write_raw(self, data) -> None:
        """Put encrypted bytes on the socket, all of them (shielded)."""
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as err:
            exc = _closed_error(err, 'send failed, peer gone')
            self._close_now(exc)
            raise exc from None
        if sent == len(data):
            self._wfull = False
            return
        self._wfull = True
        await SocketFrameStream._write(self, memoryview(data)[sent:], True)

    async def _read_raw(self) -> bytes:
        sock = self._sock
        while True:
            try:
                return sock.recv(_READ_SIZE)
            except BlockingIOError:
                pass
            except OSError as err:
                exc = _closed_error(err, f'connection to {self.peer_addr} '
                                         f'lost')
                self._close_now(exc)
                raise exc from None
            await self._wait_readable()

    # -- the plain stream's I/O, over TLS ------------------------------
    async def _write(self, data, started: bool = False) -> None:
        if not self._shaken:
            await self.handshake()
        if self._wfull and not started:
            # nothing is encrypted yet, so this wait may be cancelled
            try:
                await wait_writable(self._sock)
            except (trio.ClosedResourceError, OSError) as err:
                raise self._error or _closed_error(
                    err, 'stream closed during send') from None
        try:
            self._tls.write(data)
        except ssl.SSLError as err:
            raise self._send_failed(err) from None
        await self._write_raw(self._bio_out.read())

    async def _send_small(self, buf) -> None:
        if (self._writing or self._closed or not self._shaken or self._wfull
                or self._wcount >= _YIELD_EVERY - 1):
            await self._send_chunks((buf,), 1)
            return
        # fast path, as the plain stream's: nobody is writing, so encrypt
        # and write right here
        await checkpoint_if_cancelled()
        try:
            self._tls.write(buf)
        except ssl.SSLError as err:
            raise self._send_failed(err) from None
        self._writing = True
        try:
            await self._write_raw(self._bio_out.read())
            await self._flush_queue()
        finally:
            self._writer_left()
        self._wcount += 1

    def _send_failed(self, err: ssl.SSLError) -> TransportClosed:
        exc = TransportClosed(f'TLS send to {self.peer_addr} failed: {err}')
        self._close_now(exc)
        return exc

    async def _fill(self) -> None:
        if not self._shaken:
            await self.handshake()
        tls, bio = self._tls, self._bio_in
        while True:
            got = 0
            try:
                if self._big is not None:
                    big = memoryview(self._big)
                    while ((bio.pending or tls.pending())
                           and self._big_fill < len(big)):
                        n = tls.read(len(big) - self._big_fill,
                                     big[self._big_fill:])
                        if not n:
                            break
                        # (read into a buffer: a count, not bytes)
                        self._big_fill += n  # type: ignore[operator]
                        got += n  # type: ignore[operator]
                else:
                    rbuf = self._rbuf
                    while bio.pending or tls.pending():
                        chunk = tls.read(_READ_SIZE)
                        if not chunk:
                            break
                        rbuf += chunk
                        got += len(chunk)
            except ssl.SSLWantReadError:
                pass  # the rest of a record is still on its way
            except ssl.SSLZeroReturnError:
                if got:
                    return
                self._eof()
            except ssl.SSLError as err:
                if got:
                    return  # the error comes again on the next call
                exc = (self._refused(_why(err))
                       if 'ALERT_' in (err.reason or '') else
                       TransportClosed(f'TLS error from {self.peer_addr}: '
                                       f'{err}'))
                self._close_now(exc)
                raise exc from None
            if got:
                return
            if self._small_read:
                # the last read was one small message (request/reply): the
                # socket is most likely empty, so wait before trying
                self._small_read = False
                await self._wait_readable()
            raw = await self._read_raw()
            if not raw:
                self._eof()
            self._small_read = len(raw) < _SMALL_READ
            bio.write(raw)

    async def _wait_readable(self) -> None:
        try:
            await wait_readable(self._sock)
        except (trio.ClosedResourceError, OSError) as err:
            raise self._error or _closed_error(
                err, 'stream closed during recv') from None


class TLSListener(SocketListener):
    """A :class:`SocketListener` whose ``accept()`` returns only peers that
    completed the TLS handshake (see the module docstring)."""

    def __init__(self, sock, addr, transport) -> None:
        super().__init__(sock, addr, transport)
        # the bound on the whole tractor handshake bounds its TLS part
        from .._channel import HANDSHAKE_TIMEOUT
        self.handshake_timeout = HANDSHAKE_TIMEOUT
        self._pending: dict[TLSFrameStream, float] = {}
        self._ready: deque = deque()
        self._scope: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f'<TLSListener {self.addr}>'

    async def accept(self) -> TLSFrameStream:
        while not self._ready:
            if self._closed:
                raise TransportClosed(f'{self} is closed')
            async with trio.open_nursery() as n:
                self._scope = n.cancel_scope
                if len(self._pending) < MAX_PENDING:
                    n.start_soon(self._take, n)
                for stream, deadline in list(self._pending.items()):
                    n.start_soon(self._shake, stream, deadline)
            self._scope = None
        return self._ready.popleft()

    async def _take(self, nursery) -> None:
        """Take new peers and start their handshakes."""
        while len(self._pending) < MAX_PENDING:
            try:
                stream = cast(TLSFrameStream,
                              await SocketListener.accept(self))
            except TransportClosed:
                nursery.cancel_scope.cancel()  # accept() raises it
                return
            deadline = trio.current_time() + self.handshake_timeout
            self._pending[stream] = deadline
            nursery.start_soon(self._shake, stream, deadline)

    async def _shake(self, stream: TLSFrameStream, deadline: float) -> None:
        with trio.move_on_at(deadline) as too_slow:
            try:
                await stream.handshake()
            except HandshakeError as err:
                log.warning('refused connection from %s: %s',
                            stream.peer_addr, err)
            except TransportClosed as err:
                log.info('connection from %s closed during the TLS '
                         'handshake: %s', stream.peer_addr, err)
            else:
                del self._pending[stream]
                self._ready.append(stream)
                if self._scope is not None:
                    self._scope.cancel()
                return
            del self._pending[stream]
            return
        if too_slow.cancelled_caught:
            del self._pending[stream]
            log.warning('refused connection from %s: no TLS handshake within '
                        '%s s', stream.peer_addr, self.handshake_timeout)
            stream._close_now(HandshakeError('TLS handshake timed out'))

    async def aclose(self) -> None:
        for stream in list(self._pending) + list(self._ready):
            stream._close_now()
        self._pending.clear()
        self._ready.clear()
        await super().aclose()
