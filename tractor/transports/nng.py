"""``'nng'``: frames as nng scalability-protocol messages, ``tcp://`` or
``ipc://``.

Every frame is one nng message on a *pair0* socket, so on the wire this is
plain SP: any nng/nanomsg peer sees the usual ``\\x00SP\\x00`` header. A pair
socket talks to exactly one peer, so a listener cannot be one pair socket.
Instead it is a *rendezvous*:

1. ``listen(addr)`` opens a *rep0* socket on ``addr``.
2. ``connect(addr)`` dials it with a *req0* socket and asks for a line.
3. ``accept()`` answers each request by opening a fresh pair0 socket on an
   ephemeral port (tcp) or a fresh socket file (ipc) and replying with
   where it is; the dialer hangs up the req0 socket and dials that pair
   socket. ``accept()`` hands out the stream once the pair's one peer is
   attached (a peer that never shows up is dropped after
   ``handshake_timeout``). Pair0 refuses any second peer at the protocol
   level, so each stream carries exactly its own two peers' frames.

Data moves with non-blocking ``nng_send``/``nng_recvmsg`` calls, and a task
that has to wait sleeps on the socket's poll descriptors (``NNG_OPT_RECVFD``
and ``NNG_OPT_SENDFD``, level-triggered, readable while a message can be
received/sent) with :func:`trio.lowlevel.wait_readable`. So an operation
that can complete at once costs one C call and no thread hop, a wait costs
nothing, and a cancelled ``recv`` has taken nothing off the socket
(cancel-safe by construction). ``send`` blocks while nng's bounded queues
are full: back-pressure, never a drop.

Peer loss: nng redials forever and never fails a pending receive, so each
stream watches its pipe. nng's pipe-removed callback runs on an nng thread
with the socket lock held; it only posts to trio with
``TrioToken.run_sync_soon``. There the stream is marked gone, its dialer or
listener closed (no silent redial, no replacement peer), and waiting tasks
woken: ``send`` raises :class:`TransportClosed` at once, ``recv`` after
returning the frames already received.

nng has no linger: closing a socket discards what is still queued. So
``aclose`` first waits (at most ``linger`` seconds, and only while the peer
is there and keeps taking frames) until nng's per-pipe statistics show
every sent frame written to the OS, so ``send(); aclose()`` delivers like
it does over TCP.
"""
from __future__ import annotations

import errno
import os
import socket
from typing import NoReturn

import pynng
import trio
from pynng import _nng
from trio.lowlevel import (
    checkpoint,
    checkpoint_if_cancelled,
    current_trio_token,
    notify_closing,
    wait_readable,
)

from . import _tls_nng
from ._addr import Addr, AddressError
from ._base import DEFAULT_MAX_FRAME, TransportClosed
from ._kit import (
    RECONNECT_NEVER_MS,
    YIELD_EVERY as _YIELD_EVERY,
    AcceptQueue,
    FifoSender,
    release_ipc_path,
    too_large_to_send,
)

_ffi = _nng.ffi
_lib = _nng.lib
_NULL = _ffi.NULL
_NONBLOCK = _lib.NNG_FLAG_NONBLOCK
_EAGAIN = _lib.NNG_EAGAIN
_nng_send = _lib.nng_send
_nng_recvmsg = _lib.nng_recvmsg
_nng_msg_body = _lib.nng_msg_body
_nng_msg_len = _lib.nng_msg_len
_nng_msg_free = _lib.nng_msg_free
_unpack = _ffi.unpack

# messages nng queues per direction on each side of a stream before send()
# blocks. nng counts messages, not bytes, so a reader that stops holds up to
# about 2 * _BUFFER + 2 frames (plus kernel buffers) in flight: 32 keeps
# that modest for big frames while small frames still stream at ~150k/s
# (16 halves that, 64 gains little)
_BUFFER = 32
# return to the scheduler at least once every this many operations that
# completed without waiting, or every MiB copied (a 16 MiB frame is
# milliseconds of memcpy), so a busy stream cannot starve other tasks
# (_kit.YIELD_EVERY; each MiB of a frame counts as another 32 of them)
# aclose() stops waiting for queued frames to drain once the peer has taken
# none for this long
_LINGER_STALL = 0.2
# the rendezvous exchange is tiny; refuse anything bigger
_CTRL_MAX = 4096
_HELLO = b'tractor-nng/1 pair'
_REPLY_TCP = b'tcp '
_REPLY_IPC = b'ipc '
_REPLY_ERR = b'err '

