"""``'zmq'``: frames over ZeroMQ (ZMTP 3 on the wire), driven by trio.

Addresses: ``zmq+tcp://host:port`` and ``zmq+ipc:///path/to.sock``.

Design
------
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

**trio integration without threads or polling.** ``zmq.FD`` is an
edge-triggered "something changed" signal for both directions; ZMQ_EVENTS
must be re-read after every operation. Each socket has one owner of its fd
wait (:class:`_ZSock`): the first task that must block becomes the
*poller* and waits on the fd, other tasks park on a per-direction
ParkingLot. Whoever reads ZMQ_EVENTS (the poller after wake-up, or any
task after a send/recv while others wait) publishes the result and wakes
exactly the waiters it satisfies (cancelling the poller's wait if needed);
a poller that leaves hands the role on. Sends and receives are
``NOBLOCK``, so a cancelled ``recv`` never consumes a message and a
cancelled ``send`` never half-sends one; zmq messages are atomic, so
concurrent senders never interleave.

**Peer death.** No draft APIs: each stream socket has a monitor socket
(inproc PAIR). The stream's data fd and monitor fd are combined in a small
private epoll, whose fd is what the poller waits on, so a pending ``recv``
wakes within milliseconds of DISCONNECTED (a SIGKILLed peer's kernel
resets the connection). Dialers set a huge ``RECONNECT_IVL`` so a lost
connection is *not* silently re-dialled; ``RECONNECT_IVL=-1`` is not used
because libzmq then discards messages that already arrived. Frames that
arrived before the peer went are still delivered, then ``recv`` raises
TransportClosed. TCP keepalive (5 s idle, 3 x 2 s) covers idle
connections to dead hosts, like the ``tcp`` transport; dead hosts with
data in flight and hung-but-alive peers are the Channel heartbeat's job.
TCP_MAXRT is deliberately not set: on Linux libzmq makes it
TCP_USER_TIMEOUT, which also bounds zero-window probing, so it reset a
healthy connection whose reader stalled longer than it (a busy actor)
while more than its HWM was queued toward it -- see the ``tcp``
transport. ZMTP heartbeats are off by default
(``ZMQTransport(heartbeat=(ivl, timeout))`` turns them on): measured,
they kill a connection whose reader merely stops reading for longer than
the timeout while the writer is blocked at the high-water mark, which
would break the no-loss back-pressure guarantee.

**Limits and resources.** ``MAXMSGSIZE = max_frame`` makes a receiver drop
a connection that announces a bigger frame without allocating it (the
reader then gets TransportClosed); ``send`` refuses an oversized frame
with FrameTooLarge before sending. Frames go out as single zmq messages
(no header, no concatenation); a frame in parts (see the transport
contract) goes out as one multipart message ``[b'', b'', part, ...]`` and
comes back as a list, each part received straight into its own ``bytes``;
parts and payloads from 64 KiB up are sent zero-copy when they are
immutable ``bytes``. One lazily created ``zmq.Context`` per
process (recreated after fork); sockets close with a bounded LINGER
(``linger_ms``) so pending frames are flushed on ``aclose`` and nothing
ever hangs. HWM is counted in messages (``hwm``, default 1000 per side).

Only Linux is supported (the per-stream epoll). Errors: only
TransportClosed / FrameTooLarge leave a stream; ``listen`` raises OSError
for an address in use, like the ``tcp`` transport.
"""
from __future__ import annotations

import errno
import math
import os
import select
import socket
import stat
import struct
import uuid
from collections import deque

import trio
from trio.lowlevel import (
    ParkingLot,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
)
import zmq

from . import _tls_zmq
from ._addr import Addr, runtime_dir
from ._base import (
    DEFAULT_MAX_FRAME,
    FrameTooLarge,
    HandshakeError,
    TransportClosed,
    frame_size as _size,
)

_MAGIC = b'TRACTOR-ZMQ/1'
# plain ints: pyzmq's constants are enum members, and every ``ev & mask``
# on them builds a new enum object (measured: ~1 us per send)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
_NOBLOCK = int(zmq.NOBLOCK)
_EVENTS = int(zmq.EVENTS)
_RCVMORE = int(zmq.RCVMORE)
_SNDMORE = int(zmq.SNDMORE)
_ACK = struct.Struct('!Q')
#: what a frame costs in the flow-control window besides its payload, so
#: that a flood of empty frames is bounded too
_FRAME_COST = 64
_Again = zmq.Again
_ZMQError = zmq.ZMQError

