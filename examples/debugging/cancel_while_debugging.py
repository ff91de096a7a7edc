"""The root cancels its child while the child is at the prompt: the child
is not killed under the user; once the session ends it serves the cancel
and the program ends."""
import trio
import tractor


async def lingerer():
    x = 'still here'
    await tractor.breakpoint()
    await trio.sleep_forever()


async def main():
    async with tractor.open_nursery() as n:
        await n.run_in_actor('lingerer', lingerer)
        # it is up, and stops at once: give up on it a little later
        await trio.sleep(2)
        await n.cancel()
    print('the root went on')


if __name__ == '__main__':
    tractor.run(main, debug_mode=True)
