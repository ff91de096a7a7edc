"""The built-in codecs' two backends write the same wire (see
``tractor/codecs/_base.py``, Backends): over a generated corpus each
backend decodes what the other encodes to the value the other decodes
(NaN, infinities, signed zeros, integer boundaries, big integers for JSON,
bytes for msgpack), and so do the types beyond the contract both carry
(sets, enums, UUIDs, dataclasses, datetimes..., as documented in each
codec's module); values a codec cannot carry are refused by both; the
backend is chosen once, from the argument or ``$TRACTOR_CODEC_BACKEND``.

(Two actors on different backends talking: tests/test_codec_interop.py.)
"""
from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import math
import random
import sys
import typing
import uuid
import zoneinfo

import attr

import msgpack
import pytest

from tractor.codecs import (
    CodecError, DecodeError, EncodeError, JSONCodec, MsgpackCodec,
)
from tractor.codecs._base import BACKEND_ENV, pick_backend

from tractor_testing import same

from .test_codecs import BACKENDS, BIG, BIG_TEXT, make_codec

pytestmark = pytest.mark.timeout(60)

CODECS = pytest.mark.parametrize('cls', list(BACKENDS),
                                 ids=lambda c: c.name)


def pair(cls):
    """(fast, fallback) instances of ``cls``."""
    return tuple(make_codec(cls, b) for b in BACKENDS[cls])


class _List(list):
    pass


# -- the corpus -------------------------------------------------------------
_INTS = [0, 1, -1, 31, 32, -32, -33, 127, 128, -128, -129, 255, 256,
         2**15 - 1, 2**15, -2**15, -2**15 - 1, 2**16 - 1, 2**16,
         2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32,
         2**53, 2**53 + 1, 2**63 - 1, 2**63, -2**63, 2**64 - 1]
#: integers JSON carries (any size) and msgpack refuses
_BIG_INTS = [2**64, -2**63 - 1, 2**100, -2**100, 10**30 + 7, -(10**40)]
_FLOATS = [0.0, -0.0, 0.1 + 0.2, 1.5, -2.25, 1e16, 1e-7, 1e300, -1e300,
           5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
           2.0**52 + 0.5, math.pi, math.inf, -math.inf, math.nan]
_ALPHABET = ('abcxyz019 ', '"\\/', '\n\t\r\x00\x01\x1f\x7f', 'λ☃日本語',
             '😀🎉', '\u200b\u2028\u2029', 'null', 'NaN', 'Infinity')
_BYTES_LENS = [0, 1, 31, 32, 255, 256, 65535, 65536]


def _text(rng: random.Random) -> str:
    return ''.join(rng.choice(rng.choice(_ALPHABET))
                   for _ in range(rng.choice([0, 1, 3, 8, 31, 32, 200])))


def _scalar(rng: random.Random, codec: str):
    kind = rng.randrange(7 if codec == 'msgpack' else 6)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        if codec == 'json':
            return rng.choice(_INTS + _BIG_INTS) + rng.choice([0, 1, -1])
        return rng.choice(_INTS)
    if kind == 2:
        return rng.choice(_FLOATS)
    if kind == 3:
        return rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300)
    if kind in (4, 5):
        return _text(rng)
    n = rng.choice(_BYTES_LENS)
    return rng.randbytes(n) if n < 1000 else bytes(n)


def _key(rng: random.Random, codec: str):
    if codec == 'msgpack' and rng.random() < 0.2:
        return rng.choice([0, -5, 2**40, True, None, 1.5, b'k'])
    if codec == 'json' and rng.random() < 0.1:
        return rng.choice([0, -5, 2**70, True, None, 1.5])
    return _text(rng)


