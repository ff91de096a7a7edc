"""``check_transport``: the transport contract as a test you run.

A transport's author (of a third-party one registered through the
``tractor.transports`` entry point, or of a built-in one) runs
:func:`check_transport` on their transport, over real sockets, and gets
either nothing back or an :class:`AssertionError` naming the rule of
:mod:`tractor.transports._base` that was broken and how. It is what
:func:`trio.testing.check_two_way_stream` is for a trio stream; tractor's
own conformance suite (``tests/transports/``) is built on it.

Each rule runs on streams of its own (a fresh listener on the address
given, a connected pair), under a deadline: a rule that hangs fails as
"hung", it does not hang the caller. Optional capabilities
(:class:`~tractor.transports.SendsMany`,
:class:`~tractor.transports.ReceivesMany`,
:class:`~tractor.transports.TakesParts`) are checked when the stream has
them and reported as skipped when it has not.

No pytest here, but ``trio.testing`` may import it: ``tractor.testing``
loads this module on first use of ``check_transport``, so that importing
``tractor.testing`` stays cheap.
"""
from __future__ import annotations

import os
import random
import struct
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Optional

import trio
import trio.testing

from .._exceptions import BaseExceptionGroup
from ..transports import (
    Addr,
    FrameStream,
    FrameTooLarge,
    Listener,
    ReceivesMany,
    SendsMany,
    Transport,
    TransportClosed,
    get_transport,
    takes_parts,
)
from ..transports._addr import PATH_SCHEMES

__all__ = ['RULES', 'TransportReport', 'check_transport']

MiB = 1024 * 1024

#: the first frame of every pair, one each way, proving it is up (some
#: transports only see a peer once it has sent something)
_SYNC = b'\x00sync'
_TAG = struct.Struct('!HHI')  # task, seq, payload length