#: zero-copy sends pay off from about here (measured)
_ZERO_COPY_FROM = 64 * 1024
#: yield to the scheduler at least once per this many immediate operations
_YIELD_EVERY = 32
_RECONNECT_NEVER_MS = 24 * 3600 * 1000

_EV_CONNECTED = zmq.EVENT_CONNECTED
_EV_ACCEPTED = zmq.EVENT_ACCEPTED
_EV_DISCONNECTED = zmq.EVENT_DISCONNECTED
_EV_CLOSED = zmq.EVENT_CLOSED
_EV_RETRIED = zmq.EVENT_CONNECT_RETRIED
_EV_HS_OK = zmq.EVENT_HANDSHAKE_SUCCEEDED
_EV_HS_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                 | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                 | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MONITORED = (_EV_CONNECTED | _EV_ACCEPTED | _EV_DISCONNECTED | _EV_CLOSED
              | _EV_RETRIED | _EV_HS_OK | _EV_HS_FAILED)
_EV_HDR = struct.Struct('=HI')

# -- the process-wide context ---------------------------------------------
_ctx: zmq.Context | None = None
_ctx_pid = 0


def _context() -> zmq.Context:
    """One shared context per process, created on first use (and again in
    a forked child, which must not touch its parent's)."""
    global _ctx, _ctx_pid
    pid = os.getpid()
    if _ctx is None or _ctx_pid != pid or _ctx.closed:
        ctx = zmq.Context(io_threads=1)
        try:
            # 3 zmq sockets per stream end (data + monitor pair); the
            # default of 1023 would cap a process at ~170 peers
            ctx.set(zmq.MAX_SOCKETS, ctx.get(zmq.SOCKET_LIMIT))
        except _ZMQError:  # pragma: no cover
            pass
        _ctx, _ctx_pid = ctx, pid
    return _ctx


def _closed(err: BaseException | str, what: str = '') -> TransportClosed:
    if isinstance(err, BaseException):
        err = getattr(err, 'strerror', None) or str(err) or type(err).__name__
    return TransportClosed(f'{what}: {err}' if what else str(err))


def _fd_names(fd: int):
    """(sockname, peername) of a connection fd libzmq reported, or None."""
    try:
        s = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        return s.getsockname(), s.getpeername()
    except OSError:
        return None
    finally:
        s.detach()


