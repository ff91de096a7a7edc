"""Profile a workload's hot path in the parent and in the child actor.

    python -m benchmarks._profile rpc [tcp] [msgpack] [--n N] [--top K]
        [--out DIR] [--sort tottime|cumtime]
    python -m benchmarks._profile stream_small ...
    python -m benchmarks._profile pipeline ...   # root, square, source
    python -m benchmarks._profile bidir ...
    python -m benchmarks._profile rpc_inflight ...   # 64 calls in flight

cProfile runs in the parent (around the measured loop only) and in the
child (switched on and off by two inline RPCs from this module, so set-up
and teardown stay out); the pipeline has two children, ``source`` and
``square``, both profiled. The profiles are written as ``.pstats`` files
in ``--out`` (default ``benchmarks/results/profile-<workload>-<variant>-
<codec>-{parent,child}.pstats``, ``child-source``/``child-square`` for the
pipeline; open them with ``python -m pstats`` or snakeviz) and their top
functions printed. cProfile slows Python code down
(roughly 1.5-2x here), so read the shares, not the absolute times; the
un-profiled rate is printed alongside.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import time

_prof = None


# -- run in the child, inline (plain functions: no task is started) ------
def prof_start() -> None:
    global _prof
    _prof = cProfile.Profile()
    _prof.enable()


def cpu_now() -> float:
    """This process's CPU seconds (user + system) so far."""
    return time.process_time()


def prof_stop(path: str) -> str:
    _prof.disable()
    _prof.dump_stats(path)
    return path


#: the child actors of each workload (default: one, 'prof')
CHILDREN = {'pipeline': ['source', 'square']}


async def _loop(portals: dict, workload: str, n: int,
                codec: str = 'msgpack'):
    from ._workloads import MODULE, small_msg
    if workload == 'pipeline':
        count = 0
        async with portals['square'].open_stream_from(
                MODULE, 'pipe_square', upstream='source', n=n) as stream:
            async for _ in stream:
                count += 1
        return count
    portal = portals['prof']
    if workload == 'bidir':
        async with portal.open_context(MODULE, 'echo') as (ctx, _):
            async with ctx.open_stream() as stream:
                for i in range(n):
                    await stream.send(small_msg(i))
                    await stream.receive()
        return n
    if workload == 'rpc':
        run = portal.run
        for _ in range(n):
            await run(MODULE, 'noop')
        return n
    if workload == 'rpc_inflight':
        import trio
        from ._workloads import INFLIGHT, shares
        run = portal.run

        async def caller(k):
            for _ in range(k):
                await run(MODULE, 'noop')

        async with trio.open_nursery() as tn:  # the most calls in flight
            for k in shares(n, max(INFLIGHT)):
                tn.start_soon(caller, k)
        return n
    count = 0
    kw = {'codec': codec} if workload == 'stream_large' else {}
    async for _ in await portal.run(MODULE, workload, n=n, **kw):
        count += 1
    return count


async def main(args):
    import tractor
    from ._workloads import MODULE
    me = __name__
    out = {}
    async with tractor.open_nursery() as an:
        portals = {}
        for name in CHILDREN.get(args.workload, ['prof']):
            portals[name] = await an.start_actor(
                name, rpc_module_paths=[MODULE, me])
        await _loop(portals, args.workload, max(args.n // 10, 10),
                    args.codec)  # warm up
        gc.collect()
        cpu0 = {name: await p.run(me, 'cpu_now')
                for name, p in portals.items()}
        cpu0['parent'] = time.process_time()
        t0 = time.perf_counter()
        await _loop(portals, args.workload, args.n, args.codec)
        out['plain_s'] = time.perf_counter() - t0
        cpu1 = {name: await p.run(me, 'cpu_now')
                for name, p in portals.items()}
        cpu1['parent'] = time.process_time()
        # CPU seconds each process spent on the un-profiled loop: where
        # the time goes, undistorted by cProfile
        out['cpu_s'] = {k: cpu1[k] - cpu0[k] for k in cpu0}
        for portal in portals.values():
            await portal.run(me, 'prof_start')
        pr = cProfile.Profile()
        t0 = time.perf_counter()
        pr.enable()
        await _loop(portals, args.workload, args.n, args.codec)
        pr.disable()
        out['profiled_s'] = time.perf_counter() - t0
        for name, portal in portals.items():
            await portal.run(me, 'prof_stop', path=args.child_paths[name])
        pr.dump_stats(args.parent_path)
        await an.cancel()
    return out


def top(path: str, k: int, sort: str) -> str:
    buf = io.StringIO()
    st = pstats.Stats(path, stream=buf)
    st.strip_dirs().sort_stats(sort).print_stats(k)
    text = buf.getvalue()
    # drop pstats' preamble up to the column header
    i = text.find('   ncalls')
    return text[i:] if i >= 0 else text


def cli(argv=None) -> int:
    ap = argparse.ArgumentParser(prog='python -m benchmarks._profile')
    ap.add_argument('workload', choices=['rpc', 'bidir', 'stream_small',
                                         'stream_large', 'pipeline',
                                         'rpc_inflight'])
    ap.add_argument('variant', nargs='?', default='tcp')
    ap.add_argument('codec', nargs='?', default='msgpack')
    ap.add_argument('--n', type=int, default=None,
                    help='calls or messages (default 5000 / 100000)')
    ap.add_argument('--top', type=int, default=25)
    ap.add_argument('--sort', default='tottime')
    ap.add_argument('--out', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'results'))
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = {'rpc': 5000, 'bidir': 5000,
                  'stream_large': 1000}.get(args.workload, 100_000)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f'profile-{args.workload}-'
                        f'{args.variant}-{args.codec}')
    args.parent_path = stem + '-parent.pstats'
    children = CHILDREN.get(args.workload, ['prof'])
    args.child_paths = {
        name: stem + ('-child.pstats' if len(children) == 1 else
                      f'-child-{name}.pstats') for name in children}
    import tractor
    from ._run import arbiter_addr
    res = tractor.run(main, args, transport=args.variant, codec=args.codec,
                      arbiter_addr=arbiter_addr(args.variant),
                      name='bench-root')
    unit = {'rpc': 'calls', 'bidir': 'round trips',
            'pipeline': 'items'}.get(args.workload, 'msgs')
    for what in ('plain', 'profiled'):
        s = res[f'{what}_s']
        print(f'{what:>8}: {args.n} {unit} in {s:.3f} s = '
              f'{args.n / s:,.0f} {unit}/s, {s / args.n * 1e6:.1f} us each')
    print('cpu (un-profiled run), per ' + unit.rstrip('s') + ': ' + ', '.join(
        f'{k} {v / args.n * 1e6:.2f} us' for k, v in res['cpu_s'].items()))
    sides = [('PARENT', args.parent_path)] + [
        (f'CHILD {name}' if len(args.child_paths) > 1 else 'CHILD', path)
        for name, path in args.child_paths.items()]
    for side, path in sides:
        print(f'\n== {side} ({path}), top {args.top} by {args.sort}')
        print(top(path, args.top, args.sort))
    return 0


if __name__ == '__main__':
    sys.exit(cli())
