"""Post-mortem: the child's error opens pdb where it was raised; after
``c`` the error travels to the root as usual."""
import tractor


async def divide(a: int, b: int):
    ratio = a / b  # b == 0: ZeroDivisionError here
    return ratio


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('divider', divide, a=1, b=0)
        await portal.result()


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
