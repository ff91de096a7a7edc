"""The Channel layer over every transport and every codec: the handshake
(uid, codec, version, shared secret), messages, heartbeats, and what
happens to peers that get any of it wrong -- they are dropped with an error
that says why, and the listener keeps serving everybody else.
"""
from __future__ import annotations

import json
import os
import signal
import struct

import pytest
import trio
import trio.testing

from tractor import Channel, HandshakeError, _liveness
from tractor._channel import PROTOCOL_VERSION, _HELLO
from tractor.codecs import (
    DecodeError,
    EncodeError,
    UnknownCodec,
    available_codecs,
    get_codec,
)
from tractor.transports import Addr, TransportClosed, get_transport

from ._helpers import (
    raw_unfit,
    SECRET,
    accept_from,
    channel_pair,
    close_all,
    echo_server,
    peer_process,
    raw_connect,
    raw_wait_closed,
)

pytestmark = pytest.mark.timeout(60)

#: messages shaped like the runtime's, and what they decode to (every
#: sequence comes back a list, whatever the codec)
RUNTIME_MSGS = [
    {'cmd': ('self', 'run_func', {'x': 1}, ('uid', 'abc'), 17)},
    {'cid': '42', 'functype': 'asyncgen', 'kwargs': {
        'ints': [0, 1, -1, 2**31, -2**31, 2**63 - 1, -2**63],
        'floats': [0.0, 1.5, -2.25, 1e300, 5e-324],
        'flags': [True, False, None],
    }},
    {'error': {'type_str': 'ValueError',
               'tb_str': 'Traceback:\n  λ → ☃ 😀 日本語\n\t"quoted" \\'}},
    {'nested': [[[[{'deep': [{'deeper': [1, [2, [3, [4]]]]}]}]]]]},
    [], {}, '', 0, None, True, 'ünïcødé',
    {'yield': list(range(1000)), 'text': 'x' * 100_000},
]


def as_received(obj):
    if isinstance(obj, (list, tuple)):
        return [as_received(x) for x in obj]
    if isinstance(obj, dict):
        return {k: as_received(v) for k, v in obj.items()}
    return obj


def other_codec(codec: str) -> str:
    others = [c for c in available_codecs() if c != codec]
    if not others:
        pytest.skip('only one codec available')
    return others[0]


async def roundtrip(chan: Channel, msgs=RUNTIME_MSGS) -> None:
    with trio.fail_after(10):
        for msg in msgs:
            await chan.send(msg)
            got = await chan.recv()
            assert got == as_received(msg)


# -- the happy path ------------------------------------------------------
async def test_channel_roundtrip(transport_addr: Addr, codec: str):
    async with echo_server(transport_addr, codec) as srv:
        chan = await Channel.connect(
            srv.listener.addr, codec=codec, uid=('client', 'c1'),
            secret=SECRET)
        async with chan:
            assert chan.uid == ('echo-server', '0')
            assert chan.codec.name == codec
            await roundtrip(chan)


async def test_channel_to_child_process(transport_addr: Addr, codec: str):
    """A child process dials, handshakes and echoes; its uid arrives; on
    close it sees the end and exits 0."""
    transport = get_transport(transport_addr.transport)
    listener = await transport.listen(transport_addr)
    chan = None
    try:
        async with peer_process('channel-echo', listener.addr,
                                codec) as proc:
            stream = await accept_from(listener, proc)
            chan = Channel(stream, codec)
            with trio.fail_after(20):
                uid = await chan.handshake(('parent', '0'), secret=SECRET)
            assert uid == ('peer', str(proc.pid))
            msgs = RUNTIME_MSGS
            if codec == 'msgpack':
                msgs = msgs + [{'blob': b'\x00\xff' * 1000}]
            await roundtrip(chan, msgs)
            await chan.aclose()
            with trio.fail_after(10):
                assert await proc.wait() == 0
    finally:
        await close_all(chan, listener)


