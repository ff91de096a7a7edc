"""Host B of tests/test_multihost.py's link test (not a test module).

    python link_client.py ARBITER_HOST PORT

Prints the arbiter's registry, streams from ``counter`` (on host C) until
the stream fails, prints the error, then waits for a line on stdin (the
test brings the link back up first) and makes a new call.
"""
import sys
import time

import trio
import tractor


async def main():
    async with tractor.get_arbiter() as arb:
        reg = await arb.run('self', 'get_registry')
        print('registry', ' '.join(sorted(reg.values())), flush=True)
    async with tractor.wait_for_actor('counter') as portal:
        print(f'found counter at {portal.channel.raddr}', flush=True)
        try:
            async for n in await portal.run('counter', 'count', delay=0.02):
                print(f'got {n}', flush=True)
        except Exception as err:
            print(f'error at {time.monotonic():.3f} {type(err).__name__}: '
                  f'{err}', flush=True)
        else:
            print('error: the stream ended by itself', flush=True)
    # wait until the test says the link is back; the arbiter forgot
    # counter with the connection it registered over, and counter
    # registers again once it reaches the arbiter (within RETRY_MAX)
    await trio.to_thread.run_sync(sys.stdin.readline)
    async with tractor.wait_for_actor('counter') as portal:
        got = [n async for n in await portal.run(
            'counter', 'count', start=1000, limit=5, delay=0)]
        print(f'again {got}', flush=True)
    print('recovered', flush=True)


if __name__ == '__main__':
    tractor.run(main, name='client',
                arbiter_addr=(sys.argv[1], int(sys.argv[2])),
                heartbeat=(0.5, 3.0))
