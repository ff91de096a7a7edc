"""The contract every codec fulfils.

A codec turns one message (a tree of dicts, lists, strings, numbers,
booleans, None -- and bytes where the format allows) into one frame of bytes
and back. Both built-in codecs decode every sequence as a ``list``: a tuple
sent is a list received, the same under msgpack and JSON, so the runtime
never depends on which codec is in force.

Writing a codec: a class with ``name``, ``encode(obj) -> bytes`` and
``decode(data) -> obj``; raise :class:`EncodeError` for a value the format
cannot carry and :class:`DecodeError` for bytes that are not a message.
``encode`` must never return ``b''`` (the empty frame is reserved for
heartbeats).

Large buffers out of band (optional). A codec may also offer
``encode_parts(obj)``, returning either what ``encode`` would or a list
``[head, buf, ...]`` in which the big values of ``obj`` travel as parts
of their own instead of being copied into the encoding (msgpack: its
``bytes``-like values, left as they are; JSON: the UTF-8 of its long
strings), and ``decode_parts(parts)``, its inverse, which puts the
received buffers back in place (msgpack: without copying them again).
The Channel uses the pair only over transports that carry frames in parts
(zmq), so a 1 MiB payload goes from the producer's object to the socket
and from the socket to the consumer's object with no copy besides the
socket's own.

Batches (optional). A codec may offer ``encode_batch(frames)``, which
joins frames that ``encode`` made into one frame, and must then make
``decode`` return such a frame as a :class:`Batch` of its messages. A
Channel whose peer also offers it sends a burst of small messages (what
``send_buffered`` queued) as one batch: one frame to write, to move
through the transport and to read instead of one per message, which is
what a message-oriented transport (zmq, nng) pays for per frame.

Backends. The built-in codecs each have a fast backend (msgspec for
msgpack; orjson, with msgspec's JSON decoder, for JSON: ``pip install
'tractor[fast]'``) and a fallback (msgpack-python; the stdlib ``json``)
that write the same wire: peers with different backends decode each
other's frames to equal values, and both backends of a codec accept the
same types beyond the contract's (sets, enums, datetimes...: the tables
are in ``_msgpack.py`` and ``_json.py``) or refuse them alike. The
backend is chosen once, when the codec is built (the ``backend``
argument, else ``$TRACTOR_CODEC_BACKEND``, else the fast one when
installed), so no message pays for the choice.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Protocol, runtime_checkable


class CodecError(Exception):
    """Base of codec errors."""


class EncodeError(CodecError, TypeError):
    """A value this codec cannot carry."""


class DecodeError(CodecError, ValueError):
    """Bytes that are not a message in this codec's format."""


class UnknownCodec(CodecError, LookupError):
    """No codec is registered under the requested name."""


class Batch(list):
    """The messages of one batch frame, in the order they were sent:
    what ``decode`` returns for a frame made by ``encode_batch``."""

    __slots__ = ()


@runtime_checkable
class Codec(Protocol):
    name: str

    def encode(self, obj: Any) -> bytes:
        ...

    def decode(self, data: bytes) -> Any:
        ...


#: the environment variable choosing the built-in codecs' backend: ``auto``
#: (the default: the fast backend when installed), ``fast`` (required, an
#: error if not installed) or ``fallback``
BACKEND_ENV = 'TRACTOR_CODEC_BACKEND'
_MODES = ('auto', 'fast', 'fallback')


def pick_backend(codec: str, backend: str | None,
                 installed: dict[str, bool]) -> str:
    """The backend ``codec`` runs on: ``backend`` (a name of
    ``installed``, or one of ``auto``, ``fast``, ``fallback``), else
    ``$TRACTOR_CODEC_BACKEND``, else ``auto``. ``installed`` maps each
    backend's name to whether it imports here, the fast one first and the
    fallback (always installed) last."""
    names = list(installed)
    where = 'backend'
    if backend is None:
        backend = os.environ.get(BACKEND_ENV, '').strip() or 'auto'
        where = f'${BACKEND_ENV}'
        if backend not in _MODES:
            raise CodecError(
                f'{where}={backend!r}: expected one of {", ".join(_MODES)}; '
                f'unset it for the default (auto)')
    fast, fallback = names[0], names[-1]
    want = {'auto': fast if installed[fast] else fallback, 'fast': fast,
            'fallback': fallback}.get(backend, backend)
    if want not in installed:
        raise CodecError(
            f'codec {codec!r} has no backend {backend!r}; choose one of '
            f'{", ".join(names + list(_MODES))}')
    if not installed[want]:
        raise CodecError(
            f'codec {codec!r} cannot run on {want!r} (asked by {where} '
            f"{backend!r}): not installed; pip install 'tractor[fast]', or "
            f'choose {fallback!r} or auto')
    return want