async def test_large_bytes_values(transport_addr: Addr):
    """1 MiB bytes values anywhere a runtime message carries data arrive
    intact over every transport, sent at once or buffered; over a
    transport that carries frames in parts they travel as their own part
    (the encoding never copies them)."""
    big = bytes(range(256)) * 4096
    msgs = [
        {'cid': 1, 'yield': big},
        {'cid': 2, 'return': [big, b'small', bytearray(big)]},
        {'cmd': ('mod', 'f', {'data': big, 'n': 1}, ('u', 'i'), 3)},
    ]

    async def send_all(send):
        for msg in msgs:
            await send(msg)

    async with channel_pair(transport_addr, 'msgpack') as (a, b):
        with trio.fail_after(20):
            # (sent while the peer reads: a socket buffer is smaller than
            # these frames)
            async with trio.open_nursery() as n:
                n.start_soon(send_all, a.send)
                for msg in msgs:
                    assert await b.recv() == as_received(msg)
            async with trio.open_nursery() as n:
                n.start_soon(a.run_service)
                n.start_soon(send_all, a.send_buffered)
                for msg in msgs:
                    assert await b.recv() == as_received(msg)
                    assert b.last_size > len(big)
                n.cancel_scope.cancel()
            if getattr(a.stream, 'parts', False):
                await a.send({'cid': 4, 'yield': big})
                raw = await b.stream.recv()
                assert type(raw) is list and raw[1] == big


def _burst_item(i: int, large: bool = True) -> dict:
    # every 97th too large to be joined into a batch
    big = large and i % 97 == 0
    return {'cid': 1, 'yield': 'z' * 20_000 if big else i}


async def _burst(a: Channel, b: Channel, n: int, large: bool = True) -> int:
    """``a`` sends n stream-item-like messages (some ``large``), mostly
    buffered (a few with plain send), while ``b`` reads them alternately
    with recv() and recv_many(); returns how many frames ``b`` read."""
    got: list = []
    rx0 = b._rx
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run_service)

            async def produce():
                for i in range(n):
                    send = a.send if i % 150 == 149 else a.send_buffered
                    await send(_burst_item(i, large))
            nursery.start_soon(produce)
            while len(got) < n:
                if len(got) % 2:
                    got.append(await b.recv())
                    assert b.last_size > 0
                else:
                    more = await b.recv_many()
                    assert len(b.last_sizes) == len(more)
                    assert all(size > 0 for size in b.last_sizes)
                    got += more
            nursery.cancel_scope.cancel()
    assert got == [_burst_item(i, large) for i in range(n)]
    return b._rx - rx0


async def test_buffered_burst_travels_in_batches(transport_addr, codec):
    """A burst of buffered small messages crosses in far fewer frames
    than messages (joined into batch frames: see Batches in _channel),
    and every message arrives once and in order -- mixed with large ones
    and with plain sends, read by recv() and recv_many() alike."""
    async with channel_pair(transport_addr, codec) as (a, b):
        assert a._join is not None and b._join is not None
        n = 600
        assert await _burst(a, b, n) < n // 4


class _CodecWithoutBatches:
    """The msgpack codec as a peer without batch support has it."""
    name = 'msgpack'

    def __init__(self) -> None:
        real = get_codec('msgpack')
        self.encode, self.decode = real.encode, real.decode


async def test_no_batches_for_a_peer_that_cannot_split_them(transport_addr):
    """A peer whose codec has no batches says so in its hello: nobody
    sends it a batch frame, and it sends none either."""
    async with channel_pair(transport_addr, 'msgpack',
                            peer_codec=_CodecWithoutBatches()) as (a, b):
        assert a._join is None and b._join is None
        n = 300
        assert await _burst(a, b, n) >= n
        assert await _burst(b, a, n) >= n


async def test_batches_respect_max_frame(transport_addr):
    """Batches stay within the transport's max_frame (a frame over it
    would be refused): small messages still travel joined, just in more
    and smaller batches."""
    async with channel_pair(transport_addr, 'msgpack') as (a, b):
        # (a batch of 64 of these messages would be over 600 bytes)
        for s in (a.stream, b.stream):
            s.max_frame = 256
        assert await _burst(a, b, 300, large=False) < 300


async def test_channel_iteration_ends_when_peer_closes(transport_addr, codec):
    async with channel_pair(transport_addr, codec) as (a, b):
        async def produce():
            for i in range(100):
                await a.send({'i': i})
            await a.aclose()
        got = []
        with trio.fail_after(10):
            async with trio.open_nursery() as n:
                n.start_soon(produce)
                async for msg in b:
                    got.append(msg['i'])
        assert got == list(range(100))
        with pytest.raises(TransportClosed):
            await b.recv()
        with trio.fail_after(2), pytest.raises(TransportClosed):
            for _ in range(10_000):
                await b.send({'late': True})
        assert not a.connected


