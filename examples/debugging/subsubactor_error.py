"""An error two levels down opens pdb once, where it was raised: the
middle actor only relays it (a RemoteActorError), and so does the root."""
import tractor


async def deep():
    items = {'a': 1}
    return items['b']  # KeyError here


async def middle():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('deep', deep)
        return await portal.result()


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('middle', middle)
        await portal.result()


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