def undecodable(codec: str, data, err: Exception) -> DecodeError:
    """Build the error for bytes that are not a ``codec`` message, showing
    their length and first bytes."""
    return DecodeError(
        f'codec {codec!r} cannot decode {len(data)} bytes '
        f'({bytes(data[:16])!r}...): {err}')


#: how much of a message :func:`has_large` looks through for large values
#: (codecs that carry those apart from the encoding): where a stream item,
#: a return value, a keyword argument or a field of a dict item sits --
#: bounded, so that looking never costs more than a small message
SCAN_DEPTH = 4
SCAN_NODES = 64


def has_large(obj, large: Callable[[Any], bool]) -> bool:
    """Whether ``large(value)`` holds for ``obj`` itself or for a value
    within its first ``SCAN_NODES`` container entries, ``SCAN_DEPTH``
    containers deep (dicts, lists, tuples; their keys are not looked at)."""
    t = type(obj)
    if t is not dict and t is not list and t is not tuple:
        return large(obj)
    budget = SCAN_NODES
    todo = [(obj, 0)]
    pop, push = todo.pop, todo.append
    while todo:
        node, depth = pop()
        for v in (node.values() if type(node) is dict else node):
            t = type(v)
            if t is dict or t is list or t is tuple:
                if depth < SCAN_DEPTH:
                    push((v, depth + 1))
            elif large(v):
                return True
            budget -= 1
            if not budget:
                return False
    return False


def unbatched(obj, mark):
    """What ``decode`` returns for the decoded frame ``obj``: the
    :class:`Batch` it holds if it is a list headed by the codec's batch
    ``mark``, else ``obj`` itself."""
    if type(obj) is list and obj and obj[0] == mark:
        del obj[0]
        return Batch(obj)
    return obj


def unencodable(codec: str, obj: Any, err: Exception,
                convert=None) -> EncodeError:
    """Build the error for a value ``codec`` cannot carry, naming the
    offending type (found by walking ``obj``) rather than echoing a
    backend message. A value nested deeper than the codec goes (msgpack
    says "recursion limit exceeded", json hits Python's recursion limit)
    is said to be so: a bare RecursionError would name no codec and
    escape every ``except EncodeError``. ``convert`` is the codec's hook
    for the types it carries beyond the contract (see ``_extras.py``):
    the walk looks inside what it makes of a value."""
    if isinstance(err, RecursionError) or (
            isinstance(err, ValueError) and 'recursion' in str(err)):
        return EncodeError(
            f'codec {codec!r} cannot encode a value nested this deeply '
            f'({err}): send a flatter structure')
    if isinstance(err, OverflowError):
        return EncodeError(
            f'codec {codec!r} cannot encode an int outside -2**63 .. '
            f'2**64 - 1 ({err}): send a larger one as str')
    bad = _find_bad(obj, codec, convert)
    tname = type(bad).__qualname__ if bad is not None else '?'
    hint = ''
    if codec == 'json' and isinstance(bad, (bytes, bytearray, memoryview)):
        hint = ' (JSON has no bytes type: use codec="msgpack" or send str)'
    return EncodeError(
        f'codec {codec!r} cannot encode a value of type {tname}{hint}: '
        f'{err}')


_OK = (str, int, float, bool, type(None))


def _find_bad(obj, codec, convert=None):
    """The first value in ``obj`` the codec cannot carry (neither natively
    nor through ``convert``), or None. A walk with a stack of its own, not
    recursion: it must not fail on the very values that made the encoder
    fail."""
    todo = [obj]
    while todo:
        x = todo.pop()
        if isinstance(x, _OK):
            continue
        if isinstance(x, (bytes, bytearray, memoryview)):
            if codec == 'json':
                return x
            continue
        if isinstance(x, dict):
            for k, v in reversed(list(x.items())):
                todo += (v, k)
            continue
        if isinstance(x, (list, tuple)):
            todo.extend(reversed(x))
            continue
        if convert is not None:
            try:
                y = convert(x)
            except (TypeError, ValueError):
                return x
            if y is not x:  # else a leaf the codec knows (a Timestamp)
                todo.append(y)
            continue
        return x
    return None
