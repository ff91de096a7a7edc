"""Bad input for actor listeners, used by ``_scenario.py``.

Three layers, each against one listener address:

* ``raw``: bytes written straight to the OS socket under the transport
  (random bytes, a truncated length-prefixed frame, a 4 GiB length prefix,
  a connection that says nothing), so the transport's own parser is hit;
* ``frames``: whole transport frames that are not a tractor handshake
  (random frames, malformed hellos, a hello and then garbage, a frame above
  ``max_frame``, silence after connecting);
* ``malformed``: an *authenticated* channel (same secret as the tree)
  carrying messages the actor must reject without dying: wrong types,
  unknown commands, missing fields, deep nesting, undecodable bytes.

Every attack records how it ended: ``dropped`` (the actor closed the
connection, with the seconds it took), ``error`` (an error reply, with its
text), ``served`` (an honest call on the same channel still answered), or
``open`` (still connected after the bound: only acceptable where the
transport's library owns the connection, see the tests).
"""
from __future__ import annotations

import json
import os
import random
import time

import trio

import tractor
from tractor._channel import _HELLO, _PROOF
from tractor.transports import Addr, TransportClosed, get_transport

#: seconds an attack waits for the actor to drop it; must exceed the
#: tree's $TRACTOR_HANDSHAKE_TIMEOUT
DROP_BOUND = float(os.environ.get('TRACTOR_CHAOS_DROP_BOUND', 6.0))
ME = '__main__'


# -- raw OS sockets ------------------------------------------------------
async def _raw_connect(a: Addr):
    if a.scheme == 'ipc':
        return await trio.open_unix_socket(a.path)
    return await trio.open_tcp_stream(a.host, a.port)


async def _raw_until_dropped(sock, payload: bytes) -> dict:
    t0 = time.monotonic()
    try:
        if payload:
            await sock.send_all(payload)
        with trio.move_on_after(DROP_BOUND):
            while True:
                data = await sock.receive_some(65536)
                if not data:
                    return {'end': 'dropped', 'after': time.monotonic() - t0}
        return {'end': 'open'}
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
        return {'end': 'dropped', 'after': time.monotonic() - t0,
                'how': type(e).__name__}
    finally:
        await sock.aclose()


async def raw_attacks(a: Addr, rng: random.Random) -> dict:
    out = {}
    cases = {
        'random_bytes': bytes(rng.getrandbits(8) for _ in range(4096)),
        # a 4-byte length prefix announcing 100 bytes, then only 10
        'truncated_frame': (100).to_bytes(4, 'big') + b'x' * 10,
        # a length prefix announcing a 4 GiB frame
        'oversized_prefix': b'\xff\xff\xff\xff' + b'x' * 100,
        # connects and never speaks
        'silent': b'',
    }
    async def one(name, payload):
        try:
            sock = await _raw_connect(a)
        except OSError as err:
            out[name] = {'end': 'refused', 'how': str(err)}
            return
        out[name] = await _raw_until_dropped(sock, payload)

    async with trio.open_nursery() as n:
        for name, payload in cases.items():
            n.start_soon(one, name, payload)
    return out


# -- transport frames before/instead of the handshake ----------------------
def _tcp_connected(port: int) -> bool:
    """Whether the kernel still has a connected TCP socket bound to local
    ``port`` (from ``/proc/net/tcp*``; state 01 is ESTABLISHED)."""
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == '01' and int(cols[1].rpartition(':')[2], 16) == port:
                return True
    return False


def _unreported_close(stream) -> bool:
    """An nng+tls stream whose TCP connection the listener has closed,
    though nng never reported it: nng's TLS layer sometimes loses a close
    it meets together with data (see tractor/transports/_tls_nng.py; a
    Channel's heartbeat covers it). The listener did drop the peer, which
    is what the attacks check, so the kernel is asked instead."""
    tr = get_transport(stream.local_addr.transport)
    if tr.name != 'nng' or getattr(tr, 'tls', None) is None \
            or stream.local_addr.scheme != 'tcp':
        return False
    return not _tcp_connected(stream.local_addr.port)


