"""A child that runs on after its breakpoint: Ctrl-C then (outside any
prompt) tears the tree down as always."""
import trio
import tractor


async def sleeper():
    await tractor.breakpoint()
    print('sleeper sleeps', flush=True)
    await trio.sleep_forever()


async def main():
    async with tractor.open_nursery() as n:
        await n.run_in_actor('sleeper', sleeper)


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
