"""The codec contract (``tractor/codecs/_base.py``) for every available
codec, and for each backend of the built-in ones (msgspec and
msgpack-python; orjson and the stdlib json), whichever the environment
would pick: runtime-shaped messages round-trip identically, sequences come
back as lists, values a format cannot carry raise EncodeError naming their
type, bytes that are not a message raise DecodeError, and no message
encodes to the empty frame (reserved for heartbeats). Interop between the
backends is in test_codec_backends.py."""
from __future__ import annotations

import math

import pytest

from tractor.codecs import (
    Batch,
    Codec,
    CodecError,
    DecodeError,
    EncodeError,
    JSONCodec,
    MsgpackCodec,
    UnknownCodec,
    available_codecs,
    get_codec,
)

from .test_channel import RUNTIME_MSGS, as_received

pytestmark = pytest.mark.timeout(60)

def _nest(depth):
    msg = [1]
    for i in range(depth):
        msg = [msg] if i % 2 else {'d': msg}
    return msg


EXTRA_MSGS = [
    {'unicode': 'ascii, λ, ☃, 😀, 日本語, \u200b, \x00 nul, "quotes" \\ \n'},
    {'': 'empty key', ' ': 'space key', 'ключ': 'unicode key'},
    [[], [[]], {}, [{}], {'a': {}}],
    {'big': 2**64 - 1, 'neg': -2**63, 'zero': 0, 'float': 0.1 + 0.2},
    {'floats': [1e-300, -1e300, 3.141592653589793, 2.0 ** 52 + 0.5]},
    {'bool_vs_int': [True, 1, False, 0]},
    list(range(-40, 300)),
    {'deep': _nest(30)},
]


#: the built-in codecs' backends, fast first
BACKENDS = {MsgpackCodec: ('msgspec', 'msgpack'),
            JSONCodec: ('orjson', 'json')}
_CLASSES = {cls.name: cls for cls in BACKENDS}


def make_codec(cls, backend: str):
    """``cls(backend)``, or a skip saying the backend is not installed
    (``pip install 'tractor[fast]'``; the test extra installs them)."""
    try:
        return cls(backend)
    except CodecError as err:
        if 'not installed' not in str(err):
            raise
        pytest.skip(str(err))


def _variants():
    for name in available_codecs():
        cls = _CLASSES.get(name)
        if cls is None:
            yield pytest.param((name, None), id=name)
            continue
        for backend in BACKENDS[cls]:
            yield pytest.param((name, backend), id=f'{name}-{backend}')


@pytest.fixture(params=_variants())
def codec(request) -> Codec:
    name, backend = request.param
    if backend is None:  # a third-party codec
        return get_codec(name)
    return make_codec(_CLASSES[name], backend)


def test_builtin_codecs_available():
    assert {'msgpack', 'json'} <= set(available_codecs())


def test_codec_protocol(codec):
    assert isinstance(codec, Codec)
    assert codec.name in available_codecs()
    shared = get_codec(codec.name)
    assert get_codec(codec.name) is shared
    assert type(shared) is type(codec)


@pytest.mark.parametrize('msg', RUNTIME_MSGS + EXTRA_MSGS,
                         ids=lambda m: type(m).__name__)
def test_roundtrip(codec, msg):
    data = codec.encode(msg)
    assert isinstance(data, (bytes, bytearray))
    assert len(data) > 0, 'the empty frame is reserved for heartbeats'
    got = codec.decode(data)
    assert got == as_received(msg)
    # types survive, not just values: True is not 1, 1.0 is not 1
    assert _types(got) == _types(as_received(msg))


def _types(obj):
    if isinstance(obj, list):
        return ['list', [_types(x) for x in obj]]
    if isinstance(obj, dict):
        return ['dict', {k: _types(v) for k, v in obj.items()}]
    return type(obj).__name__


@pytest.mark.parametrize('msg', [None, '', 0, False, [], {}, 0.0],
                         ids=repr)
def test_never_encodes_to_empty_frame(codec, msg):
    assert codec.encode(msg) != b''
    assert codec.decode(codec.encode(msg)) == msg


