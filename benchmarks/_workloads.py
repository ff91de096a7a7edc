"""What the child actors run, and the payloads every benchmark sends.

This module is exposed to the benchmark's child actors through
``rpc_module_paths``; it is also imported by the raw floors so that both
sides of every comparison build exactly the same messages.
"""
from __future__ import annotations

import functools
import os

import tractor

#: the module path child actors are asked to expose
MODULE = __name__

#: one MiB, the stream_large message size
LARGE = 1024 * 1024

#: calls outstanding on one portal in the rpc_inflight workload (and the
#: requests its floor keeps outstanding on one connection)
INFLIGHT = (1, 8, 64)


def small_msg(seq: int) -> dict:
    """The ~50-byte message (45 bytes as msgpack) of the small workloads."""
    return {'seq': seq, 'sym': 'BTCUSD', 'px': 101.25, 'qty': 7,
            'side': 'buy'}


def shares(n: int, k: int) -> list:
    """``n`` calls split between ``k`` callers as evenly as they go; every
    caller gets at least one, so ``k`` calls really are outstanding."""
    if n < k:
        raise ValueError(f'{n} calls cannot keep {k} outstanding: give '
                         f'--n {k} or more')
    return [n // k + (i < n % k) for i in range(k)]


@functools.lru_cache(maxsize=None)
def large_payload(codec: str):
    """1 MiB: bytes, or a str under codecs that cannot carry bytes (json).
    Made on first use, not at import: every child actor of every workload
    imports this module, and two MiB built there would be counted in the
    memory workload's figure for an idle actor."""
    return 'x' * LARGE if codec == 'json' else b'x' * LARGE


# -- remotely called ----------------------------------------------------
async def noop() -> None:
    """The rpc workload's target, and the spawn workload's first reply."""
    return None


async def pid() -> int:
    """The actor's process id: the memory workload reads the process's
    ``/proc/PID/smaps_rollup`` from the parent."""
    return os.getpid()


async def stream_small(n: int):
    """``n`` small messages, child to parent."""
    for i in range(n):
        yield small_msg(i)


async def stream_large(n: int, codec: str = 'msgpack'):
    """``n`` messages of 1 MiB each, child to parent."""
    payload = large_payload(codec)
    for _ in range(n):
        yield payload


@tractor.context
async def echo(ctx) -> None:
    """The bidir workload's callee: sends back every item it receives,
    one at a time, over the context's two-way stream."""
    await ctx.started()
    async with ctx.open_stream() as stream:
        async for item in stream:
            await stream.send(item)


# -- the pipeline workload's stages: plain user code, one item at a time --
async def pipe_source(n: int):
    """The first stage: the ints 0 .. n-1, yielded one by one."""
    for i in range(n):
        yield i


async def pipe_square(upstream: str, n: int):
    """The middle stage: finds ``upstream`` (the source actor) by name,
    streams from it and yields the square of each item, one by one."""
    async with tractor.wait_for_actor(upstream) as source:
        async with source.open_stream_from(MODULE, 'pipe_source',
                                           n=n) as stream:
            async for x in stream:
                yield x * x


def pipe_total(n: int) -> int:
    """What the sink's items add up to: the sum of i*i for i < n."""
    return (n - 1) * n * (2 * n - 1) // 6
