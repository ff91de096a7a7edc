"""Host C of tests/test_multihost.py's bind test (not a test module).

    python bind_service.py ARBITER_HOST PORT MY_HOST

The root binds MY_HOST explicitly; its children are started with each way
of choosing addresses (explicit bind, wildcard bind + advertise_addr,
wildcard bind inheriting the parent's host, run_in_actor). Needs
examples/multihost on PYTHONPATH for the ``counter`` module.
"""
import sys

import trio
import tractor


async def serve_forever():
    await trio.sleep_forever()


async def main(my_host):
    async with tractor.open_nursery() as n:
        await n.start_actor('pinned', rpc_module_paths=['counter'],
                            bind_addr=(my_host, 0))
        await n.start_actor('wild_advertised', rpc_module_paths=['counter'],
                            bind_addr=('0.0.0.0', 0), advertise_addr=my_host)
        await n.start_actor('wild_inherited', rpc_module_paths=['counter'],
                            bind_addr=('0.0.0.0', 0))
        await n.run_in_actor('runner', serve_forever,
                             rpc_module_paths=['counter'],
                             bind_addr=('0.0.0.0', 0))
        print('actors ready', flush=True)
        await trio.sleep_forever()


if __name__ == '__main__':
    tractor.run(main, sys.argv[3], name='bind_service',
                arbiter_addr=(sys.argv[1], int(sys.argv[2])),
                bind_addr=(sys.argv[3], 0), rpc_module_paths=['counter'])
