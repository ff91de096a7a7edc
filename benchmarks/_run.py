"""One measurement, in a fresh process; prints one JSON result line.

    python -m benchmarks._run <workload> <variant> <codec> [--n N]
        [--warmup W] [--start-method M] [--floor [--batched]]

``workload`` is spawn, spawn_many, memory, rpc, rpc_inflight, bidir,
stream_small, stream_large, fanin or pipeline; ``variant`` a transport with
its scheme (tcp, uds, nng+tcp, nng+ipc, zmq+tcp, zmq+ipc) or a secured one
(tcp+tls, nng+tls, zmq+curve: that transport with ``tls=True``); with
``--floor`` the workload runs over the variant's library directly (see
:mod:`benchmarks._floor`; ``--batched`` too: the library used well, a
burst of messages per call; secured variants have no floor) and ``codec``
is ignored. ``--n`` is the message or call count, or the number of actors
for spawn_many and memory. The pipeline's floors are not a transport's:
they are
``pipeline mp.Queue`` and ``pipeline mp.Queue-batch64`` with ``--floor``
(processes chained by ``multiprocessing.Queue``, one item or 64 per put).

The last stdout line is ``BENCH_RESULT {json}``: ``{"ok": true,
"metrics": {...}}`` or ``{"ok": false, "error": "..."}``.
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import socket
import sys
import time
import traceback
import uuid

MARK = 'BENCH_RESULT '


def _free_port() -> int:
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def arbiter_addr(variant: str) -> str:
    """A private arbiter address of ``variant``'s kind, so concurrent runs
    (and other trees on this host) never meet."""
    from tractor._tls import split_transport
    from tractor.transports import Addr, get_transport, runtime_dir
    variant = split_transport(variant, None)[0]  # tcp+tls: a tcp address
    name, _, scheme = variant.partition('+')
    scheme = scheme or get_transport(name).schemes[0]
    if scheme == 'ipc':
        return str(Addr(name, 'ipc', path=os.path.join(
            runtime_dir(), f'bench-{uuid.uuid4().hex[:10]}.sock')))
    return str(Addr(name, scheme, host='127.0.0.1', port=_free_port()))


# -- the runtime workloads (run inside the root actor) -------------------
async def _start_many(an, k: int, prefix: str, func: str = 'noop') -> list:
    """Start ``k`` actors at once in ``an``, each until it has answered
    one call of ``func``; returns the answers."""
    import trio
    from ._workloads import MODULE
    answers = [None] * k

    async def one(i):
        portal = await an.start_actor(
            f'{prefix}{i}', rpc_module_paths=[MODULE])
        answers[i] = await portal.run(MODULE, func)
    async with trio.open_nursery() as tn:
        for i in range(k):
            tn.start_soon(one, i)
    return answers


def _need_actors(args) -> None:
    if args.n < 1:
        raise ValueError(f'{args.workload} needs --n 1 or more (actors)')


async def _spawn_cycle(k: int, prefix: str = 'spawn') -> tuple:
    """Start ``k`` actors at once, each until it has answered one
    ``noop`` call, then tear them all down; returns (ms up, ms down)."""
    import tractor
    pc = time.perf_counter
    gc.collect()
    t0 = pc()
    async with tractor.open_nursery() as an:
        await _start_many(an, k, prefix)
        t_up = pc()
        await an.cancel()
    t_down = pc()
    return (t_up - t0) * 1e3, (t_down - t_up) * 1e3


async def w_spawn(args):
    cold, cold_down = await _spawn_cycle(1)
    up1, down1 = await _spawn_cycle(1)
    up8, down8 = await _spawn_cycle(8)
    return {'spawn1_ms': up1, 'spawn8_ms': up8, 'spawn1_cold_ms': cold,
            'teardown1_ms': down1, 'teardown8_ms': down8,
            'teardown1_cold_ms': cold_down}


async def w_spawn_many(args):
    """``n`` actors started at once, timed until every one has answered a
    call, then their teardown. ``warmup`` cycles of one actor go first
    (the first starts the forkserver), so the figure is a warm tree's."""
    _need_actors(args)
    for _ in range(args.warmup):
        await _spawn_cycle(1, 'warm')
    up, down = await _spawn_cycle(args.n, 'many')
    return {'per_actor_ms': up / args.n, 'up_ms': up, 'teardown_ms': down,
            'count': args.n}


def smaps_rollup(pid) -> dict:
    """``/proc/PID/smaps_rollup`` as ``{field: kB}`` (Linux 4.14 and
    later): one read gives a process's RSS and PSS."""
    path = f'/proc/{pid}/smaps_rollup'
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise RuntimeError(
            f'{path} does not exist: the memory workload needs Linux 4.14 '
            f'or later (leave memory out of --workloads elsewhere)'
        ) from None
    out = {}
    for line in lines[1:]:  # the first line is the address range
        key, _, rest = line.partition(':')
        fields = rest.split()
        if fields and fields[-1] == 'kB':
            out[key] = int(fields[0])
    return out