_NNGError = pynng.NNGException


def _strerror(rv: int) -> str:
    return _ffi.string(_lib.nng_strerror(rv)).decode(errors='replace')


def _pipe_tx_msgs(pipe_id: int):
    """How many messages pipe ``pipe_id`` has written to the OS, from nng's
    statistics; ``None`` if nng does not know the pipe (any more)."""
    pp = _ffi.new('nng_stat **')
    if _lib.nng_stats_get(pp) != 0:
        return None
    root = pp[0]
    try:
        st = _lib.nng_stat_child(root)
        while st != _NULL:
            if (_lib.nng_stat_value(st) == pipe_id
                    and _ffi.string(_lib.nng_stat_name(st)) == b'pipe'):
                tx = _lib.nng_stat_find(st, b'tx_msgs')
                return None if tx == _NULL else _lib.nng_stat_value(tx)
            st = _lib.nng_stat_next(st)
        return None
    finally:
        _lib.nng_stats_free(root)


def _sockaddr_addr(sa, scheme: str, fallback: Addr) -> Addr:
    """An :class:`Addr` from a pynng SockAddr (tcp only)."""
    if scheme != 'tcp' or sa is None:
        return fallback
    try:
        return Addr.parse(f'nng+tcp://{sa}')
    except (AddressError, ValueError):
        return fallback


def _close_sock(sock, *fds) -> None:
    """Wake any task waiting on ``fds`` and close ``sock`` (which closes
    the fds: nng owns them)."""
    for fd in fds:
        if fd is not None:
            try:
                notify_closing(fd)
            except (RuntimeError, OSError, ValueError):
                pass
    try:
        sock.close()
    except Exception:  # pragma: no cover - nng_close does not fail
        pass


async def _send_ctrl(sock, data: bytes) -> None:
    """Send a small control message, waiting without blocking trio."""
    fd = sock.send_fd
    while True:
        try:
            sock.send(data, block=False)
            return
        except pynng.TryAgain:
            await wait_readable(fd)


async def _recv_ctrl(sock) -> bytes:
    fd = sock.recv_fd
    while True:
        try:
            return sock.recv(block=False)
        except pynng.TryAgain:
            await wait_readable(fd)


