"""The zmq frame stream: one exclusive PAIR socket to one peer.

Frames go out as single zmq messages (no header, no concatenation); a
frame in parts (see the transport contract) goes out as one multipart
message ``[b'', b'', part, ...]`` and comes back as a list, each part
received straight into its own ``bytes``; parts and payloads from 64 KiB
up are sent zero-copy when they are immutable ``bytes``. A control
message of the byte-credit window (:mod:`._credit`) is ``[b'', payload]``:
a whole data frame is one part and a frame in parts starts with two empty
ones, so only an empty first part needs the RCVMORE check.

Waiting goes through :class:`._fdwait.ZSock`; flow control through
:class:`._credit.CreditWindow`. ``MAXMSGSIZE = max_frame`` makes a
receiver drop a connection that announces a bigger frame without
allocating it (the reader then gets TransportClosed); ``send`` refuses an
oversized frame with FrameTooLarge before sending. Only TransportClosed /
FrameTooLarge leave a stream.
"""
from __future__ import annotations

from collections import deque

import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
)
import zmq

from .._addr import Addr
from .. import _tls_zmq
from .._base import FrameTooLarge, TransportClosed, frame_size as _size
from .._kit import (
    YIELD_EVERY as _YIELD_EVERY,
    FifoSender,
    release_ipc_path,
    too_large_received,
    too_large_to_send,
)
from ._credit import FRAME_COST as _FRAME_COST, CreditWindow
from ._fdwait import (
    EV_ACCEPTED as _EV_ACCEPTED,
    EV_CLOSED as _EV_CLOSED,
    EV_CONNECTED as _EV_CONNECTED,
    EV_DISCONNECTED as _EV_DISCONNECTED,
    EV_HS_FAILED as _EV_HS_FAILED,
    EV_HS_OK as _EV_HS_OK,
    EV_RETRIED as _EV_RETRIED,
    NOBLOCK as _NOBLOCK,
    POLLIN as _POLLIN,
    POLLOUT as _POLLOUT,
    ZSock,
    fd_names,
)

_RCVMORE = int(zmq.RCVMORE)
_SNDMORE = int(zmq.SNDMORE)
_Again = zmq.Again
_ZMQError = zmq.ZMQError

#: zero-copy sends pay off from about here (measured)
_ZERO_COPY_FROM = 64 * 1024


def closed_error(err: BaseException | str, what: str = '') -> TransportClosed:
    if isinstance(err, BaseException):
        err = getattr(err, 'strerror', None) or str(err) or type(err).__name__
    return TransportClosed(f'{what}: {err}' if what else str(err))



