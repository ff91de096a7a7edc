"""The transport contract (see ``tractor/transports/_base.py``), checked
against every registered transport and every address scheme it speaks.

Real sockets and real processes throughout. Tests that write raw bytes
(garbage, truncated frames, forged length prefixes) only apply to the
length-prefixed socket transports; every transport gets the frame-level
equivalents.
"""
from __future__ import annotations

import os
import random
import struct

import pytest
import trio
import trio.testing

import tractor
from tractor.transports import (
    Addr,
    FrameTooLarge,
    Listener,
    FrameStream,
    Transport,
    TransportClosed,
    UnknownTransport,
    available_transports,
    get_transport,
)

from ._helpers import (
    raw_unfit,
    accept_from,
    close_all,
    connect_accepted,
    many_peers_served,
    peer_process,
    raw_connect,
    raw_wait_closed,
    stream_pair,
)

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024


def need_raw(addr: Addr) -> None:
    why = raw_unfit(addr)
    if why:
        pytest.skip(why)


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` bytes that differ from frame to frame and position to
    position, so a swapped, shifted or truncated frame cannot pass."""
    if n == 0:
        return b''
    block = random.Random(seed).randbytes(min(n, 4093))
    return (block * (n // len(block) + 1))[:n]


# -- the objects themselves ----------------------------------------------
async def test_protocols(transport: Transport, pair):
    listener, client, server = pair
    assert isinstance(transport, Transport)
    assert transport.name == listener.addr.transport
    assert transport.schemes and isinstance(transport.schemes, tuple)
    assert listener.addr.scheme in transport.schemes
    assert transport.max_frame >= 16 * MiB
    assert isinstance(listener, Listener)
    for s in (client, server):
        assert isinstance(s, FrameStream)
        assert isinstance(s.local_addr, Addr)
        assert isinstance(s.peer_addr, Addr)


# -- framing -------------------------------------------------------------
@pytest.mark.parametrize('size', [0, 1, 2, 4, 65535, 65536, 65537, MiB,
                                  16 * MiB],
                         ids=lambda n: f'{n}B')
async def test_frame_sizes(pair, size):
    """Each frame arrives whole, both ways, at once in both directions."""
    _, client, server = pair
    out, back = pattern(size, 1), pattern(size, 2)
    got = {}

    async def xfer(src, dst, data, key):
        async with trio.open_nursery() as n:
            n.start_soon(src.send, data)
            got[key] = await dst.recv()

    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            n.start_soon(xfer, client, server, out, 'out')
            n.start_soon(xfer, server, client, back, 'back')
    assert len(got['out']) == size and got['out'] == out
    assert len(got['back']) == size and got['back'] == back
    # the stream is still in step afterwards
    await client.send(b'after')
    assert await server.recv() == b'after'


async def test_mixed_sizes_back_to_back(pair):
    """Empty, tiny and large frames queued behind each other keep their
    boundaries."""
    _, client, server = pair
    sizes = [0, 1, 0, 70_000, 3, 0, 2 * MiB, 0, 5, 65536, 0]
    frames = [pattern(n, i) for i, n in enumerate(sizes)]
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            async def send_all():
                for f in frames:
                    await client.send(f)
            n.start_soon(send_all)
            for i, f in enumerate(frames):
                got = await server.recv()
                assert got == f, f'frame {i} ({sizes[i]} B) came back ' \
                                 f'as {len(got)} B'


async def test_ordering_10k_both_ways(pair):
    """10,000 frames each way, concurrently, arrive in order."""
    _, client, server = pair
    N = 10_000

    async def sender(s, tag):
        for i in range(N):
            await s.send(tag + i.to_bytes(4, 'big'))

    async def receiver(s, tag):
        for i in range(N):
            got = await s.recv()
            assert got == tag + i.to_bytes(4, 'big'), \
                f'expected message {i}, got {got!r}'

    with trio.fail_after(40):
        async with trio.open_nursery() as n:
            n.start_soon(sender, client, b'c')
            n.start_soon(sender, server, b's')
            n.start_soon(receiver, server, b'c')
            n.start_soon(receiver, client, b's')


async def test_max_frame_enforced_on_send(transport: Transport, pair):
    """A frame over ``max_frame`` is refused with FrameTooLarge; the
    refusal is an error the sender sees, never a hang."""
    _, client, server = pair
    too_big = bytes(transport.max_frame + 1)
    with trio.fail_after(10):
        with pytest.raises(FrameTooLarge) as info:
            await client.send(too_big)
    assert 'max_frame' in str(info.value)


async def test_recv_many_takes_bursts_in_order(pair):
    """``recv_many`` (optional) returns the frames already there, in
    order and whole, never more than asked for, and blocks for the
    first only."""
    _, client, server = pair
    if not hasattr(server, 'recv_many'):
        pytest.skip(f'{server.local_addr.transport} has no recv_many '
                    f'(optional in the contract)')
    frames = [pattern(n % 300, n) for n in range(500)] + [pattern(MiB, 9)]
    got = []
    with trio.fail_after(20):
        async with trio.open_nursery() as n:
            n.start_soon(client.send_many, frames)
            while len(got) < len(frames):
                burst = await server.recv_many(10)
                assert 1 <= len(burst) <= 10
                got.extend(burst)
        assert got == frames
        # nothing there: it waits for the next frame, then returns it
        result = []

        async def reader():
            result.append(await server.recv_many(5))

        async with trio.open_nursery() as n:
            n.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            assert not result
            await client.send(b'late')
        assert result == [[b'late']]


# -- frames in parts (optional) ------------------------------------------
def need_parts(stream) -> None:
    if not getattr(stream, 'parts', False):
        pytest.skip(f'{stream.local_addr.transport} sends whole frames '
                    f'only (frames in parts are optional in the contract)')


async def test_frames_in_parts_roundtrip(pair):
    """A list of parts arrives as a list of ``bytes``, part for part
    (bytes, bytearray, memoryview, empty, large), in order with whole
    frames sent around it."""
    _, client, server = pair
    need_parts(client)
    parts = [b'head', pattern(MiB, 1), bytearray(pattern(70_000, 2)),
             memoryview(pattern(10, 3)), b'', pattern(65536, 4)]
    with trio.fail_after(20):
        await client.send(b'before')
        await client.send(parts)
        await client.send_many([[b'h', pattern(MiB, 5)], b'after'])
        assert await server.recv() == b'before'
        got = await server.recv()
        assert type(got) is list and len(got) == len(parts)
        for i, (g, want) in enumerate(zip(got, parts)):
            assert type(g) is bytes, f'part {i} came back as {type(g)}'
            assert g == bytes(want), f'part {i} differs'
        assert await server.recv() == [b'h', pattern(MiB, 5)]
        assert await server.recv() == b'after'


async def test_mutable_part_is_copied_at_send(pair):
    """A bytearray part changed right after ``send`` returns arrives as
    it was sent: only immutable bytes are handed over without a copy."""
    _, client, server = pair
    need_parts(client)
    buf = bytearray(pattern(MiB, 6))
    want = bytes(buf)
    with trio.fail_after(20):
        await client.send([b'h', buf])
        buf[:] = bytes(len(buf))
        got = await server.recv()
    assert got[1] == want


async def test_max_frame_counts_all_parts(transport: Transport, pair):
    """Parts each under ``max_frame`` but over it together are refused
    with FrameTooLarge, nothing is sent, and the stream stays usable."""
    _, client, server = pair
    need_parts(client)
    half = bytes(transport.max_frame // 2 + 1)
    with trio.fail_after(20):
        with pytest.raises(FrameTooLarge):
            await client.send([half, half])
        with pytest.raises(FrameTooLarge):
            await client.send_many([b'x', [half, half]])
        await client.send(b'still fine')
        assert await server.recv() == b'still fine'


async def test_slow_reader_backpressures_parts(pair):
    """Back-pressure counts the bytes of every part: 128 MiB in parts
    cannot vanish into buffers while the reader sleeps, and all of it
    arrives in order once it reads."""
    _, client, server = pair
    need_parts(client)
    body = pattern(MiB, 8)

    def check(i, got):
        head, rest = got
        return head == i.to_bytes(4, 'big'), rest == body
    await stalls_then_delivers(
        client, server, 128, lambda i: [i.to_bytes(4, 'big'), body], check)


# -- concurrency ---------------------------------------------------------
_TAG = struct.Struct('!HHI')  # task, seq, payload length


async def test_concurrent_senders_never_interleave(pair):
    """50 tasks send on one stream at once; every frame arrives whole and
    each task's frames arrive in the order it sent them."""
    _, client, server = pair
    TASKS, PER_TASK = 50, 20
    sizes = [1, 17, 1000, 65_535 - _TAG.size, 65_536, 200_000, 0, 5000]

    def frame(task, seq):
        size = sizes[(task + seq) % len(sizes)]
        return _TAG.pack(task, seq, size) + pattern(size, task * 1000 + seq)

    async def sender(task):
        for seq in range(PER_TASK):
            await client.send(frame(task, seq))
            if seq % 3 == task % 3:
                await trio.lowlevel.checkpoint()

    next_seq = [0] * TASKS
    with trio.fail_after(40):
        async with trio.open_nursery() as n:
            for t in range(TASKS):
                n.start_soon(sender, t)
            for _ in range(TASKS * PER_TASK):
                got = await server.recv()
                task, seq, size = _TAG.unpack_from(got)
                assert len(got) == _TAG.size + size, 'frame cut or merged'
                assert got == frame(task, seq), 'frame corrupted'
                assert seq == next_seq[task], \
                    f'task {task}: got frame {seq}, expected {next_seq[task]}'
                next_seq[task] += 1
    assert next_seq == [PER_TASK] * TASKS


async def test_concurrent_sends_keep_call_order(pair):
    """Frames of concurrent senders go out in the order the ``send`` (or
    ``send_many``) calls began: a stream may not yield to the scheduler
    before its frame is committed, or a later caller overtakes it. The
    Channel's batching (a flush racing the next send) relies on this."""
    _, client, server = pair
    TASKS, PER_TASK = 8, 300
    counter = iter(range(10**9))
    many = getattr(client, 'send_many', None)

    async def sender(task):
        for i in range(PER_TASK):
            if many is not None and i % 4 == 0:
                first = next(counter)
                second = next(counter)
                await many([struct.pack('!I', first),
                            struct.pack('!I', second)])
            else:
                await client.send(struct.pack('!I', next(counter)))
            if (i + task) % 5 == 0:
                await trio.lowlevel.checkpoint()

    with trio.fail_after(40):
        async with trio.open_nursery() as n:
            for t in range(TASKS):
                n.start_soon(sender, t)
            last = -1
            total = TASKS * PER_TASK + (TASKS * PER_TASK // 4
                                        if many is not None else 0)
            for _ in range(total):
                (seq,) = struct.unpack('!I', await server.recv())
                assert seq == last + 1, \
                    f'frame {seq} arrived after {last}: out of call order'
                last = seq


async def test_100_peers_on_one_listener(transport: Transport,
                                         transport_addr: Addr):
    """100 peers connected at once to one listener: each gets exactly its
    own replies, in order."""
    await many_peers_served(transport, transport_addr)


# -- back-pressure -------------------------------------------------------
@pytest.mark.parametrize('frame_size,count', [(MiB, 128), (16 * 1024, 8192)],
                         ids=['1MiB-frames', '16KiB-frames'])
async def test_slow_reader_backpressures_sender(pair, frame_size, count):
    """While the reader sleeps the sender blocks (128 MiB cannot vanish
    into buffers); once it reads, every frame arrives, none lost."""
    _, client, server = pair
    body = pattern(frame_size - 4, 7)

    def check(i, got):
        return got[:4] == i.to_bytes(4, 'big'), got[4:] == body
    await stalls_then_delivers(
        client, server, count, lambda i: i.to_bytes(4, 'big') + body, check)


async def stalls_then_delivers(client, server, count: int, frame, check):
    """``client`` sends ``frame(i)`` for i < ``count`` while ``server``
    sleeps: the sender must block before it is done. Then the server reads
    (slowly at first) and ``check(i, got)`` -> (in order, intact) holds
    for every frame."""
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
        # the reader is asleep: the sender must not get everything out
        with trio.move_on_after(1.0) as window:
            await all_sent.wait()
        assert window.cancelled_caught, (
            f'all {count} frames were "sent" to a reader that read '
            f'nothing: the transport buffers without bound instead of '
            f'blocking the sender')
        assert sent < count
        stalled_at = sent
        # now read, slowly at first, and check every frame
        with trio.fail_after(40):
            for i in range(count):
                in_order, intact = check(i, await server.recv())
                assert in_order, \
                    f'frame {i} lost or reordered (sender stalled at ' \
                    f'{stalled_at})'
                assert intact, f'frame {i} corrupted'
                if i < 64 and i % 8 == 0:
                    await trio.sleep(0.01)  # a slow reader
            await all_sent.wait()
    assert sent == count


async def test_cancelled_send_leaves_whole_frames(pair):
    """Sends cancelled while back-pressured either deliver their frame
    whole or not at all; the stream stays usable and every frame whose
    send returned arrives, in order."""
    _, client, server = pair
    # small frames: a blocked send then mostly waits before its first byte,
    # where it can be cancelled (a frame half out is completed instead)
    body = pattern(60, 3)
    completed, cancelled = [], 0
    stalled = trio.Event()

    async def sender():
        nonlocal cancelled
        i = 0
        # small frames until the pipe is full and a few sends have been
        # cancelled while blocked (or enough frames went out)
        while cancelled < 5 and i < 20_000:
            with trio.move_on_after(0.02) as cs:
                await client.send(i.to_bytes(4, 'big') + body)
            if cs.cancelled_caught:
                cancelled += 1  # it may or may not be out, but only whole
            else:
                completed.append(i)
            i += 1
        stalled.set()
        await client.send(b'end')

    async def reader():
        # a reader that does not read until the sender is stuck
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
            assert i > last, 'frames reordered or duplicated'
            assert got[4:] == body, f'frame {i} arrived torn'
            if want is not None and want < i:
                raise AssertionError(
                    f'frame {want} completed its send but was lost')
            if want == i:
                want = next(todo, None)
            last = i

    with trio.fail_after(40):
        async with trio.open_nursery() as n:
            n.start_soon(sender)
            last = await reader()
    # (whether any send got cancelled depends on the kernel's buffers: a
    # send blocked after its first byte completes instead)
    assert completed and last >= completed[-1]
    await client.send(b'usable')
    assert await server.recv() == b'usable'


async def test_tcp_stalled_reader_is_not_a_dead_peer(transport_addr):
    """Regression: TCP_USER_TIMEOUT also bounds zero-window probing on
    Linux, so with it set a reader that stalls longer than the timeout
    (15 s then) got its connection reset and the sender's data dropped.
    A slow reader must back-pressure, never kill the stream."""
    if transport_addr.transport != 'tcp':
        pytest.skip('TCP socket option')
    import socket
    if not hasattr(socket, 'TCP_USER_TIMEOUT'):
        pytest.skip('no TCP_USER_TIMEOUT on this platform')
    async with stream_pair(transport_addr) as (_, client, server):
        for s in (client, server):
            assert s._sock.getsockopt(
                socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0


# -- cancel safety -------------------------------------------------------
async def test_recv_cancelled_repeatedly_while_frame_streams(pair):
    """recv cancelled again and again with tiny timeouts while 16 MiB
    frames stream in: each next recv still returns the frame whole."""
    _, client, server = pair
    frames = [pattern(16 * MiB, i) for i in range(4)]
    frames.insert(2, b'small one')
    cancels = 0
    rnd = random.Random(42)
    with trio.fail_after(40):
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
    assert cancels > 0, 'no recv was ever cancelled: the test proved nothing'
    await client.send(b'still in step')
    with trio.fail_after(5):
        assert await server.recv() == b'still in step'


@pytest.mark.parametrize('size', [1000, 16 * MiB], ids=['1000B', '16MiB'])
async def test_recv_cancelled_mid_frame_raw(transport_addr, size):
    """A peer writes a frame slowly, in pieces. recvs cancelled while only
    part of it has arrived lose nothing: the next recv returns it whole,
    and the frame after it too."""
    need_raw(transport_addr)
    transport = get_transport(transport_addr.transport)
    listener = await transport.listen(transport_addr)
    raw = stream = None
    try:
        with trio.fail_after(30):
            raw, stream = await connect_accepted(
                listener, lambda: raw_connect(listener.addr))
            data = pattern(size, 9)
            wire = struct.pack('!I', size) + data
            pieces = 4 if size < MiB else 32
            step = len(wire) // pieces + 1
            got = None
            mid_frame_cancels = 0
            async with trio.open_nursery() as n:
                async def slow_writer():
                    for off in range(0, len(wire), step):
                        await raw.send_all(wire[off:off + step])
                        await trio.sleep(0.02)  # a slow peer
                    await raw.send_all(struct.pack('!I', 3) + b'end')
                n.start_soon(slow_writer)
                while got is None:
                    with trio.move_on_after(0.005) as cs:
                        got = await stream.recv()
                    if cs.cancelled_caught:
                        mid_frame_cancels += 1
            assert got == data, f'frame came back as {len(got)} B'
            assert mid_frame_cancels >= pieces // 2
            assert await stream.recv() == b'end'
    finally:
        if raw is not None:
            await raw.aclose()
        await close_all(stream, listener)


# -- closing -------------------------------------------------------------
async def test_peer_close_wakes_pending_recv(pair):
    _, client, server = pair
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            async def closer():
                await trio.testing.wait_all_tasks_blocked()
                await client.aclose()
            n.start_soon(closer)
            with pytest.raises(TransportClosed):
                await server.recv()
    with trio.fail_after(2):
        with pytest.raises(TransportClosed):
            await server.recv()


async def test_send_to_closed_peer_raises(pair):
    """Sending to a peer that closed raises TransportClosed promptly
    (perhaps after a few frames already in flight), never hangs."""
    _, client, server = pair
    await client.aclose()
    with trio.fail_after(2):
        with pytest.raises(TransportClosed):
            for _ in range(10_000):
                await server.send(b'x' * 1000)


async def test_local_close_fails_pending_and_later_calls(pair):
    """aclose() while another task waits in recv and another is blocked
    in send: both raise TransportClosed; so does every later call.
    aclose() is idempotent."""
    _, client, server = pair
    errors = {}

    async def pending_recv():
        try:
            await client.recv()
        except TransportClosed as err:
            errors['recv'] = err

    async def pending_send():
        try:
            # the peer never reads: this blocks on back-pressure
            while True:
                await client.send(bytes(MiB))
        except TransportClosed as err:
            errors['send'] = err

    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            n.start_soon(pending_recv)
            n.start_soon(pending_send)
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            await client.aclose()
    assert set(errors) == {'recv', 'send'}
    with trio.fail_after(1):
        with pytest.raises(TransportClosed):
            await client.recv()
        with pytest.raises(TransportClosed):
            await client.send(b'late')
        await client.aclose()
        await client.aclose()


async def test_listener_close(transport: Transport, transport_addr: Addr):
    """Closing a listener wakes a pending accept with TransportClosed,
    refuses later accepts, leaves accepted streams open and (for an ipc
    address) removes the socket file."""
    async with stream_pair(transport_addr) as (listener, client, server):
        with trio.fail_after(5):
            async with trio.open_nursery() as n:
                async def pending_accept():
                    with pytest.raises(TransportClosed):
                        await listener.accept()
                n.start_soon(pending_accept)
                await trio.testing.wait_all_tasks_blocked()
                await listener.aclose()
            with pytest.raises(TransportClosed):
                await listener.accept()
            await listener.aclose()  # idempotent
            if listener.addr.path:
                assert not os.path.exists(listener.addr.path)
            # the accepted streams live on
            await client.send(b'still here')
            assert await server.recv() == b'still here'
            await server.send(b'yes')
            assert await client.recv() == b'yes'


async def test_connect_to_nobody_fails_promptly(transport: Transport,
                                                transport_addr: Addr):
    """Dialing an address nobody listens on fails (TransportClosed or
    OSError) or, for a transport that dials lazily, the stream reports
    the peer gone: it never hangs."""
    probe = await transport.listen(transport_addr)
    addr = probe.addr  # a real port / path, released again at once
    await probe.aclose()
    with trio.fail_after(10):
        try:
            stream = await transport.connect(addr)
        except (TransportClosed, OSError):
            return
        try:
            with trio.move_on_after(3):
                with pytest.raises(TransportClosed):
                    await stream.recv()
                return
            pytest.fail(f'{transport.name} connected to {addr} where '
                        f'nobody listens, and its stream never said so')
        finally:
            await stream.aclose()


# -- peers that die ------------------------------------------------------
async def test_sigkilled_peer_detected_within_2s(transport: Transport,
                                                 transport_addr: Addr):
    """A peer process killed with SIGKILL: the pending recv on this side
    raises TransportClosed within 2 s, and so does sending."""
    listener = await transport.listen(transport_addr)
    stream = None
    try:
        async with peer_process('idle', listener.addr) as proc:
            stream = await accept_from(listener, proc)
            with trio.fail_after(10):
                assert await stream.recv() == b'ready'
            closed = trio.Event()
            async with trio.open_nursery() as n:
                async def recv_until_closed():
                    with pytest.raises(TransportClosed):
                        await stream.recv()
                    closed.set()
                n.start_soon(recv_until_closed)
                await trio.testing.wait_all_tasks_blocked()
                proc.kill()
                with trio.fail_after(2):
                    await closed.wait()
            await proc.wait()
            with trio.fail_after(2):
                with pytest.raises(TransportClosed):
                    while True:
                        await stream.send(b'anyone?')
    finally:
        await close_all(stream, listener)


async def test_echo_via_child_process(transport: Transport,
                                      transport_addr: Addr):
    """Frames of every size survive a round trip through another process;
    when this side closes, the child sees TransportClosed and exits 0."""
    listener = await transport.listen(transport_addr)
    stream = None
    try:
        async with peer_process('echo', listener.addr) as proc:
            stream = await accept_from(listener, proc)
            with trio.fail_after(30):
                assert await stream.recv() == b'ready'
                for size in (0, 1, 1000, MiB, 16 * MiB):
                    data = pattern(size, size)
                    async with trio.open_nursery() as n:
                        n.start_soon(stream.send, data)
                        got = await stream.recv()
                    assert got == data, f'{size} B frame came back as ' \
                                        f'{len(got)} B'
                await stream.aclose()
                assert await proc.wait() == 0, \
                    'the child did not see TransportClosed and exit cleanly'
    finally:
        await close_all(stream, listener)


# -- misbehaving peers on raw byte streams -------------------------------
RAW_CASES = {
    # name: (bytes, then close?, what the listener-side recv says)
    'garbage': (b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', False, 'max_frame'),
    'oversized-prefix': (b'\xff\xff\xff\xff' + b'x' * 100, False,
                         'max_frame'),
    'truncated-frame': (struct.pack('!I', 100) + b'only ten b', True,
                        'middle of a frame'),
    'truncated-header': (b'\x00\x00', True, 'closed'),
}


@pytest.mark.parametrize('case', list(RAW_CASES))
async def test_raw_bad_bytes_fail_the_stream(transport: Transport,
                                             transport_addr: Addr, case):
    """Bytes that are not a well-formed frame make that stream's recv
    raise TransportClosed (FrameTooLarge for a forged length) with a
    message saying what happened, and the connection is dropped."""
    need_raw(transport_addr)
    data, close, says = RAW_CASES[case]
    listener = await transport.listen(transport_addr)
    raw = stream = None
    try:
        with trio.fail_after(10):
            raw, stream = await connect_accepted(
                listener, lambda: raw_connect(listener.addr))
            await raw.send_all(data)
            if close:
                await raw.send_eof()
            with pytest.raises(TransportClosed) as info:
                await stream.recv()
            assert says in str(info.value)
            if says == 'max_frame':
                assert isinstance(info.value, FrameTooLarge)
            # dropped: the raw peer sees the connection end
            await raw_wait_closed(raw)
            with pytest.raises(TransportClosed):
                await stream.recv()
    finally:
        if raw is not None:
            await raw.aclose()
        await close_all(stream, listener)


# -- names ---------------------------------------------------------------
async def test_unknown_transport_lists_available():
    with pytest.raises(UnknownTransport) as info:
        get_transport('carrier-pigeon')
    msg = str(info.value)
    assert 'carrier-pigeon' in msg
    for name in available_transports():
        assert name in msg
    with pytest.raises(UnknownTransport) as info:
        await tractor.transports.connect('pigeon+tcp://127.0.0.1:9')
    assert 'pigeon' in str(info.value) and 'tcp' in str(info.value)
    with pytest.raises(LookupError):  # UnknownTransport is a LookupError
        await tractor.transports.listen(('127.0.0.1', 0), 'pigeon')


def test_every_transport_has_a_variant():
    from .conftest import TRANSPORT_VARIANTS
    if os.environ.get('TRACTOR_TEST_TRANSPORTS'):
        pytest.skip('restricted by $TRACTOR_TEST_TRANSPORTS')
    names = {name for name, _ in TRANSPORT_VARIANTS}
    assert names == set(available_transports())
    assert {'tcp', 'uds'} <= names
    for name in names:
        for scheme in get_transport(name).schemes:
            assert (name, scheme) in TRANSPORT_VARIANTS