def test_tuples_come_back_as_lists(codec):
    msg = {'t': (1, 'two', (3, (4,))), 'l': [(), ()]}
    got = codec.decode(codec.encode(msg))
    assert got == {'t': [1, 'two', [3, [4]]], 'l': [[], []]}
    assert type(got['t']) is list and type(got['t'][2]) is list
    top = codec.decode(codec.encode((1, 2)))
    assert top == [1, 2] and type(top) is list


def test_bytes(codec):
    msg = {'blob': b'\x00\xff' * 100, 'empty': b''}
    if codec.name == 'json':
        with pytest.raises(EncodeError) as info:
            codec.encode(msg)
        text = str(info.value)
        assert 'bytes' in text and 'json' in text
        # nested too, and the error is also a TypeError
        with pytest.raises(TypeError):
            codec.encode([1, {'x': [b'deep']}])
    elif codec.name == 'msgpack':
        assert codec.decode(codec.encode(msg)) == msg
    else:  # a third-party codec: either carries bytes or says so
        try:
            assert codec.decode(codec.encode(msg)) == msg
        except EncodeError as err:
            assert 'bytes' in str(err)


class Custom:
    pass


@pytest.mark.parametrize('bad', [
    Custom(),
    {'nested': [1, 2, {'deep': Custom()}]},
    object(),
    complex(1, 2),
], ids=['custom', 'nested-custom', 'object', 'complex'])
def test_unencodable_names_the_type(codec, bad):
    """(Sets, which msgspec carries as lists: test_codec_backends.)"""
    with pytest.raises(EncodeError) as info:
        codec.encode(bad)
    text = str(info.value)
    want = {Custom: 'Custom', object: 'object', complex: 'complex'}
    inner = bad['nested'][2]['deep'] if isinstance(bad, dict) else bad
    assert want[type(inner)] in text
    assert codec.name in text
    assert isinstance(info.value, CodecError)


@pytest.mark.parametrize('depth', [20_000, 100_000])
def test_too_deep_is_an_encode_error(codec, depth):
    """A value nested deeper than the codec goes is an EncodeError saying
    so (never a bare RecursionError), also with something unencodable at
    the bottom."""
    for bottom in (1, Custom()):
        with pytest.raises(EncodeError) as info:
            codec.encode(_nest(depth) if bottom == 1 else
                         [_nest(depth), {'x': bottom}])
        assert 'nested' in str(info.value) and codec.name in str(info.value)


@pytest.mark.parametrize('data', [
    b'\xc1',                      # msgpack's never-used byte
    b'\xff\xfe\xfd garbage',
    b'{"unterminated": ',
    b'\x92\x01',                  # msgpack array of 2 with one element
    b'\x80\x80\x80 not utf-8 \xff',
], ids=['c1', 'garbage', 'unterminated-json', 'short-msgpack', 'bad-utf8'])
def test_garbage_raises_decode_error(codec, data):
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert codec.name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_nan_and_inf(codec):
    got = codec.decode(codec.encode([math.inf, -math.inf, math.nan]))
    assert got[0] == math.inf and got[1] == -math.inf and math.isnan(got[2])


def test_unknown_codec_lists_available():
    with pytest.raises(UnknownCodec) as info:
        get_codec('yaml')
    text = str(info.value)
    assert 'yaml' in text
    for name in available_codecs():
        assert name in text
    assert isinstance(info.value, LookupError)


# -- large values out of band (codecs offering encode_parts) ---------------
def _parts_codec(codec):
    if not hasattr(codec, 'encode_parts'):
        pytest.skip(f'codec {codec.name!r} has no out-of-band parts')
    return codec


BIG = bytes(range(256)) * 4096  # 1 MiB
#: what the JSON codec carries apart: a long str, every kind of character
#: a JSON string escapes or holds (NUL, quotes, backslash, newline, 2-, 3-
#: and 4-byte UTF-8)
BIG_TEXT = ('ascii \x00 "q" \\ \n λ ☃ 日本語 😀 ' * 40_000)[:1 << 20]


def _big(codec):
    """The large value ``codec`` carries out of band, and its part."""
    if codec.name == 'json':
        return BIG_TEXT, BIG_TEXT.encode()
    return BIG, BIG