class ZMQFrameStream(FifoSender):
    """A FrameStream over one exclusive PAIR (or, for the rendezvous, DEALER)
    socket."""

    #: CURVE-secured (see :mod:`tractor.transports._tls_zmq`): a failed
    #: connection is then told apart as a refusal
    _curve = False

    #: frames may be lists of parts (see the transport contract)
    parts = True

    def __init__(
        self,
        zs: ZSock,
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
        self._credit = CreditWindow(window)  # flow control (see _credit)
        self._inbox: deque = deque()  # frames read while seeking credit
        # the last look for more found the socket empty (request/reply
        # traffic): ask ZMQ_EVENTS before the next recv, rather than let
        # a recv fail (see ZSock.readable)
        self._quiet = True
        self._send_lock = trio.Lock()  # senders that must wait queue here

    def __repr__(self) -> str:
        return f'<ZMQFrameStream {self.local_addr} -> {self.peer_addr}>'

    def _why(self) -> TransportClosed:
        """The error a closed stream raises."""
        return self._error or TransportClosed(f'{self} is closed')

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
        names = fd_names(self._peer_fd)
        if not names:
            return
        (lh, lp, *_), (ph, pp, *_) = names
        t = self.local_addr.transport
        if self._dialer:
            self.local_addr = Addr(t, 'tcp', host=lh, port=lp)
        else:
            self.peer_addr = Addr(t, 'tcp', host=ph, port=pp)

    # -- flow control (see _credit) ------------------------------------
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
        if self._credit.on_control(ctrl):
            # senders waiting for credit wait for POLLIN
            self._zs.wake(_POLLIN)
        return None

    def _send_ack(self) -> None:
        credit = self._credit
        try:
            self._sock.send_multipart([b'', credit.ack()], _NOBLOCK)
        except _Again:
            return  # retried on the next send/recv, or while recv waits
        credit.ack_sent()

    def _request_credit(self) -> bool:
        """Ask the peer to acknowledge everything we sent so far once it
        is read (a quarter-window ack may never come for a small backlog
        in front of a big frame). False if the socket is full."""
        credit = self._credit
        ask = credit.request()
        if ask is None:
            return True
        try:
            self._sock.send_multipart([b'', ask], _NOBLOCK)
        except _Again:
            return False
        credit.requested_sent()
        return True

    # -- sending -------------------------------------------------------
    # send/send_many: see _kit.FifoSender (send now, or queue behind a
    # FIFO lock). One ZMQ_EVENTS re-read per call, not per frame.
    def _send_now(self, data) -> int:
        """Try to send one frame without waiting: 0 if it went out,
        1 if we are out of credit, 2 if the socket is full."""
        if self._closed:
            raise self._why()
        zs = self._zs
        if zs.gone is not None:
            self._close_now(zs.gone)
            raise self._why()
        credit = self._credit
        if credit.ack_due:
            self._send_ack()
        if type(data) is list:
            return self._send_parts_now(data)
        n = len(data)
        cost = n + _FRAME_COST
        if not credit.fits(cost):
            return 1
        try:
            self._sock.send(data, _NOBLOCK,
                            copy=n < _ZERO_COPY_FROM or type(data) is not bytes)
        except _Again:
            return 2
        except _ZMQError as err:
            raise self._failed(err, 'send failed') from None
        credit.spend(cost)
        return 0

    def _send_parts_now(self, parts: list) -> int:
        """_send_now for a frame in parts: ``[b'', b'', part, ...]``."""
        cost = _size(parts) + _FRAME_COST
        if not self._credit.fits(cost):
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
        self._credit.spend(cost)
        return 0

    def _check_frames(self, frames) -> None:
        mf = self.max_frame
        for data in frames:
            n = _size(data)
            if n > mf:
                if self._closed:
                    raise self._why()
                raise too_large_to_send(n, mf)

    def _send_ready(self, frames) -> int:
        """Send frames from the first on while they go out at once;
        returns how many did."""
        send_now = self._send_now
        nf = len(frames)
        i = 0
        while i < nf and not send_now(frames[i]):
            i += 1
        if i == nf:
            self._zs.after_op()
            self._wcount += nf
        return i

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
        needed (the caller holds ``_send_lock``)."""
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
            credit = self._credit
            try:
                while not credit.fits(cost):
                    frame = self._pull()
                    if frame is not None:
                        self._inbox.append(frame)
                        zs.wake(_POLLIN)
            except _Again:
                asked = self._request_credit()
                zs.after_op()
                if credit.ack_due:
                    self._send_ack()
                await self._wait(_POLLIN if asked and not credit.ack_due
                                 else _POLLIN | _POLLOUT, started)
                continue
            except _ZMQError as err:
                raise self._failed(err, 'send failed') from None
            zs.after_op()
        zs.after_op()

    # -- receiving -----------------------------------------------------
    async def recv(self) -> bytes:
        await checkpoint_if_cancelled()
        zs = self._zs
        inbox = self._inbox
        look = self._quiet
        while True:
            if self._closed:
                raise self._why()
            if inbox:
                data = inbox.popleft()
            else:
                if look and not zs.readable():
                    empty = True  # (ZMQ_EVENTS is fresh and published)
                else:
                    try:
                        data = self._pull()
                        empty = False
                    except _Again:
                        empty = True
                        zs.after_op()
                    except _ZMQError as err:
                        raise self._failed(err, 'recv failed') from None
                if empty:
                    if zs.gone is not None:
                        # everything that arrived before the loss is read
                        self._close_now(zs.gone)
                        raise self._why()
                    if self._credit.ack_due:
                        self._send_ack()
                        await zs.wait(_POLLIN | _POLLOUT
                                      if self._credit.ack_due else _POLLIN)
                    else:
                        await zs.wait(_POLLIN, fresh=True)
                    look = False  # woken: most likely for data
                    continue
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
                exc = too_large_received(self.peer_addr, n, self.max_frame,
                                         parts=len(data))
                self._close_now(exc)
                raise exc
        else:
            n = len(data)
        if self._credit.took(n) and not self._closed:
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
        quiet = True
        while len(frames) < limit and not self._closed:
            if inbox:
                data = inbox.popleft()
            else:
                if self._quiet and quiet and not zs.readable():
                    break  # nothing more now (and EVENTS is fresh)
                try:
                    data = self._pull()
                except (_Again, _ZMQError):
                    break  # nothing more now; an error shows on the next
                took = True
                quiet = False
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
        self._quiet = quiet
        self._rcount += len(frames) - 1
        return frames

    # -- before the stream is handed out -------------------------------
    @property
    def monitor_fd(self) -> int:
        """The fd that turns readable when a monitor event (handshake,
        disconnect) arrives: a listener watches many pending streams'
        together."""
        return self._zs.mon_fd

    def poll_handshake(self) -> bool | None:
        """Listener side, while the stream waits for its peer: True once
        the peer finished the ZMTP handshake (ready to be accepted),
        False if its connection failed, None while still waiting."""
        zs = self._zs
        zs.drain_monitor()
        if zs.gone is not None:
            return False
        if not self.connected:
            return None
        # the stream's own epoll may hold a stale entry
        zs.events = 0
        return True

    async def _wait_connected(self, deadline: float) -> None:
        """Dialer side: wait for the ZMTP handshake on the new socket."""
        zs = self._zs
        while not self.connected:
            if self._closed:
                raise self._why()
            if zs.gone is not None:
                self._close_now(zs.gone)
                raise self._why()
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
        exc = closed_error(err, what)
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
            release_ipc_path(self.bound_endpoint[6:])

    async def aclose(self) -> None:
        self._close_now()
        await checkpoint()

    def abort(self) -> None:
        """Close now with no linger: libzmq discards what is queued."""
        if not self._closed:
            self._linger = 0
        self._close_now(TransportClosed(f'{self} was aborted'))

