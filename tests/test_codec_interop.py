"""Actors whose codecs run on different backends (msgspec or
msgpack-python; orjson or the stdlib json, see tractor/codecs/_base.py)
work together, types beyond the contract included: the backend is a
per-process choice (``$TRACTOR_CODEC_BACKEND``, here set for each child as
it starts), the wire is the same. Each child calls the other, streams from
it and gets its error, while both talk to the root."""
import dataclasses
import datetime
import enum
import math
import uuid

import pytest
import trio

import tractor
from tractor.codecs import CodecError, JSONCodec, MsgpackCodec, get_codec
from tractor.codecs._base import BACKEND_ENV

from tractor_testing import same

pytestmark = pytest.mark.timeout(90)

_CLASSES = {'msgpack': MsgpackCodec, 'json': JSONCodec}


def sample(codec: str) -> dict:
    """Values where backends could differ: NaN, infinities, -0.0, integer
    limits, text a fast library might treat otherwise, None (JSON's null)."""
    value = {'nan': math.nan, 'inf': [math.inf, -math.inf], 'zero': -0.0,
             'ints': [2**64 - 1, -2**63, 0, -1], 'none': None,
             'text': 'λ ☃ 😀 \x00 "q" \\ \u2028 null NaN',
             'nested': [{'a': [1.5, True, None, []], 'b': {}}]}
    if codec == 'msgpack':
        value['blob'] = bytes(range(256))
    else:
        value['huge'] = [2**100, -(10**30)]
    return value


class Colour(enum.Enum):
    RED = 'red'


@dataclasses.dataclass
class Point:
    x: float = 1.5
    when: datetime.date = datetime.date(2026, 1, 2)


_UTC = datetime.timezone.utc


def beyond(codec: str) -> tuple:
    """Values beyond the contract both backends carry (see the tables in
    tractor/codecs/_msgpack.py and _json.py), and what arrives for them."""
    sent = {'enum': Colour.RED, 'uuid': uuid.UUID(int=7), 'point': Point(),
            'naive': datetime.datetime(2026, 1, 2, 3, 4, 5, 6)}
    got = {'enum': 'red', 'uuid': str(uuid.UUID(int=7)),
           'point': {'x': 1.5, 'when': '2026-01-02'},
           'naive': '2026-01-02T03:04:05.000006'}
    aware = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=_UTC)
    sent['aware'] = aware
    if codec == 'msgpack':
        sent['set'] = {3}
        got.update(aware=aware, set=[3])
    else:
        got['aware'] = '2026-01-02T03:04:05+00:00'
    return sent, got


def backend(codec: str) -> str:
    return get_codec(codec).backend


async def echo(value):
    return value


async def items(codec: str, n: int):
    for i in range(n):
        yield {'i': i, 'v': sample(codec)}


async def fail(codec: str):
    raise ValueError(f'refused by {backend(codec)}: λ ☃')


async def visit(codec: str, peer: str, n: int) -> dict:
    """Run in one child: call the child ``peer``, stream from it, get its
    error, as any actor would."""
    async with tractor.wait_for_actor(peer) as portal:
        echoed = await portal.run(__name__, 'echo', value=sample(codec))
        extras = await portal.run(__name__, 'echo', value=beyond(codec)[0])
        got = [x async for x in await portal.run(
            __name__, 'items', codec=codec, n=n)]
        with pytest.raises(tractor.RemoteActorError) as info:
            await portal.run(__name__, 'fail', codec=codec)
        peer_backend = await portal.run(__name__, 'backend', codec=codec)
    return {'mine': backend(codec), 'peer': peer_backend, 'echoed': echoed,
            'extras': extras,
            'items': got, 'error': str(info.value)}


def test_actors_on_different_backends(codec, arb_addr, monkeypatch):
    cls = _CLASSES.get(codec)
    if cls is None:
        pytest.skip(f'{codec!r} has no backends to mix')
    try:
        cls('fast')
    except CodecError as err:  # the test extra installs them
        pytest.skip(str(err))
    n = 300  # several flow-control windows and batches

    async def main():
        async with tractor.open_nursery() as nursery:
            portals = {}
            # the 'trio' start method starts each child from this
            # process's environment as it is now
            for mode in ('fallback', 'fast'):
                monkeypatch.setenv(BACKEND_ENV, mode)
                portals[mode] = await nursery.start_actor(
                    mode, rpc_module_paths=[__name__])
            monkeypatch.delenv(BACKEND_ENV)
            results = {}

            async def visit_from(mode, peer):
                results[mode] = await portals[mode].run(
                    __name__, 'visit', codec=codec, peer=peer, n=n)

            async with trio.open_nursery() as tn:  # both ways at once
                tn.start_soon(visit_from, 'fallback', 'fast')
                tn.start_soon(visit_from, 'fast', 'fallback')
            # and the root, on its own backend, with each
            for mode, portal in portals.items():
                results[f'root-{mode}'] = {
                    'echoed': await portal.run(__name__, 'echo',
                                               value=sample(codec)),
                    'items': [x async for x in await portal.run(
                        __name__, 'items', codec=codec, n=n)]}
            for portal in portals.values():
                await portal.cancel_actor()
        return results

    results = tractor.run(main, arbiter_addr=arb_addr, codec=codec,
                          start_method='trio')
    fast, slow = cls('fast').backend, cls('fallback').backend
    assert (results['fast']['mine'], results['fast']['peer']) == (fast, slow)
    assert (results['fallback']['mine'],
            results['fallback']['peer']) == (slow, fast)
    want = sample(codec)
    for key, got in results.items():
        assert same(got['echoed'], want), key
        if 'extras' in got:
            assert same(got['extras'], beyond(codec)[1]), key
        assert len(got['items']) == n
        for i, item in enumerate(got['items']):
            assert same(item, {'i': i, 'v': want}), (key, i)
    assert f'refused by {slow}: λ ☃' in results['fast']['error']
    assert f'refused by {fast}: λ ☃' in results['fallback']['error']
