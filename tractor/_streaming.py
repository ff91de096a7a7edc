"""Streams that are not async generators: ``@tractor.stream`` functions
push values through a :class:`Context`."""
from __future__ import annotations

import inspect

from ._channel import Channel


class Context:
    """The callee's end of one streaming call: ``await ctx.send_yield(v)``
    delivers ``v`` to the caller's ``async for``. Several tasks may share a
    context; sends wait while the reader is ``STREAM_WINDOW`` items
    behind."""

    __slots__ = ('chan', 'cid', '_task')

    def __init__(self, chan: Channel, cid: int, task) -> None:
        self.chan = chan
        self.cid = cid
        self._task = task

    async def send_yield(self, data) -> None:
        task = self._task
        await task.wait_window(self.chan, self.cid)
        task.sent(await self.chan.send_buffered(
            {'cid': self.cid, 'yield': data}))

    def __repr__(self) -> str:
        return f'<Context cid={self.cid} peer={self.chan.uid}>'


def stream(func):
    """Mark an async function as a stream: it takes ``ctx`` first and calls
    ``await ctx.send_yield(value)``; callers ``async for`` over
    ``await portal.run(...)`` exactly as with an async generator."""
    if not inspect.iscoroutinefunction(func):
        raise TypeError(
            f'@tractor.stream needs an async function, {func!r} is not one')
    params = list(inspect.signature(func).parameters)
    if not params or params[0] != 'ctx':
        raise TypeError(
            f'@tractor.stream function {func.__qualname__} must take `ctx` '
            f'(a tractor.Context) as its first argument')
    func._tractor_stream_function = True
    return func