@pytest.mark.parametrize('msg,where', [
    (lambda big: {'cid': 3, 'yield': big}, lambda m: m['yield']),
    (lambda big: {'cid': 3, 'return': [1, big, 'x']},
     lambda m: m['return'][1]),
    (lambda big: {'cmd': ('mod', 'f', {'data': big}, ('u', 'i'), 7)},
     lambda m: m['cmd'][2]['data']),
    (lambda big: {'cid': 1, 'yield': {'frame': big, 'meta': {'n': 1}}},
     lambda m: m['yield']['frame']),
    (lambda big: big, lambda m: m),
], ids=['item', 'in-list', 'kwarg', 'dict-item', 'whole'])
def test_large_value_travels_out_of_band(codec, msg, where):
    """The large value is a part of its own -- for bytes the very object,
    not a copy -- and decoding puts the received part back in place (bytes
    without copying them again); ``encode`` writes the same parts as one
    frame, which ``decode`` reads."""
    codec = _parts_codec(codec)
    big, part = _big(codec)
    msg = msg(big)
    parts = codec.encode_parts(msg)
    assert type(parts) is list and len(parts) == 2
    assert parts[1] == part
    if part is BIG:
        assert parts[1] is BIG
    assert len(parts[0]) < 200  # the rest of the message, encoded
    received = [bytes(parts[0]), bytes(bytearray(parts[1]))]
    got = codec.decode_parts(received)
    assert got == as_received(msg)
    if part is BIG:
        assert where(got) is received[1]
    if codec.name == 'json':  # one frame, on transports without parts
        assert codec.encode(msg) == b''.join(parts)
        assert codec.decode(b''.join(parts)) == as_received(msg)


def test_small_messages_are_not_split(codec):
    codec = _parts_codec(codec)
    small = 'z' * 65535 if codec.name == 'json' else b'x' * 65535
    msgs = RUNTIME_MSGS
    if codec.name == 'json':  # (one of them holds a 100,000-char str)
        msgs = [m for m in msgs if 'x' * 65536 not in repr(m)]
    for msg in msgs + [{'blob': small}, [small[:1000]]]:
        data = codec.encode_parts(msg)
        assert type(data) is bytes and data == codec.encode(msg)


def test_several_and_odd_buffers(codec):
    """bytearray and memoryview (any item format) arrive as bytes;
    buffers deeper than the scan go inline and still arrive."""
    import array
    codec = _parts_codec(codec)
    if codec.name == 'json':
        pytest.skip('JSON carries no bytes (its texts: the next test)')
    floats = array.array('d', range(10_000))
    msg = {'a': bytearray(BIG), 'b': memoryview(floats), 'c': BIG,
           'small': b'tiny', 'deep': [[[[[[{'z': BIG}]]]]]]}
    parts = codec.encode_parts(msg)
    assert type(parts) is list and len(parts) == 4  # a, b, c; deep inline
    got = codec.decode_parts([bytes(p) for p in parts])
    assert got['a'] == BIG and type(got['a']) is bytes
    assert got['b'] == floats.tobytes()
    assert got['c'] == BIG and got['small'] == b'tiny'
    assert got['deep'][0][0][0][0][0][0]['z'] == BIG


def test_several_and_odd_texts():
    """JSON: several long strings in one message come back in place, from
    parts or from one frame, under both backends; those that stay in the
    JSON (deeper than the scan, under a key JSON turns into a str) still
    arrive; a message whose only long strings stay is plain JSON."""
    short = BIG_TEXT[:70_000]
    msg = {'a': BIG_TEXT, 'b': [short, {'c': short}],
           'd': [[[[[[{'z': short}]]]]]], 7: short, 'n': None}
    for backend in ('orjson', 'json'):
        codec = make_codec(JSONCodec, backend)
        parts = codec.encode_parts(msg)
        assert type(parts) is list and len(parts) == 4  # a, b[0], b[1].c
        want = {**msg, '7': short}
        del want[7]
        assert codec.decode_parts([bytes(p) for p in parts]) == want
        assert codec.decode(codec.encode(msg)) == want
        only_inline = {7: short, 'd': msg['d']}
        assert type(codec.encode_parts(only_inline)) is bytes


