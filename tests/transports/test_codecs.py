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


# -- large buffers out of band (codecs offering encode_parts) --------------
def _parts_codec(codec):
    if not hasattr(codec, 'encode_parts'):
        pytest.skip(f'codec {codec.name!r} has no out-of-band parts')
    return codec


BIG = bytes(range(256)) * 4096  # 1 MiB


@pytest.mark.parametrize('msg,where', [
    ({'cid': 3, 'yield': BIG}, lambda m: m['yield']),
    ({'cid': 3, 'return': [1, BIG, 'x']}, lambda m: m['return'][1]),
    ({'cmd': ('mod', 'f', {'data': BIG}, ('u', 'i'), 7)},
     lambda m: m['cmd'][2]['data']),
    ({'cid': 1, 'yield': {'frame': BIG, 'meta': {'n': 1}}},
     lambda m: m['yield']['frame']),
], ids=['item', 'in-list', 'kwarg', 'dict-item'])
def test_large_buffer_travels_out_of_band(codec, msg, where):
    """The large value is a part of its own -- the very object, not a
    copy -- and decoding puts the received part back in place without
    copying it again."""
    codec = _parts_codec(codec)
    parts = codec.encode_parts(msg)
    assert type(parts) is list and len(parts) == 2
    assert parts[1] is BIG
    assert len(parts[0]) < 200  # the rest of the message, encoded
    received = [bytes(parts[0]), bytes(bytearray(parts[1]))]
    got = codec.decode_parts(received)
    assert got == as_received(msg)
    assert where(got) is received[1]


def test_small_messages_are_not_split(codec):
    codec = _parts_codec(codec)
    for msg in RUNTIME_MSGS + [{'blob': b'x' * 65535}, [b'y' * 1000]]:
        data = codec.encode_parts(msg)
        assert type(data) is bytes and data == codec.encode(msg)


def test_several_and_odd_buffers(codec):
    """bytearray and memoryview (any item format) arrive as bytes;
    buffers deeper than the scan go inline and still arrive."""
    import array
    codec = _parts_codec(codec)
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


def test_bad_part_reference_is_a_decode_error(codec):
    codec = _parts_codec(codec)
    parts = codec.encode_parts({'v': BIG})
    with pytest.raises(DecodeError):
        codec.decode_parts([parts[0]])
    with pytest.raises(DecodeError):
        codec.decode_parts([b'\xc1garbage', b'x'])


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
