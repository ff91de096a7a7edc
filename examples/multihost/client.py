"""Host B: a standalone program that finds ``counter`` through the arbiter
and streams from it, wherever it runs.

    python client.py 10.0.0.1 1616 [how-many]
"""
import sys

import tractor


async def main(how_many):
    async with tractor.wait_for_actor('counter') as portal:
        print(f'found counter at {portal.channel.raddr}', flush=True)
        async for n in await portal.run('counter', 'count', limit=how_many):
            print(f'got {n}', flush=True)
    print('done', flush=True)


if __name__ == '__main__':
    arbiter = (sys.argv[1], int(sys.argv[2]))
    how_many = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    tractor.run(main, how_many, name='client', arbiter_addr=arbiter)
