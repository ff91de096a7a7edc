"""Host B of tests/test_multihost.py's bind test (not a test module).

    python where_client.py ARBITER_HOST PORT NAME...

For each NAME: find it through the arbiter, call it (so its advertised
address works from here) and print where it listens.
"""
import sys

import tractor


async def main(names):
    for name in names:
        async with tractor.wait_for_actor(name) as portal:
            addrs = await portal.run('counter', 'where')
            print(f"{name} bind={addrs['bind']} "
                  f"advertised={addrs['advertised']} "
                  f"reached={portal.channel.raddr}", flush=True)
    print('done', flush=True)


if __name__ == '__main__':
    tractor.run(main, sys.argv[3:], name='where_client',
                arbiter_addr=(sys.argv[1], int(sys.argv[2])))
