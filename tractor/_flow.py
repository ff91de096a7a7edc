"""Flow control: one call's messages on one side of a channel.

Every call is a *dialog* between a caller and a callee, named by the call id
(``cid``) the caller chose (see :mod:`tractor._protocol`). Each side keeps a
:class:`Dialog`: the FIFO that the channel's reader fills with the peer's
messages for this call, and the credit window that bounds what this side
may send ahead of the peer's consumption.

Why credits and not the transport's back-pressure: many dialogs share one
channel. If a stream's reader stops reading and the runtime let the
transport fill up, every other call on the channel (replies, cancels,
heartbeats) would be stuck behind it. So a sender keeps at most
``STREAM_WINDOW`` items and ``STREAM_WINDOW_BYTES`` encoded bytes in flight
-- sent, and not yet consumed by the peer's user code -- whichever limit is
reached first. The reader grants credit back after consuming half a window
of either (``CREDIT_ITEMS``/``CREDIT_BYTES``): credit messages stay rare,
and a sender never has to stop while its reader keeps up. The two sides
count bytes differently (a batch frame's size is shared among its items),
so a sender that stalls on bytes asks with ``ackreq`` for credit for
whatever has been consumed so far; the reader answers when it reaches the
request in the FIFO.

The same window runs in both directions of a two-way stream, so neither
side's memory grows with a fast peer: at most a window of items waits in
either side's FIFO.

Runs: what one task sends on one stream before it yields to the scheduler
(at most ``RUN_MAX`` items) waits in the dialog's ``outbox`` and leaves as
one message, ``{'cid', 'yields': [...]}``, when the channel next writes
(``Channel.defer``). Envelope, encoding, routing, queueing and credit are
then paid per run, not per item, which is most of what a small item costs.
A run's items count one each against the window (``out_items`` when
queued; their bytes, in equal shares, once the run is encoded). Bulky
items (``BULKY``) go alone, so transports that carry frame parts keep them
uncopied. An item a two-way stream sends in answer to one it just received
(with nothing more received in hand) is written at once instead: its
sender is about to wait for the peer, so deferring it would only wake the
service task for nothing (see ``MsgStream.send``).

Plain calls (one request, one reply) use the lighter :class:`MsgQueue`:
they never stream, and the reply path is the hot path.
"""
from __future__ import annotations

from collections import deque
from typing import Optional, cast

import trio
from trio.lowlevel import current_task, wait_task_rescheduled

from ._parking import Parking
from ._protocol import ackreq_msg, item_msg, run_msg_of

#: items a sender may run ahead of its reader...
STREAM_WINDOW = 4096
#: ...and encoded bytes: whichever limit is reached first
STREAM_WINDOW_BYTES = 8 * 1024 * 1024
#: the reader grants credit after consuming this many items or bytes
CREDIT_ITEMS = STREAM_WINDOW // 2
CREDIT_BYTES = STREAM_WINDOW_BYTES // 2

#: items a run holds at most: a sender whose outbox reaches it flushes
RUN_MAX = 64
#: items larger than this (bytes or str) are sent on their own, never in a
#: run: they may then travel as frame parts, uncopied (see the transports)
BULKY = 8 * 1024
BULKY_TYPES = (bytes, bytearray, memoryview, str)

#: reply keys that end a dialog: after one of them nothing more comes
FINAL_KEYS = ('return', 'error', 'cancelled', 'closed')


class MsgQueue(Parking):
    """An unbounded FIFO between the channel's reader and one waiting
    caller. Bounded in practice: a plain call gets one reply. The one task
    waiting in :meth:`get` is parked by hand (see :mod:`tractor._parking`):
    every call and every stream run waits once."""

    __slots__ = ('_items', 'chan', 'closed')

    def __init__(self, chan) -> None:
        self._items: deque = deque()
        self._waiter = None
        self.chan = chan
        self.closed = False

    def put(self, msg) -> None:
        self._items.append(msg)
        if self._waiter is not None:
            self._wake()

    def pending(self) -> int:
        """Messages queued and not yet taken."""
        return len(self._items)

    async def get(self):
        items = self._items
        if items:
            # a cancel point even when a message is ready: a reader whose
            # stream is never empty must still see its cancel scope
            await trio.lowlevel.checkpoint_if_cancelled()
            return items.popleft()
        chan = self.chan
        lease = chan.lease if chan is not None else None
        while not items:
            if lease is not None and not lease.busy:
                # nobody reads the channel: read it here rather than wait
                # to be woken by its reader (see tractor._lease)
                await lease.read_for(self)
                continue
            self._waiter = current_task()
            await wait_task_rescheduled(self._abort)
        return items.popleft()


