"""Host A: the arbiter, the registry every other host finds actors in.

    python arbiter.py 10.0.0.1 1616

binds 10.0.0.1:1616 (``tractor arbiter 10.0.0.1:1616`` does the same from
the command line). Use the address the other hosts reach this one at (or
``0.0.0.0`` together with ``$TRACTOR_ADVERTISE_HOST=10.0.0.1``).
``$TRACTOR_TRANSPORT`` picks the transport (tcp, nng, zmq) for the whole
cluster: every program must use the same one. Ctrl-C or SIGTERM stops it.
"""
import sys

import tractor


if __name__ == '__main__':
    host = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.1'
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1616
    tractor.run_arbiter((host, port))