class _ZSock:
    """One zmq socket (plus, optionally, its monitor) and the bookkeeping
    that lets many trio tasks wait on it through a single fd wait."""

    __slots__ = ('sock', 'mon', 'ep', 'wait_fd', 'events', 'closed', 'gone',
                 'on_event', '_polling', '_in_wait', '_poll_mask', '_lots',
                 '_mon_fd', '_sock_fd', 'mon_seq', 'unchecked', '_get')

    def __init__(self, sock: zmq.Socket, monitor: bool = True) -> None:
        self.sock = sock
        self.mon = None
        self.ep = None
        self.events = 0          # last ZMQ_EVENTS read
        self.closed = False
        self.gone: TransportClosed | None = None  # set by on_event
        self.on_event = None
        self.mon_seq = 0  # monitor events seen so far
        # the monitor may hold unread events (see wait): a fresh inproc
        # pipe does not signal its first messages, so drain it once
        self.unchecked = monitor
        self._get = sock.get
        self._polling = False
        self._in_wait = False  # the poller is blocked on wait_fd
        self._poll_mask = 0
        self._lots: dict[int, ParkingLot] = {}
        self._sock_fd = sock.getsockopt(zmq.FD)
        self._mon_fd = -1
        if monitor:
            # must exist before bind/connect so no event is missed
            self.mon = sock.get_monitor_socket(_MONITORED)
            self.mon.setsockopt(zmq.LINGER, 0)
            self._mon_fd = self.mon.getsockopt(zmq.FD)
            self.ep = select.epoll(2)
            self.ep.register(self._sock_fd, select.EPOLLIN)
            self.ep.register(self._mon_fd, select.EPOLLIN)
            self.wait_fd = self.ep.fileno()
        else:
            self.wait_fd = self._sock_fd

    # -- readiness -----------------------------------------------------
    #
    # What each fd wait costs is what bounds latency, so it is kept to the
    # minimum. zmq's FD (an eventfd) stays readable while the socket has
    # commands it has not processed, and a ``recv`` that fails with EAGAIN
    # has just processed all of them: a receiver may go straight to sleep
    # after one (the private epoll is level-triggered, so a command that
    # arrives later, or a monitor event still unread, wakes it at once).
    # Anything else that may have processed commands (a send, a successful
    # recv) re-reads ZMQ_EVENTS first, and a wake-up only drains the
    # monitor lazily: if the retried operation succeeds, the wake was for
    # data, and an unread monitor event keeps the epoll readable anyway.
    def publish(self, ev: int) -> None:
        """Record fresh ZMQ_EVENTS and wake the waiters it satisfies."""
        self.events = ev
        if ev:
            self.wake(ev)

    def wake(self, ev: int) -> None:
        """Wake every waiter whose mask ``ev`` satisfies (they re-check)."""
        if self._lots:
            for mask, lot in self._lots.items():
                if ev & mask and lot:
                    lot.unpark_all()
        if self._in_wait and ev & self._poll_mask:
            self._interrupt()

    def _interrupt(self) -> None:
        """Wake the poller out of its fd wait (it re-checks). Not a
        CancelScope per wait: entering and leaving one costs ~10 us, about
        a tenth of a round trip; notify_closing only costs something on
        the rare wake-up that needs it."""
        if self._in_wait:
            self._in_wait = False
            try:
                notify_closing(self.wait_fd)
            except Exception:
                pass

    def after_op(self) -> None:
        """Call after every send/recv: it may have consumed the fd's edge
        another waiter needed, so re-read ZMQ_EVENTS for them."""
        if self._polling:
            self.publish(self._get(_EVENTS))
        else:
            # nobody waits; the next waiter re-reads before blocking
            self.events = 0

    def wake_all(self) -> None:
        for lot in self._lots.values():
            lot.unpark_all()
        self._interrupt()

    def drain_monitor(self) -> None:
        mon = self.mon
        if mon is None or self.closed:
            return
        self.unchecked = False
        while True:
            try:
                if not mon.get(_EVENTS) & _POLLIN:
                    return
                frames = mon.recv_multipart(_NOBLOCK)
            except _Again:
                return
            except _ZMQError:
                return
            self.mon_seq += 1
            if self.on_event is not None and len(frames[0]) >= 6:
                ev, val = _EV_HDR.unpack_from(frames[0])
                self.on_event(ev, val)

    def refresh(self) -> None:
        self.drain_monitor()
        if self.closed:
            return
        try:
            ev = self._get(_EVENTS)
        except _ZMQError:
            ev = 0
        self.publish(ev)

    async def wait(self, mask: int, deadline: float = math.inf,
                   fresh: bool = False) -> None:
        """Wait until ZMQ_EVENTS has ``mask``, the socket closes, the peer
        is gone or a monitor event arrived. May return spuriously: the
        caller retries its operation and calls again. ``fresh``: the
        caller's last operation on the socket was a ``recv`` that failed
        with EAGAIN (so every command is processed; see above)."""
        if self.closed or self.gone is not None:
            return
        if self.events & mask:
            return
        if self._polling:
            lot = self._lots.get(mask)
            if lot is None:
                lot = self._lots[mask] = ParkingLot()
            await lot.park()
            return
        self._polling = True
        try:
            if self.unchecked or not fresh or mask != _POLLIN:
                seq = self.mon_seq
                self.refresh()
                if (self.closed or self.gone is not None
                        or self.events & mask or self.mon_seq != seq):
                    await checkpoint()
                    return
            self._poll_mask = mask
            self._in_wait = True
            try:
                if deadline == math.inf:
                    await wait_readable(self.wait_fd)
                else:
                    with trio.move_on_at(deadline):
                        await wait_readable(self.wait_fd)
            except (trio.ClosedResourceError, OSError):
                pass  # closed, or woken by _interrupt: re-check
            finally:
                self._in_wait = False
            if self.closed:
                return
            if mask & _POLLOUT:
                # a retried send does not process commands itself
                self.refresh()
            else:
                # woken by data (the retried recv takes it), by a command
                # or by the monitor: check the latter if the retry fails
                self.unchecked = self.mon is not None
                self.events = 0
        finally:
            self._polling = False
            if not self.closed and self._lots:
                # hand the poller role on to whoever is still waiting
                for lot in self._lots.values():
                    if lot:
                        lot.unpark_all()

    # -- closing -------------------------------------------------------
    def close(self, linger_ms: int) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            notify_closing(self.wait_fd)
        except Exception:
            pass
        self.wake_all()
        if self.mon is not None:
            try:
                self.sock.disable_monitor()
            except Exception:
                pass
            try:
                self.mon.close(linger=0)
            except Exception:
                pass
        try:
            self.sock.close(linger=linger_ms)
        except Exception:
            pass
        if self.ep is not None:
            try:
                self.ep.close()
            except Exception:
                pass


