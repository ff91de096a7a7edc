"""Streams between actors: one-way (an async generator or a
``@tractor.stream`` function feeding the caller) and two-way (a
``@tractor.context`` function and its caller exchanging items).

Both ends of every stream are a :class:`MsgStream` over one
:class:`~tractor._flow.Dialog`: the same code receives, sends and grants
credit on either side, so flow control holds in both directions.

Lifetimes follow trio's rule that nothing outlives the block that started
it. Leaving ``async with portal.open_stream_from(...)`` (or ``async with``
the object ``portal.run`` returns for a stream) by any path cancels the
remote task and waits, bounded by ``CANCEL_GRACE``, until it reports that
it stopped (its ``finally`` blocks have run). Leaving
``async with portal.open_context(...)`` waits for the callee's result; by
an error or a cancel it cancels the callee first. An error or a
cancellation on one side reaches the other.
"""
from __future__ import annotations

import inspect
from contextlib import asynccontextmanager
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Optional,
    TypeVar,
)

import trio

from ._exceptions import (
    ContextCancelled,
    RemoteActorError,
    pack_error,
    unpack_error,
)
from ._flow import (
    BULKY,
    BULKY_TYPES,
    RUN_MAX,
    STREAM_WINDOW,
    STREAM_WINDOW_BYTES,
    Dialog,
)
from ._protocol import cancel_msg, credit_msg, item_msg, stop_msg
from .log import get_logger
from .transports import TransportClosed

if TYPE_CHECKING:  # pragma: no cover
    from ._channel import Channel
    from ._portal import Portal

log = get_logger(__name__)

F = TypeVar('F', bound=Callable[..., Awaitable[Any]])

#: seconds a cancelled remote task may take to report that it stopped
CANCEL_GRACE = 3.0


def outcome_of(d: Dialog, what: str = 'the call') -> Any:
    """The value a dialog's final message carries, or the error it means
    (raised). The message is unpacked once; later calls raise the same
    error object."""
    msg = d.final
    if msg is None:
        raise RuntimeError(f'{what} has not finished')
    if 'return' in msg:
        return msg['return']
    err = msg.get('_exc')
    if err is None:
        err = msg['_exc'] = error_from(msg, d.chan, what)
    raise err


def error_from(msg: dict, chan: Channel, what: str) -> BaseException:
    """The error a reply means (error, cancelled, closed), to raise."""
    if 'error' in msg:
        e = msg['error']
        return e if isinstance(e, BaseException) else unpack_error(e, chan)
    if 'cancelled' in msg:
        return ContextCancelled(
            f'{what} in actor {chan.uid} was cancelled: {msg["cancelled"]}',
            'ContextCancelled', chan.uid)
    if 'closed' in msg:
        return TransportClosed(
            f'connection to actor {chan.uid} at {chan.raddr} was lost during '
            f'{what}: {msg["closed"]}')
    return RemoteActorError(f'unexpected reply to {what}: {msg!r}',
                            'ProtocolError', chan.uid)


def queue_item(d: Dialog, item: Any) -> bool:
    """The common case of :func:`send_item`, without a coroutine: ``item``
    joins the run already queued on ``d`` when nothing needs waiting for
    (window open, no send error, not bulky, run not full). False, having
    done nothing, otherwise: then ``await send_item(d, item)``. A stream
    producer calls it once per item, so what it saves (a coroutine per
    item) is a share of every item's cost."""
    box = d.outbox
    n = len(box)
    if (n == 0 or n + 1 >= RUN_MAX or d.send_error is not None
            or d.out_items >= STREAM_WINDOW
            or d.out_bytes >= STREAM_WINDOW_BYTES
            or (type(item) in BULKY_TYPES and len(item) > BULKY)):
        return False
    d.out_items += 1
    box.append(item)
    return True


async def send_item(d: Dialog, item: Any, now: bool = False) -> None:
    """Send a stream item on ``d``, waiting while the peer has a window
    unconsumed. Small items join the dialog's run (see
    :mod:`tractor._flow`); a bulky one goes on its own, after the run.
    ``now``: the sender is answering what it just received and has
    nothing more in hand, so it will wait for the peer next; the item
    leaves at once rather than on the service task's turn (which would
    cost a wake-up, and a scheduler pass, for nothing). (Its checks are
    :func:`queue_item`'s, which callers try first: change both together.)"""
    if d.out_items >= STREAM_WINDOW or d.out_bytes >= STREAM_WINDOW_BYTES:
        await d.wait_credit()
    if d.send_error is not None:
        raise d.send_error
    chan = d.chan
    if type(item) in BULKY_TYPES and len(item) > BULKY:
        d.sent(await chan.send_buffered(item_msg(d.caller, d.cid, item)))
        return
    box = d.outbox
    if now and not box and await chan.send_answer(d, item):
        return
    # into the dialog's run (this is the per-item cost of a stream)
    d.out_items += 1
    box.append(item)
    if len(box) == 1:
        if now:
            chan.defer(d, wake=False)
            await chan.flush_runs(now=True)
        elif not chan.defer(d):
            await chan.flush_runs()
    elif len(box) >= RUN_MAX:
        await chan.flush_runs()


