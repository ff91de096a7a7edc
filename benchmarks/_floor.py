"""The floors: each transport's library used directly, no runtime, no envelope.

Two processes, one connection (one per peer for fanin), one library call per
message on each side (the naive floor, ``floor`` in the table):

``trio`` (the floor of ``tcp`` and ``uds``)
    plain :class:`trio.SocketStream` over TCP or a Unix socket; a frame is a
    4-byte big-endian length and the payload, written with one
    ``send_all`` (two for frames of 64 KiB and more, so the payload is not
    copied) and parsed out of 256 KiB ``receive_some`` reads.
``nng`` (the floor of ``nng+tcp``/``nng+ipc``)
    a ``pynng.Pair0`` per peer; every message is tried with the non-blocking
    ``send``/``recv(block=False)`` first and only on ``TryAgain`` goes
    through pynng's trio-aware ``asend``/``arecv``.
``zmq`` (the floor of ``zmq+tcp``/``zmq+ipc``)
    a ``zmq.PAIR`` per peer; ``send``/``recv`` with ``NOBLOCK``, and on
    ``Again`` the socket's ``ZMQ_EVENTS`` is checked and ``zmq.FD`` waited on
    with ``trio.lowlevel.wait_readable`` (the edge-triggered protocol).

The secured variants' floors are the same, secured the library's own way
with the key material of ``tls=True`` (this user's tractor key
directory): ``tcp+tls``'s a :class:`trio.SSLStream` (TLS 1.3, both ends
authenticated by the cluster CA) over the TCP stream; ``nng+tls``'s
nng's ``tls+tcp://`` (mbedTLS inside pynng); ``zmq+curve``'s CURVE
options on the PAIR sockets. They tell what the runtime adds to what the
library's security costs, where the ratio to the plaintext variant tells
what security costs in all.

The *batched* floors of stream_small and fanin (``--batched``,
``floor-batched`` in the table) are the same libraries used well: the
sender moves a burst of :data:`BATCH` messages per library call and the
receiver takes everything that has arrived per call --

``trio``
    the burst's frames joined into one ``send_all``; the reader returns
    every complete frame of its buffer at once.
``nng``
    the burst as one nng message of length-prefixed frames (nng has no
    multipart messages), sent non-blocking; the reader drains with
    ``recv(block=False)`` until ``TryAgain`` before it waits again.
``zmq``
    the burst as one zmq message of length-prefixed frames, sent with
    ``NOBLOCK``; the reader drains ``recv(NOBLOCK)`` until ``Again``
    before it waits again (``send_multipart``, one part per message, was
    slower: see ``_MessagePair``).

The rpc_inflight floor keeps 1, 8 or 64 requests outstanding on its one
connection (a sliding window: a new request for every reply) while the
peer answers each request as it comes.

Small messages are :func:`benchmarks._workloads.small_msg` packed with
msgpack (and unpacked on receipt) so every floor does the same encoding
work; large ones are the raw 1 MiB payload. The parent process measures;
the peers are ``python -m benchmarks._floor <lib> <addr> <workload> <n>
<warmup> [batched]`` subprocesses.

The pipeline workload's floors are transport-independent
(:func:`measure_pipeline`): what users write by hand today, a source and a
square process chained to the parent by ``multiprocessing.Queue``, with one
item per ``put`` (``mp.Queue``) or, hand-tuned, a list of 64 per ``put``
(``mp.Queue-batch64``). They are the floors of every transport variant's
pipeline. A third chain, ``mp.Queue-batch64-asyncgen``, moves lists of 64
too, but its stages' code is a tractor pipeline's: async generators that
take and yield one item at a time under trio. It is not what anyone
writes by hand; it is what a pipeline whose user code handles one item at
a time costs with no runtime under it, a reference for the runtime's.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import uuid

import msgpack
import trio

from ._workloads import INFLIGHT, LARGE, shares, small_msg

#: transport variant -> (library, scheme)
FLOOR_OF = {
    'tcp': ('trio', 'tcp'),
    'uds': ('trio', 'ipc'),
    'nng+tcp': ('nng', 'tcp'),
    'nng+ipc': ('nng', 'ipc'),
    'zmq+tcp': ('zmq', 'tcp'),
    'zmq+ipc': ('zmq', 'ipc'),
    # the secured variants: the same libraries with their own security,
    # keyed from tractor's key directory as the runtime is
    'tcp+tls': ('trio', 'tls'),
    'nng+tls': ('nng', 'tls'),
    'zmq+curve': ('zmq', 'curve'),
}

#: messages the nng and zmq floors may queue per socket and direction
NNG_BUFFER = 128
ZMQ_HWM = 1000

#: messages per library call in the batched floors: the runtime's own
#: batch size (``BATCH_FRAMES`` in ``tractor/_channel.py``)
BATCH = 64

_HDR = struct.Struct('!I')
_JOIN_BELOW = 64 * 1024
_READ = 256 * 1024

_GO = b'go'
_BYE = b'bye'


#: the workloads with a batched floor beside the naive one
BATCHED = ('stream_small', 'fanin')


def floor_library(variant: str):
    """``(library, scheme)`` of the floor for a transport variant, or None."""
    return FLOOR_OF.get(variant)


def _ipc_path() -> str:
    from tractor.transports import runtime_dir
    return os.path.join(runtime_dir(), f'floor-{uuid.uuid4().hex[:10]}.sock')


def _join(frames) -> bytes:
    """Length-prefixed frames, one buffer: a burst for one library call."""
    hdr = _HDR.pack
    return b''.join([b for f in frames for b in (hdr(len(f)), f)])


def _split(buf: bytes) -> list:
    """The frames of a buffer :func:`_join` made."""
    out = []
    pos, end, unpack = 0, len(buf), _HDR.unpack_from
    while pos < end:
        (n,) = unpack(buf, pos)
        pos += 4
        out.append(buf[pos:pos + n])
        pos += n
    return out


# -- the three libraries behind one tiny interface ----------------------
# send/recv move one message per library call (the naive floors);
# send_many/recv_many a burst per call (the batched floors).
class TrioFramed:
    """Length-prefixed frames on a trio SocketStream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.pos = 0

    async def send(self, data: bytes) -> None:
        n = len(data)
        if n < _JOIN_BELOW:
            await self.stream.send_all(_HDR.pack(n) + data)
        else:
            await self.stream.send_all(_HDR.pack(n))
            await self.stream.send_all(data)

    async def send_many(self, frames: list) -> None:
        await self.stream.send_all(_join(frames))

    def _next_frame(self):
        """The next complete frame of the buffer, or None."""
        buf, pos = self.buf, self.pos
        if len(buf) - pos < 4:
            return None
        (n,) = _HDR.unpack_from(buf, pos)
        end = pos + 4 + n
        if end > len(buf):
            return None
        frame = bytes(buf[pos + 4:end])
        if end == len(buf):
            buf.clear()
            self.pos = 0
        elif end > _READ:
            del buf[:end]
            self.pos = 0
        else:
            self.pos = end
        return frame

    async def recv(self) -> bytes:
        while (frame := self._next_frame()) is None:
            data = await self.stream.receive_some(_READ)
            if not data:
                raise EOFError('peer closed')
            self.buf += data
        return frame

    async def recv_many(self) -> list:
        frames = [await self.recv()]
        while (frame := self._next_frame()) is not None:
            frames.append(frame)
        return frames

    async def aclose(self) -> None:
        await self.stream.aclose()


