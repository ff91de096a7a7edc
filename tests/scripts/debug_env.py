"""A program that does not ask for debug mode: $TRACTOR_DEBUG turns it
on; $DEBUG_START_METHOD picks the start method (see test_debugger)."""
import os

import tractor


async def envy():
    await tractor.breakpoint()
    print('envy done', flush=True)


async def main():
    async with tractor.open_nursery() as n:
        await n.run_in_actor('envy', envy)


if __name__ == '__main__':
    tractor.run(main, start_method=os.environ.get('DEBUG_START_METHOD'))
