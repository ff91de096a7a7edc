"""A program that does not ask for debug mode: $TRACTOR_DEBUG turns it
on (see test_debugger)."""
import tractor


async def envy():
    await tractor.breakpoint()
    print('envy done', flush=True)


async def main():
    async with tractor.open_nursery() as n:
        await n.run_in_actor('envy', envy)


if __name__ == '__main__':
    tractor.run(main)