async def test_unencodable_message_leaves_channel_usable(transport_addr,
                                                         codec):
    class Custom:
        pass

    async with channel_pair(transport_addr, codec) as (a, b):
        bad = [{'obj': Custom()}]
        if codec == 'json':
            bad.append({'data': b'bytes'})
        for msg in bad:
            with pytest.raises(EncodeError) as info:
                await a.send(msg)
            text = str(info.value)
            assert codec in text
            assert ('Custom' in text) or ('bytes' in text)
        # nothing half-sent: the next message is the next one received
        await a.send({'fine': 1})
        with trio.fail_after(5):
            assert await b.recv() == {'fine': 1}


async def test_undecodable_frame_raises_decode_error(transport_addr, codec):
    async with channel_pair(transport_addr, codec) as (a, b):
        await a.stream.send(b'\xc1{not a message')
        with trio.fail_after(5), pytest.raises(DecodeError) as info:
            await b.recv()
        assert codec in str(info.value)
        await a.send(['after'])
        with trio.fail_after(5):
            assert await b.recv() == ['after']


async def test_unknown_codec_is_refused_before_dialing(transport_addr):
    """An unknown codec name fails at once with the available names, and
    before any connection is attempted (here: nobody listens)."""
    with pytest.raises(UnknownCodec) as info:
        await Channel.connect(transport_addr, codec='yaml', secret=SECRET)
    msg = str(info.value)
    assert 'yaml' in msg
    for name in available_codecs():
        assert name in msg


# -- liveness ------------------------------------------------------------
HB, LIVENESS = 0.2, 1.0


async def watched_channel(listener, proc, codec) -> Channel:
    """The channel from ``proc`` (accepted on ``listener``), handshaken,
    with the liveness settings of these tests."""
    stream = await accept_from(listener, proc)
    chan = Channel(stream, codec, heartbeat_interval=HB,
                   liveness_timeout=LIVENESS)
    with trio.fail_after(20):
        await chan.handshake(('parent', '0'), secret=SECRET)
    return chan


async def _stopped_peer_detected(transport_addr, codec, busy_sender,
                                 responder=False):
    transport = get_transport(transport_addr.transport)
    listener = await transport.listen(transport_addr)
    chan = None
    env = {'PEER_RESPONDER': '1'} if responder else {}
    try:
        async with peer_process('channel-echo', listener.addr, codec,
                                PEER_HEARTBEAT=str(HB),
                                PEER_LIVENESS=str(LIVENESS), **env) as proc:
            chan = await watched_channel(listener, proc, codec)
            await roundtrip(chan, [{'alive?': True}])
            detected = trio.Event()
            errors = []

            async def reader():
                try:
                    while True:
                        await chan.recv()
                except TransportClosed as err:
                    errors.append(err)
                    detected.set()

            async def sender():
                # keeps sending to the stopped peer until buffers are
                # full and send blocks
                blob = 'x' * 65536
                try:
                    while True:
                        await chan.send({'blob': blob})
                except TransportClosed:
                    pass

            async with trio.open_nursery() as n:
                n.start_soon(chan.run_service)
                n.start_soon(reader)
                proc.send_signal(signal.SIGSTOP)
                start = trio.current_time()
                if busy_sender:
                    n.start_soon(sender)
                bound = LIVENESS + 2 * HB + 0.5
                if responder:
                    # the probe that goes unanswered
                    bound += 2 * max(HB, _liveness.MIN_PROBE_WAIT)
                with trio.fail_after(bound):
                    await detected.wait()
                took = trio.current_time() - start
                n.cancel_scope.cancel()
            assert took >= LIVENESS * 0.5, \
                f'declared dead after {took:.2f}s, before the bound'
            assert 'liveness' in str(errors[0]) or 'sent nothing' in \
                str(errors[0]), errors[0]
            if responder:
                assert 'did not answer a liveness probe' in \
                    str(errors[0]), errors[0]
            assert not chan.connected
    finally:
        await close_all(chan, listener)


async def test_sigstopped_peer_detected_by_heartbeat(transport_addr, codec):
    """A peer process that is SIGSTOPped (its kernel still ACKs) is
    declared gone with TransportClosed within the liveness bound."""
    await _stopped_peer_detected(transport_addr, codec, busy_sender=False)


async def test_sigstopped_peer_detected_while_sending(transport_addr,
                                                     codec):
    """Same, while this side keeps sending to the stopped peer until its
    sends block on back-pressure: the heartbeat must not get stuck behind
    them."""
    await _stopped_peer_detected(transport_addr, codec, busy_sender=True)


async def test_sigstopped_peer_with_responder_detected(transport_addr):
    """A SIGSTOPped peer whose hello advertised a liveness responder does
    not answer the probe either: still declared gone within the bound
    (plus the probe's wait)."""
    await _stopped_peer_detected(transport_addr, 'msgpack',
                                 busy_sender=False, responder=True)


