"""Host A: the arbiter, the registry every other host finds actors in.

    python arbiter.py 10.0.0.1 1616

binds 10.0.0.1:1616. Use the address the other hosts reach this one at (or
``0.0.0.0`` together with ``$TRACTOR_ADVERTISE_HOST=10.0.0.1``).
``$TRACTOR_TRANSPORT`` picks the transport (tcp, nng, zmq) for the whole
cluster: every program must use the same one.
"""
import sys

import trio
import tractor


async def main():
    actor = tractor.current_actor()
    if not actor.is_arbiter:
        sys.exit(f'an arbiter is already running at {actor.arbiter_addr}')
    print(f'arbiter ready at {actor.accept_addr}', flush=True)
    await trio.sleep_forever()


if __name__ == '__main__':
    host = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1616
    try:
        tractor.run(main, name='arbiter', arbiter_addr=(host, port))
    except KeyboardInterrupt:
        pass
