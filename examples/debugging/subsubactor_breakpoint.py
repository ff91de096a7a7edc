"""A breakpoint two levels down: the grandchild asks its parent for the
terminal, which asks the root."""
import tractor


async def deep():
    depth = 2
    await tractor.breakpoint()
    return depth


async def middle():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('deep', deep)
        return await portal.result()


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('middle', middle)
        print('deep returned', await portal.result())


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