class Dialog(MsgQueue):
    """One streaming call as seen from one side: the peer's messages (a
    FIFO), the send window, and how the call ended.

    ``caller`` says which side this is: it decides how this side's
    messages are spelt (a caller's carry ``'cmd'``, see
    :mod:`tractor._protocol`). ``put`` is called by the channel's reader
    for every message of the call; it applies credit at once (a sender
    must be woken even while its user code reads nothing) and notes a
    final message, which also wakes a sender blocked on the window.
    """

    __slots__ = ('cid', 'caller', 'scope', 'out_items', 'out_bytes',
                 '_sizes', '_credit_ev', '_asked', 'consumed',
                 'consumed_bytes', 'final', '_final_ev',
                 'remote_error', 'cancel_requested', 'outbox',
                 'send_error')

    def __init__(self, chan, cid: int, *, caller: bool,
                 scope: Optional[trio.CancelScope] = None) -> None:
        super().__init__(chan)
        self.cid = cid
        self.caller = caller
        #: the callee's task scope (callee side), or the caller's
        #: ``open_context`` block (caller side): see finish()
        self.scope = scope
        self.out_items = 0
        self.out_bytes = 0
        self._sizes: deque = deque()
        self._credit_ev: Optional[trio.Event] = None
        self._asked = False
        # received and consumed by user code, not yet credited back
        self.consumed = 0
        self.consumed_bytes = 0
        #: the message that ended the call (return, error, cancelled,
        #: closed), as soon as the reader routed it
        self.final: Optional[dict] = None
        self._final_ev: Optional[trio.Event] = None
        #: an error the peer reported while cancelling us (callee side)
        self.remote_error: Optional[BaseException] = None
        #: this side asked the peer to cancel the call
        self.cancel_requested = False
        #: items queued by this side, not yet encoded: they leave as one
        #: message (a *run*) when the channel next writes (see Runs above)
        self.outbox: list = []
        #: why a run could not be sent (raised by the next send)
        self.send_error: Optional[BaseException] = None

    def cancel(self) -> None:
        """Cancel the task serving the call (callee side), or the caller's
        block around it (caller side, in ``open_context``)."""
        if self.scope is not None:
            self.scope.cancel()

    # -- the reader's side ---------------------------------------------
    def put(self, msg) -> None:
        if 'yield' not in msg and 'yields' not in msg:
            if 'credit' in msg:
                self.grant(msg['credit'])
                return
            for key in FINAL_KEYS:
                if key in msg:
                    self.finish(msg)
                    break
        super().put(msg)

    def finish(self, msg: dict) -> None:
        """The call ended (``msg`` says how): wake whoever waits for the
        end or for credit that will now never come."""
        if self.final is None:
            self.final = msg
        scope = self.scope
        if (scope is not None and self.caller and 'return' not in msg
                and not ('cancelled' in msg and self.cancel_requested)):
            # the caller's block in open_context(): the callee failed,
            # was cancelled or was lost, so the block stops too
            scope.cancel()
        ev = self._final_ev
        if ev is not None:
            ev.set()
        self._wake_sender()

    def fail(self, exc: BaseException) -> None:
        """The peer aborted the call with ``exc`` (callee side): a sender
        blocked on the window and a reader blocked on the FIFO both see
        it."""
        self.remote_error = exc
        self._wake_sender()
        self.put({'error': exc})

    async def wait_final(self) -> dict:
        if self.final is None:
            if self._final_ev is None:
                self._final_ev = trio.Event()
            await self._final_ev.wait()
        return cast(dict, self.final)  # (set by finish())

    # -- the sender's side ---------------------------------------------
    def sent(self, nbytes: int) -> None:
        self.out_items += 1
        self.out_bytes += nbytes
        self._sizes.append([1, nbytes])

    def grant(self, n) -> None:
        """The peer consumed ``n`` more items. What is in flight is kept
        as [items, bytes each] per message sent (a run's items count equal
        shares), so a grant costs a step per message, not per item."""
        sizes = self._sizes
        left = int(n)
        freed = 0
        while left > 0 and sizes:
            chunk = sizes[0]
            count, each = chunk
            if count <= left:
                sizes.popleft()
                left -= count
                freed += count * each
            else:
                chunk[0] = count - left
                freed += left * each
                left = 0
        self.out_items -= int(n) - left
        self.out_bytes -= freed
        self._asked = False
        self._wake_sender()

    def _wake_sender(self) -> None:
        ev = self._credit_ev
        if ev is not None:
            self._credit_ev = None
            ev.set()

    def window_full(self) -> bool:
        return (self.out_items >= STREAM_WINDOW
                or self.out_bytes >= STREAM_WINDOW_BYTES)

    async def wait_credit(self) -> None:
        """Wait while a window of items or bytes is unconsumed. The peer
        grants credit every half window; a sender stalled earlier (on
        bytes) sends ``ackreq`` once to have the peer acknowledge what it
        has consumed so far. Returns at once if the call has ended (the
        caller checks ``final``)."""
        while self.window_full() and self.final is None \
                and self.remote_error is None and self.send_error is None:
            if not self._asked:
                self._asked = True
                await self.chan.send_buffered(
                    ackreq_msg(self.caller, self.cid))
            ev = self._credit_ev
            if ev is None:
                ev = self._credit_ev = trio.Event()
            await ev.wait()

    # -- runs ------------------------------------------------------------
    # A burst of items a task sends on one stream before it yields to the
    # scheduler leaves as one message, {'cid', 'yields': [items]}: one
    # envelope to encode, route and queue, and one flow-control update,
    # instead of one per item. That per-item cost, not the codec, is most
    # of what a small item costs; a pipeline stage pays it twice.
    def run_message(self, items: list) -> dict:
        if len(items) == 1:
            return item_msg(self.caller, self.cid, items[0])
        return run_msg_of(self.caller, self.cid, items)

    def take_run(self) -> list:
        """The queued items, emptied (see Channel.flush_runs)."""
        box, self.outbox = self.outbox, []
        return box

    def run_sent(self, n: int, nbytes: int) -> None:
        """A run of ``n`` items was encoded to ``nbytes``: each counts an
        equal share against the byte window."""
        self.out_bytes += nbytes
        if n:
            self._sizes.append([n, nbytes // n])

    def run_failed(self, n: int, exc: BaseException) -> None:
        """A run of ``n`` items could not be sent: they do not count, and
        the sender's next send raises ``exc``."""
        self.out_items -= n
        self.send_error = exc
        self._wake_sender()

    # -- the receiver's side -------------------------------------------
    def took_many(self, n: int, nbytes: int) -> Optional[int]:
        """User code is handed ``n`` items of ``nbytes`` in all: the credit
        to grant now, if half a window is due."""
        self.consumed += n
        self.consumed_bytes += nbytes
        if (self.consumed >= CREDIT_ITEMS
                or self.consumed_bytes >= CREDIT_BYTES):
            return self.take_credit()
        return None

    def take_credit(self) -> int:
        n, self.consumed, self.consumed_bytes = self.consumed, 0, 0
        return n

    @classmethod
    def upgrade(cls, q: MsgQueue, cid: int) -> 'Dialog':
        """A caller's plain-call queue, now that the reply says the call
        streams (what arrived behind that reply moves along)."""
        d = cls(q.chan, cid, caller=True)
        for msg in q._items:
            d.put(msg)
        return d
