"""Who reads a channel: its reader task, or a task waiting on it.

Every channel an actor serves has a reader task
(``Actor._process_messages``) that routes what arrives: a reply to the call
waiting for it, a stream item to its stream, a request to the function it
names. A caller waiting for its reply used to be woken by that reader: one
task hop between the reply's arrival and the caller -- a scheduler pass
paid on every call, and on every item a stream's consumer waits for.

Leader/follower removes the hop. Reading the channel is a *lease*: while the
reader task does not hold it, a task about to wait for a message of its own
on the channel (:meth:`MsgQueue.get <tractor._flow.MsgQueue.get>`) takes the
lease and reads the channel itself, routing whatever else arrives to whoever
waits for it, until its own message is there; then it gives the lease back.
Requests (and anything but replies and stream traffic) are never served in
a borrowed task: the borrower hands the rest of its burst to the reader
task and goes back to waiting like everyone else. Order holds because one
task at a time reads and routes (``busy`` covers both, across the reader's
own suspensions).

When does the reader let go? After routing a burst that woke somebody, the
reader yields to the scheduler twice before it reads again: the tasks it
woke run in between (trio runs a pass's tasks in no fixed order, hence
twice), and one that waits on the channel again (a loop of calls, a stage
answering an item and waiting for the next) finds the lease free and reads
its own answer. A task that does not come back costs the channel two
scheduler passes of not being read; the kernel keeps what arrives.

Why this is safe: a borrower is just another task waiting on the channel.
It may be cancelled while it reads (a caller's timeout): every transport's
receive is cancel-safe (the transport contract's ``cancel-safety`` rule),
and the lease goes back to the reader task in a ``finally``. The end of the
channel, or garbage on it, seen by a borrower is left for the reader task
to act on (``error``), exactly as if it had read it itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

from trio.lowlevel import current_task, wait_task_rescheduled

from ._parking import Parking
from .codecs import CodecError
from .transports import TransportClosed

if TYPE_CHECKING:  # pragma: no cover
    from ._channel import Channel
    from ._flow import MsgQueue

#: routes a burst that a borrower waiting on a queue read; returns what the
#: reader task must route itself (from a request, or anything unusual,
#: on), or None
Router = Callable[['Channel', list, list, 'MsgQueue'], Optional[tuple]]


class ReadLease(Parking):
    """The right to read one channel (see the module docstring). The
    reader task waits for it parked by hand (see :mod:`tractor._parking`):
    a borrowed read hands the lease back once per call or stream run."""

    __slots__ = ('chan', 'route', 'busy', 'handoff', 'error')

    def __init__(self, chan: Channel, route: Router) -> None:
        self.chan = chan
        self.route = route
        #: somebody is reading, or routing what was read
        self.busy = False
        #: the rest of a borrower's burst, for the reader task to route
        self.handoff: Optional[tuple] = None
        #: what ended a borrower's read (the channel's end, garbage), for
        #: the reader task to act on
        self.error: Optional[BaseException] = None
        self._waiter = None  # the reader task, while it waits

    async def read_for(self, q: MsgQueue) -> None:
        """Read the channel in this task until ``q`` has a message, or
        until what arrives is the reader task's to handle. Only while the
        lease is free (``not busy``)."""
        chan = self.chan
        self.busy = True
        keep = False
        try:
            while not q._items:
                try:
                    msgs = await chan.recv_many()
                except (TransportClosed, CodecError) as err:
                    self.error = err
                    keep = True
                    return
                rest = self.route(chan, msgs, chan.last_sizes, q)
                if rest is not None:
                    self.handoff = rest
                    keep = True
                    return
        finally:
            # (``keep``: still busy until the reader task has dealt with
            # the handoff or the error)
            if not keep:
                self.busy = False
            self._wake()

    async def reader_wait(self) -> None:
        """(the reader task) Wait until a borrower gives the lease back, or
        leaves it something to do."""
        while self.busy and self.handoff is None and self.error is None:
            self._waiter = current_task()
            await wait_task_rescheduled(self._abort)
