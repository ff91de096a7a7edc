"""Portals: call functions in another actor as if they were local."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio

from . import _state
from ._actor import _CREDIT_BATCH, _CREDIT_BYTES, Actor
from ._channel import Channel
from ._exceptions import NoResult, RemoteActorError, unpack_error
from .log import get_logger
from .transports import TransportClosed

log = get_logger(__name__)

#: seconds a polite cancel request may take before the caller gives up
CANCEL_GRACE = 3.0


def _error_from(msg: dict, chan: Channel, what: str) -> BaseException:
    if 'error' in msg:
        return unpack_error(msg['error'], chan)
    if 'closed' in msg:
        return TransportClosed(
            f'connection to actor {chan.uid} at {chan.raddr} was lost during '
            f'{what}: {msg["closed"]}')
    return RemoteActorError(f'unexpected reply to {what}: {msg!r}',
                            'ProtocolError', chan.uid)


class Portal:
    """A handle on another actor, over one :class:`Channel`.

    ``await portal.run(module, func, **kwargs)`` returns what the function
    returns, or an async iterable when the function is an async generator
    or a ``@tractor.stream``.
    """

    def __init__(self, channel: Channel, actor: Actor | None = None) -> None:
        self.channel = channel
        self._actor = actor or _state.current_actor()
        self._result: outcome.Outcome | None = None
        self._result_ready: trio.Event | None = None
        # set by the actor's supervisor (its nursery): told of every
        # cancel request so that it can kill an actor that ignores it
        self._on_cancel = None

    def __repr__(self) -> str:
        return f'<Portal to {self.channel.uid} over {self.channel}>'

    async def run(self, ns, func: str, **kwargs) -> Any:
        """Run ``ns.func(**kwargs)`` in the remote actor. ``ns`` is a module
        path (or ``'self'`` for the actor's runtime methods)."""
        if not isinstance(ns, str):
            ns = getattr(ns, '__name__', str(ns))
        actor, chan = self._actor, self.channel
        cid, q = actor._open_call(chan)
        sent = False
        try:
            await chan.send({'cmd': 'run', 'cid': cid, 'ns': ns,
                             'func': func, 'kw': kwargs})
            sent = True
            msg = await q.get()
        except BaseException:
            actor._close_call(cid)
            if sent:
                await _cancel_remote(chan, cid)
            raise
        if 'return' in msg:
            actor._close_call(cid)
            return msg['return']
        if 'stream' in msg:
            return _stream(actor, chan, cid, q)
        actor._close_call(cid)
        raise _error_from(msg, chan, f'{ns}.{func}()')

    async def result(self) -> Any:
        """The return value of the function a ``run_in_actor`` actor runs
        (an async iterable if it is a stream); raises its error."""
        if self._result_ready is None:
            raise NoResult(
                f'{self.channel.uid} was started with start_actor(): it runs '
                f'no main function, so it has no result; use portal.run()')
        await self._result_ready.wait()
        return self._result.unwrap()

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


async def _cancel_remote(chan: Channel, cid: int) -> None:
    """Tell the callee to stop serving ``cid``; best effort and bounded."""
    if not chan.connected:
        return
    with trio.move_on_after(1) as cs:
        cs.shield = True
        try:
            await chan.send({'cmd': 'cancel', 'cid': cid})
        except TransportClosed:
            pass


async def _stream(actor: Actor, chan: Channel, cid: int, q):
    """The caller's side of a remote stream, as an async generator so that
    leaving an ``async for`` (or a cancel scope) stops the remote task."""
    consumed = consumed_bytes = 0
    finished = False
    get = q.get
    try:
        while True:
            msg = await get()
            if 'yield' in msg:
                consumed += 1
                consumed_bytes += msg['_n']
                if (consumed >= _CREDIT_BATCH
                        or consumed_bytes >= _CREDIT_BYTES):
                    n, consumed, consumed_bytes = consumed, 0, 0
                    await chan.send({'cmd': 'credit', 'cid': cid, 'n': n})
                # hold no reference while waiting for the next item: a
                # large one is then freed (and its memory reused) before
                # the next is received
                item, msg = msg['yield'], None
                yield item
                item = None
            elif 'ackreq' in msg:
                # the producer stalled on its byte window: credit what we
                # consumed since the last grant
                if consumed:
                    n, consumed, consumed_bytes = consumed, 0, 0
                    await chan.send({'cmd': 'credit', 'cid': cid, 'n': n})
            elif 'stop' in msg:
                finished = True
                return
            else:
                finished = True
                raise _error_from(msg, chan, 'a stream')
    finally:
        actor._close_call(cid)
        if not finished:
            await _cancel_remote(chan, cid)


@asynccontextmanager
async def open_portal(addr, actor: Actor | None = None):
    """Connect to the actor at ``addr`` and yield a Portal to it; the
    connection closes when the block exits."""
    actor = actor or _state.current_actor()
    chan = await actor.connect(addr)
    try:
        yield Portal(chan, actor)
    finally:
        with trio.CancelScope(shield=True):
            await chan.aclose()