class NNGFrameStream(FifoSender):
    """A FrameStream over one pair0 socket with exactly one peer pipe."""

    def __init__(
        self,
        sock: pynng.Socket,
        local_addr: Addr,
        peer_addr: Addr,
        max_frame: int = DEFAULT_MAX_FRAME,
        linger: float = 2.0,
    ) -> None:
        self._sock = sock
        self._h = sock.socket  # the nng_socket handle, for direct C calls
        self.local_addr = local_addr
        self.peer_addr = peer_addr
        self.max_frame = max_frame
        self.linger = linger
        self._token = current_trio_token()
        self._rfd = sock.recv_fd
        self._sfd = sock.send_fd
        self._msgp = _ffi.new('nng_msg **')
        self._endpoint = None  # the pynng Dialer or Listener
        self._pipe_id = None  # our one peer's pipe
        self._peer_gone = False
        self._closed = False
        self._error: TransportClosed | None = None
        self._on_connect = None  # listener hook while not yet accepted
        self._send_lock = trio.Lock()
        self._nsent = 0
        self._rcount = 0
        self._wcount = 0
        # must be in place before the socket dials or listens
        sock.add_post_pipe_connect_cb(self._nng_pipe_added)
        sock.add_post_pipe_remove_cb(self._nng_pipe_removed)

    def __repr__(self) -> str:
        return f'<NNGFrameStream {self.local_addr} -> {self.peer_addr}>'

    # -- pipe events ---------------------------------------------------
    # These two run on an nng thread with the socket lock held: they must
    # not touch the socket, only hand the event over to trio.
    def _nng_pipe_added(self, pipe) -> None:
        pid = pipe.id
        if self._pipe_id is None:
            # pair0 attaches one pipe at a time and we never take a second
            self._pipe_id = pid
        self._post(self._pipe_added, pid)

    def _nng_pipe_removed(self, pipe) -> None:
        self._post(self._pipe_removed, pipe.id)

    def _post(self, fn, *args) -> None:
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            pass

    # and these run in trio
    def _pipe_added(self, pid: int) -> None:
        if pid != self._pipe_id or self._closed:
            return
        hook, self._on_connect = self._on_connect, None
        if hook is not None:
            hook(self, pid)

    def _pipe_removed(self, pid: int) -> None:
        if pid != self._pipe_id or self._closed or self._peer_gone:
            return
        self._peer_gone = True
        self._error = TransportClosed(
            f'peer {self.peer_addr} went away (closed, crashed, or dropped '
            f'the connection, e.g. over a frame above its max_frame)')
        # no silent redial by a dialer, no replacement peer on a listener
        ep, self._endpoint = self._endpoint, None
        if ep is not None:
            try:
                ep.close()
            except (_NNGError, KeyError):
                pass
        # wake waiting tasks; recv still drains what already arrived
        for fd in (self._rfd, self._sfd):
            try:
                notify_closing(fd)
            except (RuntimeError, OSError, ValueError):
                pass

    def _gone(self) -> TransportClosed:
        return self._error or TransportClosed(f'{self} is closed')

    # -- sending -------------------------------------------------------
    # send/send_many: see _kit.FifoSender (send now, or queue behind a
    # FIFO lock); these are its three steps.
    def _check_frames(self, frames) -> None:
        if self._closed or self._peer_gone:
            raise self._gone()
        mf = self.max_frame
        for data in frames:
            if len(data) > mf:
                raise too_large_to_send(len(data), mf)

    def _send_ready(self, frames) -> int:
        """Send frames from the first on while nng queues them at
        once; returns how many went out."""
        h = self._h
        cost = 0
        rv = 0
        i = 0
        for data in frames:
            if type(data) is not bytes:  # cffi takes no bytearray
                data = bytes(data)
            n = len(data)
            rv = _nng_send(h, data, n, _NONBLOCK)
            if rv:
                break
            i += 1
            cost += 1 + (n >> 15)
        self._nsent += i
        self._wcount += cost
        if rv and rv != _EAGAIN:
            raise self._failed(rv, 'send')
        return i

    async def _send_waiting(self, frames, i: int) -> None:
        """Send ``frames[i:]`` in order, waiting for room (the caller holds
        ``_send_lock``). Once a frame of the batch is out, the rest is
        sent regardless of cancellation (peer loss or close still end
        the wait)."""
        h, sfd = self._h, self._sfd
        nf = len(frames)
        while i < nf:
            if self._closed or self._peer_gone:
                raise self._gone()
            data = frames[i]
            if type(data) is not bytes:  # cffi takes no bytearray
                data = bytes(data)
            rv = _nng_send(h, data, len(data), _NONBLOCK)
            if rv == 0:
                self._nsent += 1
                i += 1
                continue
            if rv != _EAGAIN:
                raise self._failed(rv, 'send')
            try:
                if i:
                    with trio.CancelScope(shield=True):
                        await wait_readable(sfd)
                else:
                    await wait_readable(sfd)
            except (trio.ClosedResourceError, OSError):
                pass  # woken by close or peer loss: re-check

    # -- receiving -----------------------------------------------------
    async def recv(self) -> bytes:
        if self._rcount >= _YIELD_EVERY:
            # yield *before* taking a frame: once taken, a frame must be
            # returned, so no checkpoint may follow it
            self._rcount = 0
            await checkpoint()
        else:
            await checkpoint_if_cancelled()
        msgp = self._msgp
        while True:
            if self._closed:
                raise self._gone()
            rv = _nng_recvmsg(self._h, msgp, _NONBLOCK)
            if rv == 0:
                msg = msgp[0]
                n = _nng_msg_len(msg)
                data = _unpack(_ffi.cast('char *', _nng_msg_body(msg)), n) \
                    if n else b''
                _nng_msg_free(msg)
                self._rcount += 1 + (n >> 15)  # +32 per MiB
                return data
            if rv != _EAGAIN:
                raise self._failed(rv, 'recv')
            if self._peer_gone:
                # everything the peer sent has been handed out
                err = self._gone()
                self._close_now(err)
                raise err
            try:
                await wait_readable(self._rfd)
            except (trio.ClosedResourceError, OSError):
                pass  # woken by close or peer loss: re-check

    # -- closing -------------------------------------------------------
    def _failed(self, rv: int, what: str) -> TransportClosed:
        if self._closed or self._peer_gone:
            return self._gone()
        err = TransportClosed(f'{what} failed: {_strerror(rv)}')
        self._close_now(err)
        return err

    def _close_now(self, err: TransportClosed | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._error is None:
            self._error = err or TransportClosed(f'{self} was closed locally')
        self._on_connect = None
        self._endpoint = None
        _close_sock(self._sock, self._rfd, self._sfd)

    async def _linger(self) -> None:
        """Wait until nng has written every sent frame to the OS (nng drops
        whatever is still queued when its socket closes). Gives up after
        ``linger`` seconds, or as soon as the peer stops taking frames for
        ``_LINGER_STALL`` (a hung or stopped peer must not hold a close
        up: that close is often how it is being declared dead)."""
        now = trio.current_time()
        deadline = now + self.linger
        stall_deadline = now + _LINGER_STALL
        last_tx = -1
        delay = 0.0005
        while not (self._peer_gone or self._closed):
            pid = self._pipe_id
            if pid is not None:
                tx = _pipe_tx_msgs(pid)
                if tx is None or tx >= self._nsent:
                    return
                if tx != last_tx:
                    last_tx = tx
                    stall_deadline = trio.current_time() + _LINGER_STALL
            now = trio.current_time()
            if now >= deadline or now >= stall_deadline:
                return
            await trio.sleep(delay)
            delay = min(delay * 2, 0.01)

    def abort(self) -> None:
        """Close now, without waiting for queued frames to reach the OS
        (nng discards them)."""
        self._close_now(TransportClosed(f'{self} was aborted'))

    async def aclose(self) -> None:
        if self._closed:
            await checkpoint()
            return
        try:
            if self._nsent and not self._peer_gone and self.linger > 0:
                await self._linger()
        finally:
            self._close_now()
        await checkpoint()


class NNGListener:
    """The rendezvous rep0 socket; see the module docstring."""

    def __init__(self, transport: 'NNGTransport', sock, endpoint,
                 addr: Addr) -> None:
        self._transport = transport
        self._sock = sock
        self._endpoint = endpoint
        self._rfd = sock.recv_fd
        self.addr = addr
        self._closed = False
        self._queue: AcceptQueue[NNGFrameStream] = AcceptQueue(
            transport.handshake_timeout)
        self._wake: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f'<NNGListener {self.addr}>'

    async def accept(self) -> NNGFrameStream:
        await checkpoint()
        while True:
            if self._closed:
                raise TransportClosed(f'{self} is closed')
            stream = self._queue.get()
            if stream is not None:
                return stream
            for stream in self._queue.expire():
                # the peer asked for a stream but never attached to it
                stream.abort()
            try:
                req = self._sock.recv(block=False)
            except pynng.TryAgain:
                pass
            except _NNGError as err:
                raise TransportClosed(f'{self} failed: {err}') from None
            else:
                await self._serve(req)
                continue
            # wait for a request, a pending peer to attach, or an expiry
            with trio.CancelScope(deadline=self._queue.deadline) as cs:
                self._wake = cs
                try:
                    await wait_readable(self._rfd)
                except (trio.ClosedResourceError, OSError):
                    pass
                finally:
                    self._wake = None

    async def _serve(self, req: bytes) -> None:
        stream = None
        if req != _HELLO:
            reply = _REPLY_ERR + b'unknown request'
        else:
            try:
                stream, reply = self._transport._open_pair(self.addr)
            except (_NNGError, OSError) as err:
                reply = _REPLY_ERR + str(err).encode()
        try:
            self._sock.send(reply, block=False)
        except _NNGError:
            # the requester is gone or stuck; it will time out
            if stream is not None:
                stream.abort()
            return
        if stream is not None:
            # set before any pipe event can reach trio: those are only
            # delivered via run_sync_soon, after this task yields
            stream._on_connect = self._attached
            self._queue.add(stream)

    def _attached(self, stream: NNGFrameStream, pid: int) -> None:
        if not self._queue.attached(stream):
            return
        try:
            pipe = stream._sock._pipes.get(pid)
            if pipe is not None and stream.local_addr.scheme == 'tcp':
                stream.peer_addr = _sockaddr_addr(
                    pipe.remote_address, 'tcp', stream.peer_addr)
        except _NNGError:
            pass
        if self._wake is not None:
            self._wake.cancel()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            _close_sock(self._sock, self._rfd)
            for stream in self._queue.clear():
                stream.abort()
            if self.addr.scheme == 'ipc':
                release_ipc_path(self.addr.path)
        await checkpoint()


class NNGTransport:
    """Frames as nng pair0 messages; ``nng+tcp://host:port`` or
    ``nng+ipc:///path``. See the module docstring for the design."""

    name = 'nng'
    schemes = ('tcp', 'ipc')
    #: key material (:class:`tractor._tls.Keys`) when ``tcp://`` streams
    #: speak TLS (see :mod:`._tls_nng`); set for the whole process, like
    #: ``max_frame``, by the tree's ``tls=`` option
    tls = None

    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        buffer: int = _BUFFER,
        linger: float = 2.0,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.max_frame = max_frame
        self.buffer = buffer
        self.linger = linger
        self.handshake_timeout = handshake_timeout

    def _parse(self, addr) -> Addr:
        addr = Addr.parse(addr, self.name)
        if addr.scheme not in self.schemes:
            raise AddressError(
                f'nng speaks {", ".join(self.schemes)}, not {addr.scheme!r}')
        if addr.scheme == 'ipc' and not os.path.isabs(addr.path):
            addr = Addr(addr.transport, 'ipc', path=os.path.abspath(addr.path))
        return addr

    def _secured(self, scheme: str, server: bool) -> dict:
        """Socket options for TLS on ``scheme`` (none: ipc, or no TLS)."""
        if self.tls is None or scheme != 'tcp':
            return {}
        return {'tls_config': _tls_nng.config(self.tls, server)}

    def _url(self, addr: Addr) -> str:
        if self.tls is None or addr.scheme != 'tcp':
            return addr.url
        return _tls_nng.url(addr.url)

    def _pair_socket(self, scheme: str, server: bool) -> pynng.Pair0:
        sock = pynng.Pair0(
            **self._secured(scheme, server),
            recv_buffer_size=self.buffer,
            send_buffer_size=self.buffer,
            recv_max_size=self.max_frame,
            reconnect_time_min=RECONNECT_NEVER_MS,
            reconnect_time_max=RECONNECT_NEVER_MS,
        )
        if scheme == 'tcp':
            try:
                sock.tcp_keepalive = True
            except _NNGError:
                pass
        return sock

    def _open_pair(self, laddr: Addr):
        """A fresh pair socket listening for the one peer that asked
        (runs in the listener's accept); returns it and the reply."""
        sock = self._pair_socket(laddr.scheme, True)
        stream = None
        try:
            if laddr.scheme == 'tcp':
                stream = NNGFrameStream(sock, laddr, laddr, self.max_frame,
                                      self.linger)
                ep = sock.listen(self._url(laddr.with_port(0)))
                port = socket.ntohs(ep.local_address.port)
                reply = _REPLY_TCP + str(port).encode()
            else:
                pair = laddr.fresh()
                stream = NNGFrameStream(sock, laddr, laddr, self.max_frame,
                                      self.linger)
                ep = sock.listen(pair.url)
                reply = _REPLY_IPC + pair.path.encode()
        except BaseException:
            if stream is not None:
                stream.abort()
            else:
                sock.close()
            raise
        stream._endpoint = ep
        return stream, reply

    async def listen(self, addr) -> NNGListener:
        addr = self._parse(addr)
        sock = pynng.Rep0(recv_max_size=_CTRL_MAX,
                          **self._secured(addr.scheme, True))
        try:
            try:
                ep = sock.listen(self._url(addr))
            except pynng.AddressInUse:
                raise OSError(errno.EADDRINUSE,
                              f'{addr} is already being listened on') from None
            except _NNGError as err:
                raise OSError(errno.EINVAL,
                              f'cannot listen on {addr}: {err}') from None
            if addr.scheme == 'tcp':
                bound = _sockaddr_addr(ep.local_address, 'tcp', addr)
                bound = Addr(self.name, 'tcp', host=bound.host or addr.host,
                             port=bound.port)
            else:
                bound = addr
            return NNGListener(self, sock, ep, bound)
        except BaseException:
            sock.close()
            raise

    async def _dial(self, sock, url: str, what: Addr):
        secured = self.tls is not None and what.scheme == 'tcp'
        pause = _tls_nng.DIAL_BACKOFF
        tries = 0
        while True:
            try:
                return await trio.to_thread.run_sync(
                    lambda: sock.dial(url, block=True),
                    abandon_on_cancel=True)
            except _NNGError as err:
                tries += 1
                if not secured or tries > _tls_nng.retries(err):
                    self._dial_failed(what, err)
            # nng's TLS layer failed a handshake that overlapped others:
            # try again, backing off (see _tls_nng); the caller's handshake
            # timeout still bounds the whole connect
            await trio.sleep(pause)
            pause *= 2

    def _dial_failed(self, what: Addr, err: Exception) -> NoReturn:
        refused = None
        if what.scheme == 'tcp':
            refused = (_tls_nng.refused if self.tls is not None
                       else _tls_nng.plaintext_refused)(what, err)
        raise refused or TransportClosed(
            f'cannot connect to {what}: {err}') from None

    async def connect(self, addr) -> NNGFrameStream:
        addr = self._parse(addr)
        try:
            with trio.fail_after(self.handshake_timeout):
                return await self._connect(addr)
        except trio.TooSlowError:
            raise TransportClosed(
                f'cannot connect to {addr}: no answer within '
                f'{self.handshake_timeout} s') from None

    async def _connect(self, addr: Addr) -> NNGFrameStream:
        # 1. ask the rendezvous socket for a pair socket of our own
        req = pynng.Req0(recv_max_size=_CTRL_MAX,
                         **self._secured(addr.scheme, False))
        fds = []
        try:
            await self._dial(req, self._url(addr), addr)
            fds = [req.recv_fd, req.send_fd]
            try:
                await _send_ctrl(req, _HELLO)
                reply = await _recv_ctrl(req)
            except _NNGError as err:
                raise TransportClosed(
                    f'rendezvous with {addr} failed: {err}') from None
        finally:
            _close_sock(req, *fds)
        head, rest = reply[:4], reply[4:].decode(errors='replace')
        if head == _REPLY_TCP and rest.isdigit():
            pair_url = self._url(addr.with_port(int(rest)))
            local = addr
        elif head == _REPLY_IPC and rest.startswith('/'):
            pair_url = f'ipc://{rest}'
            local = addr
        elif head == _REPLY_ERR:
            raise TransportClosed(f'{addr} refused a stream: {rest}')
        else:
            raise TransportClosed(f'{addr} is not a tractor nng listener '
                                  f'(it replied {reply[:40]!r})')
        # 2. attach to it
        sock = self._pair_socket(addr.scheme, False)
        stream = NNGFrameStream(sock, local, addr, self.max_frame, self.linger)
        try:
            stream._endpoint = await self._dial(sock, pair_url, addr)
        except BaseException:
            stream.abort()
            raise
        if addr.scheme == 'tcp':
            try:
                pipe = stream._sock._pipes.get(stream._pipe_id)
                if pipe is not None:
                    stream.local_addr = _sockaddr_addr(
                        pipe.local_address, 'tcp', local)
            except _NNGError:
                pass
        return stream