async def test_busy_peer_with_responder_kept(transport_addr):
    """A peer holding its loop in pure Python for 3 x the liveness timeout
    answers the probes (its loop is blocked): its channel stays up and the
    reply it sends afterwards arrives."""
    transport = get_transport(transport_addr.transport)
    listener = await transport.listen(transport_addr)
    chan = None
    try:
        async with peer_process('channel-echo', listener.addr, 'msgpack',
                                PEER_HEARTBEAT=str(HB),
                                PEER_LIVENESS=str(LIVENESS),
                                PEER_RESPONDER='1') as proc:
            chan = await watched_channel(listener, proc, 'msgpack')
            assert chan._alive is not None, 'no responder in the hello'
            async with trio.open_nursery() as n:
                n.start_soon(chan.run_service)
                await chan.send({'spin': 3 * LIVENESS})
                with trio.fail_after(3 * LIVENESS + 30):
                    assert await chan.recv() == {'spin': 3 * LIVENESS}
                assert chan.connected
                await roundtrip(chan, [{'alive?': True}])
                n.cancel_scope.cancel()
    finally:
        await close_all(chan, listener)


async def test_mute_peer_with_running_loop_declared_dead(transport_addr):
    """A peer whose process answers probes with its loop running, yet
    whose channel carries nothing, is not busy: its connection is broken,
    and it is declared gone within the bound like a silent peer."""
    transport = get_transport(transport_addr.transport)
    listener = await transport.listen(transport_addr)
    chan = None
    try:
        async with peer_process('channel-mute', listener.addr, 'msgpack',
                                PEER_RESPONDER='1') as proc:
            chan = await watched_channel(listener, proc, 'msgpack')
            async with trio.open_nursery() as n:
                n.start_soon(chan.run_service)
                start = trio.current_time()
                # timeout, the probe and one more wait for frames in flight
                bound = LIVENESS + 3 * max(HB, _liveness.MIN_PROBE_WAIT) + 5
                with trio.fail_after(bound):
                    with pytest.raises(TransportClosed) as info:
                        await chan.recv()
                took = trio.current_time() - start
                n.cancel_scope.cancel()
            assert took >= LIVENESS * 0.5, took
            assert 'connection is broken' in str(info.value), info.value
            assert not chan.connected
    finally:
        await close_all(chan, listener)


async def test_heartbeat_keeps_idle_channel_alive(transport_addr, codec):
    """Two idle but healthy peers stay connected well past the liveness
    timeout: the heartbeats count as traffic."""
    hb, liveness = HB / 2, LIVENESS / 2
    async with channel_pair(transport_addr, codec, heartbeat_interval=hb,
                            liveness_timeout=liveness) as (a, b):
        async with trio.open_nursery() as n:
            n.start_soon(a.run_service)
            n.start_soon(b.run_service)
            # wait in recv for 2.5 x the liveness timeout: nothing but
            # heartbeats arrives, and nobody is declared dead
            with trio.move_on_after(2.5 * liveness) as idle:
                await b.recv()
            assert idle.cancelled_caught
            assert a.connected and b.connected
            await a.send('still there?')
            with trio.fail_after(5):
                assert await b.recv() == 'still there?'
            n.cancel_scope.cancel()


# -- peers that get the handshake wrong ----------------------------------
def _hello(**over) -> bytes:
    body = {'v': PROTOCOL_VERSION, 'codec': 'msgpack', 'uid': ['bad', '1'],
            'nonce': os.urandom(16).hex()}
    body.update(over)
    return _HELLO + json.dumps(body).encode()


async def _frames_then_wait_dropped(addr: Addr, *frames: bytes) -> None:
    """Send ``frames`` on a plain stream and wait until the listener
    drops it."""
    stream = await get_transport(addr.transport).connect(addr)
    try:
        for f in frames:
            await stream.send(f)
        with pytest.raises(TransportClosed):
            while True:
                await stream.recv()
    finally:
        await stream.aclose()


async def _raw_then_wait_dropped(addr: Addr, data: bytes,
                                 eof: bool = False) -> None:
    sock = await raw_connect(addr)
    try:
        await sock.send_all(data)
        if eof:
            await sock.send_eof()
        await raw_wait_closed(sock)
    finally:
        await sock.aclose()


