"""A plain ``breakpoint()`` in sync code of a child, with debug mode on."""
import tractor


def compute(n: int):
    total = sum(range(n))
    breakpoint()
    return total


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('syncer', compute, n=10)
        print('syncer returned', await portal.result())


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