async def _frames_until_dropped(stream, frames) -> dict:
    t0 = time.monotonic()
    got = []
    try:
        for f in frames:
            await stream.send(f)
        with trio.move_on_after(DROP_BOUND):
            while True:
                got.append(bytes(await stream.recv())[:40])
        if _unreported_close(stream):
            return {'end': 'dropped_unreported',
                    'after': time.monotonic() - t0}
        return {'end': 'open', 'got': [g.hex() for g in got]}
    except TransportClosed as err:
        return {'end': 'dropped', 'after': time.monotonic() - t0,
                'how': str(err)[:200]}
    finally:
        await stream.aclose()


def _hello(**over) -> bytes:
    body = {'v': 1, 'codec': 'msgpack', 'uid': ['x', 'y'],
            'nonce': os.urandom(16).hex()}
    body.update(over)
    return _HELLO + json.dumps(body).encode()


async def frame_attacks(a: Addr, rng: random.Random, codec: str) -> dict:
    tr = get_transport(a.transport)
    out = {}
    cases = {
        'random_frames': [bytes(rng.getrandbits(8) for _ in range(n))
                          for n in (1, 17, 300, 5000)],
        'hello_bad_json': [_HELLO + b'{not json'],
        'hello_missing_fields': [_HELLO + b'{"v": 1}'],
        'hello_wrong_version': [_hello(v=99, codec=codec)],
        'hello_wrong_codec': [_hello(codec='nope')],
        'hello_huge': [_HELLO + b' ' * 100_000],
        'hello_then_garbage_proof': [_hello(codec=codec), b'garbage'],
        'hello_then_forged_proof_and_call': [
            _hello(codec=codec), _PROOF + os.urandom(32),
            b'\x85\xa3cmd\xa3run'],
        'empty_frames': [b'', b'', b''],
        'silent': [],
    }
    async def one(name, frames):
        try:
            with trio.fail_after(10):
                stream = await tr.connect(a)
        except (TransportClosed, OSError, trio.TooSlowError) as err:
            out[name] = {'end': 'refused', 'how': str(err)}
            return
        out[name] = await _frames_until_dropped(stream, frames)

    async with trio.open_nursery() as n:
        for name, frames in cases.items():
            n.start_soon(one, name, frames)
    # a frame above the transport's max_frame: refused by the sender's own
    # transport, or dropped by the receiver's
    try:
        stream = await tr.connect(a)
        big = b'\0' * (getattr(tr, 'max_frame', 64 << 20) + 1)
        try:
            out['oversized_frame'] = await _frames_until_dropped(stream,
                                                                 [big])
        except TransportClosed as err:  # FrameTooLarge before sending
            out['oversized_frame'] = {'end': 'refused_locally',
                                      'how': str(err)[:200]}
            await stream.aclose()
    except (TransportClosed, OSError) as err:
        out['oversized_frame'] = {'end': 'refused', 'how': str(err)}
    return out


# -- authenticated channels carrying malformed messages --------------------
def _nest(depth: int):
    x = []
    for _ in range(depth):
        x = [x]
    return x


