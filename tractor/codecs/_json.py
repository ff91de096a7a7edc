"""JSON: human readable and universal; cannot carry bytes.

Two backends write the same JSON (the same values: orjson spells a few
floats shorter, ``1e-7`` for ``1e-07``): ``orjson`` (``tractor[fast]``:
orjson encodes, msgspec's JSON decoder decodes, each several times faster
than the stdlib) and ``json`` (the stdlib, always installed). The wire is the
stdlib's (long strings aside: see the end of this docstring): NaN and the
infinities as ``NaN``/``Infinity``/``-Infinity``,
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

Long strings travel beside the JSON. A JSON decoder reads a string
character by character, looking for escapes (about 0.3 ms per MiB with
msgspec, the fastest here), and a growing JSON output copies it again: a
stream of 1 MiB ``str`` items moved at a third of msgpack's rate over
tcp. So a message holding a ``str`` of ``TEXT_APART_FROM`` (64 Ki)
characters or more, where the runtime puts values (what
:func:`_base.has_large` looks through), is written as a frame of its own
form::

    NUL  [places, message]  NUL  text text ...

* between the NULs, JSON (written like any message): ``places`` says
  where each long string goes, as ``[key, ..., start, stop]`` (the keys
  and list indices leading to it in ``message``, then its start and stop
  offsets in what follows the second NUL), and ``message`` has an empty
  string in those places;
* after it, the strings, as UTF-8, one after the other.

Decoding reads the JSON and cuts the strings out of the buffer (a UTF-8
decode, several times faster than reading a JSON string). A JSON text
never holds a NUL byte (it escapes it as ``\\u0000``), so the first byte
tells the two forms apart. The frame is still text. A long string under a
dict key that is not a ``str`` stays in the JSON (which turns the key
into one).
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

from ._base import (
    SCAN_DEPTH, has_large, pick_backend, unbatched, undecodable,
    unencodable,
)
from ._extras import json_default


#: a batch frame is a JSON array whose first element is this object,
#: followed by the messages (see encode_batch)
_BATCH_MARK = {'\x00tractor': 'batch'}
_BATCH_HEAD = b'[{"\\u0000tractor":"batch"}'


_SCALARS = frozenset([str, int, bool, type(None)])

#: strings from this length (in characters) up travel beside the JSON,
#: as raw UTF-8 (see the module's docstring)
TEXT_APART_FROM = 64 * 1024


def _is_long_text(v) -> bool:
    return type(v) is str and len(v) >= TEXT_APART_FROM


def _take_texts(obj, path: list, where: list, texts: list, at: list,
                depth: int = 0):
    """A copy of ``obj`` (containers only, as deep as ``has_large`` looks)
    with each long string replaced by ``''``, its UTF-8 appended to
    ``texts`` and its place, ``path + [start, stop]``, to ``where``
    (``at[0]``: the bytes taken so far)."""
    t = type(obj)
    if t is str:
        if len(obj) < TEXT_APART_FROM:
            return obj
        try:
            data = obj.encode()
        except UnicodeEncodeError:  # a lone surrogate: left to the JSON
            return obj  # encoder, which refuses it as it always did
        texts.append(data)
        where.append([*path, at[0], at[0] + len(data)])
        at[0] += len(data)
        return ''
    if depth > SCAN_DEPTH:
        return obj
    if t is dict:
        return {k: _take_texts(v, path + [k], where, texts, at, depth + 1)
                if type(k) is str else v for k, v in obj.items()}
    if t is list or t is tuple:
        return [_take_texts(v, path + [i], where, texts, at, depth + 1)
                for i, v in enumerate(obj)]
    return obj


def _put_texts(msg, where, buf: memoryview):
    """``msg`` with the strings ``where`` says back in their places, cut
    from ``buf``; raises ValueError (or another lookup error) for a
    ``where`` that does not fit ``msg`` or ``buf``."""
    if type(where) is not list:
        raise ValueError('the list of long strings is not a list')
    size = len(buf)
    for place in where:
        if (type(place) is not list or len(place) < 2
                or type(place[-1]) is not int or type(place[-2]) is not int
                or not 0 <= place[-2] <= place[-1] <= size):
            raise ValueError(f'bad place of a long string: {place!r}')
        text = str(buf[place[-2]:place[-1]], 'utf-8')
        keys = place[:-2]
        if not keys:
            if msg != '':
                raise ValueError('the message is not a long string')
            msg = text
            continue
        node: Any = msg
        parent: Any = None
        for k in keys:
            kind = {str: dict, int: list}.get(type(k))
            if kind is None or type(node) is not kind:
                raise ValueError(f'no place {keys!r} in the message')
            parent, node = node, node[k]
        if node != '':
            raise ValueError(f'place {keys!r} of a long string is taken')
        parent[k] = text
    return msg


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
    _inline: Callable[[Any], bytes]
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
            self._inline = self._encode_orjson
            self.decode = self._decode_orjson
        else:
            self._inline, self.decode = self._encode_std, self._decode_std

    def encode(self, obj) -> bytes:
        """``obj`` as JSON, or in the long-text form (see the module's
        docstring) if it holds long strings."""
        data = self.encode_parts(obj)
        return data if type(data) is bytes else b''.join(data)

    def encode_parts(self, obj):
        """``obj`` as JSON, or as the parts of the long-text form: the
        JSON between its NULs, then each long string (a transport that
        carries frames in parts sends them without joining them). Cheap
        for other messages: a look at the top-level values (where stream
        items and return values sit), then, only if the JSON came out
        long, a bounded scan deeper (``_base.has_large``)."""
        t = type(obj)
        if t is dict:
            for v in obj.values():
                if type(v) is str and len(v) >= TEXT_APART_FROM:
                    return self._apart(obj)
        elif t is str and len(obj) >= TEXT_APART_FROM:
            return self._apart(obj)
        data = self._inline(obj)
        if len(data) >= TEXT_APART_FROM and has_large(obj, _is_long_text):
            return self._apart(obj)
        return data

    def _apart(self, obj):
        where: list = []
        texts: list = []
        head = _take_texts(obj, [], where, texts, [0])
        if not texts:  # only strings that must stay in the JSON
            return self._inline(obj)
        return [b'\x00' + self._inline([where, head]) + b'\x00', *texts]

    def _decode_apart(self, data):
        """A frame in the long-text form (it starts with NUL)."""
        data = bytes(data) if type(data) is memoryview else data
        end = data.find(b'\x00', 1)
        if end == -1:
            raise undecodable(self.name, data,
                              ValueError('a NUL with no JSON after it'))
        view = memoryview(data)
        return self._placed(view[1:end], view[end + 1:], data)

    def decode_parts(self, parts: list):
        """The inverse of :meth:`encode_parts`: a frame received in parts
        (the texts are cut from the parts, not copied out of a join
        first, unless the message had several)."""
        head = parts[0]
        if len(parts) == 1:
            return self.decode(head)
        if head[:1] != b'\x00' or head[-1:] != b'\x00' or len(head) < 2:
            raise undecodable(self.name, head, ValueError(
                f'a frame of {len(parts)} parts not in the long-text form'))
        texts = parts[1] if len(parts) == 2 else b''.join(parts[1:])
        return self._placed(memoryview(head)[1:-1], memoryview(texts), head)

    def _placed(self, head, texts: memoryview, frame):
        """The message whose JSON is ``head``, its long strings cut from
        ``texts`` (``frame``: what an error shows)."""
        obj = self.decode(head)
        try:
            if type(obj) is not list or len(obj) != 2:
                raise ValueError('no list of long strings ahead')
            return _put_texts(obj[1], obj[0], texts)
        except (ValueError, LookupError, TypeError) as err:
            raise undecodable(self.name, frame, err) from None

    def _encode_std(self, obj) -> bytes:
        try:
            return self._dumps(obj).encode()
        except (TypeError, ValueError, RecursionError) as err:
            raise unencodable(self.name, obj, err, json_default) from None

    def _decode_std(self, data: bytes):
        if data[:1] == b'\x00':
            return self._decode_apart(data)
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
            return self._decode_std(data)  # (or the long-text form)
        return unbatched(obj, _BATCH_MARK)

    def encode_batch(self, frames: list) -> bytes:
        """One frame holding the messages ``frames`` (each made by
        ``encode``): a JSON array of the batch mark and the messages. (A
        frame in the long-text form is never batched by the runtime, which
        batches small frames only; here it is written in the JSON.)"""
        data = b','.join([_BATCH_HEAD, *frames]) + b']'
        if b'\x00' in data:  # (JSON itself never holds a NUL byte)
            return self.encode_batch([
                self._inline(self.decode(f)) if f[:1] == b'\x00' else f
                for f in frames])
        return data