class MsgStream:
    """One end of a stream between two actors.

    ``await stream.receive()`` (or ``async for item in stream``) takes the
    peer's next item; ``await stream.send(item)`` sends one (two-way
    streams only), waiting while the peer has a full window unconsumed;
    ``await stream.aclose()`` closes this side's sending half, which ends
    the peer's iteration. Receiving ends (``trio.EndOfChannel``, or the end
    of ``async for``) when the peer closes its half or its task ends;
    the peer's error is raised as a ``RemoteActorError``.
    """

    def __init__(self, d: Dialog, *, what: str, two_way: bool,
                 on_close: Optional[Callable[[MsgStream], Awaitable[None]]]
                 = None,
                 on_end: Optional[Callable[[], None]] = None) -> None:
        self._d = d
        self._what = what
        self._two_way = two_way
        self._on_close = on_close
        self._on_end = on_end
        self._eof = False
        self._closed = False
        # what is left of the last run received
        self._run: list = []
        # an item was received since the last send (see send())
        self._answering = False
        self._token = (trio.lowlevel.current_trio_token()
                       if on_close is not None else None)

    def __del__(self) -> None:
        # a one-way stream dropped unfinished (``async for ...: break``
        # without ``async with``): stop the producer now rather than
        # leave it blocked on its window until the channel closes
        if self._token is not None and not (self._eof or self._closed):
            try:
                self._token.run_sync_soon(self._abandon)
            except trio.RunFinishedError:
                pass

    def _abandon(self) -> None:
        """Stop a one-way stream's producer without waiting (from code
        that cannot wait: a finalizer, a cancelled ``async for``)."""
        if self._eof or self._closed:
            return
        self._closed = True
        d = self._d
        d.cancel_requested = True
        if d.chan.connected:
            try:
                d.chan.post(cancel_msg(d.cid))
            except RuntimeError:
                pass
        if self._on_end is not None:
            self._on_end()

    @property
    def chan(self) -> Channel:
        return self._d.chan

    @property
    def finished(self) -> bool:
        """The peer has nothing more to send (its half closed, or the
        call ended)."""
        return self._eof

    def __repr__(self) -> str:
        d = self._d
        return f'<MsgStream cid={d.cid} {self._what} peer={d.chan.uid}>'

    # -- receiving -----------------------------------------------------
    async def receive(self) -> Any:
        """The peer's next item; ``trio.EndOfChannel`` once it has no
        more."""
        try:
            return await self._next(False)
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    def __anext__(self) -> Awaitable[Any]:
        return self._next(True)

    async def _next(self, iterating: bool) -> Any:
        try:
            run = self._run
            if run:
                # the rest of a run (see tractor._flow): already received
                # and credited, so no trip through the dialog's queue --
                # but still a cancel point, as every item is
                await trio.lowlevel.checkpoint_if_cancelled()
                self._answering = True
                return run.pop()
            d = self._d
            while not self._eof:
                if d.remote_error is not None:
                    # the peer failed: that comes before anything it
                    # queued, and before the cancel that follows it
                    raise d.remote_error
                if d.outbox and not d.pending():
                    # about to wait for the peer, with items of ours
                    # queued: they go now, not on the service task's turn
                    # (a request and its answer over a two-way stream)
                    try:
                        await d.chan.flush_runs(now=True)
                    except TransportClosed:
                        pass  # the reader hears of it as 'closed'
                msg = await d.get()
                items = msg.get('yields')
                if items is not None:
                    n = d.took_many(len(items), msg['_n'])
                    if n is not None:
                        await self._credit(n)
                    items.reverse()
                    item = items.pop()
                    self._run = items
                    self._answering = True
                    return item
                if 'yield' in msg:
                    n = d.took_many(1, msg['_n'])
                    if n is not None:
                        await self._credit(n)
                    item, msg = msg['yield'], None
                    self._answering = True
                    return item
                self._control(msg)
            raise StopAsyncIteration
        except trio.Cancelled:
            # like an async generator's ``finally``: an ``async for`` over
            # a one-way stream that is cancelled stops the producer (its
            # owner may never close it)
            if iterating and self._token is not None:
                self._abandon()
            raise

    async def _credit(self, n: int) -> None:
        d = self._d
        try:
            await d.chan.send(credit_msg(d.caller, d.cid, n))
        except TransportClosed:
            pass  # the reader hears of it as 'closed'

    def _control(self, msg: dict) -> None:
        """Anything but an item, in FIFO order: a credit request, the end
        of the peer's half, or the end of the call."""
        d = self._d
        if 'ackreq' in msg:
            n = d.take_credit()
            if n:
                d.chan.post(credit_msg(d.caller, d.cid, n))
            return
        self._eof = True
        if self._on_end is not None:
            self._on_end()
        if 'stop' in msg:
            return  # the peer closed its half
        if 'return' in msg or ('cancelled' in msg and d.cancel_requested):
            return  # the call is over: the stream simply ends
        outcome_of(d, self._what)  # raises the error the message means

    # -- sending -------------------------------------------------------
    async def send(self, item: Any) -> None:
        """Send ``item`` to the peer, waiting while it has a whole window
        (``STREAM_WINDOW`` items or ``STREAM_WINDOW_BYTES``) unconsumed."""
        d = self._d
        if self._closed or not self._two_way:
            raise trio.ClosedResourceError(
                f'{self!r} cannot send: ' + (
                    'it was closed' if self._closed else
                    'a one-way stream only receives'))
        if d.final is not None or d.remote_error is not None:
            self._broken()
        # The first item sent after receiving, with nothing more received
        # in hand, is most likely an answer the peer now waits for (a
        # request/reply over the stream, a stage's hop): it leaves at
        # once. Items sent while a received run lasts, or in a burst
        # without receiving, still travel together as runs.
        now = self._answering and not self._run and not d.pending()
        self._answering = False
        if now or not queue_item(d, item):
            await send_item(d, item, now)
            if d.final is not None or d.remote_error is not None:
                self._broken()  # it ended while we waited for credit

    def _broken(self) -> None:
        d = self._d
        if d.remote_error is not None:
            raise d.remote_error
        if d.final is not None and 'return' in d.final:
            raise trio.BrokenResourceError(
                f'{self._what} in actor {d.chan.uid} has returned: nobody '
                f'receives what this stream sends')
        outcome_of(d, self._what)

    async def aclose(self) -> None:
        """Close this side: the peer's iteration ends. A two-way stream
        can still receive until the peer closes its side."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        if self._on_close is not None:
            await self._on_close(self)
        elif self._two_way:
            d = self._d
            await _send_quietly(d, stop_msg(d.caller, d.cid))
            if d.send_error is not None:
                # the last items could not be sent (and were not)
                raise d.send_error

    async def __aenter__(self) -> 'MsgStream':
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _send_quietly(d: Dialog, msg: dict) -> None:
    """Send ``msg`` even from a cancelled task, bounded: a peer that
    cannot take it (gone, or not reading) is told nothing more."""
    if not d.chan.connected:
        return
    with trio.move_on_after(1, shield=True):
        try:
            await d.chan.send(msg)
        except TransportClosed:
            pass


async def stop_remote(d: Dialog, error: BaseException | None = None,
                      uid: Optional[tuple] = None) -> None:
    """Cancel the peer's task for ``d`` (telling it our ``error``, if any)
    and wait, bounded by ``CANCEL_GRACE``, until it reports it has
    stopped. Shielded: this runs on the way out of cancelled blocks."""
    if d.final is not None:
        return
    d.cancel_requested = True
    packed = None
    if error is not None and not isinstance(error, trio.Cancelled):
        packed = pack_error(error, uid) if uid else None
    await _send_quietly(d, cancel_msg(d.cid, packed))
    with trio.move_on_after(CANCEL_GRACE, shield=True):
        await d.wait_final()


class Context:
    """A ``@tractor.context`` or ``@tractor.stream`` call, on either side.

    The callee gets it as its first argument, ``ctx``: ``await
    ctx.started(value)`` hands the caller its first value, ``async with
    ctx.open_stream() as stream`` opens the two-way stream, and for a
    ``@tractor.stream`` function ``await ctx.send_yield(item)`` feeds the
    caller's ``async for``. The caller gets it from
    ``portal.open_context()``: ``ctx.open_stream()`` as well, ``await
    ctx.result()`` for the callee's return value and ``await
    ctx.cancel()`` to cancel it.
    """

    def __init__(self, d: Dialog, *, what: str,
                 portal: Optional[Portal] = None) -> None:
        self._d = d
        self._what = what
        #: the Portal the caller opened the context through (caller side)
        self.portal = portal
        self._stream: Optional[MsgStream] = None
        self._started = False

    @property
    def chan(self) -> Channel:
        return self._d.chan

    @property
    def cid(self) -> int:
        return self._d.cid

    @property
    def side(self) -> str:
        return 'caller' if self._d.caller else 'callee'

    @property
    def cancel_called(self) -> bool:
        """True once this side asked for the call to be cancelled."""
        return self._d.cancel_requested

    def __repr__(self) -> str:
        return (f'<Context cid={self.cid} {self._what} {self.side} '
                f'peer={self.chan.uid}>')

    # -- callee --------------------------------------------------------
    async def started(self, value: Any = None) -> None:
        """Hand ``value`` to the caller's ``open_context()``: its block
        starts running now (callee side, once)."""
        if self._d.caller:
            raise RuntimeError('started() is for the callee side')
        if self._started:
            raise RuntimeError(f'{self!r}: started() was already called')
        self._started = True
        await self.chan.send({'cid': self.cid, 'started': value})

    async def send_yield(self, item: Any) -> None:
        """Send ``item`` to the caller of a ``@tractor.stream`` function."""
        d = self._d
        if d.remote_error is not None:
            raise d.remote_error
        if not queue_item(d, item):
            await send_item(d, item)

    # -- both ----------------------------------------------------------
    @asynccontextmanager
    async def open_stream(self) -> AsyncIterator[MsgStream]:
        """The two-way stream of this context; leaving the block closes
        this side's sending half."""
        d = self._d
        if self._stream is not None:
            raise RuntimeError(f'{self!r}: its stream was already opened')
        if not d.caller and not self._started:
            raise RuntimeError(
                f'{self!r}: call `await ctx.started()` before opening the '
                f'stream (the caller is still waiting for it)')
        stream = self._stream = MsgStream(d, what=self._what, two_way=True)
        try:
            yield stream
        except BaseException:
            # no 'stop': the error or cancel that follows ends the peer's
            # stream, and must not look like a clean end to it
            stream._closed = True
            raise
        await stream.aclose()

    # -- caller --------------------------------------------------------
    async def result(self) -> Any:
        """The callee's return value, once it returns (its error, raised,
        if it failed). Items it still sends are consumed and dropped
        meanwhile, so a callee blocked on its window can finish."""
        d = self._d
        if not d.caller:
            raise RuntimeError('result() is for the caller side')
        while d.final is None or d.pending():
            msg = await d.get()
            if 'yield' in msg or 'yields' in msg:
                items = msg.get('yields')
                n = d.took_many(1 if items is None else len(items),
                                msg['_n'])
                if n is not None:
                    d.chan.post(credit_msg(True, d.cid, n))
            elif 'ackreq' in msg:
                n = d.take_credit()
                if n:
                    d.chan.post(credit_msg(True, d.cid, n))
        return outcome_of(d, self._what)

    async def cancel(self) -> None:
        """Cancel the callee and wait (bounded by ``CANCEL_GRACE``) until
        it has stopped; the context then ends quietly."""
        d = self._d
        if not d.caller:
            raise RuntimeError(
                'cancel() is for the caller side; the callee cancels '
                'itself by raising or with a trio cancel scope')
        await stop_remote(d)


def _mark(func: F, attr: str, deco: str) -> F:
    fn: Any = func  # (not narrowed: the decorator returns func as given)
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f'@tractor.{deco} needs an async function, {func!r} is not one')
    params = list(inspect.signature(func).parameters)
    if not params or params[0] != 'ctx':
        raise TypeError(
            f'@tractor.{deco} function {func.__qualname__} must take `ctx` '
            f'(a tractor.Context) as its first argument')
    setattr(func, attr, True)
    return func


def stream(func: F) -> F:
    """Mark an async function as a one-way stream: it takes ``ctx`` first
    and calls ``await ctx.send_yield(value)``; callers ``async for`` over
    ``await portal.run(...)`` (or ``portal.open_stream_from(...)``) exactly
    as with an async generator."""
    return _mark(func, '_tractor_stream_function', 'stream')


def context(func: F) -> F:
    """Mark an async function as a context: it takes ``ctx`` first, may
    call ``await ctx.started(value)`` and open a two-way stream with
    ``ctx.open_stream()``; callers use ``portal.open_context(...)``."""
    return _mark(func, '_tractor_context_function', 'context')
