"""Two levels down: the grandchild 'deep' stops at a breakpoint, asking
its parent for the terminal, which asks the root. With ``error`` on the
command line it raises instead: pdb opens once, post-mortem where it was
raised; the middle actor and the root only relay the error."""
import sys

import tractor


async def deep(fail: bool):
    depth = 2
    items = {'a': 1}
    if fail:
        return items['b']  # KeyError here
    await tractor.breakpoint()
    return depth


async def middle(fail: bool):
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('deep', deep, fail=fail)
        return await portal.result()


async def main(fail: bool):
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('middle', middle, fail=fail)
        print('deep returned', await portal.result())


if __name__ == '__main__':
    tractor.run(main, 'error' in sys.argv[1:], debug_mode=True)