MALFORMED = [
    ('not_a_dict_int', 42),
    ('not_a_dict_list', [1, 2, 3]),
    ('not_a_dict_str', 'run'),
    ('not_a_dict_none', None),
    ('empty_dict', {}),
    ('unknown_cmd', {'cmd': 'explode', 'cid': 9001}),
    ('cmd_wrong_type', {'cmd': ['run'], 'cid': 9002}),
    ('run_missing_ns', {'cmd': 'run', 'cid': 9003, 'func': 'echo'}),
    ('run_missing_func', {'cmd': 'run', 'cid': 9004, 'ns': ME}),
    ('run_cid_str', {'cmd': 'run', 'cid': 'x', 'ns': ME, 'func': 'echo',
                     'kw': {'x': 1}}),
    ('run_cid_list', {'cmd': 'run', 'cid': [1], 'ns': ME, 'func': 'echo'}),
    ('run_kw_list', {'cmd': 'run', 'cid': 9005, 'ns': ME, 'func': 'echo',
                     'kw': [1, 2]}),
    ('run_kw_wrong_names', {'cmd': 'run', 'cid': 9006, 'ns': ME,
                            'func': 'echo', 'kw': {'nope': 1}}),
    ('run_unexposed_module', {'cmd': 'run', 'cid': 9007, 'ns': 'os',
                              'func': 'system', 'kw': {'command': 'true'}}),
    ('run_private_runtime', {'cmd': 'run', 'cid': 9008, 'ns': 'self',
                             'func': '_do_cancel', 'kw': {}}),
    ('run_dunder', {'cmd': 'run', 'cid': 9009, 'ns': ME,
                    'func': '__builtins__', 'kw': {}}),
    ('credit_bad_n', {'cmd': 'credit', 'cid': 9010, 'n': 'lots'}),
    ('credit_no_cid', {'cmd': 'credit'}),
    ('cancel_unknown', {'cmd': 'cancel', 'cid': 123456789}),
    ('reply_nobody_waits', {'cid': 987654321, 'return': 1}),
    ('reply_no_cid', {'return': 1}),
    ('deep_nesting_kw', {'cmd': 'run', 'cid': 9011, 'ns': ME,
                         'func': 'echo', 'kw': {'x': _nest(200)}}),
    ('deep_nesting_msg', _nest(400)),
]
#: cids whose message must get an error reply
EXPECT_ERROR = {9001, 9002, 9003, 9004, 9005, 9006, 9007, 9008, 9009, 9011}


async def malformed(a: Addr, cfg: dict) -> dict:
    """Send every MALFORMED message on one authenticated channel: each
    error-worthy one must get an error reply, and an honest call (a ping)
    after each one must still be answered on the same channel."""
    out = {'errors': {}, 'honest': [], 'unexpected': []}
    kw = dict(transport=a.transport, codec=cfg.get('codec', 'msgpack'),
              uid=('fuzzer', 'malformed'))
    chan = await tractor.Channel.connect(a, **kw)
    try:
        for i, (name, msg) in enumerate(MALFORMED):
            try:
                await chan.send(msg)
            except tractor.EncodeError as err:
                out['unexpected'].append([name, f'cannot encode: {err}'])
                continue
            # the honest call right after tells us the malformed message
            # has been dealt with (messages are handled in order) -- or, if
            # it is a call that suspends before it fails (echo awaits
            # first), that it has started: its error may then come after
            # the ping's answer (calls run concurrently), so an expected
            # error is waited for too
            cid = 100 + i
            await chan.send({'cmd': 'run', 'cid': cid, 'ns': 'self',
                             'func': 'ping', 'kw': {}})
            bad = msg.get('cid') if isinstance(msg, dict) else None
            wait_error = type(bad) is int and bad in EXPECT_ERROR

            async def next_reply(name=name, cid=cid) -> bool:
                """Read one reply; True if it is the ping's answer."""
                reply = await chan.recv()
                rcid = reply.get('cid') if isinstance(reply, dict) else None
                if rcid == cid:
                    out['honest'].append(reply.get('return'))
                    return True
                if rcid in EXPECT_ERROR and 'error' in reply:
                    err = reply['error']
                    out['errors'][str(rcid)] = (
                        f"{err.get('type')}: {err.get('msg')}")[:300]
                else:
                    out['unexpected'].append([name, repr(reply)[:300]])
                return False

            with trio.fail_after(10):
                while not await next_reply():
                    pass
            # (a missing error is reported by the caller's assertion)
            with trio.move_on_after(10):
                while wait_error and str(bad) not in out['errors']:
                    await next_reply()
    finally:
        await chan.aclose()
    # undecodable bytes in a valid, authenticated frame: dropped
    chan = await tractor.Channel.connect(a, **kw)
    t0 = time.monotonic()
    try:
        await chan.stream.send(b'\xc1\xc1 not msgpack nor json {')
        with trio.fail_after(DROP_BOUND):
            while True:
                await chan.recv()
    except TransportClosed:
        out['undecodable'] = {'end': 'dropped',
                              'after': time.monotonic() - t0}
    except trio.TooSlowError:
        out['undecodable'] = {'end': 'open'}
    finally:
        await chan.aclose()
    # nesting deeper than any decoder accepts: dropped, not a crash
    chan = await tractor.Channel.connect(a, **kw)
    t0 = time.monotonic()
    try:
        depth = 100_000
        if kw['codec'] == 'json':
            raw = b'[' * depth + b']' * depth
        else:
            raw = b'\x91' * depth + b'\xc0'  # fixarray(1) nested, then nil
        await chan.stream.send(raw)
        with trio.fail_after(DROP_BOUND):
            while True:
                await chan.recv()
    except TransportClosed:
        out['huge_nesting'] = {'end': 'dropped',
                               'after': time.monotonic() - t0}
    except trio.TooSlowError:
        out['huge_nesting'] = {'end': 'open'}
    finally:
        await chan.aclose()
    return out


