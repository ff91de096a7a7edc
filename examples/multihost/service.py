"""Host C: a program that starts the ``counter`` service actor.

    python service.py 10.0.0.1 1616            # the arbiter's address
    python service.py 10.0.0.1 1616 203.0.113.9  # advertise this address

Everything listens on every interface (``0.0.0.0``); what gets registered
with the arbiter is this host's address on the route to the arbiter (or the
third argument, or ``$TRACTOR_ADVERTISE_HOST``), never ``0.0.0.0``. The
``counter`` child binds the same way as its parent.
"""
import sys

import trio
import tractor


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.start_actor('counter', rpc_module_paths=['counter'])
        addrs = await portal.run('counter', 'where')
        print(f"service 'counter' ready: listening on {addrs['bind']}, "
              f"registered as {addrs['advertised']}", flush=True)
        await trio.sleep_forever()


if __name__ == '__main__':
    arbiter = (sys.argv[1], int(sys.argv[2]))
    advertise = sys.argv[3] if len(sys.argv) > 3 else None
    try:
        tractor.run(main, name='service', arbiter_addr=arbiter,
                    bind_addr=('0.0.0.0', 0), advertise_addr=advertise)
    except KeyboardInterrupt:
        pass