class _MessagePair:
    """nng and zmq move whole messages: a burst goes as one message of
    length-prefixed frames, and the reader takes every message that has
    arrived (``_poll``, non-blocking) before it waits again. For zmq,
    ``send_multipart`` with one part per message moved 1.5-2x fewer
    messages a second here: each part is a libzmq call of its own."""

    async def send_many(self, frames: list) -> None:
        await self.send(_join(frames))

    async def recv_many(self) -> list:
        msgs = [await self.recv()]
        while (m := self._poll()) is not None:
            msgs.append(m)
        return [f for m in msgs for f in _split(m)]


class NngPair(_MessagePair):
    """A pynng Pair0: non-blocking first, pynng's async API on TryAgain."""

    def __init__(self, sock) -> None:
        import pynng
        self.sock = sock
        self._again = pynng.TryAgain

    async def send(self, data: bytes) -> None:
        try:
            self.sock.send(data, block=False)
        except self._again:
            await self.sock.asend(data)

    async def recv(self) -> bytes:
        try:
            return self.sock.recv(block=False)
        except self._again:
            return await self.sock.arecv()

    def _poll(self):
        try:
            return self.sock.recv(block=False)
        except self._again:
            return None

    async def aclose(self) -> None:
        self.sock.close()


class ZmqPair(_MessagePair):
    """A zmq PAIR: NOBLOCK, waiting on zmq.FD when the socket says so."""

    def __init__(self, sock) -> None:
        import zmq
        self.sock = sock
        self.fd = sock.getsockopt(zmq.FD)
        self._zmq = zmq

    async def _wait(self, mask: int) -> None:
        events = self._zmq.EVENTS
        while not (self.sock.getsockopt(events) & mask):
            await trio.lowlevel.wait_readable(self.fd)

    async def send(self, data: bytes) -> None:
        zmq = self._zmq
        copy = len(data) < _JOIN_BELOW
        while True:
            try:
                self.sock.send(data, zmq.NOBLOCK, copy=copy)
                return
            except zmq.Again:
                await self._wait(zmq.POLLOUT)

    async def recv(self) -> bytes:
        zmq = self._zmq
        while True:
            try:
                return self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                await self._wait(zmq.POLLIN)

    def _poll(self):
        try:
            return self.sock.recv(self._zmq.NOBLOCK)
        except self._zmq.Again:
            return None

    async def aclose(self) -> None:
        self.sock.close(linger=1000)


