"""Probe: the 'nng' transport against raw pynng (and tcp/uds for context).

    python benchmarks/_nng_probe.py [variant ...]

Variants: nng+tcp nng+ipc raw+tcp raw+ipc tcp uds. For each, a child
process connects, echoes N_PING 5-byte pings, then counts N_STREAM 50-byte
frames and answers b'done'. Reported: mean round trip (us) and one-way
throughput (frames/s). The raw pynng peers use the same technique as the
transport: non-blocking send/recv on a Pair0 with 32-message buffers (as the transport),
waiting on recv_fd/send_fd with trio.lowlevel.wait_readable.
"""
import os
import socket
import subprocess
import sys
import time

import trio

N_PING = 2000
N_STREAM = 100_000


class RawPair:
    def __init__(self, sock):
        self.sock = sock
        self.rfd, self.sfd = sock.recv_fd, sock.send_fd

    async def send(self, data):
        import pynng
        while True:
            try:
                self.sock.send(data, block=False)
                return
            except pynng.TryAgain:
                await trio.lowlevel.wait_readable(self.sfd)

    async def recv(self):
        import pynng
        while True:
            try:
                return self.sock.recv(block=False)
            except pynng.TryAgain:
                await trio.lowlevel.wait_readable(self.rfd)

    async def aclose(self):
        self.sock.close()


def _raw_sock():
    import pynng
    return pynng.Pair0(recv_buffer_size=32, send_buffer_size=32)


async def child(variant, addr):
    if variant.startswith('raw+'):
        sock = _raw_sock()
        sock.dial(addr, block=True)
        s = RawPair(sock)
    else:
        from tractor.transports import connect
        s = await connect(addr)
    await s.send(b'ready')
    for _ in range(N_PING):
        await s.send(await s.recv())
    for _ in range(N_STREAM):
        await s.recv()
    await s.send(b'done')
    await s.recv()  # wait for the parent to finish
    await s.aclose()


async def parent(variant):
    from tractor.transports import Addr, listen
    listener = None
    if variant.startswith('raw+'):
        sock = _raw_sock()
        if variant == 'raw+tcp':
            ep = sock.listen('tcp://127.0.0.1:0')
            addr = f'tcp://127.0.0.1:{socket.ntohs(ep.local_address.port)}'
        else:
            addr = 'ipc://' + Addr.parse(('x', 0), 'nng+ipc').path
            sock.listen(addr)
    else:
        transport = {'nng+tcp': 'nng', 'nng+ipc': 'nng+ipc'}.get(
            variant, variant)
        listener = await listen(('127.0.0.1', 0), transport)
        addr = str(listener.addr)
    proc = subprocess.Popen([sys.executable, __file__, 'child', variant, addr])
    try:
        if listener is not None:
            s = await listener.accept()
        else:
            s = RawPair(sock)
        assert await s.recv() == b'ready'
        t0 = time.perf_counter()
        for _ in range(N_PING):
            await s.send(b'ping!')
            await s.recv()
        rtt = (time.perf_counter() - t0) / N_PING * 1e6
        frame = b'x' * 50
        t0 = time.perf_counter()
        for _ in range(N_STREAM):
            await s.send(frame)
        assert await s.recv() == b'done'
        rate = N_STREAM / (time.perf_counter() - t0)
        await s.send(b'bye')
        proc.wait(10)
        await s.aclose()
        if listener is not None:
            await listener.aclose()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f'{variant:8s}  rtt {rtt:7.1f} us   stream {rate:9.0f} frames/s',
          flush=True)


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))))
    if os.environ.get('NNG_PROBE_BUFFER'):  # try another queue depth
        from tractor.transports import get_transport
        get_transport('nng').buffer = int(os.environ['NNG_PROBE_BUFFER'])
    if sys.argv[1:2] == ['child']:
        trio.run(child, sys.argv[2], sys.argv[3])
    else:
        for v in sys.argv[1:] or ['nng+tcp', 'raw+tcp', 'nng+ipc', 'raw+ipc',
                                  'tcp', 'uds']:
            trio.run(parent, v)