async def attack_all(addr: str, cfg: dict, honest, seed: int) -> dict:
    a = Addr.parse(addr)
    rng = random.Random(seed)
    out = {}

    async def run(key, fn, *args):
        out[key] = await fn(*args)

    # every attack at once: the actor must cope with all of them together
    async with trio.open_nursery() as n:
        n.start_soon(run, 'raw', raw_attacks, a, rng)
        n.start_soon(run, 'frames', frame_attacks, a, rng,
                     cfg.get('codec', 'msgpack'))
        n.start_soon(run, 'malformed', malformed, a, cfg)
        # and honest calls keep being answered meanwhile
        n.start_soon(run, 'honest_during', _honest_loop, honest)
    out['honest_after'] = await honest.run(ME, 'echo', x=13)
    return out


async def _honest_loop(portal) -> list:
    got = []
    for i in range(20):
        got.append(await portal.run(ME, 'echo', x=i) == [i, i * i])
    return got


# -- the intruder: a process with the wrong secret -------------------------
async def intrude(cfg: dict) -> dict:
    out = {}
    for name, addr in cfg['targets'].items():
        a = Addr.parse(addr)
        res = {}
        # the front door: Channel.connect with our (wrong) secret
        try:
            with trio.fail_after(10):
                chan = await tractor.Channel.connect(
                    a, uid=('intruder', 'x'))
            res['connect'] = 'admitted'
            await chan.aclose()
        except tractor.HandshakeError as err:
            res['connect'] = f'HandshakeError: {err}'
        except (TransportClosed, OSError, trio.TooSlowError) as err:
            res['connect'] = f'{type(err).__name__}: {err}'
        # the back door: a forged handshake, then call frames anyway
        stream = await get_transport(a.transport).connect(a)
        t0 = time.monotonic()
        try:
            peer_hello = await stream.recv()
            await stream.send(_hello(codec='msgpack'))
            await stream.send(_PROOF + os.urandom(32))
            import msgpack
            await stream.send(msgpack.packb(
                {'cmd': 'run', 'cid': 1, 'ns': ME, 'func': 'touch',
                 'kw': {'path': cfg['marker']}}))
            with trio.fail_after(DROP_BOUND):
                while True:
                    got = await stream.recv()
                    res.setdefault('got', []).append(bytes(got)[:60].hex())
        except TransportClosed:
            res['forged'] = {'end': 'dropped',
                             'after': time.monotonic() - t0,
                             'saw_hello': bytes(peer_hello[:8]).hex()}
        except trio.TooSlowError:
            res['forged'] = {'end': 'open'}
        finally:
            await stream.aclose()
        out[name] = res
    return out
