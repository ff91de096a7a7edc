"""What every transport writes anyway: a toolkit for transport authors.

The contract (:mod:`tractor.transports._base`) says *what* a stream does;
the pieces here are *how* the built-in transports do the parts they share,
so that ``tcp``, ``nng`` and ``zmq`` (and a third-party transport, if it
likes) write each of them once:

* the :class:`~tractor.transports.FrameTooLarge` errors, worded alike
  whichever side noticed (:func:`too_large_to_send`,
  :func:`too_large_received`);
* claiming and releasing an ``ipc://`` socket path
  (:func:`claim_ipc_path`, :func:`release_ipc_path`): a stale file left
  by a dead process is taken over, a live one is somebody's address;
* :class:`FifoSender`, the "send now, or queue behind a FIFO lock" half
  of a stream over a message socket whose send can say "not now";
* :class:`AcceptQueue`, the streams a rendezvous listener has opened for
  peers that have not attached yet, and those ready to be accepted;
* the TCP keepalive values (:data:`KEEPALIVE`) and
  :func:`set_tcp_keepalive`.

Nothing here is on a transport's hot path except :class:`FifoSender`,
whose fast path stays a lock check and one call into the transport.
"""
from __future__ import annotations

import errno
import math
import os
import socket
import stat
from collections import deque
from typing import Generic, Sequence, TypeVar

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from ._base import FrameTooLarge

#: return to the scheduler at least once every this many operations that
#: completed without waiting, so a busy stream cannot starve other tasks.
#: The yield comes after the frame is out, so it is cancel-shielded: a
#: cancellation there would lose a frame the caller believes sent.
YIELD_EVERY = 32

#: a dialer whose peer left must never quietly redial (nng, zmq: their
#: reconnect interval is set to this, and the stream closes anyway)
RECONNECT_NEVER_MS = 24 * 3600 * 1000

# -- frame too large -------------------------------------------------------


def too_large_to_send(n: int, max_frame: int) -> FrameTooLarge:
    """The error ``send`` raises for a frame of ``n`` bytes over
    ``max_frame``: nothing of it went out, the stream stays usable."""
    return FrameTooLarge(
        f'frame of {n} bytes exceeds max_frame={max_frame}; nothing was sent')


def too_large_received(peer, n: int, max_frame: int,
                       parts: int | None = None) -> FrameTooLarge:
    """The error ``recv`` raises when ``peer`` announced or sent a frame
    of ``n`` bytes (in ``parts`` parts, if given) over ``max_frame``; the
    caller drops the connection, whose bytes can no longer be trusted."""
    how = 'announced' if parts is None else 'sent'
    what = f' in {parts} parts' if parts is not None else ''
    return FrameTooLarge(
        f'peer {peer} {how} a frame of {n} bytes{what}, over '
        f'max_frame={max_frame}; connection dropped')


# -- ipc socket paths ------------------------------------------------------


def claim_ipc_path(path: str, what=None) -> None:
    """Make ``path`` free to bind a Unix socket on: remove a socket file
    nobody listens on any more (a dead process's), and refuse one that
    somebody does with ``OSError(EADDRINUSE)`` naming ``what`` (the
    address, by default the path). Some libraries (libzmq) would
    silently unlink a live one, stealing another program's address."""
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
        release_ipc_path(path)
    else:
        raise OSError(errno.EADDRINUSE,
                      f'{what or path} is already being listened on')
    finally:
        probe.close()


def release_ipc_path(path: str) -> None:
    """Remove the socket file at ``path`` if it is still there (closing a
    listener releases its address; some libraries remove it too, but
    later, from a thread of their own)."""
    try:
        os.unlink(path)
    except OSError:
        pass


# -- TCP keepalive ---------------------------------------------------------

#: TCP keepalive of every built-in transport that can set it: a dead host
#: (no RST ever arrives) is noticed by keepalive probes after 5 s idle +
#: 3 probes 2 s apart. A hung-but-alive peer still ACKs, and a dead host
#: with data in flight is only given up after the kernel's retransmission
#: limit, so the Channel adds a heartbeat for both.
KEEPALIVE = {'idle': 5, 'interval': 2, 'count': 3}

_KEEPALIVE_OPTS = (('TCP_KEEPIDLE', 'idle'), ('TCP_KEEPINTVL', 'interval'),
                   ('TCP_KEEPCNT', 'count'))