def _value(rng: random.Random, codec: str, depth: int):
    r = rng.random()
    if depth > 4 or r < 0.3 + 0.15 * depth:
        return _scalar(rng, codec)
    # lengths across msgpack's fix/16-bit boundary near the top only
    n = rng.choice([0, 1, 2, 15, 16, 17] if depth == 0 else [0, 1, 2, 3])
    if r < 0.65:
        return [_value(rng, codec, depth + 1) for _ in range(n)]
    if r < 0.75:
        return tuple(_value(rng, codec, depth + 1) for _ in range(n))
    return {_key(rng, codec): _value(rng, codec, depth + 1)
            for _ in range(n)}


def corpus(codec: str, n: int = 1500) -> list:
    """``n`` values ``codec`` carries, the same ones on every run."""
    rng = random.Random(f'tractor-{codec}')
    return [_value(rng, codec, 0) for _ in range(n)]


# -- interop --------------------------------------------------------------
@CODECS
def test_cross_decode_corpus(cls):
    """Each backend decodes what either encodes to the same value; msgpack
    writes the very same bytes; the fallback's round trip (what the codec
    did before the fast backends) is the reference."""
    fast, slow = pair(cls)
    for value in corpus(cls.name):
        by_fast, by_slow = fast.encode(value), slow.encode(value)
        want = slow.decode(by_slow)
        for decoder in (fast, slow):
            for frame in (by_fast, by_slow):
                assert same(decoder.decode(frame), want), (value, frame)
        if cls is MsgpackCodec:
            assert by_fast == by_slow, value


@CODECS
def test_cross_decode_batches(cls):
    fast, slow = pair(cls)
    values = corpus(cls.name, 200)
    for enc, dec in ((fast, slow), (slow, fast)):
        frame = enc.encode_batch([enc.encode(v) for v in values])
        got = dec.decode(frame)
        assert len(got) == len(values)
        assert all(same(g, slow.decode(slow.encode(v)))
                   for g, v in zip(got, values))


@pytest.mark.parametrize('direction', ['fast-to-fallback', 'fallback-to-fast'])
def test_cross_decode_parts(direction):
    """Large buffers out of band: either backend's parts are put back in
    place by the other, without a copy; other ext values pass through."""
    fast, slow = pair(MsgpackCodec)
    enc, dec = (fast, slow) if direction == 'fast-to-fallback' else (
        slow, fast)
    msg = {'cid': 1, 'yield': {'frame': BIG, 'meta': [1.5, None]},
           'more': bytearray(BIG), 'ext': msgpack.ExtType(5, b'x')}
    if enc is fast:
        del msg['ext']  # msgspec writes an ExtType as a list (see below)
    parts = enc.encode_parts(msg)
    assert type(parts) is list and len(parts) == 3
    received = [bytes(p) for p in parts]
    got = dec.decode_parts(received)
    assert got['yield']['frame'] is received[1]
    assert got['more'] == BIG and got['yield']['meta'] == [1.5, None]
    assert got.get('ext') == msg.get('ext')


@pytest.mark.parametrize('direction', ['fast-to-fallback', 'fallback-to-fast'])
def test_cross_decode_long_texts(direction):
    """JSON's long strings beside the JSON: either backend's frame, whole
    or in parts, decodes under the other to the value the fallback's own
    round trip gives, with what only the stdlib writes (NaN, big integers)
    in the JSON around them."""
    fast, slow = pair(JSONCodec)
    enc, dec = (fast, slow) if direction == 'fast-to-fallback' else (
        slow, fast)
    msg = {'cid': 1, 'yield': {'t': BIG_TEXT, 'meta': [math.nan, 2**70]},
           'more': [BIG_TEXT[:70_000], -math.inf], 'n': None}
    want = slow.decode(slow.encode(msg))
    parts = enc.encode_parts(msg)
    assert type(parts) is list and len(parts) == 3
    assert same(dec.decode_parts([bytes(p) for p in parts]), want)
    assert same(dec.decode(enc.encode(msg)), want)