def test_bad_part_reference_is_a_decode_error(codec):
    codec = _parts_codec(codec)
    parts = codec.encode_parts({'v': _big(codec)[0]})
    with pytest.raises(DecodeError):
        codec.decode_parts([parts[0]])
    with pytest.raises(DecodeError):
        codec.decode_parts([b'\xc1garbage', b'x'])


@pytest.mark.parametrize('frame', [
    b'\x00',                                      # nothing after the NUL
    b'\x00[[["v",0,3]],{"v":""}]',                # no second NUL
    b'\x00[[["v",0,9]],{"v":""}]\x00abc',         # past the end
    b'\x00[[["v",2,1]],{"v":""}]\x00abc',         # stop before start
    b'\x00[[["v",0,1]],{"v":""}]\x00\xce\xbb',    # not UTF-8 (cut)
    b'\x00[[["v",0,3]],{"v":1}]\x00abc',          # the place is taken
    b'\x00[[["w",0,3]],{"v":""}]\x00abc',         # no such key
    b'\x00[[[0,0,3]],{"v":""}]\x00abc',           # an index into a dict
    b'\x00[[[true,0,3]],[""]]\x00abc',            # a key that is no key
    b'\x00[[[0,3]],1]\x00abc',                    # the message is no place
    b'\x00[[["v","0",3]],{"v":""}]\x00abc',       # offsets not ints
    b'\x00{"v":""}\x00abc',                       # no list of places
    b'\x00[{"\\u0000tractor":"batch"},1]\x00',    # a batch mark
    b'\x00[[["v",0,3]],{"v":null\x00abc',         # the JSON cut
])
def test_garbage_in_the_long_text_form(frame):
    """JSON: a frame in the long-text form that does not fit together is
    a DecodeError under both backends, whole or in parts."""
    for backend in ('orjson', 'json'):
        codec = make_codec(JSONCodec, backend)
        with pytest.raises(DecodeError):
            codec.decode(frame)
        end = frame.find(b'\x00', 1) + 1
        if end:
            with pytest.raises(DecodeError):
                codec.decode_parts([frame[:end], frame[end:] or b'x'])


def test_a_long_text_frame_in_a_batch():
    """JSON: encode_batch takes every frame encode makes; a long-text
    frame (never batched by the runtime, which batches small frames) is
    written into the batch's JSON."""
    for backend in ('orjson', 'json'):
        codec = make_codec(JSONCodec, backend)
        msgs = [{'a': 1}, {'t': BIG_TEXT}, 'x' * 70_000]
        got = codec.decode(codec.encode_batch([codec.encode(m)
                                               for m in msgs]))
        assert type(got) is Batch and list(got) == msgs


# -- batches (optional: encode_batch) -------------------------------------
def _batch_codec(codec):
    if not hasattr(codec, 'encode_batch'):
        pytest.skip(f'{codec.name} does not join messages into batches')
    return codec


def test_batch_roundtrip(codec):
    """Frames joined by encode_batch decode to a Batch of the messages,
    in order; one message or none are batches too."""
    codec = _batch_codec(codec)
    msgs = RUNTIME_MSGS + EXTRA_MSGS
    for chunk in (msgs, msgs[:1], []):
        got = codec.decode(codec.encode_batch([codec.encode(m)
                                               for m in chunk]))
        assert type(got) is Batch
        assert list(got) == [as_received(m) for m in chunk]


def test_lists_are_not_batches(codec):
    """A list message stays a list, even one holding a batch's frames
    or a decoded batch."""
    codec = _batch_codec(codec)
    inner = codec.decode(codec.encode_batch([codec.encode(1)]))
    for msg in ([], [1, 2], [[1], 2], list(inner), [list(inner), 3]):
        got = codec.decode(codec.encode(msg))
        assert type(got) is list and got == msg
    # a batch inside a message is not unpacked: it is not a frame
    frame = codec.encode_batch([codec.encode({'a': 1})])
    if codec.name == 'msgpack':
        assert codec.decode(codec.encode({'raw': frame})) == {'raw': frame}


def test_garbage_in_a_batch_is_a_decode_error(codec):
    codec = _batch_codec(codec)
    frame = codec.encode_batch([codec.encode({'a': 1}),
                                codec.encode({'b': 2})])
    with pytest.raises(DecodeError):
        codec.decode(frame[:-3])
