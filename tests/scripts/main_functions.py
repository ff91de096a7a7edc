"""Functions defined in a script run as ``__main__``, called in actors.

    python main_functions.py START_METHOD ARBITER_PORT
"""
import sys

import trio

import tractor


def square(x):
    return x * x


async def agen(n):
    for i in range(n):
        yield i
        await trio.sleep(0)


async def main():
    async with tractor.open_nursery() as n:
        worker = await n.run_in_actor('worker', square, x=7)
        daemon = await n.start_actor('daemon', rpc_module_paths=[__name__])
        streamed = [i async for i in await daemon.run(__name__, 'agen', n=3)]
        called = await daemon.run(__name__, 'square', x=3)
        await daemon.cancel_actor()
    print('run_in_actor', await worker.result())
    print('portal.run', called)
    print('stream', streamed)


if __name__ == '__main__':
    tractor.run(main, start_method=sys.argv[1],
                arbiter_addr=('127.0.0.1', int(sys.argv[2])))