def set_tcp_keepalive(sock: socket.socket) -> None:
    """Turn on keepalive with the :data:`KEEPALIVE` values (those this
    platform has) on a connected TCP socket."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, key in _KEEPALIVE_OPTS:
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt),
                            KEEPALIVE[key])


# -- send now, or queue behind a FIFO lock --------------------------------


class FifoSender:
    """``send``/``send_many`` for a stream over a message socket whose
    non-blocking send either takes a whole frame or says "not now".

    A frame that can go out at once goes out without a single await in
    between (no coroutine stacked per frame). Senders that must wait queue
    on ``_send_lock``, a FIFO ``trio.Lock``, and nobody takes the fast path
    while anyone is queued, so frames leave in the order their ``send``
    calls began (the contract's call order) and the frames of one
    ``send_many`` are never overtaken.

    The stream class provides ``_send_lock`` and ``_wcount`` (operations
    since the last yield) and three methods:

    ``_check_frames(frames)``
        raise before anything is sent (closed stream, frame too large);
    ``_send_ready(frames) -> int``
        send ``frames`` from the first on, as long as each goes out
        without waiting; count the work in ``_wcount``; return how many
        went out (raise on a hard failure);
    ``async _send_waiting(frames, i)``
        send ``frames[i:]``, waiting for room as needed; cancellable only
        until the first frame of the call is out (``i == 0``).
    """

    _send_lock: trio.Lock
    _wcount: int

    def _check_frames(self, frames: Sequence) -> None:
        raise NotImplementedError

    def _send_ready(self, frames: Sequence) -> int:
        raise NotImplementedError

    async def _send_waiting(self, frames: Sequence, i: int) -> None:
        raise NotImplementedError

    async def send(self, data) -> None:
        # No yield to the scheduler before the frame is queued: frames of
        # concurrent senders must go out in the order their sends began.
        await self.send_many((data,))

    async def send_many(self, frames: Sequence) -> None:
        """Send several frames in order: as many as the socket takes go
        out at once. Cancellable until the first frame is out; after that
        the rest is sent regardless (peer loss or close still end it)."""
        await checkpoint_if_cancelled()
        self._check_frames(frames)
        lock = self._send_lock
        if not lock.locked():
            i = self._send_ready(frames)
            if i == len(frames):
                if self._wcount >= YIELD_EVERY:
                    self._wcount = 0
                    await cancel_shielded_checkpoint()
                return
            lock.acquire_nowait()
        else:
            i = 0
            await lock.acquire()
        try:
            await self._send_waiting(frames, i)
        finally:
            lock.release()
        self._wcount = 0  # it waited: other tasks have run


# -- the accept queue of a rendezvous listener ----------------------------

S = TypeVar('S')


class AcceptQueue(Generic[S]):
    """Streams a rendezvous listener opened for peers that asked for one:
    *pending* until the peer attaches (at most ``timeout`` seconds), then
    *ready* for ``accept()`` in the order they attached.

    nng and zmq listeners hand each dialer a fresh socket of its own and
    must not return it from ``accept()`` before the peer is on it, nor
    keep it forever if the peer never comes: a hundred peers dialling at
    once are watched together, none queues behind another.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pending: dict[S, float] = {}
        self._ready: deque[S] = deque()

    def add(self, stream: S) -> None:
        """``stream`` waits for its peer from now on."""
        self._pending[stream] = trio.current_time() + self.timeout

    def pending(self) -> list[S]:
        """The streams still waiting for their peer, oldest first."""
        return list(self._pending)

    def attached(self, stream: S) -> bool:
        """Its peer is on ``stream``: it is ready to be accepted. False
        if it was not pending (expired or closed meanwhile)."""
        if self._pending.pop(stream, None) is None:
            return False
        self._ready.append(stream)
        return True

    def discard(self, stream: S) -> bool:
        """Stop waiting for ``stream`` (its peer failed); the caller
        aborts it. False if it was not pending."""
        return self._pending.pop(stream, None) is not None

    def overdue(self, stream: S) -> bool:
        return self._pending.get(stream, math.inf) <= trio.current_time()

    def expire(self) -> list[S]:
        """Remove and return the pending streams past their deadline (the
        caller aborts them)."""
        if not self._pending:
            return []
        now = trio.current_time()
        late = [s for s, d in self._pending.items() if d <= now]
        for s in late:
            del self._pending[s]
        return late

    @property
    def deadline(self) -> float:
        """When the next pending stream expires (``inf`` if none)."""
        return min(self._pending.values(), default=math.inf)

    def get(self) -> S | None:
        """The next ready stream, or None."""
        return self._ready.popleft() if self._ready else None

    def clear(self) -> list[S]:
        """Empty the queue (the listener is closing); returns every stream
        it held, pending or ready, for the caller to abort."""
        streams = list(self._pending) + list(self._ready)
        self._pending.clear()
        self._ready.clear()
        return streams
