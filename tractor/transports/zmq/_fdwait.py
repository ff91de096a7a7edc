"""Waiting on zmq sockets from trio: the fd and monitor glue.

**trio integration without threads or polling.** ``zmq.FD`` is an
edge-triggered "something changed" signal for both directions; ZMQ_EVENTS
must be re-read after every operation. Each socket has one owner of its fd
wait (:class:`ZSock`): the first task that must block becomes the
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
resets the connection). What a monitor event means is the stream's
business (``ZSock.on_event``); this module only delivers them.

One lazily created ``zmq.Context`` per process (recreated after fork).
Only Linux is supported (the per-stream epoll).
"""
from __future__ import annotations

import math
import os
import select
import socket
import struct

from typing import Callable, Optional, cast

import trio
from trio.lowlevel import (
    ParkingLot,
    checkpoint,
    notify_closing,
    wait_readable,
)
import zmq

from .._base import TransportClosed

# plain ints: pyzmq's constants are enum members, and every ``ev & mask``
# on them builds a new enum object (measured: ~1 us per send)
POLLIN = int(zmq.POLLIN)
POLLOUT = int(zmq.POLLOUT)
NOBLOCK = int(zmq.NOBLOCK)
EVENTS = int(zmq.EVENTS)
_Again = zmq.Again
_ZMQError = zmq.ZMQError

# monitor events
EV_CONNECTED = zmq.EVENT_CONNECTED
EV_ACCEPTED = zmq.EVENT_ACCEPTED
EV_DISCONNECTED = zmq.EVENT_DISCONNECTED
EV_CLOSED = zmq.EVENT_CLOSED
EV_RETRIED = zmq.EVENT_CONNECT_RETRIED
EV_HS_OK = zmq.EVENT_HANDSHAKE_SUCCEEDED
EV_HS_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MONITORED = (EV_CONNECTED | EV_ACCEPTED | EV_DISCONNECTED | EV_CLOSED
              | EV_RETRIED | EV_HS_OK | EV_HS_FAILED)
_EV_HDR = struct.Struct('=HI')

# -- the process-wide context ---------------------------------------------
_ctx: zmq.Context | None = None
_ctx_pid = 0


def context() -> zmq.Context:
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



def fd_names(fd: int):
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



class ZSock:
    """One zmq socket (plus, optionally, its monitor) and the bookkeeping
    that lets many trio tasks wait on it through a single fd wait."""

    __slots__ = ('sock', 'mon', 'ep', 'wait_fd', 'events', 'closed', 'gone',
                 'on_event', '_polling', '_in_wait', '_poll_mask', '_lots',
                 'mon_fd', '_sock_fd', 'mon_seq', 'unchecked', '_get')

    def __init__(self, sock: zmq.Socket, monitor: bool = True) -> None:
        self.sock = sock
        self.mon = None
        self.ep = None
        self.events = 0          # last ZMQ_EVENTS read
        self.closed = False
        self.gone: TransportClosed | None = None  # set by on_event
        self.on_event: Optional[Callable[[int, int], None]] = None
        self.mon_seq = 0  # monitor events seen so far
        # the monitor may hold unread events (see wait): a fresh inproc
        # pipe does not signal its first messages, so drain it once
        self.unchecked = monitor
        # (pyzmq types every option as int or bytes; these are ints)
        self._get = cast(Callable[[int], int], sock.get)
        self._polling = False
        self._in_wait = False  # the poller is blocked on wait_fd
        self._poll_mask = 0
        self._lots: dict[int, ParkingLot] = {}
        self._sock_fd = cast(int, sock.getsockopt(zmq.FD))
        self.mon_fd = -1
        if monitor:
            # must exist before bind/connect so no event is missed
            self.mon = sock.get_monitor_socket(_MONITORED)
            self.mon.setsockopt(zmq.LINGER, 0)
            self.mon_fd = cast(int, self.mon.getsockopt(zmq.FD))
            self.ep = select.epoll(2)
            self.ep.register(self._sock_fd, select.EPOLLIN)
            self.ep.register(self.mon_fd, select.EPOLLIN)
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

    def readable(self) -> bool:
        """Is a message waiting? Reads ZMQ_EVENTS (which processes every
        pending command, as a ``recv`` failing with EAGAIN does, so a
        ``False`` may be followed by ``wait(POLLIN, fresh=True)``) and
        publishes it. A third of a failing ``recv``'s cost, whose
        ``zmq.Again`` is a Python exception built each time."""
        try:
            ev = self._get(EVENTS)
        except _ZMQError:
            return True  # the recv that follows reports it
        self.publish(ev)
        return bool(ev & POLLIN)

    def after_op(self) -> None:
        """Call after every send/recv: it may have consumed the fd's edge
        another waiter needed, so re-read ZMQ_EVENTS for them."""
        if self._polling:
            self.publish(self._get(EVENTS))
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
                if not cast(int, mon.get(EVENTS)) & POLLIN:
                    return
                frames = mon.recv_multipart(NOBLOCK)
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
            ev = self._get(EVENTS)
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
            if self.unchecked or not fresh or mask != POLLIN:
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
            if mask & POLLOUT:
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

