"""Probe: tractor's zmq transport vs raw pyzmq (PAIR, blocking), same work.

    python benchmarks/_zmq_probe.py

Round trip: 2000 sequential 5-byte ping/pongs. Throughput: 100k 50-byte
frames one way, then one ack back. Both ends live in one process: the
tractor variant runs both as trio tasks in one loop; raw pyzmq runs the
echo/sink side in a thread with blocking calls.
"""
import threading
import time

import trio
import zmq

from tractor.transports import Addr
from tractor.transports.zmq import ZMQTransport

N_RTT, N_TP, SIZE = 2000, 100_000, 50


async def tractor_side(scheme):
    t = ZMQTransport()
    a = Addr.parse(('127.0.0.1', 0) if scheme == 'tcp' else ('x', 0),
                   f'zmq+{scheme}')
    lst = await t.listen(a)
    out = {}
    async with trio.open_nursery() as n:
        async def server():
            s = await lst.accept()
            for _ in range(N_RTT):
                await s.send(await s.recv())
            for _ in range(N_TP):
                await s.recv()
            await s.send(b'done')
            await s.aclose()
        n.start_soon(server)
        c = await t.connect(lst.addr)
        t0 = time.perf_counter()
        for _ in range(N_RTT):
            await c.send(b'ping!')
            await c.recv()
        out['rtt_us'] = (time.perf_counter() - t0) / N_RTT * 1e6
        msg = b'x' * SIZE
        t0 = time.perf_counter()
        for _ in range(N_TP):
            await c.send(msg)
        await c.recv()
        out['msgs_per_s'] = N_TP / (time.perf_counter() - t0)
        await c.aclose()
    await lst.aclose()
    return out


def raw_side(scheme):
    ctx = zmq.Context()
    a = ctx.socket(zmq.PAIR)
    a.bind('tcp://127.0.0.1:*' if scheme == 'tcp' else
           f'ipc:///tmp/zmq-probe-{time.time_ns()}.sock')
    ep = a.last_endpoint.decode()

    def server():
        for _ in range(N_RTT):
            a.send(a.recv())
        for _ in range(N_TP):
            a.recv()
        a.send(b'done')
    th = threading.Thread(target=server)
    th.start()
    b = ctx.socket(zmq.PAIR)
    b.connect(ep)
    out = {}
    t0 = time.perf_counter()
    for _ in range(N_RTT):
        b.send(b'ping!')
        b.recv()
    out['rtt_us'] = (time.perf_counter() - t0) / N_RTT * 1e6
    msg = b'x' * SIZE
    t0 = time.perf_counter()
    for _ in range(N_TP):
        b.send(msg)
    b.recv()
    out['msgs_per_s'] = N_TP / (time.perf_counter() - t0)
    th.join()
    a.close(0)
    b.close(0)
    ctx.term()
    return out


if __name__ == '__main__':
    for scheme in ('tcp', 'ipc'):
        for name, fn in (('tractor-zmq', lambda: trio.run(tractor_side,
                                                            scheme)),
                         ('raw-pyzmq', lambda: raw_side(scheme))):
            r = min((fn() for _ in range(3)), key=lambda r: r['rtt_us'])
            print(f'{scheme:4} {name:12} rtt {r["rtt_us"]:7.1f} us   '
                  f'throughput {r["msgs_per_s"]:>10,.0f} msg/s')
