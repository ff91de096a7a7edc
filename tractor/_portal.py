"""Portals: call functions in another actor as if they were local."""
from __future__ import annotations

from contextlib import asynccontextmanager
import types
from typing import Any, AsyncIterator, Callable, Optional, Union

import trio

from . import _state
from ._actor import Actor
from ._channel import Channel
from ._exceptions import ContextCancelled, NoResult, RemoteActorError
from ._flow import Dialog
from ._protocol import run_msg
from ._streaming import (
    Context,
    MsgStream,
    error_from,
    outcome_of,
    stop_remote,
)
from .log import get_logger
from .transports import TransportClosed

log = get_logger(__name__)

#: what names a function's module: its path, the module itself, or
#: ``'self'`` for the remote actor's runtime methods
Namespace = Union[str, types.ModuleType]

#: seconds a polite cancel request may take before the caller gives up
CANCEL_GRACE = 3.0


def _ns_name(ns: Namespace) -> str:
    return ns if isinstance(ns, str) else getattr(ns, '__name__', str(ns))


class Portal:
    """A handle on another actor, over one :class:`Channel`.

    ``await portal.run(module, func, **kwargs)`` returns what the function
    returns, or a :class:`MsgStream` (an async iterable, and an async
    context manager that stops the remote task on exit) when the function
    is an async generator or a ``@tractor.stream``.
    ``portal.open_stream_from(...)`` and ``portal.open_context(...)`` give
    streams whose lifetime is a block.
    """

    def __init__(self, channel: Channel, actor: Actor | None = None, *,
                 main: Optional[MainResult] = None,
                 on_cancel: Optional[Callable[[], None]] = None) -> None:
        self.channel = channel
        self._actor = actor or _state.current_actor()
        # the supervisor (an ActorNursery) fills ``main`` with the outcome
        # of a run_in_actor actor's function, and is told of every cancel
        # request through ``on_cancel`` so it can kill an actor that
        # ignores one
        self._main = main
        self._on_cancel = on_cancel

    def __repr__(self) -> str:
        return f'<Portal to {self.channel.uid} over {self.channel}>'

    def rebind(self, channel: Channel) -> None:
        """Point this portal at ``channel``: a supervisor does so when it
        restarts the actor, so the portal its user holds reaches the new
        process. Calls in flight on the old channel fail with
        ``TransportClosed``, as does any made before the restart is up."""
        self.channel = channel

    async def run(self, ns: Namespace, func: str, **kwargs: Any) -> Any:
        """Run ``ns.func(**kwargs)`` in the remote actor. ``ns`` is a module
        path (or ``'self'`` for the actor's runtime methods)."""
        ns = _ns_name(ns)
        r = await self._actor.call(self.channel, ns, func, kwargs,
                                   streams=True)
        if type(r) is Dialog:
            return self._one_way(r, f'{ns}.{func}()')
        return r

    def _one_way(self, d: Dialog, what: str) -> MsgStream:
        actor = self._actor

        async def on_close(stream: MsgStream) -> None:
            # stop the producer and wait until it has (bounded)
            try:
                if not stream.finished:
                    await stop_remote(d)
            finally:
                actor.close_call(d.cid)
        return MsgStream(d, what=what, two_way=False, on_close=on_close,
                         on_end=lambda: actor.close_call(d.cid))

    @asynccontextmanager
    async def open_stream_from(self, ns: Namespace, func: str,
                               **kwargs: Any) -> AsyncIterator[MsgStream]:
        """Stream what the async generator (or ``@tractor.stream``
        function) ``ns.func(**kwargs)`` yields: ``async for item in
        stream``. Leaving the block by any path (end of the stream, break,
        error, cancel) stops the remote task and waits until it has
        stopped (``CANCEL_GRACE`` at most)."""
        ns = _ns_name(ns)
        r = await self._actor.call(self.channel, ns, func, kwargs,
                                   streams=True)
        if type(r) is not Dialog:
            raise TypeError(
                f'{ns}.{func} is not a stream (an async generator or a '
                f'@tractor.stream function): it returned {r!r}')
        async with self._one_way(r, f'{ns}.{func}()') as stream:
            yield stream

    @asynccontextmanager
    async def open_context(
        self, ns: Namespace, func: str, **kwargs: Any
    ) -> AsyncIterator[tuple[Context, Any]]:
        """Call the ``@tractor.context`` function ``ns.func(ctx,
        **kwargs)`` and enter the block once it calls
        ``ctx.started(value)``, with ``(ctx, value)``.

        The block and the remote function run side by side:
        ``ctx.open_stream()`` opens their two-way stream. Leaving the block
        waits for the function's result (``await ctx.result()`` gives it
        inside). An error or cancel in the block cancels the remote
        function first (bounded by ``CANCEL_GRACE``); an error in the
        remote function, or the loss of its actor, cancels the block and
        is raised here as a ``RemoteActorError`` (``TransportClosed``).
        """
        ns = _ns_name(ns)
        what = f'{ns}.{func}()'
        actor, chan = self._actor, self.channel
        d = actor.open_dialog(chan)
        ctx = Context(d, what=what, portal=self)
        try:
            await chan.send(run_msg(d.cid, ns, func, kwargs))
            msg = await d.get()
            if 'started' in msg:
                first = msg['started']
            elif 'return' in msg:
                first = None  # it returned without started(): no block
            elif 'stream' in msg:
                await stop_remote(d)
                raise TypeError(
                    f'{what} is a one-way stream, not a @tractor.context '
                    f'function: use `portal.open_stream_from()`')
            else:
                outcome_of(d, what)  # raises
                raise error_from(msg, chan, what)
        except BaseException:
            with trio.CancelScope(shield=True):
                await stop_remote(d)
            actor.close_call(d.cid)
            raise
        # the remote side's failure (or loss) cancels the block: see
        # Dialog.finish
        d.scope = body = trio.CancelScope()
        try:
            with body:
                try:
                    yield ctx, first
                except BaseException as exc:
                    if d.final is None:
                        with trio.CancelScope(shield=True):
                            await stop_remote(d, exc, actor.uid)
                    raise
            if not body.cancelled_caught:
                try:
                    await ctx.result()
                except ContextCancelled:
                    if not d.cancel_requested:
                        raise
        finally:
            d.scope = None
            actor.close_call(d.cid)
        if body.cancelled_caught:
            # cancelled by the remote side's end: raise why
            if d.final is not None and not (
                    'cancelled' in d.final and d.cancel_requested):
                outcome_of(d, what)

    async def result(self) -> Any:
        """The return value of the function a ``run_in_actor`` actor runs
        (an async iterable if it is a stream); raises its error."""
        if self._main is None:
            raise NoResult(
                f'{self.channel.uid} was started with start_actor(): it runs '
                f'no main function, so it has no result; use portal.run()')
        await self._main.ready.wait()
        self._main.claimed = True
        result = self._main.outcome
        assert result is not None  # (set before ready)
        return result.unwrap()

    async def cancel_actor(self) -> bool:
        """Ask the actor to cancel itself; True if it agreed in time.
        Its supervisor kills the process if it has not exited
        ``KILL_GRACE`` seconds after this request."""
        if self._on_cancel is not None:
            self._on_cancel()
        if not self.channel.connected:
            return False
        with trio.move_on_after(CANCEL_GRACE) as cs:
            cs.shield = True
            try:
                return bool(await self.run('self', 'cancel'))
            except (TransportClosed, RemoteActorError):
                return False
        return False


class MainResult:
    """Where a ``run_in_actor`` actor's outcome is left for
    :meth:`Portal.result` (by the nursery that supervises it)."""

    __slots__ = ('ready', 'outcome', 'claimed')

    def __init__(self) -> None:
        self.ready = trio.Event()
        #: an outcome.Outcome, or anything else with ``unwrap()``
        self.outcome: Any = None
        #: somebody received it through Portal.result()
        self.claimed = False

    def set(self, result: Any) -> None:
        self.outcome = result
        self.ready.set()


@asynccontextmanager
async def open_portal(addr: Any, actor: Actor | None = None
                      ) -> AsyncIterator[Portal]:
    """Connect to the actor at ``addr`` and yield a Portal to it; the
    connection closes when the block exits."""
    actor = actor or _state.current_actor()
    chan = await actor.connect(addr)
    try:
        yield Portal(chan, actor)
    finally:
        with trio.CancelScope(shield=True):
            await chan.aclose()
