"""A streaming pipeline: source -> square -> shift -> sink, each an actor.

Every stage finds its upstream by name and streams from it directly, so
items go stage to stage, never through the root. Back-pressure holds end
to end: a slow sink slows every stage before it, through the streams'
credit windows, and no stage's memory grows. A stage that crashes tears
the whole pipeline down and its error reaches the root; Ctrl-C stops
everything.

    python pipeline.py                   # 1000 items
    python pipeline.py 100000            # more
    python pipeline.py 1000 --crash-at 500
"""
import sys

import tractor

_this = __name__


async def numbers(count):
    """The source: 0, 1, 2, ... count - 1 (forever if count < 0)."""
    i = 0
    while i != count:
        yield i
        i += 1


async def squared(upstream, count, crash_at=None):
    """A transform stage: squares what ``upstream`` (the source) sends."""
    async with tractor.wait_for_actor(upstream) as source:
        async with source.open_stream_from(_this, 'numbers',
                                           count=count) as stream:
            async for x in stream:
                if x == crash_at:
                    raise ValueError(f'square stage cannot take {x}')
                yield x * x


async def shifted(upstream, count, by, crash_at=None):
    """A transform stage: adds ``by`` to what ``upstream`` sends."""
    async with tractor.wait_for_actor(upstream) as square:
        async with square.open_stream_from(
                _this, 'squared', upstream='source', count=count,
                crash_at=crash_at) as stream:
            async for x in stream:
                yield x + by


async def sink(upstream, count, crash_at=None):
    """The last stage: totals what arrives."""
    total = n = 0
    async with tractor.wait_for_actor(upstream) as shift:
        async with shift.open_stream_from(
                _this, 'shifted', upstream='square', count=count, by=1,
                crash_at=crash_at) as stream:
            async for x in stream:
                total += x
                n += 1
    return n, total


async def main(count, crash_at=None):
    async with tractor.open_nursery() as n:
        for name in ('source', 'square', 'shift'):
            await n.start_actor(name, rpc_module_paths=[_this])
        portal = await n.run_in_actor('sink', sink, upstream='shift',
                                      count=count, crash_at=crash_at)
        print('pipeline running: source -> square -> shift -> sink',
              flush=True)
        got, total = await portal.result()
        await n.cancel()  # the stages serve until told otherwise
    print(f'sink got {got} items, total {total}')


if __name__ == '__main__':
    args = sys.argv[1:]
    crash_at = None
    if '--crash-at' in args:
        i = args.index('--crash-at')
        crash_at = int(args[i + 1])
        del args[i:i + 2]
    count = int(args[0]) if args else 1000
    try:
        tractor.run(main, count, crash_at=crash_at)
    except tractor.RemoteActorError as err:
        # the original error, raised in err.relay_path[0], relayed by the
        # stages after it
        print(f'pipeline failed: {str(err).splitlines()[0]} (in stage '
              f'{err.relay_path[0][0]!r})', file=sys.stderr)
        sys.exit(1)
