"""One task parked at a time, woken by another: the runtime's cheapest wait.

A call's reply queue (:class:`tractor._flow.MsgQueue`) and a channel's read
lease (:class:`tractor._lease.ReadLease`) each have at most one task
waiting on them, and each wait ends with exactly one wake-up from another
task. A ``trio.Event`` per wait did the job but cost an object, a set of
waiters, a closure for its abort and a KI-protected ``set`` every time --
about 1.5 us more per wait and wake-up here (two tasks passing an item
back and forth: 13.5 -> 10.3 us per round trip, best of ten), paid on
every call and every stream run. So the waiting task parks itself with
trio's lowlevel API::

    self._waiter = trio.lowlevel.current_task()
    await trio.lowlevel.wait_task_rescheduled(self._abort)

(written out where it waits, not behind a method: a coroutine frame per
wait would give back part of the saving) and the other task calls
:meth:`Parking._wake`. A cancelled waiter is forgotten by ``_abort``; a
task is rescheduled at most once, as ``_wake`` clears ``_waiter`` first.
"""
from __future__ import annotations

from typing import Optional

from trio.lowlevel import Abort, Task, reschedule


class Parking:
    """Base of the objects one task waits on (see the module docstring)."""

    __slots__ = ('_waiter',)
    #: the task parked here, if any (each subclass's ``__init__`` sets it
    #: to None itself: a MsgQueue is made per call, a super() call is not)
    _waiter: Optional[Task]

    def _wake(self) -> None:
        """Wake the parked task, if there is one."""
        w = self._waiter
        if w is not None:
            self._waiter = None
            reschedule(w)

    def _abort(self, _raise_cancel) -> Abort:
        # the parked task is cancelled: nobody waits here any more
        self._waiter = None
        return Abort.SUCCEEDED