async def _dial_expecting(addr: Addr, codec: str, secret: str,
                          says: str) -> None:
    with pytest.raises(HandshakeError) as info:
        await Channel.connect(addr, codec=codec, secret=secret,
                              uid=('bad', '1'))
    assert says in str(info.value), info.value


BAD_PEERS = {
    # name: (raw transports only?, listener-side error says)
    'not-a-hello-frame': (False, 'not speaking the tractor protocol'),
    'empty-first-frame': (False, 'not speaking the tractor protocol'),
    'oversized-hello': (False, 'not speaking the tractor protocol'),
    'malformed-hello': (False, 'malformed hello'),
    'hello-missing-fields': (False, 'malformed hello'),
    'wrong-protocol-version': (False, 'protocol version 999'),
    'wrong-codec': (False, 'codec'),
    'wrong-secret': (False, 'secret'),
    'no-proof': (False, 'no proof'),
    'silent-peer': (False, 'handshake'),
    'raw-garbage-bytes': (True, 'max_frame'),
    'raw-oversized-length-prefix': (True, 'max_frame'),
    'raw-truncated-frame': (True, 'middle of a frame'),
    'raw-truncated-frame-then-stall': (True, 'handshake'),
}


async def _misbehave(case: str, addr: Addr, codec: str) -> None:
    if case == 'not-a-hello-frame':
        await _frames_then_wait_dropped(addr, b'\x00 definitely not tractor')
    elif case == 'empty-first-frame':
        await _frames_then_wait_dropped(addr, b'')
    elif case == 'oversized-hello':
        await _frames_then_wait_dropped(addr, _HELLO + b' ' * 100_000)
    elif case == 'malformed-hello':
        await _frames_then_wait_dropped(addr, _HELLO + b'{"v": 1, "cod')
    elif case == 'hello-missing-fields':
        await _frames_then_wait_dropped(addr, _HELLO + b'{"v": 1}')
    elif case == 'wrong-protocol-version':
        await _frames_then_wait_dropped(addr, _hello(v=999, codec=codec))
    elif case == 'wrong-codec':
        await _dial_expecting(addr, other_codec(codec), SECRET, 'codec')
    elif case == 'wrong-secret':
        await _dial_expecting(addr, codec, 'not-the-secret', 'secret')
    elif case == 'no-proof':
        await _frames_then_wait_dropped(addr, _hello(codec=codec),
                                        b'TRACTOR\x03 what proof?')
    elif case == 'silent-peer':
        await _frames_then_wait_dropped(addr)
    elif case == 'raw-garbage-bytes':
        await _raw_then_wait_dropped(addr, b'GET / HTTP/1.1\r\n\r\n')
    elif case == 'raw-oversized-length-prefix':
        await _raw_then_wait_dropped(addr, b'\xff\xff\xff\xf0' + b'A' * 64)
    elif case == 'raw-truncated-frame':
        await _raw_then_wait_dropped(
            addr, struct.pack('!I', 1000) + b'tractor?', eof=True)
    elif case == 'raw-truncated-frame-then-stall':
        await _raw_then_wait_dropped(addr, struct.pack('!I', 1000) + b'x')
    else:  # pragma: no cover
        raise AssertionError(case)


@pytest.mark.parametrize('case', list(BAD_PEERS))
async def test_bad_peer_dropped_others_served(transport_addr: Addr,
                                              codec: str, case: str,
                                              caplog):
    """A peer that sends garbage, a truncated or oversized frame, or a
    handshake with the wrong version, codec or secret is dropped with an
    error naming the problem, while a peer already connected and a peer
    connecting afterwards are served normally."""
    raw_only, says = BAD_PEERS[case]
    if raw_only and raw_unfit(transport_addr):
        pytest.skip(raw_unfit(transport_addr))
    async with echo_server(transport_addr, codec,
                           handshake_timeout=1.0) as srv:
        addr = srv.listener.addr

        async def good_peer(name):
            return await Channel.connect(addr, codec=codec, uid=(name, '1'),
                                         secret=SECRET)

        before = await good_peer('before')
        try:
            await roundtrip(before, RUNTIME_MSGS[:2])
            with trio.fail_after(10):
                await _misbehave(case, addr, codec)
                err = await srv.refused.receive()
            assert isinstance(err, TransportClosed)
            assert says in str(err), f'unclear refusal: {err}'
            assert 'refused connection' in caplog.text
            # everybody else is still served
            await roundtrip(before, RUNTIME_MSGS)
            after = await good_peer('after')
            async with after:
                await roundtrip(after, RUNTIME_MSGS)
            assert srv.served == 2
        finally:
            await before.aclose()
