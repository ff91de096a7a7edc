"""JSON: human readable and universal; cannot carry bytes.

Two backends write the same JSON (the same values: orjson spells a few
floats shorter, ``1e-7`` for ``1e-07``): ``orjson`` (``tractor[fast]``:
orjson encodes, msgspec's JSON decoder decodes, each several times faster
than the stdlib) and ``json`` (the stdlib, always installed). The wire is the
stdlib's: NaN and the infinities as ``NaN``/``Infinity``/``-Infinity``,
integers of any size. The fast libraries do not write or read those, so
the fast backend hands the few messages that hold them to the stdlib:

* orjson refuses integers beyond 64 bits and non-str dict keys (the stdlib
  writes ``{"1": ...}``): on any refusal the stdlib encodes the message,
  and so also raises the same error for a value neither can carry;
* orjson writes NaN and the infinities as ``null``: an encoding holding
  ``null`` is checked for non-finite floats (a walk of the message, paid
  only by messages holding None) and those go to the stdlib;
* decoding: msgspec, not orjson, since orjson reads integers beyond 64 bits
  as floats; whatever msgspec refuses (``NaN``, ``1e400``, garbage) goes to
  the stdlib, which decodes it or raises the usual DecodeError.

Beyond the contract's types, both backends carry what orjson carries and
write it alike (the stdlib through a ``default`` hook written after orjson,
see ``_extras.py``); since the fast backend hands whatever orjson refuses
to the stdlib, what orjson refuses is refused by both:

=============================  ===========================================
sent                           received (by either backend)
=============================  ===========================================
enum member (any Enum)         its value, itself converted
UUID (not a subclass)          str (``str(value)``)
dataclass                      dict of its fields that hold a value,
                               ``_private`` ones left out
datetime, date, time           ISO 8601 str, offset as ``+HH:MM``
                               (seconds dropped); a time with a tzinfo is
                               refused
NamedTuple                     list
subclass of str, int, float    its base type
set, Decimal, timedelta,       EncodeError naming the type, from both
attrs, anything else
=============================  ===========================================
"""
from __future__ import annotations

import json
from typing import Any, Callable

try:
    import msgspec
    import orjson
except ImportError:  # the fallback then; see pick_backend
    _HAVE_FAST = False
else:
    _HAVE_FAST = True

from ._base import pick_backend, unbatched, undecodable, unencodable
from ._extras import json_default


#: a batch frame is a JSON array whose first element is this object,
#: followed by the messages (see encode_batch)
_BATCH_MARK = {'\x00tractor': 'batch'}
_BATCH_HEAD = b'[{"\\u0000tractor":"batch"}'


_SCALARS = frozenset([str, int, bool, type(None)])


def _has_nonfinite(obj) -> bool:
    """Whether ``obj`` holds a NaN or an infinity (which orjson would have
    written as null). A walk over a list it extends, not recursion: a deep
    message must not hit the recursion limit here. ``x - x`` is 0.0 for a
    finite float, NaN (true) for the others."""
    todo = [obj]
    for x in todo:
        t = type(x)
        if t is dict:
            todo += x.values()
        elif t is list or t is tuple:
            todo += x
        elif t is float:
            if x - x:
                return True
        elif t in _SCALARS:
            continue
        elif isinstance(x, float):
            if x - x:
                return True
        elif isinstance(x, dict):
            todo += x.values()
        elif isinstance(x, (list, tuple)):
            todo += x
        else:  # a dataclass, an enum...: what orjson wrote for it
            try:
                todo.append(json_default(x))
            except TypeError:
                return True  # the stdlib will say
    return False


class JSONCodec:
    """``backend``: ``'orjson'``, ``'json'``, or ``'auto'``, ``'fast'``,
    ``'fallback'``; default ``$TRACTOR_CODEC_BACKEND``, else auto (orjson
    when it and msgspec are installed). The one chosen is
    ``self.backend``."""

    name = 'json'
    # methods of the backend, chosen once (see __init__)
    encode: Callable[[Any], bytes]
    decode: Callable[[Any], Any]

    def __init__(self, backend: str | None = None) -> None:
        self.backend = pick_backend(self.name, backend, {
            'orjson': _HAVE_FAST, 'json': True})
        self._dumps = json.JSONEncoder(
            separators=(',', ':'), ensure_ascii=False, allow_nan=True,
            default=json_default).encode
        self._loads = json.JSONDecoder().decode
        if self.backend == 'orjson':
            self._fast_dumps = orjson.dumps
            self._fast_loads = msgspec.json.Decoder().decode
            self.encode, self.decode = self._encode_orjson, self._decode_orjson
        else:
            self.encode, self.decode = self._encode_std, self._decode_std

    def _encode_std(self, obj) -> bytes:
        try:
            return self._dumps(obj).encode()
        except (TypeError, ValueError, RecursionError) as err:
            raise unencodable(self.name, obj, err, json_default) from None

    def _decode_std(self, data: bytes):
        try:
            obj = self._loads(bytes(data).decode())
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise undecodable(self.name, data, err) from None
        return unbatched(obj, _BATCH_MARK)

    def _encode_orjson(self, obj) -> bytes:
        try:
            data = self._fast_dumps(obj)
        except TypeError:  # see the module's docstring
            return self._encode_std(obj)
        # the cheapest test first: no byte 'n', no null (``b'null' in``
        # costs more than find(): it first tries the needle as an int)
        if 110 in data and data.find(b'null') != -1 and _has_nonfinite(obj):
            return self._encode_std(obj)
        return data

    def _decode_orjson(self, data: bytes):
        try:
            obj = self._fast_loads(data)
        except (ValueError, RecursionError):  # see the module's docstring
            return self._decode_std(data)
        return unbatched(obj, _BATCH_MARK)

    def encode_batch(self, frames: list) -> bytes:
        """One frame holding the messages ``frames`` (each made by
        ``encode``): a JSON array of the batch mark and the messages."""
        return b','.join([_BATCH_HEAD, *frames]) + b']'