_KEYS = None


def _keys():
    """The key material of ``tls=True`` (this user's tractor key
    directory, created on first use): what the secured floors use, as
    the runtime's secured variants do."""
    global _KEYS
    if _KEYS is None:
        from tractor._tls import Keys, TLSConfig
        _KEYS = Keys(TLSConfig())
    return _KEYS


def _zmq_context():
    import zmq
    return zmq.Context.instance()


def _zmq_socket():
    import zmq
    sock = _zmq_context().socket(zmq.PAIR)
    sock.setsockopt(zmq.SNDHWM, ZMQ_HWM)
    sock.setsockopt(zmq.RCVHWM, ZMQ_HWM)
    sock.setsockopt(zmq.LINGER, 1000)
    return sock


def _nng_socket(tls_server=None):
    """A Pair0; with nng's TLS (``tls_server``: which side) if asked."""
    import pynng
    kw = {}
    if tls_server is not None:
        # (tractor's own config maker: it also keeps nng from panicking
        # at interpreter exit with a TLS connection still closing)
        from tractor.transports._tls_nng import config
        kw['tls_config'] = config(_keys(), tls_server)
    return pynng.Pair0(recv_buffer_size=NNG_BUFFER,
                       send_buffer_size=NNG_BUFFER, **kw)


def _curve(sock, server: bool) -> None:
    """Make a zmq socket a CURVE server or client (no ZAP handler: the
    keys alone, as a user of pyzmq would start)."""
    import zmq
    public, secret = _keys().curve()
    if server:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    else:
        sock.setsockopt(zmq.CURVE_SERVERKEY, public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


async def listen(lib: str, scheme: str):
    """Start listening; returns ``(address string, accept())``."""
    if lib == 'trio':
        if scheme in ('tcp', 'tls'):
            listeners = await trio.open_tcp_listeners(0, host='127.0.0.1')
            lst = listeners[0]
            host, port = lst.socket.getsockname()[:2]
            addr = f'{scheme}://{host}:{port}'
            path = None
        else:
            path = _ipc_path()
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            await sock.bind(path)
            sock.listen(16)
            lst = trio.SocketListener(sock)
            addr = f'ipc://{path}'

        async def accept():
            stream = await lst.accept()
            await lst.aclose()
            if path:
                os.unlink(path)
            if scheme == 'tls':
                stream = trio.SSLStream(
                    stream, _keys().ssl_context(True), server_side=True)
            return TrioFramed(stream)
        return addr, accept
    if lib == 'nng':
        sock = _nng_socket(True if scheme == 'tls' else None)
        if scheme in ('tcp', 'tls'):
            url = 'tls+tcp' if scheme == 'tls' else 'tcp'
            ep = sock.listen(f'{url}://127.0.0.1:0')
            port = socket.ntohs(ep.local_address.port)
            addr = f'{url}://127.0.0.1:{port}'
        else:
            addr = f'ipc://{_ipc_path()}'
            sock.listen(addr)

        async def accept():
            return NngPair(sock)
        return addr, accept
    if lib == 'zmq':
        sock = _zmq_socket()
        if scheme == 'curve':
            _curve(sock, server=True)
        if scheme in ('tcp', 'curve'):
            port = sock.bind_to_random_port('tcp://127.0.0.1')
            addr = f'{scheme}://127.0.0.1:{port}'
        else:
            addr = f'ipc://{_ipc_path()}'
            sock.bind(addr)

        async def accept():
            return ZmqPair(sock)
        return addr, accept
    raise ValueError(f'no floor library {lib!r}')


async def dial(lib: str, addr: str):
    scheme, _, loc = addr.partition('://')
    if lib == 'trio':
        if scheme in ('tcp', 'tls'):
            host, _, port = loc.rpartition(':')
            stream = await trio.open_tcp_stream(host, int(port))
            if scheme == 'tls':
                stream = trio.SSLStream(stream, _keys().ssl_context(False))
            return TrioFramed(stream)
        return TrioFramed(await trio.open_unix_socket(loc))
    if lib == 'nng':
        sock = _nng_socket(False if scheme == 'tls+tcp' else None)
        sock.dial(addr, block=True)
        return NngPair(sock)
    if lib == 'zmq':
        sock = _zmq_socket()
        if scheme == 'curve':
            _curve(sock, server=False)
            addr = f'tcp://{loc}'
        sock.connect(addr)
        return ZmqPair(sock)
    raise ValueError(f'no floor library {lib!r}')


# -- the peer process ---------------------------------------------------
async def peer(lib: str, addr: str, workload: str, n: int,
               warmup: int, batched: bool = False) -> None:
    s = await dial(lib, addr)
    await s.send(b'hi')  # the parent knows the peer is connected
    packb, unpackb = msgpack.packb, msgpack.unpackb
    if workload == 'rpc':
        reply = packb(None)
        for _ in range(n + warmup):
            unpackb(await s.recv())
            await s.send(reply)
    elif workload == 'rpc_inflight':
        # answer each request as it comes, until the parent says bye
        reply = packb(None)
        while (req := await s.recv()) != _BYE:
            unpackb(req)
            await s.send(reply)
        await s.aclose()
        return
    elif workload in ('stream_small', 'fanin') and batched:
        assert await s.recv() == _GO
        burst = []
        for i in range(n):
            burst.append(packb(small_msg(i)))
            if len(burst) == BATCH:
                await s.send_many(burst)
                burst = []
        if burst:
            await s.send_many(burst)
    elif workload in ('stream_small', 'fanin'):
        assert await s.recv() == _GO
        for i in range(n):
            await s.send(packb(small_msg(i)))
    elif workload == 'stream_large':
        payload = b'x' * LARGE
        assert await s.recv() == _GO
        for _ in range(n):
            await s.send(payload)
    else:
        raise ValueError(workload)
    # stay until the parent has everything: closing could drop queued
    # messages (nng and zmq discard them after the linger)
    assert await s.recv() == _BYE
    await s.aclose()


# -- the measuring side -------------------------------------------------
async def _start_peers(lib, scheme, workload, n, warmup, count, batched):
    procs, conns = [], []
    try:
        for _ in range(count):
            addr, accept = await listen(lib, scheme)
            procs.append(subprocess.Popen(
                [sys.executable, '-m', 'benchmarks._floor', lib, addr,
                 workload, str(n), str(warmup)]
                + (['batched'] if batched else [])))
            with trio.fail_after(30):
                s = await accept()
                assert await s.recv() == b'hi'
            conns.append(s)
    except BaseException:
        _kill(procs)
        raise
    return procs, conns


def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


async def _finish(procs, conns) -> None:
    try:
        for s in conns:
            await s.send(_BYE)
        deadline = time.monotonic() + 10
        for p in procs:
            while p.poll() is None and time.monotonic() < deadline:
                await trio.sleep(0.005)
            if p.returncode not in (0, None):
                raise RuntimeError(f'floor peer exited with {p.returncode}')
        for s in conns:
            await s.aclose()
    finally:
        _kill(procs)


async def measure(variant: str, workload: str, n: int, warmup: int = 0,
                  batched: bool = False):
    """Run one floor workload over ``variant``'s library; returns metrics.
    ``batched``: the library used well (stream_small and fanin only)."""
    lib, scheme = FLOOR_OF[variant]
    if batched and workload not in BATCHED:
        raise ValueError(f'no batched floor for {workload!r}; only for '
                         f'{", ".join(BATCHED)}')
    if workload == 'rpc_inflight':
        shares(n, max(INFLIGHT))  # enough calls for every level
    count = 2 if workload == 'fanin' else 1
    per_peer = n // count
    procs, conns = await _start_peers(lib, scheme, workload, per_peer,
                                      warmup, count, batched)
    try:
        packb, unpackb = msgpack.packb, msgpack.unpackb
        pc = time.perf_counter_ns
        if workload == 'rpc':
            s = conns[0]
            for i in range(warmup):
                await s.send(packb(small_msg(i)))
                unpackb(await s.recv())
            lat = []
            for i in range(n):
                t0 = pc()
                await s.send(packb(small_msg(i)))
                unpackb(await s.recv())
                lat.append(pc() - t0)
            out = latency_metrics(lat)
        elif workload == 'rpc_inflight':
            out = await _pipelined_calls(conns[0], n, warmup)
        elif workload in ('stream_small', 'fanin'):
            got = [0] * count

            async def drain(k, s):
                c = 0
                if batched:
                    while c < per_peer:
                        for frame in await s.recv_many():
                            unpackb(frame)
                            c += 1
                else:
                    for _ in range(per_peer):
                        unpackb(await s.recv())
                        c += 1
                got[k] = c

            t0 = time.perf_counter()
            async with trio.open_nursery() as tn:
                for k, s in enumerate(conns):
                    await s.send(_GO)
                    tn.start_soon(drain, k, s)
            dt = time.perf_counter() - t0
            total = sum(got)
            out = {'msgs_per_s': total / dt, 'seconds': dt, 'count': total}
        elif workload == 'stream_large':
            s = conns[0]
            t0 = time.perf_counter()
            await s.send(_GO)
            nbytes = 0
            for _ in range(n):
                nbytes += len(await s.recv())
            dt = time.perf_counter() - t0
            assert nbytes == n * LARGE, nbytes
            out = {'mb_per_s': nbytes / dt / 1e6, 'seconds': dt,
                   'count': n}
        else:
            raise ValueError(f'no floor for workload {workload!r}')
    except BaseException:
        _kill(procs)
        raise
    await _finish(procs, conns)
    return out


async def _pipelined_calls(s, n: int, warmup: int) -> dict:
    """``n`` request/reply pairs at each level of :data:`INFLIGHT`: that
    many requests go out first, then every reply lets one more go until
    ``n`` have been answered."""
    packb, unpackb = msgpack.packb, msgpack.unpackb
    for i in range(warmup):
        await s.send(packb(small_msg(i)))
        unpackb(await s.recv())
    out = {'count': n}
    for c in INFLIGHT:
        t0 = time.perf_counter()
        sent = 0
        while sent < c:
            await s.send(packb(small_msg(sent)))
            sent += 1
        for _ in range(n):
            unpackb(await s.recv())
            if sent < n:
                await s.send(packb(small_msg(sent)))
                sent += 1
        dt = time.perf_counter() - t0
        out[f'calls_per_s_{c}'] = n / dt
        out[f'seconds_{c}'] = dt
    return out


# -- the pipeline floors: multiprocessing.Queue chains ------------------
#: pseudo-variant -> items per put
PIPELINE_FLOORS = {'mp.Queue': 1, 'mp.Queue-batch64': 64,
                   'mp.Queue-batch64-asyncgen': 64}
#: the chains whose stages are written as a tractor pipeline's are: async
#: generators taking and yielding one item at a time, run by trio, each
#: item received a checkpoint (as every trio receive is); only the items
#: cross processes in lists of 64. No runtime at all: what user code that
#: handles one item at a time costs by itself.
ASYNC_PIPELINE_FLOORS = {'mp.Queue-batch64-asyncgen'}


def _mp_source(out, n: int, batch: int, start) -> None:
    """0 .. n-1 into ``out``, one per put or in lists of ``batch``."""
    start.wait()
    put = out.put
    if batch == 1:
        for i in range(n):
            put(i)
    else:
        buf = []
        for i in range(n):
            buf.append(i)
            if len(buf) == batch:
                put(buf)
                buf = []
        if buf:
            put(buf)
    put(None)


def _mp_square(inq, out, batch: int, start) -> None:
    """x*x of everything from ``inq`` into ``out``, as it came (one or a
    list per put)."""
    start.wait()
    get, put = inq.get, out.put
    if batch == 1:
        while (x := get()) is not None:
            put(x * x)
    else:
        while (b := get()) is not None:
            put([x * x for x in b])
    put(None)


# the asyncgen chain's stages: the user code of examples/pipeline.py's
# shape, over queues instead of streams
async def _numbers(n: int):
    for i in range(n):
        yield i


async def _squared(upstream):
    async for x in upstream:
        yield x * x


async def _from_queue(q):
    """Items one at a time from lists of them, each a checkpoint."""
    import trio
    checkpoint = trio.lowlevel.checkpoint_if_cancelled
    get = q.get
    while (b := get()) is not None:
        for x in b:
            await checkpoint()
            yield x


async def _to_queue(agen, q, batch: int) -> None:
    buf: list = []
    put = q.put
    async for x in agen:
        buf.append(x)
        if len(buf) == batch:
            put(buf)
            buf = []
    if buf:
        put(buf)
    put(None)


def _async_source(out, n: int, batch: int, start) -> None:
    import trio
    start.wait()
    trio.run(_to_queue, _numbers(n), out, batch)


def _async_square(inq, out, batch: int, start) -> None:
    import trio
    start.wait()
    trio.run(_to_queue, _squared(_from_queue(inq)), out, batch)


async def _async_sink(q) -> tuple:
    count = total = 0
    async for x in _from_queue(q):
        count += 1
        total += x
    return count, total


def measure_pipeline(variant: str, n: int) -> dict:
    """source -> square -> this process over two ``multiprocessing.Queue``
    (the platform's default start method). Timed from the moment all three
    processes are up (a barrier) to the last item here."""
    import multiprocessing as mp
    from ._workloads import pipe_total
    batch = PIPELINE_FLOORS[variant]
    asyncgen = variant in ASYNC_PIPELINE_FLOORS
    source, square = ((_async_source, _async_square) if asyncgen else
                      (_mp_source, _mp_square))
    q1, q2 = mp.Queue(), mp.Queue()
    start = mp.Barrier(3)
    procs = [mp.Process(target=source, args=(q1, n, batch, start),
                        daemon=True),
             mp.Process(target=square, args=(q1, q2, batch, start),
                        daemon=True)]
    for p in procs:
        p.start()
    try:
        start.wait(timeout=60)
        count = total = 0
        t0 = time.perf_counter()
        get = q2.get
        if asyncgen:
            import trio
            count, total = trio.run(_async_sink, q2)
        elif batch == 1:
            while (x := get()) is not None:
                count += 1
                total += x
        else:
            while (b := get()) is not None:
                for x in b:
                    count += 1
                    total += x
        dt = time.perf_counter() - t0
        for p in procs:
            p.join(10)
            if p.exitcode != 0:
                raise RuntimeError(f'pipeline floor stage exited with '
                                   f'{p.exitcode}')
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    if count != n or total != pipe_total(n):
        raise AssertionError(f'got {count} of {n} items, total {total}')
    return {'items_per_s': count / dt, 'seconds': dt, 'count': count,
            'batch': batch}


def latency_metrics(ns: list) -> dict:
    """p50/p99/mean in microseconds of a list of nanosecond samples."""
    s = sorted(ns)
    n = len(s)

    def pct(p):
        return s[min(n - 1, int(round(p / 100 * (n - 1))))] / 1e3
    return {'p50_us': pct(50), 'p99_us': pct(99),
            'mean_us': sum(s) / n / 1e3, 'count': n}


if __name__ == '__main__':
    lib_, addr_, workload_, n_, warmup_ = sys.argv[1:6]
    trio.run(peer, lib_, addr_, workload_, int(n_), int(warmup_),
             sys.argv[6:7] == ['batched'])
