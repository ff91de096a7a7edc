"""A tree of actors for the orphan/Ctrl-C tests, run as a script:

    python tree.py START_METHOD ARBITER_PORT DEPTH

root -> d{DEPTH} -> ... -> d0, each a daemon. Once the whole tree is up
the root prints the actors' pids as one JSON line, then sleeps until it
is killed or interrupted.
"""
import json
import os
import sys

import trio

import tractor


@tractor.stream
async def subtree(ctx, depth):
    """Start the rest of the tree below this actor, send up every pid in
    it (this one first), then hold the tree up forever. (The stream from
    below is never left: that would cancel the task holding the subtree's
    nursery, and with it the subtree.)"""
    async with tractor.open_nursery() as n:
        if depth == 0:
            await ctx.send_yield([os.getpid()])
            await trio.sleep_forever()
        portal = await n.start_actor(f'd{depth - 1}',
                                     rpc_module_paths=[__name__])
        async for below in await portal.run(__name__, 'subtree',
                                            depth=depth - 1):
            await ctx.send_yield([os.getpid()] + below)
            await trio.sleep_forever()


async def main(depth):
    async with tractor.open_nursery() as n:
        top = await n.start_actor(f'd{depth}', rpc_module_paths=[__name__])
        async for pids in await top.run(__name__, 'subtree', depth=depth):
            print(json.dumps(pids), flush=True)
            await trio.sleep_forever()


if __name__ == '__main__':
    tractor.run(main, int(sys.argv[3]), start_method=sys.argv[1],
                arbiter_addr=('127.0.0.1', int(sys.argv[2])))
