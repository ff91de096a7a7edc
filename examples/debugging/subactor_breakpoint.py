"""A breakpoint in a child actor: its prompt comes up on this terminal.

    (Pdb) [actor 'breaker'] p x
    42
    (Pdb) [actor 'breaker'] c
"""
import tractor


async def breaker():
    x = 42
    await tractor.breakpoint()
    return x + 1


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('breaker', breaker)
        print('breaker returned', await portal.result())


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