async def w_memory(args):
    """``n`` actors started at once; once every one has answered a call
    (with its pid) and sits idle, the RSS and PSS of each from
    ``/proc/PID/smaps_rollup``. PSS shares every page among the processes
    mapping it, so it is what one more actor costs the machine, where
    RSS counts the pages it shares with its forkserver siblings in full."""
    import statistics
    import tractor
    _need_actors(args)
    n = args.n
    async with tractor.open_nursery() as an:
        pids = await _start_many(an, n, 'idle', 'pid')
        usage = [smaps_rollup(pid) for pid in pids]
        root = smaps_rollup(os.getpid())
        await an.cancel()
    mib = 1024.0  # smaps counts kB (KiB)
    pss = [u['Pss'] / mib for u in usage]
    rss = [u['Rss'] / mib for u in usage]
    uss = [(u['Private_Clean'] + u['Private_Dirty']) / mib for u in usage]
    med = statistics.median
    return {'pss_mib': med(pss), 'rss_mib': med(rss), 'uss_mib': med(uss),
            'pss_mib_max': max(pss), 'rss_mib_max': max(rss),
            'pss_mib_total': sum(pss), 'root_pss_mib': root['Pss'] / mib,
            'root_rss_mib': root['Rss'] / mib, 'count': n}


async def w_rpc(args):
    import tractor
    from ._floor import latency_metrics
    from ._workloads import MODULE
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('rpc', rpc_module_paths=[MODULE])
        run = portal.run
        for _ in range(args.warmup):
            await run(MODULE, 'noop')
        gc.collect()
        pc = time.perf_counter_ns
        lat = []
        for _ in range(args.n):
            t0 = pc()
            await run(MODULE, 'noop')
            lat.append(pc() - t0)
        await an.cancel()
    return latency_metrics(lat)


async def w_rpc_inflight(args):
    """Calls per second with 1, 8 and 64 calls outstanding on one portal:
    that many tasks, each looping ``await portal.run(MODULE, 'noop')``,
    share a total of ``n`` calls (the same total at every level)."""
    import trio
    import tractor
    from ._workloads import INFLIGHT, MODULE, shares
    split = {c: shares(args.n, c) for c in INFLIGHT}
    out = {'count': args.n}
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('rpc', rpc_module_paths=[MODULE])
        run = portal.run
        for _ in range(args.warmup):
            await run(MODULE, 'noop')

        async def caller(k):
            for _ in range(k):
                await run(MODULE, 'noop')

        for c in INFLIGHT:
            gc.collect()
            t0 = time.perf_counter()
            async with trio.open_nursery() as tn:
                for k in split[c]:
                    tn.start_soon(caller, k)
            dt = time.perf_counter() - t0
            out[f'calls_per_s_{c}'] = args.n / dt
            out[f'seconds_{c}'] = dt
        await an.cancel()
    return out


async def w_bidir(args):
    """Round trips over an open two-way stream: send one item, receive
    its echo (the cost of one hop between two stages)."""
    import tractor
    from ._floor import latency_metrics
    from ._workloads import small_msg
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('echo', rpc_module_paths=[_mod()])
        async with portal.open_context(_mod(), 'echo') as (ctx, _):
            async with ctx.open_stream() as stream:
                send, receive = stream.send, stream.receive
                for i in range(args.warmup):
                    await send(small_msg(i))
                    await receive()
                gc.collect()
                pc = time.perf_counter_ns
                lat = []
                for i in range(args.n):
                    msg = small_msg(i)
                    t0 = pc()
                    await send(msg)
                    got = await receive()
                    lat.append(pc() - t0)
                if got['seq'] != args.n - 1:
                    raise AssertionError(f'last echo was {got!r}')
        await an.cancel()
    return latency_metrics(lat)


async def _consume(portal, func, **kw):
    count = 0
    size = 0
    async for item in await portal.run(_mod(), func, **kw):
        count += 1
        if func == 'stream_large':
            size += len(item)
    return count, size


def _mod():
    from ._workloads import MODULE
    return MODULE


async def w_stream_small(args):
    import tractor
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('src', rpc_module_paths=[_mod()])
        await portal.run(_mod(), 'noop')
        gc.collect()
        t0 = time.perf_counter()
        count, _ = await _consume(portal, 'stream_small', n=args.n)
        dt = time.perf_counter() - t0
        await an.cancel()
    if count != args.n:
        raise AssertionError(f'got {count} of {args.n} messages')
    return {'msgs_per_s': count / dt, 'seconds': dt, 'count': count}