def test_ext_types_decode_alike():
    """An ext type neither backend knows decodes to ``msgpack.ExtType``
    under both, and the timestamp ext to the same aware datetime."""
    fast, slow = pair(MsgpackCodec)
    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901,
                              tzinfo=datetime.timezone.utc)
    frames = [slow.encode({'e': msgpack.ExtType(5, b'data')}),
              slow.encode([msgpack.ExtType(127, b''), 1]),
              fast.encode({'t': stamp})]
    for frame in frames:
        a, b = fast.decode(frame), slow.decode(frame)
        assert a == b
    assert fast.decode(frames[0]) == {'e': msgpack.ExtType(5, b'data')}
    assert slow.decode(frames[2]) == {'t': stamp}
    # a reserved (negative) code other than the timestamp: refused by both
    for codec in (fast, slow):
        with pytest.raises(DecodeError):
            codec.decode(b'\xd4\xfd\x00')


@CODECS
def test_nan_infinities_and_big_integers(cls):
    """Carried alike by both backends (JSON: as the stdlib writes them,
    whichever backend encodes), or refused alike (msgpack past 64 bits)."""
    fast, slow = pair(cls)
    carried = [math.nan, -math.inf, math.inf, -0.0, 2**64 - 1, -2**63,
               {'n': None, 'x': [math.nan, None]}, [None, -math.inf],
               # containers orjson writes natively, NaN inside
               collections.OrderedDict(x=math.nan), _List([None, math.inf])]
    # and inside the types beyond the contract (orjson writes them itself)
    carried += [[None, Point(x=math.nan, y=[None, -math.inf])],
                {'n': None, 'e': Spin.NAN}]
    if cls is JSONCodec:
        carried += [2**64, -2**63 - 1, 2**200, {'k': -(10**60)}]
    for value in carried:
        by_fast, by_slow = fast.encode(value), slow.encode(value)
        if cls is JSONCodec:  # the very same JSON, NaN and all
            assert by_fast == by_slow, value
        for dec in (fast, slow):
            for frame in (by_fast, by_slow):
                assert same(dec.decode(frame), slow.decode(by_slow))
    if cls is MsgpackCodec:
        for value in (2**64, -2**63 - 1, [1, {'k': 2**100}]):
            for codec in (fast, slow):
                with pytest.raises(EncodeError, match='int'):
                    codec.encode(value)
    # None stays null, and a message with null but no NaN stays fast
    assert fast.encode([None, 1.5]) == slow.encode([None, 1.5])


@CODECS
def test_refused_alike(cls):
    """What the fallback refuses for being out of the format, the fast
    backend refuses with the same error: naming the codec and the type."""
    fast, slow = pair(cls)

    class Custom:
        pass

    bad = [(Custom(), 'Custom'), ({'a': [complex(1, 2)]}, 'complex'),
           (object(), 'object'), ({'s': 'lone \ud800'}, 'codec')]
    if cls is JSONCodec:
        bad += [({'b': b'x'}, 'bytes'), ({(1, 2): 3}, 'tuple'),
                ([memoryview(b'x')], 'memoryview')]
    deep = [1]
    for _ in range(5000):
        deep = [deep]
    bad.append((deep, 'nested'))
    for value, word in bad:
        texts = []
        for codec in (fast, slow):
            with pytest.raises(EncodeError) as info:
                codec.encode(value)
            texts.append(str(info.value))
            assert word in texts[-1] and cls.name in texts[-1]


