"""JSON: human readable and universal; cannot carry bytes.

Two backends write the same JSON: ``orjson`` (``tractor[fast]``: orjson
encodes, msgspec's JSON decoder decodes, each about ten times faster than
the stdlib) and ``json`` (the stdlib, always installed). The wire is the
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

Beyond the contract's types, orjson also carries enums (as their value)
and UUIDs (as str), which the stdlib refuses.
"""
from __future__ import annotations

import json

try:
    import msgspec
    import orjson
except ImportError:  # the fallback then; see pick_backend
    msgspec = orjson = None

from ._base import pick_backend, unbatched, undecodable, unencodable


#: a batch frame is a JSON array whose first element is this object,
#: followed by the messages (see encode_batch)
_BATCH_MARK = {'\x00tractor': 'batch'}
_BATCH_HEAD = b'[{"\\u0000tractor":"batch"}'


def _has_nonfinite(obj) -> bool:
    """Whether ``obj`` holds a NaN or an infinity (which orjson would have
    written as null). A walk with a stack of its own: a deep message must
    not hit the recursion limit here."""
    todo = [obj]
    pop, extend = todo.pop, todo.extend
    while todo:
        x = pop()
        if isinstance(x, float):
            if x - x != 0.0:  # nan and +-inf give nan
                return True
        elif isinstance(x, dict):
            extend(x.values())
        elif isinstance(x, (list, tuple)):
            extend(x)
    return False


class JSONCodec:
    """``backend``: ``'orjson'``, ``'json'``, or ``'auto'``, ``'fast'``,
    ``'fallback'``; default ``$TRACTOR_CODEC_BACKEND``, else auto (orjson
    when it and msgspec are installed). The one chosen is
    ``self.backend``."""

    name = 'json'

    def __init__(self, backend: str | None = None) -> None:
        self.backend = pick_backend(self.name, backend, {
            'orjson': orjson is not None, 'json': True})
        std_dumps = json.JSONEncoder(
            separators=(',', ':'), ensure_ascii=False, allow_nan=True,
        ).encode
        std_loads = json.JSONDecoder().decode

        def slow_dumps(obj) -> bytes:
            return std_dumps(obj).encode()

        def slow_loads(data):
            return std_loads(bytes(data).decode())

        if self.backend == 'json':
            self._dumps, self._loads = slow_dumps, slow_loads
            return

        fast_dumps = orjson.dumps
        # datetimes and dataclasses to the stdlib (which refuses them) as
        # they are by default
        opts = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
        fast_loads = msgspec.json.Decoder().decode

        def dumps(obj) -> bytes:
            try:
                data = fast_dumps(obj, option=opts)
            except TypeError:  # see the module's docstring
                return slow_dumps(obj)
            if b'null' in data and _has_nonfinite(obj):
                return slow_dumps(obj)
            return data

        def loads(data):
            try:
                return fast_loads(data)
            except (ValueError, RecursionError):
                return slow_loads(data)

        self._dumps, self._loads = dumps, loads

    def encode(self, obj) -> bytes:
        try:
            return self._dumps(obj)
        except (TypeError, ValueError, RecursionError) as err:
            raise unencodable(self.name, obj, err) from None

    def decode(self, data: bytes):
        try:
            obj = self._loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise undecodable(self.name, data, err) from None
        return unbatched(obj, _BATCH_MARK)

    def encode_batch(self, frames: list) -> bytes:
        """One frame holding the messages ``frames`` (each made by
        ``encode``): a JSON array of the batch mark and the messages."""
        return b','.join([_BATCH_HEAD, *frames]) + b']'