async def w_stream_large(args):
    import tractor
    from ._workloads import LARGE
    async with tractor.open_nursery() as an:
        portal = await an.start_actor('src', rpc_module_paths=[_mod()])
        await portal.run(_mod(), 'noop')
        gc.collect()
        t0 = time.perf_counter()
        count, size = await _consume(portal, 'stream_large', n=args.n,
                                     codec=args.codec)
        dt = time.perf_counter() - t0
        await an.cancel()
    if count != args.n or size != args.n * LARGE:
        raise AssertionError(f'got {count} messages / {size} bytes')
    return {'mb_per_s': size / dt / 1e6, 'seconds': dt, 'count': count}


async def w_fanin(args):
    import trio
    import tractor
    per = args.n // 2
    async with tractor.open_nursery() as an:
        portals = []
        for i in range(2):
            p = await an.start_actor(f'src{i}', rpc_module_paths=[_mod()])
            await p.run(_mod(), 'noop')
            portals.append(p)
        counts = [0, 0]

        async def take(i, p):
            counts[i], _ = await _consume(p, 'stream_small', n=per)

        gc.collect()
        t0 = time.perf_counter()
        async with trio.open_nursery() as tn:
            for i, p in enumerate(portals):
                tn.start_soon(take, i, p)
        dt = time.perf_counter() - t0
        await an.cancel()
    total = sum(counts)
    if total != 2 * per:
        raise AssertionError(f'got {counts} of {per} messages each')
    return {'msgs_per_s': total / dt, 'seconds': dt, 'count': total}


async def w_pipeline(args):
    """source -> square -> root: the square stage opens its upstream
    itself (by name) and yields x*x one at a time; the root consumes with
    ``open_stream_from``. Timed from the root's call (both stages already
    up) to the last item, so the square stage's lookup and connection to
    the source are inside the time (``first_item_ms`` shows them)."""
    import tractor
    from ._workloads import pipe_total
    n = args.n
    async with tractor.open_nursery() as an:
        source = await an.start_actor('source', rpc_module_paths=[_mod()])
        square = await an.start_actor('square', rpc_module_paths=[_mod()])
        await source.run(_mod(), 'noop')
        await square.run(_mod(), 'noop')
        gc.collect()
        count = total = 0
        first = None
        t0 = time.perf_counter()
        async with square.open_stream_from(_mod(), 'pipe_square',
                                           upstream='source',
                                           n=n) as stream:
            async for x in stream:
                if first is None:
                    first = time.perf_counter()
                count += 1
                total += x
        dt = time.perf_counter() - t0
        await an.cancel()
    if count != n or total != pipe_total(n):
        raise AssertionError(f'got {count} of {n} items, total {total}')
    return {'items_per_s': count / dt, 'seconds': dt, 'count': count,
            'first_item_ms': (first - t0) * 1e3 if first else None}


WORKLOADS = {
    'spawn': w_spawn,
    'spawn_many': w_spawn_many,
    'memory': w_memory,
    'rpc': w_rpc,
    'rpc_inflight': w_rpc_inflight,
    'bidir': w_bidir,
    'stream_small': w_stream_small,
    'stream_large': w_stream_large,
    'fanin': w_fanin,
    'pipeline': w_pipeline,
}


def run_runtime(args) -> dict:
    import tractor
    fn = WORKLOADS[args.workload]
    return tractor.run(fn, args, transport=args.variant, codec=args.codec,
                       start_method=args.start_method,
                       arbiter_addr=arbiter_addr(args.variant),
                       name='bench-root')


def run_floor(args) -> dict:
    import trio
    from . import _floor
    if args.workload == 'pipeline':
        return _floor.measure_pipeline(args.variant, args.n)
    return trio.run(functools.partial(
        _floor.measure, args.variant, args.workload, args.n, args.warmup,
        batched=args.batched))


def parse(argv=None):
    ap = argparse.ArgumentParser(prog='python -m benchmarks._run')
    ap.add_argument('workload', choices=sorted(WORKLOADS))
    ap.add_argument('variant')
    ap.add_argument('codec')
    ap.add_argument('--n', type=int, default=0)
    ap.add_argument('--warmup', type=int, default=0)
    ap.add_argument('--start-method', default=None)
    ap.add_argument('--floor', action='store_true')
    ap.add_argument('--batched', action='store_true',
                    help="with --floor: the library used well, a burst of "
                         "messages per library call (stream_small, fanin)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    t0 = time.perf_counter()
    try:
        metrics = run_floor(args) if args.floor else run_runtime(args)
        out = {'ok': True, 'metrics': metrics}
    except BaseException as err:  # noqa: B902 - reported to the harness
        if isinstance(err, KeyboardInterrupt):
            raise
        traceback.print_exc()
        out = {'ok': False, 'error': f'{type(err).__name__}: {err}'}
    out['wall_s'] = time.perf_counter() - t0
    sys.stdout.write(MARK + json.dumps(out) + '\n')
    sys.stdout.flush()
    return 0 if out['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