@CODECS
def test_garbage_refused_alike(cls):
    """Cut frames and noise: both backends raise DecodeError, or (a cut
    JSON number is still a number) both decode the same value."""
    fast, slow = pair(cls)
    rng = random.Random('garbage')
    frames = []
    for frame in (slow.encode(v) for v in corpus(cls.name, 100)):
        frames += [frame[:cut] for cut in (1, len(frame) // 2, -1)]
        frames.append(rng.randbytes(rng.choice([1, 4, 16])))
    for frame in frames:
        results = []
        for codec in (fast, slow):
            try:
                results.append(codec.decode(frame))
            except DecodeError:
                results.append(DecodeError)
        assert same(*results) or results == [DecodeError] * 2, frame


# -- beyond the contract ----------------------------------------------------
class Colour(enum.Enum):
    RED = 'red'


class Level(enum.IntEnum):
    HIGH = 3


class Mode(str, enum.Enum):
    READ = 'r'


class Perm(enum.Flag):
    R = 1
    W = 2


class Spin(enum.Enum):
    NAN = math.nan


class Where(enum.Enum):
    HOME = uuid.UUID(int=9)  # a value that needs converting itself


@dataclasses.dataclass
class Point:
    x: int = 1
    y: list = dataclasses.field(default_factory=lambda: [1.5, None])


@dataclasses.dataclass
class Tagged:
    _hidden: int = 1  # msgspec writes it, orjson does not
    shown: Point = dataclasses.field(default_factory=Point)
    # left to its class default: not on the instance, written by neither
    later: int = dataclasses.field(default=3, init=False)


@dataclasses.dataclass
class Slotted:
    __slots__ = ('a',)
    a: int


@attr.define
class Record:
    name: str = 'r'
    _private: int = 2


class Pair(typing.NamedTuple):
    a: int
    b: str


class Text(str):
    def __str__(self):  # what is sent is the string, not this
        return 'loud'


class Count(int):
    def __int__(self):
        return 0


class Ratio(float):
    pass


class Blob(bytes):
    pass


UTC = datetime.timezone.utc
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
WEST = datetime.timezone(-datetime.timedelta(hours=3, seconds=5))
PARIS = zoneinfo.ZoneInfo('Europe/Paris')
UID = uuid.UUID('12345678-1234-5678-1234-567812345678')


def _dt(*args, tz=None):
    return datetime.datetime(*args, tzinfo=tz)


#: (value, what either backend decodes it to) per codec: the conversions
#: documented in tractor/codecs/_msgpack.py and _json.py, spelt out
BEYOND = {
    'msgpack': [
        ({3, 1, 2}, [1, 2, 3]), (frozenset(['a']), ['a']),
        (Colour.RED, 'red'), (Level.HIGH, 3), (Mode.READ, 'r'),
        (Perm.R | Perm.W, 3), (Where.HOME, str(uuid.UUID(int=9))),
        (UID, '12345678-1234-5678-1234-567812345678'),
        (decimal.Decimal('1.50'), '1.50'), (decimal.Decimal('-0'), '-0'),
        (decimal.Decimal('NaN'), 'NaN'), (decimal.Decimal('1E+3'), '1E+3'),
        (Point(), {'x': 1, 'y': [1.5, None]}),
        (Tagged(), {'_hidden': 1, 'shown': {'x': 1, 'y': [1.5, None]}}),
        (Slotted(4), {'a': 4}), (Record(), {'name': 'r'}),
        (Pair(1, 'x'), [1, 'x']),
        (_dt(2026, 1, 2, 3, 4, 5, 678901), '2026-01-02T03:04:05.678901'),
        (_dt(2026, 1, 2), '2026-01-02T00:00:00'),
        # aware: msgpack's timestamp ext, an instant, read back in UTC
        (_dt(2026, 1, 2, 3, 4, 5, 678901, tz=UTC),
         _dt(2026, 1, 2, 3, 4, 5, 678901, tz=UTC)),
        (_dt(2026, 1, 2, 3, 4, 5, tz=IST), _dt(2026, 1, 1, 21, 34, 5, tz=UTC)),
        (_dt(2026, 7, 1, tz=PARIS), _dt(2026, 6, 30, 22, tz=UTC)),
        (_dt(1900, 1, 2, 0, 0, 0, 5, tz=UTC),
         _dt(1900, 1, 2, 0, 0, 0, 5, tz=UTC)),
        (_dt(1969, 12, 31, 23, 59, 59, 999999, tz=UTC),
         _dt(1969, 12, 31, 23, 59, 59, 999999, tz=UTC)),
        (_dt(2500, 1, 2, tz=UTC), _dt(2500, 1, 2, tz=UTC)),
        (_dt(1, 1, 1, tz=UTC), _dt(1, 1, 1, tz=UTC)),
        (datetime.date(2026, 1, 2), '2026-01-02'),
        (datetime.time(3, 4), '03:04:00'),
        (datetime.time(3, 4, 5, 60), '03:04:05.000060'),
        (datetime.time(3, 4, tzinfo=UTC), '03:04:00Z'),
        (datetime.time(3, 4, tzinfo=IST), '03:04:00+05:30'),
        (datetime.time(3, 4, tzinfo=WEST), '03:04:00-03:00'),
        (datetime.timedelta(0), 'P0D'),
        (datetime.timedelta(days=1, seconds=3, microseconds=5),
         'P1DT3.000005S'),
        (datetime.timedelta(seconds=1, microseconds=500000), 'PT1.5S'),
        (datetime.timedelta(days=-1, seconds=3), '-PT86397S'),
        (datetime.timedelta(days=-3), '-P3D'),
        (datetime.timedelta(microseconds=-1), '-PT0.000001S'),
        # read back as a datetime, as every timestamp (whole microseconds:
        # see test_timestamp_nanoseconds_differ_documented)
        (msgpack.Timestamp(1, 5000), _dt(1970, 1, 1, 0, 0, 1, 5, tz=UTC)),
        (msgpack.Timestamp(-1, 1000),
         _dt(1969, 12, 31, 23, 59, 59, 1, tz=UTC)),
        (Text('t'), 't'), (Count(7), 7), (Ratio(0.5), 0.5),
        (Blob(b'b'), b'b'),
        # as map keys too (not a set: an array key, like a tuple's, does
        # not decode)
        ({UID: 1, Colour.RED: 2, datetime.date(2026, 1, 1): 3,
          decimal.Decimal('2.0'): 4},
         {'12345678-1234-5678-1234-567812345678': 1, 'red': 2,
          '2026-01-01': 3, '2.0': 4}),
    ],
    'json': [
        (Colour.RED, 'red'), (Level.HIGH, 3), (Mode.READ, 'r'),
        (Perm.R | Perm.W, 3), (Where.HOME, str(uuid.UUID(int=9))),
        (UID, '12345678-1234-5678-1234-567812345678'),
        (Point(), {'x': 1, 'y': [1.5, None]}),
        (Tagged(), {'shown': {'x': 1, 'y': [1.5, None]}}),
        (Slotted(4), {'a': 4}), (Pair(1, 'x'), [1, 'x']),
        (_dt(2026, 1, 2, 3, 4, 5, 678901), '2026-01-02T03:04:05.678901'),
        (_dt(2026, 1, 2), '2026-01-02T00:00:00'),
        (_dt(2026, 1, 2, 3, 4, 5, 678901, tz=UTC),
         '2026-01-02T03:04:05.678901+00:00'),
        (_dt(2026, 1, 2, 3, 4, 5, tz=IST), '2026-01-02T03:04:05+05:30'),
        (_dt(2026, 1, 2, tz=WEST), '2026-01-02T00:00:00-03:00'),
        (_dt(2026, 7, 1, tz=PARIS), '2026-07-01T00:00:00+02:00'),
        (_dt(1, 1, 1, tz=UTC), '0001-01-01T00:00:00+00:00'),
        (datetime.date(2026, 1, 2), '2026-01-02'),
        (datetime.time(3, 4), '03:04:00'),
        (datetime.time(3, 4, 5, 60), '03:04:05.000060'),
        (Text('t'), 't'), (Count(7), 7), (Ratio(0.5), 0.5),
    ],
}


try:
    import msgspec
except ImportError:  # the fast backend's tests skip
    pass
else:
    class Order(msgspec.Struct):
        when: datetime.datetime
        tags: set
        colour: Colour
        blob: bytes

    class Row(msgspec.Struct, array_like=True, rename='camel'):
        long_name: int = 1

    BEYOND['msgpack'] += [
        (Order(_dt(2026, 1, 2, tz=UTC), {'a'}, Colour.RED, b'\x00'),
         {'when': _dt(2026, 1, 2, tz=UTC), 'tags': ['a'], 'colour': 'red',
          'blob': b'\x00'}),
        (Row(), [1]),
        (msgspec.msgpack.Ext(5, b'x'), msgpack.ExtType(5, b'x')),
    ]


class Custom:
    pass


#: (value, the word the error names) refused by both backends
REFUSED = {
    'msgpack': [
        (Custom(), 'Custom'), (1j, 'complex'), (range(3), 'range'),
        (collections.deque([1]), 'deque'), (Point, 'type'),
        (type('Stamp', (datetime.datetime,), {})(2026, 1, 1), 'Stamp'),
        ({1: [{'s': {Custom()}}]}, 'Custom'),
        (Colour, 'EnumType' if sys.version_info >= (3, 11) else 'EnumMeta'),
    ],
    'json': [
        (Custom(), 'Custom'), (1j, 'complex'), ({1, 2}, 'set'),
        (frozenset(), 'frozenset'), (decimal.Decimal('1'), 'Decimal'),
        (datetime.timedelta(1), 'timedelta'),
        (datetime.time(1, tzinfo=UTC), 'time'), (Record(), 'Record'),
        (msgpack.Timestamp(1, 0), 'Timestamp'),
        (msgpack.ExtType(5, b'x'), 'bytes'), (Blob(b'x'), 'Blob'),
        (type('MyUUID', (uuid.UUID,), {})(int=5), 'MyUUID'),
        ({'a': [Colour.RED, {Custom()}]}, 'set'),
    ],
}


@CODECS
def test_beyond_the_contract_alike(cls):
    """Types beyond the contract that the fast library carries, the
    fallback carries too, writing the very same bytes, and either backend
    decodes either's frame to the documented value (a set arrives as a
    list, an enum as its value...)."""
    fast, slow = pair(cls)
    for value, want in BEYOND[cls.name]:
        msg = {'v': value, 'in': [value, (value,)]}
        by_fast, by_slow = fast.encode(msg), slow.encode(msg)
        assert by_fast == by_slow, value
        want_msg = {'v': want, 'in': [want, [want]]}
        for dec in (fast, slow):
            for frame in (by_fast, by_slow):
                assert same(dec.decode(frame), want_msg), (value, frame)


@CODECS
def test_beyond_the_contract_refused_alike(cls):
    """What the fast library refuses, the fallback refuses, with the same
    EncodeError naming the codec and the type."""
    fast, slow = pair(cls)
    for value, word in REFUSED[cls.name]:
        texts = []
        for codec in (fast, slow):
            with pytest.raises(EncodeError) as info:
                codec.encode({'v': value})
            assert type(info.value) is EncodeError
            texts.append(str(info.value))
        for text in texts:
            assert f'type {word}' in text and repr(cls.name) in text, text


def _beyond_value(rng: random.Random, codec: str, depth: int):
    if rng.random() < 0.3:
        return rng.choice(BEYOND[codec])[0]
    r = rng.random()
    if depth > 3 or r < 0.2:
        return _scalar(rng, codec)
    n = rng.choice([0, 1, 2, 3])
    items = [_beyond_value(rng, codec, depth + 1) for _ in range(n)]
    if r < 0.5:
        return items
    if r < 0.6:
        return tuple(items)
    if r < 0.7 and codec == 'msgpack':
        return set(x for x in items if isinstance(x, (int, str)))
    return {_key(rng, codec): x for x in items}


@CODECS
def test_cross_decode_beyond_corpus(cls):
    """A generated corpus mixing those types with the contract's: the
    same bytes from both backends, and each decodes either's frame to the
    same value, in all four directions."""
    fast, slow = pair(cls)
    rng = random.Random(f'tractor-beyond-{cls.name}')
    for _ in range(600):
        value = _beyond_value(rng, cls.name, 0)
        by_fast, by_slow = fast.encode(value), slow.encode(value)
        if cls is MsgpackCodec:  # orjson writes 1e-7 where json 1e-07
            assert by_fast == by_slow, value
        want = slow.decode(by_slow)
        for dec in (fast, slow):
            for frame in (by_fast, by_slow):
                assert same(dec.decode(frame), want), (value, frame)


def test_timestamp_nanoseconds_differ_documented():
    """The timestamp ext carries nanoseconds, a datetime microseconds:
    msgspec rounds (half up), msgpack-python truncates, inside their
    decoders, with no hook to make them agree. Both backends write
    datetimes in whole microseconds, so only a ``msgpack.Timestamp`` the
    program builds (or a foreign peer) meets it (see _msgpack.py)."""
    fast, slow = pair(MsgpackCodec)
    frame = slow.encode(msgpack.Timestamp(1, 999))
    assert fast.encode(msgpack.Timestamp(1, 999)) == frame
    assert fast.decode(frame) == _dt(1970, 1, 1, 0, 0, 1, 1, tz=UTC)
    assert slow.decode(frame) == _dt(1970, 1, 1, 0, 0, 1, tz=UTC)


def test_ext_type_differs_documented():
    """The one value the two msgpack backends write differently (see
    tractor/codecs/_msgpack.py): a ``msgpack.ExtType`` the program builds
    itself. msgpack-python writes it as the ext it is; msgspec takes it
    for the named tuple it also is and writes a two-item list, and neither
    can be told otherwise without a cost on every message. Pinned here so
    that a change in either library shows."""
    fast, slow = pair(MsgpackCodec)
    ext = msgpack.ExtType(5, b'x')
    assert slow.decode(slow.encode({'e': ext})) == {'e': ext}
    assert fast.decode(fast.encode({'e': ext})) == {'e': [5, b'x']}
    # tractor's own ext values never go through it: the batch mark is
    # written as bytes, and out-of-band parts as the backend's own ext
    for enc, dec in ((fast, slow), (slow, fast)):
        frame = enc.encode_batch([enc.encode(1), enc.encode('a')])
        assert dec.decode(frame) == [1, 'a']


# -- choosing the backend ------------------------------------------------
def test_backend_from_argument_and_environment(monkeypatch):
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    for cls, (fast, slow) in BACKENDS.items():
        assert cls(slow).backend == slow
        assert cls('fallback').backend == slow
        auto = cls().backend
        assert cls('auto').backend == auto
        monkeypatch.setenv(BACKEND_ENV, 'fallback')
        assert cls().backend == slow
        # the argument wins over the environment
        assert make_codec(cls, fast).backend == fast
        assert make_codec(cls, 'fast').backend == fast
        monkeypatch.setenv(BACKEND_ENV, 'fast')
        assert make_codec(cls, None).backend == fast
        monkeypatch.delenv(BACKEND_ENV)


def test_bad_backend_names_are_clear_errors(monkeypatch):
    with pytest.raises(CodecError, match="no backend 'ujson'.*orjson, json"):
        JSONCodec('ujson')
    with pytest.raises(CodecError, match='msgspec, msgpack'):
        MsgpackCodec('orjson')
    monkeypatch.setenv(BACKEND_ENV, 'msgspec')
    with pytest.raises(CodecError) as info:
        MsgpackCodec()
    assert BACKEND_ENV in str(info.value)
    assert 'auto, fast, fallback' in str(info.value)


def test_missing_fast_backend_says_what_to_install():
    with pytest.raises(CodecError) as info:
        pick_backend('msgpack', 'fast', {'msgspec': False, 'msgpack': True})
    text = str(info.value)
    assert "tractor[fast]" in text and 'msgspec' in text
    assert pick_backend('msgpack', 'auto',
                        {'msgspec': False, 'msgpack': True}) == 'msgpack'