class ZMQFrameStream:
    """A FrameStream over one exclusive PAIR (or, for the rendezvous, DEALER)
    socket."""

    #: frames may be lists of parts (see the transport contract)
    parts = True

    def __init__(
        self,
        zs: _ZSock,
        local_addr: Addr,
        peer_addr: Addr,
        *,
        max_frame: int,
        linger_ms: int,
        dialer: bool,
        window: int = 8 * 1024 * 1024,
    ) -> None:
        self._zs = zs
        self._sock = zs.sock
        zs.on_event = self._on_event
        self.local_addr = local_addr
        self.peer_addr = peer_addr
        self.max_frame = max_frame
        self._linger = linger_ms
        self._dialer = dialer
        #: the per-peer endpoint a listener-side stream was bound to
        self.bound_endpoint = ''
        self._closed = False
        self._error: TransportClosed | None = None
        self.connected = False
        self._peer_fd: int | None = None
        self._candidates: list[int] = []
        self._rcount = 0
        self._wcount = 0
        # flow control (see _pull)
        self._window = window
        self._ack_every = max(1, window // 4)
        self._sent = 0        # bytes (plus per-frame cost) sent
        self._acked = 0       # ... of which the peer's reader has taken
        self._consumed = 0    # bytes (plus cost) our reader has taken
        self._last_ack = 0    # ... as last reported to the peer
        self._ack_due = False
        self._ack_target = 0  # ack once consumed reaches this (if set)
        self._requested = 0   # _sent when we last asked for credit
        self._inbox: deque = deque()  # frames read while seeking credit
        self._tx_lock = trio.Lock()  # senders that must wait queue here

    def __repr__(self) -> str:
        return f'<ZMQFrameStream {self.local_addr} -> {self.peer_addr}>'

    # -- monitor events ------------------------------------------------
    def _on_event(self, ev: int, val: int) -> None:
        gone = None
        if ev == _EV_ACCEPTED:
            self._candidates.append(val)
        elif ev == _EV_CONNECTED:
            self._peer_fd = val
        elif ev == _EV_HS_OK:
            if not self.connected:
                self.connected = True
                if self._peer_fd is None and self._candidates:
                    self._peer_fd = self._candidates[-1]
                self._candidates.clear()
                self._learn_addrs()
        elif ev == _EV_DISCONNECTED:
            if self.connected:
                if self._peer_fd is None or val == self._peer_fd:
                    gone = f'connection to {self.peer_addr} lost'
            elif self._dialer:
                gone = f'connection to {self.peer_addr} failed'
            elif val in self._candidates:
                self._candidates.remove(val)
        elif ev & (_EV_CLOSED | _EV_RETRIED | _EV_HS_FAILED):
            # only a dialer's own single connection produces these
            if self._dialer:
                gone = (f'connection to {self.peer_addr} lost'
                        if self.connected else
                        f'cannot connect to {self.peer_addr}')
        if gone is not None and self._zs.gone is None:
            refused = None if self.connected else _tls_zmq.refused(
                ev, val, self.peer_addr, self._curve,
                self._peer_fd is not None and self.peer_addr.scheme == 'tcp')
            self._zs.gone = refused or TransportClosed(gone)
            self._zs.wake_all()

    def _learn_addrs(self) -> None:
        if self.local_addr.scheme != 'tcp' or self._peer_fd is None:
            return
        names = _fd_names(self._peer_fd)
        if not names:
            return
        (lh, lp, *_), (ph, pp, *_) = names
        t = self.local_addr.transport
        if self._dialer:
            self.local_addr = Addr(t, 'tcp', host=lh, port=lp)
        else:
            self.peer_addr = Addr(t, 'tcp', host=ph, port=pp)

    # -- flow control --------------------------------------------------
    # zmq's high-water mark counts messages, not bytes, so on its own it
    # lets ``hwm x max_frame`` bytes pile up. On top of it runs a byte
    # credit: a sender may have at most ``window`` bytes (frame lengths
    # plus _FRAME_COST each) not yet handed to the peer's application;
    # the reader reports its running total in a two-part control message
    # ``[b'', b'A' + u64]``. A whole data frame is one part and a frame in
    # parts starts with two empty ones, so only an empty first part needs
    # the RCVMORE check.
    def _pull(self):
        """One message off the socket: a data frame (a list for a frame in
        parts), or None for a control message (handled here). Raises
        zmq.Again when there is none."""
        sock = self._sock
        data = sock.recv(_NOBLOCK)
        if data or not sock.getsockopt(_RCVMORE):
            return data
        # a multipart message is delivered whole: no Again from here on
        ctrl = sock.recv(_NOBLOCK)
        more = sock.getsockopt(_RCVMORE)
        if not ctrl and more:
            parts = []
            while more:
                parts.append(sock.recv(_NOBLOCK))
                more = sock.getsockopt(_RCVMORE)
            return parts
        while more:
            sock.recv(_NOBLOCK)
            more = sock.getsockopt(_RCVMORE)
        if len(ctrl) == 9:
            (value,) = _ACK.unpack_from(ctrl, 1)
            kind = ctrl[:1]
            if kind == b'A':
                if value > self._acked:
                    self._acked = value
                    # senders waiting for credit wait for POLLIN
                    self._zs.wake(_POLLIN)
            elif kind == b'R':
                # the peer's sender is blocked; it needs everything up to
                # ``value`` acknowledged once our reader has taken it
                if value <= self._consumed:
                    self._ack_due = True
                else:
                    self._ack_target = max(self._ack_target, value)
        return None

    def _send_ack(self) -> None:
        try:
            self._sock.send_multipart(
                [b'', b'A' + _ACK.pack(self._consumed)], _NOBLOCK)
        except _Again:
            return  # retried on the next send/recv, or while recv waits
        self._last_ack = self._consumed
        self._ack_due = False
        if self._ack_target and self._consumed >= self._ack_target:
            self._ack_target = 0

    def _request_credit(self) -> bool:
        """Ask the peer to acknowledge everything we sent so far once it
        is read (a quarter-window ack may never come for a small backlog
        in front of a big frame). False if the socket is full."""
        if self._requested == self._sent:
            return True
        try:
            self._sock.send_multipart(
                [b'', b'R' + _ACK.pack(self._sent)], _NOBLOCK)
        except _Again:
            return False
        self._requested = self._sent
        return True

    # -- sending -------------------------------------------------------
    # A frame that can go out at once goes out without a single await in
    # between (no coroutine stacked per frame, one ZMQ_EVENTS re-read per
    # call, not per frame). Senders that must wait queue on ``_tx_lock``
    # (FIFO), and nobody takes the fast path while anyone is queued, so
    # the frames of one ``send_many`` are never overtaken.
    def _send_now(self, data) -> int:
        """Try to send one frame without waiting: 0 if it went out,
        1 if we are out of credit, 2 if the socket is full."""
        if self._closed:
            raise self._error
        zs = self._zs
        if zs.gone is not None:
            self._close_now(zs.gone)
            raise self._error
        if self._ack_due:
            self._send_ack()
        if type(data) is list:
            return self._send_parts_now(data)
        n = len(data)
        cost = n + _FRAME_COST
        out = self._sent - self._acked
        if out and out + cost > self._window:
            return 1
        try:
            self._sock.send(data, _NOBLOCK,
                            copy=n < _ZERO_COPY_FROM or type(data) is not bytes)
        except _Again:
            return 2
        except _ZMQError as err:
            raise self._failed(err, 'send failed') from None
        self._sent += cost
        return 0

    def _send_parts_now(self, parts: list) -> int:
        """_send_now for a frame in parts: ``[b'', b'', part, ...]``."""
        cost = _size(parts) + _FRAME_COST
        out = self._sent - self._acked
        if out and out + cost > self._window:
            return 1
        send = self._sock.send
        try:
            send(b'', _NOBLOCK | _SNDMORE)
        except _Again:
            return 2
        except _ZMQError as err:
            raise self._failed(err, 'send failed') from None
        # the high-water mark counts whole messages: once the first part
        # is taken, the rest of the message is too
        try:
            send(b'', _NOBLOCK | _SNDMORE)
            last = len(parts) - 1
            for i, part in enumerate(parts):
                send(part, _NOBLOCK | _SNDMORE if i < last else _NOBLOCK,
                     copy=len(part) < _ZERO_COPY_FROM
                     or type(part) is not bytes)
        except _ZMQError as err:
            # a half-sent multipart message cannot be taken back
            raise self._failed(
                err, 'send failed half way through a frame') from None
        self._sent += cost
        return 0

    def _check_sizes(self, frames) -> None:
        mf = self.max_frame
        for data in frames:
            n = _size(data)
            if n > mf:
                if self._closed:
                    raise self._error
                raise FrameTooLarge(
                    f'frame of {n} bytes exceeds max_frame={mf}; '
                    f'nothing was sent')

    async def _wait(self, mask: int, shield: bool) -> None:
        if shield:
            # part of a batch is out: the rest must follow, not be lost
            # to a cancel (a dead peer or a close still wakes us)
            with trio.CancelScope(shield=True):
                await self._zs.wait(mask)
        else:
            await self._zs.wait(mask)

    async def _send_waiting(self, frames, i: int) -> None:
        """Send ``frames[i:]`` in order, waiting for room and credit as
        needed (the caller holds ``_tx_lock``)."""
        zs = self._zs
        started = i > 0
        nf = len(frames)
        while i < nf:
            data = frames[i]
            why = self._send_now(data)
            if not why:
                i += 1
                started = True
                continue
            zs.after_op()
            if why == 2:
                await self._wait(_POLLOUT, started)
                continue
            # out of credit: read what the peer sent (keeping data for
            # recv) until an ack arrives
            cost = _size(data) + _FRAME_COST
            try:
                out = self._sent - self._acked
                while out and out + cost > self._window:
                    frame = self._pull()
                    if frame is not None:
                        self._inbox.append(frame)
                        zs.wake(_POLLIN)
                    out = self._sent - self._acked
            except _Again:
                asked = self._request_credit()
                zs.after_op()
                if self._ack_due:
                    self._send_ack()
                await self._wait(_POLLIN if asked and not self._ack_due
                                 else _POLLIN | _POLLOUT, started)
                continue
            except _ZMQError as err:
                raise self._failed(err, 'send failed') from None
            zs.after_op()
        zs.after_op()

    async def send(self, data) -> None:
        await self.send_many((data,))

    async def send_many(self, frames) -> None:
        """Send several frames in order: as many as fit go out at once,
        with one readiness re-check for the lot. Cancellable until the
        first frame is out; after that the rest is sent regardless."""
        await checkpoint_if_cancelled()
        self._check_sizes(frames)
        nf = len(frames)
        lock = self._tx_lock
        i = 0
        if not lock.locked():
            send_now = self._send_now
            while i < nf and not send_now(frames[i]):
                i += 1
            if i == nf:
                self._zs.after_op()
                self._wcount += nf
                if self._wcount >= _YIELD_EVERY:
                    self._wcount = 0
                    await cancel_shielded_checkpoint()
                return
            lock.acquire_nowait()
        else:
            await lock.acquire()
        try:
            await self._send_waiting(frames, i)
        finally:
            lock.release()
        self._wcount = 0

    # -- receiving -----------------------------------------------------
    async def recv(self) -> bytes:
        await checkpoint_if_cancelled()
        zs = self._zs
        inbox = self._inbox
        while True:
            if self._closed:
                raise self._error
            if inbox:
                data = inbox.popleft()
            else:
                try:
                    data = self._pull()
                except _Again:
                    zs.after_op()
                    if zs.gone is not None:
                        # everything that arrived before the loss is read
                        self._close_now(zs.gone)
                        raise self._error
                    if self._ack_due:
                        self._send_ack()
                        await zs.wait(_POLLIN | _POLLOUT if self._ack_due
                                      else _POLLIN)
                    else:
                        await zs.wait(_POLLIN, fresh=True)
                    continue
                except _ZMQError as err:
                    raise self._failed(err, 'recv failed') from None
                zs.after_op()
                zs.unchecked = False
                if data is None:
                    continue
            n = self._took(data)
            # yield every _YIELD_EVERY frames, and after every large one:
            # whoever consumes it runs (and frees it) before the next is
            # read, instead of a reader racing ahead through fresh pages
            self._rcount += 1 if n < _ZERO_COPY_FROM else _YIELD_EVERY
            if self._rcount >= _YIELD_EVERY:
                self._rcount = 0
                # never lose the frame to a cancel here
                await cancel_shielded_checkpoint()
            return data

    def _took(self, data) -> int:
        """Account for a frame handed to the reader (flow control, acks);
        returns its size."""
        if type(data) is list:
            n = _size(data)
            if n > self.max_frame:
                # libzmq bounds each part (MAXMSGSIZE), we the sum
                exc = FrameTooLarge(
                    f'{self.peer_addr} sent a frame of {n} bytes in '
                    f'{len(data)} parts, over max_frame={self.max_frame}')
                self._close_now(exc)
                raise exc
        else:
            n = len(data)
        self._consumed += n + _FRAME_COST
        if self._ack_due or (self._consumed - self._last_ack
                             >= self._ack_every) or (
                self._ack_target and self._consumed >= self._ack_target):
            self._ack_due = True
            if not self._closed:
                self._send_ack()
                self._zs.after_op()
        return n

    async def recv_many(self, limit: int = 64) -> list:
        """The next frame and those right behind it that have already
        arrived (up to ``limit``): one wake-up and one readiness check for
        a burst. Blocks only for the first; cancel-safe like ``recv``."""
        frames = [await self.recv()]
        if _size(frames[0]) >= _ZERO_COPY_FROM:
            return frames  # let its consumer run first (see recv)
        zs = self._zs
        inbox = self._inbox
        took = False
        while len(frames) < limit and not self._closed:
            if inbox:
                data = inbox.popleft()
            else:
                try:
                    data = self._pull()
                except (_Again, _ZMQError):
                    break  # nothing more now; an error shows on the next
                took = True
                if data is None:
                    continue
            try:
                n = self._took(data)
            except FrameTooLarge:
                break  # raised again by the next call
            frames.append(data)
            if n >= _ZERO_COPY_FROM:
                break
        if not self._closed:
            zs.after_op()  # the pulls may have taken an edge others need
            if took:
                zs.unchecked = False
        self._rcount += len(frames) - 1
        return frames

    async def _wait_connected(self, deadline: float) -> None:
        """Dialer side: wait for the ZMTP handshake on the new socket."""
        zs = self._zs
        while not self.connected:
            if self._closed:
                raise self._error
            if zs.gone is not None:
                self._close_now(zs.gone)
                raise self._error
            if trio.current_time() >= deadline:
                exc = TransportClosed(
                    f'no ZMTP handshake with {self.peer_addr} in time')
                self._close_now(exc)
                raise exc
            # mask 0: only a monitor event (or the deadline) wakes us
            await zs.wait(0, deadline)
            zs.drain_monitor()

    # -- closing -------------------------------------------------------
    def _failed(self, err: BaseException, what: str) -> TransportClosed:
        """Close the stream after libzmq failed with ``err``; returns the
        TransportClosed to raise."""
        exc = _closed(err, what)
        self._close_now(exc)
        return exc

    def _close_now(self, err: TransportClosed | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = err or TransportClosed(f'{self} was closed locally')
        self._zs.close(self._linger)
        if self.bound_endpoint.startswith('ipc://'):
            # our own per-peer path; libzmq may or may not remove it later
            try:
                os.unlink(self.bound_endpoint[6:])
            except OSError:
                pass

    async def aclose(self) -> None:
        self._close_now()
        await checkpoint()


ZMQFrameStream._curve = False  # CURVE-secured (see _tls_zmq)


class ZMQListener:
    """The rendezvous ROUTER on the advertised address."""

    def __init__(self, router: zmq.Socket, addr: Addr, transport) -> None:
        self._router = router
        self._router_fd = router.getsockopt(zmq.FD)
        self.addr = addr
        self._t = transport
        self._closed = False
        self._lock = trio.Lock()
        self._ep = select.epoll()
        self._ep.register(self._router_fd, select.EPOLLIN)
        # streams bound for a peer that has not finished its handshake,
        # in arrival order, with their deadlines
        self._pending: dict[ZMQFrameStream, float] = {}
        self._ready: list[ZMQFrameStream] = []

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
                if self._ready:
                    stream = self._ready.pop(0)
                    await checkpoint()
                    return stream
                deadline = min(self._pending.values(), default=math.inf)
                try:
                    with trio.move_on_at(deadline):
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
                if not router.getsockopt(_EVENTS) & _POLLIN:
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
                stream._close_now()
                continue
            self._pending[stream] = (
                trio.current_time() + self._t.handshake_timeout)
            try:
                self._ep.register(stream._zs._mon_fd, select.EPOLLIN)
            except OSError:
                pass

    def _check_pending(self) -> None:
        if not self._pending:
            return
        now = trio.current_time()
        for stream, deadline in list(self._pending.items()):
            stream._zs.drain_monitor()
            if stream.connected or now >= deadline or stream._zs.gone:
                del self._pending[stream]
                try:
                    self._ep.unregister(stream._zs._mon_fd)
                except (OSError, ValueError):
                    pass
                if stream.connected and stream._zs.gone is None:
                    # the stream's own epoll may hold a stale entry
                    stream._zs.events = 0
                    self._ready.append(stream)
                else:
                    stream._close_now()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            notify_closing(self._ep.fileno())
        except Exception:
            pass
        for stream in list(self._pending) + self._ready:
            stream._close_now()
        self._pending.clear()
        self._ready.clear()
        self._ep.close()
        try:
            self._router.close(linger=0)
        except Exception:
            pass
        if self.addr.scheme == 'ipc':
            # libzmq removes it too, but later, from its reaper thread
            try:
                os.unlink(self.addr.path)
            except OSError:
                pass
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


def _probe_ipc(path: str) -> None:
    """Refuse to steal a live ipc path (libzmq would silently unlink it);
    remove a stale one."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        try:
            os.unlink(path)
        except OSError:
            pass
    else:
        raise OSError(errno.EADDRINUSE, f'{path} is already being listened on')
    finally:
        probe.close()


class ZMQTransport:
    """Frames over ZeroMQ. See the module docstring for the design."""

    name = 'zmq'
    schemes = ('tcp', 'ipc')
    #: key material (:class:`tractor._tls.Keys`) when ``tcp://`` streams
    #: are CURVE-secured (see :mod:`._tls_zmq`); set for the whole
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
                       ipv6: bool = False, curve: bool = False) -> _ZSock:
        sock = _context().socket(kind)
        try:
            if curve:
                _tls_zmq.secure(sock, self.tls, server=not dialer)
            so = sock.setsockopt
            so(zmq.LINGER, self.linger_ms)
            so(zmq.SNDHWM, self.hwm)
            so(zmq.RCVHWM, self.hwm)
            so(zmq.MAXMSGSIZE, self.max_frame)
            so(zmq.TCP_KEEPALIVE, 1)
            so(zmq.TCP_KEEPALIVE_IDLE, 5)
            so(zmq.TCP_KEEPALIVE_INTVL, 2)
            so(zmq.TCP_KEEPALIVE_CNT, 3)
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
            return _ZSock(sock, monitor=True)
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
                bound = zs.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
                where = bound.rpartition(':')[2]
        except BaseException:
            stream._close_now()
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
            raise _closed(err, f'cannot connect to {addr}') from None
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
            raise _closed(err, f'cannot connect to {addr}') from None
        except HandshakeError:
            raise
        except TransportClosed as err:
            msg = str(err)
            if not msg.startswith('cannot connect'):
                msg = f'cannot connect to {addr}: {msg}'
            raise TransportClosed(msg) from None
        finally:
            rdv._close_now()
        magic, _, where = bytes(reply).partition(b' ')
        if magic != _MAGIC or not where:
            raise TransportClosed(
                f'{addr} does not speak the tractor zmq rendezvous')
        where = where.decode('utf-8', 'replace')
        if addr.scheme == 'ipc':
            endpoint = f'ipc://{where}'
        else:
            endpoint = f'tcp://{addr.with_port(int(where)).location}'
        # 2. our own PAIR to the socket the listener bound for us
        try:
            zs = self._stream_socket(zmq.PAIR, dialer=True, ipv6=ipv6,
                                     curve=curve)
        except _ZMQError as err:
            raise _closed(err, f'cannot connect to {addr}') from None
        stream = ZMQFrameStream(zs, addr, addr, max_frame=self.max_frame,
                              linger_ms=self.linger_ms, dialer=True,
                              window=self.window)
        stream._curve = curve
        try:
            zs.sock.connect(endpoint)
            await stream._wait_connected(deadline)
        except _ZMQError as err:
            stream._close_now()
            raise _closed(err, f'cannot connect to {addr}') from None
        except BaseException:
            stream._close_now()
            raise
        return stream

    async def listen(self, addr) -> ZMQListener:
        addr = Addr.parse(addr, self.name)
        if addr.scheme == 'ipc':
            _probe_ipc(addr.path)
            endpoint = f'ipc://{addr.path}'
        else:
            h = f'[{addr.host}]' if ':' in addr.host else (addr.host or '*')
            endpoint = f'tcp://{h}:{addr.port or "*"}'
        router = _context().socket(zmq.ROUTER)
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
