"""msgpack: compact, fast, carries bytes. The default codec.

Two backends write the same bytes: msgspec (``tractor[fast]``, the faster
by a few times on small messages) and msgpack-python (the fallback, always
installed). Both decode an ext type they do not know as a
``msgpack.ExtType`` and the timestamp ext as an aware ``datetime``, so what
either decodes compares equal.

Beyond the contract's types, both backends carry the same ones and write
them alike (msgspec natively; msgpack-python through a ``default`` hook
written after msgspec, see ``_extras.py``):

=============================  ===========================================
sent                           received (by either backend)
=============================  ===========================================
set, frozenset, NamedTuple     list
enum member (any Enum)         its value, itself converted
UUID, Decimal                  str (``str(value)``)
dataclass, attrs instance      dict of the fields that hold a value
                               (attrs' ``_private`` ones left out)
aware datetime                 the timestamp ext: an aware datetime in UTC
naive datetime, date, time     ISO 8601 str (a time's zero offset as ``Z``)
timedelta                      ISO 8601 duration str (``P1DT3.5S``)
``msgpack.Timestamp``          the timestamp ext: an aware datetime
subclass of str, int, float,   its base type
bytes (not enums)
``msgspec.Struct``             as msgspec writes it (a dict, or a list if
                               ``array_like``), fields converted as above
anything else                  EncodeError naming the type, from both
=============================  ===========================================

Two differences remain, neither reachable without the program building
the value itself: a ``msgpack.ExtType`` is written as the ext it is by
msgpack-python and as a two-item list by msgspec (a named tuple to it),
and a timestamp's nanoseconds that are not whole microseconds are
rounded by msgspec's decoder, truncated by msgpack-python's. Neither
library lets a hook in there, and walking every message to catch them
would cost what msgspec saves. tractor's own ext values (the batch mark,
out-of-band parts) never take that path; a program sends bytes, not
ExtType. Where msgspec is installed but not the backend, the fallback
writes a ``msgspec.Struct`` and a ``msgspec.msgpack.Ext`` (codes 0 to 127)
as msgspec does; it refuses ``msgspec.Raw`` and negative ext codes, which
msgspec writes.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import msgpack

try:
    import msgspec
except ImportError:  # the fallback then; see pick_backend
    _HAVE_MSGSPEC = False
else:
    _HAVE_MSGSPEC = True

from ._base import (
    SCAN_DEPTH, DecodeError, has_large, pick_backend, unbatched,
    undecodable, unencodable,
)
from ._extras import msgpack_default, msgspec_enc_hook

#: bytes-like values from this size up travel out of band (encode_parts):
#: below it, copying them into the encoding is cheaper than a part
OOB_FROM = 64 * 1024
#: the msgpack ext type code marking "out-of-band part <n> goes here"
_OOB_EXT = 0x7E
#: a batch frame is a msgpack array whose first element is this ext value
#: (code 0x7D), followed by the messages (see encode_batch)
_BATCH_MARK = msgpack.ExtType(0x7D, b'B')
_BATCH_MARK_BYTES = msgpack.packb(_BATCH_MARK)
def _is_large_buffer(v) -> bool:
    t = type(v)
    if t is bytes or t is bytearray:
        return len(v) >= OOB_FROM
    return t is memoryview and v.nbytes >= OOB_FROM


def _extract(obj, bufs: list, ext, depth: int = 0):
    """A copy of ``obj`` (containers only, up to the scan depth) with every
    large buffer replaced by an ext placeholder (made by ``ext(code,
    data)``, the backend's ext type) and appended to ``bufs``."""
    t = type(obj)
    if t is bytes or t is bytearray or t is memoryview:
        if (obj.nbytes if t is memoryview else len(obj)) < OOB_FROM:
            return obj
        if t is memoryview:
            if not obj.c_contiguous:
                return obj  # packed inline (or refused) as before
            obj = obj.cast('B') if obj.format != 'B' else obj
        bufs.append(obj)
        return ext(_OOB_EXT, (len(bufs) - 1).to_bytes(4, 'big'))
    if depth > SCAN_DEPTH:
        return obj
    if t is dict:
        return {k: _extract(v, bufs, ext, depth + 1) for k, v in obj.items()}
    if t is list or t is tuple:
        return [_extract(v, bufs, ext, depth + 1) for v in obj]
    return obj


class _PartsHook:
    """ext_hook for decode_parts: placeholder n -> the n-th received
    buffer; any other ext type is left to the caller, as in decode."""

    __slots__ = ('bufs',)

    def __init__(self, bufs) -> None:
        self.bufs = bufs

    def __call__(self, code: int, data):
        if code != _OOB_EXT:
            return _ext_type(code, data)
        i = int.from_bytes(data, 'big')
        if len(data) != 4 or i >= len(self.bufs):
            raise ValueError(f'out-of-band reference {i} without a part')
        return self.bufs[i]


def _ext_type(code: int, data) -> msgpack.ExtType:
    """An ext value neither backend knows, as msgpack-python decodes it
    (msgspec hands the hook a memoryview)."""
    return msgpack.ExtType(code, bytes(data))


def _msgspec_unpack_parts(head, ext_hook):
    """``head`` decoded by msgspec with ``ext_hook``: a decoder built for
    the frame (a large one, beside which building it costs nothing)."""
    return msgspec.msgpack.Decoder(ext_hook=ext_hook).decode(head)


class MsgpackCodec:
    """``backend``: ``'msgspec'``, ``'msgpack'``, or ``'auto'``, ``'fast'``,
    ``'fallback'``; default ``$TRACTOR_CODEC_BACKEND``, else auto (msgspec
    when installed). The one chosen is ``self.backend``."""

    name = 'msgpack'
    # the backend's, chosen once (see __init__)
    decode: Callable[[Any], Any]

    def __init__(self, backend: str | None = None) -> None:
        self.backend = pick_backend(self.name, backend, {
            'msgspec': _HAVE_MSGSPEC, 'msgpack': True})
        # one Packer (or Encoder) reused: building one per message costs
        # more than packing a small message
        packer = msgpack.Packer(use_bin_type=True, default=msgpack_default)
        self._array_header = packer.pack_array_header
        if self.backend == 'msgspec':
            self._pack = msgspec.msgpack.Encoder(
                enc_hook=msgspec_enc_hook).encode
            self._unpack = msgspec.msgpack.Decoder(ext_hook=_ext_type).decode
            self._ext = msgspec.msgpack.Ext
            self._unpack_parts = _msgspec_unpack_parts
            self.decode = self._decode_msgspec
        else:
            self.decode = self._decode_msgpack
            self._pack = packer.pack
            self._ext = msgpack.ExtType
            self._unpack_parts = functools.partial(
                msgpack.unpackb, raw=False, strict_map_key=False,
                timestamp=3)

    def encode(self, obj) -> bytes:
        try:
            return self._pack(obj)
        except (TypeError, ValueError, OverflowError, RecursionError) as err:
            raise unencodable(self.name, obj, err, msgpack_default) \
                from None

    def _decode_msgpack(self, data: bytes):
        # the call spelt out: a functools.partial's keyword merging shows
        # on a small message. timestamp=3: the timestamp ext as a datetime,
        # as msgspec decodes it
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False,
                                  timestamp=3)
        except Exception as err:  # msgpack raises several unrelated types
            raise undecodable(self.name, data, err) from None
        return unbatched(obj, _BATCH_MARK)

    def _decode_msgspec(self, data: bytes):
        try:
            obj = self._unpack(data)
        except Exception as err:
            raise undecodable(self.name, data, err) from None
        return unbatched(obj, _BATCH_MARK)

    def encode_batch(self, frames: list) -> bytes:
        """One frame holding the messages ``frames`` (each made by
        ``encode``): an array header, the batch mark and the frames as they
        are, so joining costs one copy and decoding one ``unpackb``."""
        return b''.join([self._array_header(len(frames) + 1),
                         _BATCH_MARK_BYTES, *frames])

    def encode_parts(self, obj):
        """``encode(obj)``, or ``[head, buf, ...]`` when ``obj`` holds
        large buffers (see the codec contract). Cheap for small messages:
        a look at the top-level values (where stream items and return
        values sit), then, only if the encoding came out large, a bounded
        scan deeper (``_base.has_large``)."""
        if type(obj) is dict:
            for v in obj.values():
                t = type(v)
                if (t is bytes or t is bytearray) and len(v) >= OOB_FROM \
                        or t is memoryview and v.nbytes >= OOB_FROM:
                    return self._split(obj)
        data = self.encode(obj)
        if len(data) < OOB_FROM or not has_large(obj, _is_large_buffer):
            return data
        # nested: the encoding is made twice, still cheaper than copying
        # the buffers out of it again at the other end
        return self._split(obj)

    def _split(self, obj):
        bufs: list = []
        head = _extract(obj, bufs, self._ext)
        if not bufs:  # pragma: no cover - a non-contiguous memoryview
            return self.encode(obj)
        return [self.encode(head), *bufs]

    def decode_parts(self, parts: list):
        head = parts[0]
        try:
            return self._unpack_parts(head, ext_hook=_PartsHook(parts[1:]))
        except Exception as err:
            raise DecodeError(
                f'codec {self.name!r} cannot decode a frame of '
                f'{len(parts)} parts ({bytes(head[:16])!r}...): {err}'
            ) from None