class _Skip(Exception):
    """A rule that does not apply (an optional capability is absent)."""


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` bytes that differ from frame to frame and position to
    position, so a swapped, shifted or truncated frame cannot pass."""
    if n == 0:
        return b''
    block = random.Random(seed).randbytes(min(n, 4093))
    return (block * (n // len(block) + 1))[:n]


@contextmanager
def _raises(exc_type, doing: str):
    """Like ``pytest.raises``, with the rule's words when it fails."""
    try:
        yield
    except exc_type:
        return
    except BaseException as err:
        if isinstance(err, (trio.Cancelled, KeyboardInterrupt)):
            raise
        raise AssertionError(
            f'{doing} raised {type(err).__module__}.{type(err).__name__}'
            f'({err}); the contract wants {exc_type.__name__}') from err
    raise AssertionError(
        f'{doing} returned; the contract wants {exc_type.__name__}')


async def close_all(*things) -> None:
    """``aclose()`` each of ``things`` (None skipped), shielded."""
    with trio.CancelScope(shield=True):
        for thing in things:
            if thing is not None:
                await thing.aclose()


async def connect_accepted(listener: Listener, connect: Callable[[], Any]
                           ) -> tuple[Any, FrameStream]:
    """Run ``await connect()`` while accepting on ``listener``: returns
    ``(what connect returned, the accepted stream)``."""
    server: Optional[FrameStream] = None
    try:
        async with trio.open_nursery() as n:
            async def accept():
                nonlocal server
                server = await listener.accept()
            n.start_soon(accept)
            client = await connect()
    except BaseException:
        await close_all(server)
        raise
    assert server is not None  # (the nursery waited for the accept)
    return client, server


@asynccontextmanager
async def stream_pair(transport: Transport, addr: Addr
                      ) -> AsyncIterator[tuple[Listener, FrameStream,
                                               FrameStream]]:
    """Listen on ``addr``, connect to the bound address and accept:
    yields ``(listener, client, server)``, one frame each way already
    exchanged (some transports only see a peer once it has sent one)."""
    listener = await transport.listen(addr)
    client = server = None

    async def dial():
        stream = await transport.connect(listener.addr)
        await stream.send(_SYNC)
        return stream
    try:
        with trio.fail_after(10):
            try:
                client, server = await connect_accepted(listener, dial)
            except trio.TooSlowError:
                raise AssertionError(
                    f'connect to {listener.addr} and accept did not '
                    f'complete within 10 s') from None
            got = await server.recv()
            assert got == _SYNC, f'the first frame arrived as {got!r}'
            await server.send(_SYNC)
            got = await client.recv()
            assert got == _SYNC, f'the first frame back arrived as {got!r}'
        yield listener, client, server
    finally:
        await close_all(client, server, listener)


async def accept_each(listener: Listener, handle, *,
                      task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Accept until the listener closes, running ``handle(stream)`` in a
    task of its own for each peer (``await nursery.start(accept_each,
    ...)``: returns once every handler has)."""
    async with trio.open_nursery() as n:
        task_status.started()
        while True:
            try:
                stream = await listener.accept()
            except TransportClosed:
                return
            n.start_soon(handle, stream)


async def _delivered(send_all, server: FrameStream, frames: list,
                     what: str) -> None:
    """Run ``send_all()`` while ``server`` receives: each of ``frames``
    must arrive whole and in order."""
    async with trio.open_nursery() as n:
        n.start_soon(send_all)
        for i, f in enumerate(frames):
            got = await server.recv()
            assert got == f, \
                f'frame {i} of {what} arrived as {len(got)} B, expected ' \
                f'{len(f)} B'


class _Ctx:
    """What a rule gets: the transport, the address to listen on, and a
    way to open a connected pair there."""

    def __init__(self, transport: Transport, addr: Addr,
                 max_frame: int) -> None:
        self.transport = transport
        self.addr = addr
        self.max_frame = max_frame

    def pair(self):
        return stream_pair(self.transport, self.addr)


# -- the rules -------------------------------------------------------------
# Each is ``async def rule(ctx)``; its docstring's first line is the rule
# as the error message states it.

async def _objects(ctx: _Ctx) -> None:
    """the transport, its listener and streams have the contract's shape
    (Transport, Listener, FrameStream attributes and methods)"""
    t = ctx.transport
    assert isinstance(t, Transport), \
        f'{t!r} lacks name, schemes, max_frame, connect or listen'
    assert isinstance(t.schemes, tuple) and t.schemes, \
        f'schemes must be a non-empty tuple, not {t.schemes!r}'
    async with ctx.pair() as (listener, client, server):
        assert isinstance(listener, Listener), \
            f'{listener!r} lacks addr, accept or aclose'
        assert isinstance(listener.addr, Addr), \
            f'listener.addr must be an Addr, not {listener.addr!r}'
        assert listener.addr.scheme in t.schemes, \
            f'listener.addr {listener.addr} has a scheme {t.name} ' \
            f'does not list in {t.schemes}'
        if listener.addr.is_inet:
            assert listener.addr.port, \
                f'listener.addr {listener.addr} still says port 0: it must' \
                f' be the bound address'
        for s in (client, server):
            assert isinstance(s, FrameStream), \
                f'{s!r} lacks local_addr, peer_addr, send, recv, aclose ' \
                f'or abort'
            assert isinstance(s.local_addr, Addr) and \
                isinstance(s.peer_addr, Addr), \
                f'{s!r}: local_addr and peer_addr must be Addr objects'


async def _framing(ctx: _Ctx) -> None:
    """every frame of 0 up to max_frame bytes arrives whole, both ways at
    once; bytearray and memoryview are sent as bytes; frames back to back
    keep their boundaries"""
    sizes = [0, 1, 2, 4, 65535, 65536, 65537, MiB, 16 * MiB, ctx.max_frame]
    sizes = sorted({n for n in sizes if n <= ctx.max_frame})
    async with ctx.pair() as (_, client, server):
        for size in sizes:
            out, back = pattern(size, 1), pattern(size, 2)
            got = {}

            async def xfer(src, dst, data, key):
                async with trio.open_nursery() as n:
                    n.start_soon(src.send, data)
                    got[key] = await dst.recv()
            async with trio.open_nursery() as n:
                n.start_soon(xfer, client, server, out, 'out')
                n.start_soon(xfer, server, client, back, 'back')
            for key, want in (('out', out), ('back', back)):
                g = got[key]
                assert isinstance(g, (bytes, bytearray)), \
                    f'recv returned {type(g).__name__}, not bytes'
                assert len(g) == size, \
                    f'a {size} B frame arrived as {len(g)} B'
                assert g == want, f'a {size} B frame arrived corrupted'
        for kind in (bytearray, memoryview):
            await client.send(kind(b'typed'))
            got = await server.recv()
            assert got == b'typed', \
                f'a frame sent as {kind.__name__} arrived as {got!r}'
        sizes = [0, 1, 0, 70_000, 3, 0, 2 * MiB, 0, 5, 65536, 0]
        frames = [pattern(n, i) for i, n in enumerate(sizes)]

        async def send_all():
            for f in frames:
                await client.send(f)
        await _delivered(send_all, server, frames, 'a back-to-back run')


async def _order(ctx: _Ctx) -> None:
    """frames arrive in the order they were sent (10,000 each way at
    once)"""
    N = 10_000
    async with ctx.pair() as (_, client, server):
        async def sender(s, tag):
            for i in range(N):
                await s.send(tag + i.to_bytes(4, 'big'))

        async def receiver(s, tag):
            for i in range(N):
                got = await s.recv()
                assert got == tag + i.to_bytes(4, 'big'), \
                    f'expected frame {i}, got {got!r}: frames lost or ' \
                    f'out of order'
        async with trio.open_nursery() as n:
            n.start_soon(sender, client, b'c')
            n.start_soon(sender, server, b's')
            n.start_soon(receiver, server, b'c')
            n.start_soon(receiver, client, b's')


async def _concurrent_senders(ctx: _Ctx) -> None:
    """many tasks sending on one stream at once never interleave frames,
    and frames go out in the order the send calls began"""
    TASKS, PER_TASK = 50, 20
    sizes = [1, 17, 1000, 65_535 - _TAG.size, 65_536, 200_000, 0, 5000]

    def frame(task, seq):
        size = sizes[(task + seq) % len(sizes)]
        return _TAG.pack(task, seq, size) + pattern(size, task * 1000 + seq)

    async with ctx.pair() as (_, client, server):
        async def sender(task):
            for seq in range(PER_TASK):
                await client.send(frame(task, seq))
                if seq % 3 == task % 3:
                    await trio.lowlevel.checkpoint()

        next_seq = [0] * TASKS
        async with trio.open_nursery() as n:
            for t in range(TASKS):
                n.start_soon(sender, t)
            for _ in range(TASKS * PER_TASK):
                got = await server.recv()
                task, seq, size = _TAG.unpack_from(got)
                assert len(got) == _TAG.size + size, \
                    'frames of concurrent senders were cut or merged'
                assert got == frame(task, seq), \
                    'a frame of concurrent senders arrived corrupted'
                assert seq == next_seq[task], \
                    f'task {task}: got its frame {seq}, expected ' \
                    f'{next_seq[task]}'
                next_seq[task] += 1

        # call order: a stream may not yield before its frame is committed
        TASKS, PER_TASK = 8, 300
        counter = iter(range(10**9))
        many = client.send_many if isinstance(client, SendsMany) else None

        async def ordered(task):
            for i in range(PER_TASK):
                if many is not None and i % 4 == 0:
                    first, second = next(counter), next(counter)
                    await many([struct.pack('!I', first),
                                struct.pack('!I', second)])
                else:
                    await client.send(struct.pack('!I', next(counter)))
                if (i + task) % 5 == 0:
                    await trio.lowlevel.checkpoint()
        async with trio.open_nursery() as n:
            for t in range(TASKS):
                n.start_soon(ordered, t)
            last = -1
            total = TASKS * PER_TASK + (TASKS * PER_TASK // 4
                                        if many is not None else 0)
            for _ in range(total):
                (seq,) = struct.unpack('!I', await server.recv())
                assert seq == last + 1, \
                    f'frame {seq} arrived after {last}: out of the order ' \
                    f'the send calls began (a send yielded before its ' \
                    f'frame was committed)'
                last = seq


async def _many_peers(ctx: _Ctx) -> None:
    """a listener serves many peers at once (100), each stream carrying
    exactly its own peer's frames"""
    await serve_many_peers(ctx.transport, ctx.addr)


async def serve_many_peers(t: Transport, addr: Addr, peers: int = 100,
                           msgs: int = 10) -> list:
    """``peers`` peers connect at once to one listener on ``addr`` and,
    once all are connected, each sends ``msgs`` frames and checks it gets
    exactly its own replies, in order; returns the streams the listener
    accepted (closed by then), after checking there was one per peer."""
    listener = await t.listen(addr)
    connected = 0
    all_connected = trio.Event()
    done = set()
    served = []

    async def reply(stream):
        served.append(stream)
        try:
            while True:
                msg = await stream.recv()
                await trio.lowlevel.checkpoint()
                await stream.send(b'reply:' + msg)
        except TransportClosed:
            pass
        finally:
            await stream.aclose()

    async def peer(i):
        nonlocal connected
        stream = await t.connect(listener.addr)
        try:
            connected += 1
            if connected == peers:
                all_connected.set()
            await all_connected.wait()
            for j in range(msgs):
                msg = f'peer {i} msg {j} '.encode() * (i % 7 + 1)
                await stream.send(msg)
                got = await stream.recv()
                assert got == b'reply:' + msg, \
                    f'peer {i} got a reply meant for someone else: ' \
                    f'{got[:60]!r}'
            done.add(i)
        finally:
            await stream.aclose()

    try:
        async with trio.open_nursery() as n:
            await n.start(accept_each, listener, reply)
            async with trio.open_nursery() as group:
                for i in range(peers):
                    group.start_soon(peer, i)
            await listener.aclose()
    finally:
        await close_all(listener)
    assert done == set(range(peers)), \
        f'{peers - len(done)} of {peers} peers were not served'
    assert len(served) == peers, \
        f'{peers} peers connected, the listener accepted {len(served)} ' \
        f'streams'
    return served


async def _stalls_then_delivers(client, server, count: int, frame,
                                check) -> None:
    """``client`` sends ``frame(i)`` for i < ``count`` while ``server``
    does not read: the sender must block before it is done. Then the
    server reads and ``check(i, got)`` -> (in order, intact) holds."""
    sent = 0
    all_sent = trio.Event()

    async def sender():
        nonlocal sent
        for i in range(count):
            await client.send(frame(i))
            sent += 1
        all_sent.set()

    async with trio.open_nursery() as n:
        n.start_soon(sender)
        with trio.move_on_after(1.0) as window:
            await all_sent.wait()
        assert window.cancelled_caught, (
            f'all {count} frames were "sent" to a reader that read '
            f'nothing: the transport buffers without bound instead of '
            f'blocking the sender')
        stalled_at = sent
        for i in range(count):
            in_order, intact = check(i, await server.recv())
            assert in_order, f'frame {i} lost or reordered under ' \
                             f'back-pressure (sender stalled at ' \
                             f'{stalled_at})'
            assert intact, f'frame {i} corrupted under back-pressure'
            if i < 64 and i % 8 == 0:
                await trio.sleep(0.01)  # a slow reader
        await all_sent.wait()


async def _back_pressure(ctx: _Ctx) -> None:
    """a sender faster than its reader blocks (128 MiB cannot vanish into
    buffers) and, once the reader reads, every frame arrives"""
    for frame_size, count in ((MiB, 128), (16 * 1024, 8192)):
        body = pattern(frame_size - 4, 7)

        def check(i, got, body=body):
            return got[:4] == i.to_bytes(4, 'big'), got[4:] == body
        async with ctx.pair() as (_, client, server):
            await _stalls_then_delivers(
                client, server, count,
                lambda i, body=body: i.to_bytes(4, 'big') + body, check)


async def _cancel_safety(ctx: _Ctx) -> None:
    """a recv cancelled part way through a frame loses nothing (the next
    recv returns it whole); a send cancelled while back-pressured sends
    its frame whole or not at all"""
    async with ctx.pair() as (_, client, server):
        frames = [pattern(16 * MiB, i) for i in range(4)]
        frames.insert(2, b'small one')
        cancels = 0
        rnd = random.Random(42)
        async with trio.open_nursery() as n:
            async def send_all():
                for f in frames:
                    await client.send(f)
            n.start_soon(send_all)
            for i, f in enumerate(frames):
                while True:
                    with trio.move_on_after(rnd.uniform(0, 0.002)) as cs:
                        got = await server.recv()
                    if not cs.cancelled_caught:
                        break
                    cancels += 1
                assert len(got) == len(f) and got == f, \
                    f'frame {i} came back as {len(got)} B after ' \
                    f'{cancels} cancelled recvs'
        assert cancels > 0, \
            'no recv was ever cancelled: the check proved nothing'
        await client.send(b'still in step')
        assert await server.recv() == b'still in step', \
            'the stream is out of step after cancelled recvs'

    async with ctx.pair() as (_, client, server):
        body = pattern(256 * 1024, 3)
        completed: list = []
        stalled = trio.Event()

        async def sender():
            i = 0
            while not stalled.is_set() or i < len(completed) + 64:
                with trio.move_on_after(0.01) as cs:
                    await client.send(i.to_bytes(4, 'big') + body)
                if cs.cancelled_caught:
                    stalled.set()
                else:
                    completed.append(i)
                i += 1
                if i > 4000:
                    break
            stalled.set()
            await client.send(b'end')

        async def reader():
            with trio.move_on_after(1):
                await stalled.wait()
            last = -1
            todo = iter(completed)
            want = next(todo, None)
            while True:
                got = await server.recv()
                if got == b'end':
                    return last
                i = int.from_bytes(got[:4], 'big')
                assert i > last, 'frames reordered or duplicated after ' \
                                 'cancelled sends'
                assert got[4:] == body, \
                    f'frame {i} arrived torn after cancelled sends'
                if want is not None and want < i:
                    raise AssertionError(
                        f'frame {want} completed its send but was lost')
                if want == i:
                    want = next(todo, None)
                last = i
        result = []
        async with trio.open_nursery() as n:
            n.start_soon(sender)
            result.append(await reader())
        assert completed and result[0] >= completed[-1], \
            'a frame whose send returned never arrived'
        await client.send(b'usable')
        assert await server.recv() == b'usable', \
            'the stream is out of step after cancelled sends'


async def _frame_too_large(ctx: _Ctx) -> None:
    """a frame over max_frame is refused with FrameTooLarge at send, not
    a hang; in a send_many batch nothing of the batch is sent"""
    mf = ctx.transport.max_frame
    async with ctx.pair() as (_, client, server):
        too_big = bytes(mf + 1)
        with _raises(FrameTooLarge, f'send of a frame of max_frame+1 '
                                    f'({mf + 1}) bytes'):
            await client.send(too_big)
    if not isinstance(client, SendsMany):
        return
    async with ctx.pair() as (_, client, server):
        with _raises(FrameTooLarge, 'send_many of a batch holding a frame '
                                    'over max_frame'):
            await client.send_many([b'first', too_big])
        await client.send(b'after')
        got = await server.recv()
        assert got == b'after', \
            f'send_many refused a batch for a frame over max_frame but ' \
            f'sent part of it: {got[:40]!r} arrived'


async def _recv_failure(stream: FrameStream, errors: dict) -> None:
    """A recv left pending: the TransportClosed it ends with goes in
    ``errors['recv']``."""
    try:
        await stream.recv()
    except TransportClosed as err:
        errors['recv'] = err


async def _close(ctx: _Ctx) -> None:
    """aclose() of the peer wakes a pending recv with TransportClosed;
    sending to a closed peer raises TransportClosed promptly; a local
    aclose() fails pending and later send/recv; aclose is idempotent"""
    async with ctx.pair() as (_, client, server):
        async with trio.open_nursery() as n:
            async def closer():
                await trio.testing.wait_all_tasks_blocked()
                await client.aclose()
            n.start_soon(closer)
            with _raises(TransportClosed, 'a recv pending when the peer '
                                          'closed'):
                await server.recv()
        with _raises(TransportClosed, 'a recv after the peer closed'):
            await server.recv()

    async with ctx.pair() as (_, client, server):
        await client.aclose()
        with trio.move_on_after(2) as cs:
            with _raises(TransportClosed, 'sending to a closed peer'):
                for _ in range(10_000):
                    await server.send(b'x' * 1000)
        assert not cs.cancelled_caught, \
            'sending to a closed peer neither failed nor stopped ' \
            'within 2 s'

    async with ctx.pair() as (_, client, server):
        errors = {}

        async def pending_send():
            try:
                while True:  # the peer never reads: this blocks
                    await client.send(bytes(MiB))
            except TransportClosed as err:
                errors['send'] = err

        async with trio.open_nursery() as n:
            n.start_soon(_recv_failure, client, errors)
            n.start_soon(pending_send)
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            await client.aclose()
        missing = {'recv', 'send'} - set(errors)
        assert not missing, \
            f'a {" and a ".join(sorted(missing))} pending on a stream ' \
            f'closed locally did not raise TransportClosed'
        with _raises(TransportClosed, 'recv after aclose()'):
            await client.recv()
        with _raises(TransportClosed, 'send after aclose()'):
            await client.send(b'late')
        await client.aclose()
        await client.aclose()


async def _abort(ctx: _Ctx) -> None:
    """abort() (synchronous) fails this side's pending and later calls
    and the peer's recv with TransportClosed at once; it is idempotent,
    and aclose() after it is harmless"""
    async with ctx.pair() as (_, client, server):
        errors: dict = {}
        async with trio.open_nursery() as n:
            n.start_soon(_recv_failure, client, errors)
            await trio.testing.wait_all_tasks_blocked()
            assert client.abort() is None, 'abort() must not be async'
        assert 'recv' in errors, \
            'a recv pending on an aborted stream did not raise ' \
            'TransportClosed'
        with _raises(TransportClosed, 'send after abort()'):
            await client.send(b'late')
        with _raises(TransportClosed, 'recv after abort()'):
            await client.recv()
        client.abort()
        await client.aclose()
        with _raises(TransportClosed, "the peer's recv after abort()"):
            await server.recv()


async def _listener_close(ctx: _Ctx) -> None:
    """closing a listener wakes a pending accept with TransportClosed,
    refuses later accepts, leaves accepted streams open and releases an
    ipc socket file"""
    async with ctx.pair() as (listener, client, server):
        async with trio.open_nursery() as n:
            async def pending_accept():
                with _raises(TransportClosed, 'an accept pending when the '
                                              'listener closed'):
                    await listener.accept()
            n.start_soon(pending_accept)
            await trio.testing.wait_all_tasks_blocked()
            await listener.aclose()
        with _raises(TransportClosed, 'accept after the listener closed'):
            await listener.accept()
        await listener.aclose()
        if listener.addr.path:
            assert not os.path.exists(listener.addr.path), \
                f'the listener closed but left {listener.addr.path}'
        await client.send(b'still here')
        assert await server.recv() == b'still here', \
            'closing the listener broke a stream it had accepted'
        await server.send(b'yes')
        assert await client.recv() == b'yes', \
            'closing the listener broke a stream it had accepted'


async def _connect_refused(ctx: _Ctx) -> None:
    """dialing an address nobody listens on fails (TransportClosed or
    OSError), or the stream reports the peer gone; it never hangs"""
    t = ctx.transport
    probe = await t.listen(ctx.addr)
    addr = probe.addr  # a real port / path, released again at once
    await probe.aclose()
    try:
        stream = await t.connect(addr)
    except (TransportClosed, OSError):
        return
    try:
        with trio.move_on_after(3):
            with _raises(TransportClosed, f'recv on a stream to {addr}, '
                                          f'where nobody listens'):
                await stream.recv()
            return
        raise AssertionError(f'connected to {addr} where nobody listens, '
                             f'and the stream never said so')
    finally:
        await close_all(stream)


async def _recv_many(ctx: _Ctx) -> None:
    """recv_many (optional) returns the frames already there, in order and
    whole, never more than asked for, and blocks for the first only"""
    async with ctx.pair() as (_, client, server):
        if not isinstance(server, ReceivesMany):
            raise _Skip('no recv_many (optional)')
        frames = [pattern(n % 300, n) for n in range(500)] + \
            [pattern(MiB, 9)]
        got: list = []
        async with trio.open_nursery() as n:
            async def send_all():
                for f in frames:
                    await client.send(f)
            n.start_soon(send_all)
            while len(got) < len(frames):
                burst = await server.recv_many(10)
                assert 1 <= len(burst) <= 10, \
                    f'recv_many(10) returned {len(burst)} frames'
                got.extend(burst)
        assert got == frames, 'recv_many lost, reordered or cut frames'
        result = []

        async def reader():
            result.append(await server.recv_many(5))
        async with trio.open_nursery() as n:
            n.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert not result, 'recv_many returned with nothing there'
            await client.send(b'late')
        assert result == [[b'late']], \
            f'recv_many waiting for a frame returned {result!r}'


async def _send_many(ctx: _Ctx) -> None:
    """send_many (optional) delivers its frames whole and in order, as
    consecutive sends would"""
    async with ctx.pair() as (_, client, server):
        if not isinstance(client, SendsMany):
            raise _Skip('no send_many (optional)')
        frames = [pattern(n * 997 % 70_000, n) for n in range(200)]
        await _delivered(lambda: client.send_many(frames), server, frames,
                         'a send_many batch')


async def _parts(ctx: _Ctx) -> None:
    """frames in parts (optional): a list of parts arrives as a list of
    bytes, part for part; a mutable part is copied at send; max_frame
    counts all parts; back-pressure counts every part's bytes"""
    async with ctx.pair() as (_, client, server):
        if not takes_parts(client):
            raise _Skip('no frames in parts (optional)')
        parts = [b'head', pattern(MiB, 1), bytearray(pattern(70_000, 2)),
                 memoryview(pattern(10, 3)), b'', pattern(65536, 4)]
        await client.send(b'before')
        await client.send(parts)
        if isinstance(client, SendsMany):
            await client.send_many([[b'h', pattern(MiB, 5)], b'after'])
        assert await server.recv() == b'before', \
            'a whole frame before a frame in parts was lost'
        got = await server.recv()
        assert type(got) is list and len(got) == len(parts), \
            f'a frame of {len(parts)} parts arrived as ' \
            f'{type(got).__name__} of {len(got)}'
        for i, (g, want) in enumerate(zip(got, parts)):
            assert type(g) is bytes, \
                f'part {i} came back as {type(g).__name__}, not bytes'
            assert g == bytes(want), f'part {i} differs'
        if isinstance(client, SendsMany):
            assert await server.recv() == [b'h', pattern(MiB, 5)], \
                'a frame in parts sent by send_many arrived changed'
            assert await server.recv() == b'after'

        buf = bytearray(pattern(MiB, 6))
        want = bytes(buf)
        await client.send([b'h', buf])
        buf[:] = bytes(len(buf))
        got = await server.recv()
        assert got[1] == want, \
            'a bytearray part changed after send returned arrived changed:' \
            ' only immutable bytes may be sent without a copy'

        half = bytes(ctx.transport.max_frame // 2 + 1)
        with _raises(FrameTooLarge, 'send of parts each under max_frame '
                                    'but over it together'):
            await client.send([half, half])
        await client.send(b'still fine')
        assert await server.recv() == b'still fine', \
            'a refused frame in parts left the stream out of step'

    async with ctx.pair() as (_, client, server):
        body = pattern(MiB, 8)

        def check(i, got):
            head, rest = got
            return head == i.to_bytes(4, 'big'), rest == body
        await _stalls_then_delivers(
            client, server, 128, lambda i: [i.to_bytes(4, 'big'), body],
            check)


@dataclass(frozen=True)
class _Rule:
    name: str
    check: Callable[[_Ctx], Awaitable[None]]
    timeout: float

    @property
    def text(self) -> str:
        return ' '.join((self.check.__doc__ or '').split())


_RULES = {r.name: r for r in (
    _Rule('objects', _objects, 20),
    _Rule('framing', _framing, 60),
    _Rule('order', _order, 40),
    _Rule('concurrent-senders', _concurrent_senders, 40),
    _Rule('many-peers', _many_peers, 40),
    _Rule('back-pressure', _back_pressure, 60),
    _Rule('cancel-safety', _cancel_safety, 60),
    _Rule('frame-too-large', _frame_too_large, 20),
    _Rule('close', _close, 20),
    _Rule('abort', _abort, 20),
    _Rule('listener-close', _listener_close, 20),
    _Rule('connect-refused', _connect_refused, 20),
    _Rule('send-many', _send_many, 20),
    _Rule('recv-many', _recv_many, 20),
    _Rule('parts', _parts, 60),
)}

#: the names of the rules :func:`check_transport` checks, in its order
RULES: tuple[str, ...] = tuple(_RULES)


@dataclass
class TransportReport:
    """What :func:`check_transport` checked: ``passed`` rule names, and
    ``skipped`` ones (an optional capability the transport lacks) with
    the reason, per address."""

    transport: str
    passed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def _leaf(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (a nursery
    wraps a child task's failure), else ``exc``."""
    while isinstance(exc, BaseExceptionGroup):
        asserts = [e for e in exc.exceptions
                   if isinstance(_leaf(e), AssertionError)]
        if asserts:
            exc = asserts[0]
        elif len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        else:
            return exc
    return exc


def _default_addrs(t: Transport) -> list[Addr]:
    out = []
    for scheme in t.schemes:
        if scheme in PATH_SCHEMES:
            out.append(Addr(t.name, scheme).fresh())
        else:
            out.append(Addr(t.name, scheme, host='127.0.0.1', port=0))
    return out


async def check_transport(
    transport: Transport | str,
    *addrs,
    rules: Iterable[str] | None = None,
    max_frame: int | None = None,
    timeout_factor: float = 1.0,
) -> TransportReport:
    """Check ``transport`` against the transport contract; raise
    :class:`AssertionError` naming the first rule it breaks.

    ``transport`` is a :class:`~tractor.transports.Transport` object or a
    registered name (``'tcp'``, ``'nng'``, an entry point's name...).
    ``addrs`` are the addresses to listen on (strings such as
    ``'quic://127.0.0.1:0'``, :class:`~tractor.transports.Addr` or
    ``(host, port)``); port 0 is fine and preferred. Without any, one
    loopback or socket-file address per scheme the transport speaks.
    ``rules`` picks some of :data:`RULES` (all by default);
    ``max_frame`` caps the largest frame tried (default: the transport's
    ``max_frame``); ``timeout_factor`` stretches every rule's deadline
    (a slow machine, a slow transport).

    Call it from trio (``trio.run``, a pytest-trio test)::

        from tractor.testing import check_transport

        async def test_my_transport():
            await check_transport(MyTransport(), 'my+tcp://127.0.0.1:0')

    Returns a :class:`TransportReport` of the rules passed and skipped
    (an optional capability the streams do not have).
    """
    t = get_transport(transport) if isinstance(transport, str) else transport
    name = getattr(t, 'name', type(t).__name__)
    chosen = list(RULES if rules is None else rules)
    unknown = [r for r in chosen if r not in _RULES]
    if unknown:
        raise ValueError(f'unknown rule(s) {", ".join(unknown)}; the rules '
                         f'are {", ".join(RULES)}')
    targets = ([Addr.parse(a, name) for a in addrs] if addrs
               else _default_addrs(t))
    report = TransportReport(name)
    for addr in targets:
        ctx = _Ctx(t, addr, min(max_frame or t.max_frame, t.max_frame))
        for rule_name in chosen:
            rule = _RULES[rule_name]
            where = f'transport {name!r} on {addr}'
            limit = rule.timeout * timeout_factor
            try:
                with trio.fail_after(limit):
                    await rule.check(ctx)
            except BaseException as err:
                leaf = _leaf(err)
                if isinstance(leaf, _Skip):
                    report.skipped.append((rule_name, str(addr), str(leaf)))
                    continue
                if isinstance(leaf, trio.TooSlowError):
                    why = (f'hung: not done within {limit:g} s (a send, '
                           f'recv or close that never returns?)')
                elif isinstance(leaf, AssertionError):
                    why = str(leaf)
                elif isinstance(leaf, (trio.Cancelled, KeyboardInterrupt,
                                       SystemExit)):
                    raise
                else:
                    why = (f'raised {type(leaf).__module__}.'
                           f'{type(leaf).__name__}: {leaf} (the contract '
                           f'allows only TransportClosed and its '
                           f'subclasses out of a stream)')
                raise AssertionError(
                    f'{where} broke rule {rule_name!r} -- {rule.text}:\n'
                    f'  {why}') from err
            report.passed.append((rule_name, str(addr)))
    return report

