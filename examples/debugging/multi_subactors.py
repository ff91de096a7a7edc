"""Two children stop at once: one gets the prompt, the other waits its
turn and gets it after ``c``."""
import tractor


async def stopper(n: int):
    mine = n * 10
    await tractor.breakpoint()
    return mine


async def main():
    async with tractor.open_nursery() as n:
        first = await n.run_in_actor('first', stopper, n=1)
        second = await n.run_in_actor('second', stopper, n=2)
        print('results', await first.result(), await second.result())


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
