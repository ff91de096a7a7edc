"""Types beyond the codec contract, carried alike by both backends.

The fast libraries carry some types natively that the fallbacks refuse
(msgspec: sets, enums, UUIDs, decimals, dataclasses, attrs classes,
dates and times; orjson: enums, UUIDs, dataclasses, dates and times). A
program tested with ``tractor[fast]`` must not fail with EncodeError where
it is not installed, and peers on different backends must decode each
other's frames to equal values, so each fallback gets an encoder hook that
writes these types exactly as its fast backend does (the decision table is
in ``_msgpack.py`` and ``_json.py``).

Why hooks in the fallbacks and not refusals in the fast backends: msgspec
and orjson convert their native types in C without asking, so refusing
one would mean walking every message in Python; a fallback's hook
(msgpack-python's and the stdlib json's ``default=``) runs only for a
type the library does not know, so the fallbacks' hot path is unchanged.
The reverse gaps (msgpack-python carries subclasses of str, int, float and
bytes and its own ``Timestamp``, which msgspec refuses) are closed the same
way, by msgspec's ``enc_hook``, which also runs only for types it does not
know.
"""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import sys
import uuid
from typing import Callable

import msgpack

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_US = datetime.timedelta(microseconds=1)


def _offset(tz: datetime.timedelta) -> str:
    """A UTC offset as both fast libraries write it: ``+HH:MM``, seconds
    dropped (RFC 3339 has none)."""
    minutes = int(tz.total_seconds() / 60)  # towards 0, as they do
    sign = '-' if minutes < 0 else '+'
    h, m = divmod(abs(minutes), 60)
    return f'{sign}{h:02d}:{m:02d}'


def _clock(t: datetime.datetime | datetime.time, zulu: bool = False) -> str:
    """``t``'s isoformat with the offset written as ``_offset`` does, or
    (``zulu``, msgspec's way) as ``Z`` when it is zero."""
    off = t.utcoffset()
    naive = t.replace(tzinfo=None).isoformat()
    if off is None:
        return naive
    return naive + ('Z' if zulu and not off else _offset(off))


def _duration(td: datetime.timedelta) -> str:
    """A timedelta as msgspec writes it: ISO 8601 ``[-]P[nD][TsS]``,
    seconds with the fraction's trailing zeros dropped, ``P0D`` for 0."""
    sign = '-' if td < datetime.timedelta(0) else ''
    td = abs(td)
    text = f'{sign}P{td.days}D' if td.days else f'{sign}P'
    if td.seconds or td.microseconds:
        frac = f'.{td.microseconds:06d}'.rstrip('0') if td.microseconds \
            else ''
        text += f'T{td.seconds}{frac}S'
    return text if text != f'{sign}P' else 'P0D'


def _fields(obj, private: bool, attrs: bool) -> dict | None:
    """A dataclass (or, if ``attrs``, attrs) instance as the map of its
    fields that hold a value (an ``init=False`` field left to its class
    default is not one, for either fast library), without the
    ``_private`` ones unless ``private``; None for any other value."""
    cls = type(obj)
    names: list[str]
    present: dict | None
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
        present = getattr(obj, '__dict__', None)
    elif attrs and hasattr(cls, '__attrs_attrs__'):
        names = [a.name for a in cls.__attrs_attrs__]
        private, present = False, None
    else:
        return None
    out = {}
    for name in names:
        if not private and name.startswith('_'):
            continue
        if present is not None and '__slots__' not in cls.__dict__:
            if name in present:
                out[name] = present[name]
        elif hasattr(obj, name):
            out[name] = getattr(obj, name)
    return out


def msgpack_default(obj):
    """msgpack-python's ``default``: what msgspec writes for ``obj``, in a
    form msgpack-python writes byte for byte alike (see ``_msgpack.py``);
    TypeError for a type msgspec refuses too. msgpack-python calls it once
    per value, so what it returns must need no second call."""
    t = type(obj)
    if t is set or t is frozenset:
        return list(obj)
    if t is msgpack.Timestamp:  # native; said for unencodable's walk
        return obj
    if isinstance(obj, enum.Enum):
        return _native(obj.value, msgpack_default)
    if t is datetime.datetime:  # exactly: neither library takes subclasses
        if obj.tzinfo is None or obj.utcoffset() is None:
            return obj.isoformat()
        micros = (obj - _EPOCH) // _US
        secs, us = divmod(micros, 1_000_000)
        return msgpack.Timestamp(secs, us * 1000)
    if t is datetime.date:
        return obj.isoformat()
    if t is datetime.time:
        return _clock(obj, zulu=True)
    if t is datetime.timedelta:
        return _duration(obj)
    if isinstance(obj, uuid.UUID):
        return uuid.UUID.__str__(obj)
    if isinstance(obj, decimal.Decimal):
        return decimal.Decimal.__str__(obj)
    fields = _fields(obj, private=True, attrs=True)
    if fields is not None:
        return fields
    # msgspec's own types, where it is installed but not the backend: a
    # Struct as msgspec writes it (its options honoured), an Ext as the
    # ext it is (msgpack-python's ExtType takes codes 0..127 only)
    ms = sys.modules.get('msgspec')  # its types exist once it is imported
    if ms is not None:
        if isinstance(obj, ms.Struct):
            return ms.to_builtins(obj, builtin_types=_AS_IS)
        if isinstance(obj, ms.msgpack.Ext) and 0 <= obj.code <= 127:
            return msgpack.ExtType(obj.code, bytes(obj.data))
    raise TypeError(f'can not serialize {t.__qualname__!r} object')


#: what msgspec.to_builtins leaves to msgpack-python and this hook
_AS_IS = (bytes, bytearray, memoryview, datetime.datetime, datetime.date,
          datetime.time, datetime.timedelta, uuid.UUID, decimal.Decimal)


_MSGPACK_NATIVE = (str, int, float, bool, type(None), bytes, bytearray,
                   memoryview, list, tuple, dict, msgpack.Timestamp)
_JSON_NATIVE = (str, int, float, bool, type(None), list, tuple, dict)


def _native(value, hook: Callable):
    """``value`` converted until its library knows its type (an enum's
    value may itself need the hook)."""
    native = _MSGPACK_NATIVE if hook is msgpack_default else _JSON_NATIVE
    while not isinstance(value, native) or isinstance(value, enum.Enum):
        value = hook(value)
    return value


def msgspec_enc_hook(obj):
    """msgspec's ``enc_hook``: the types msgpack-python carries natively
    and msgspec does not, written as msgpack-python writes them."""
    if isinstance(obj, msgpack.Timestamp):
        import msgspec
        return msgspec.msgpack.Ext(-1, obj.to_bytes())
    # subclasses, as their base: the value itself, not what an override
    # of __str__, __int__... would make of it (msgpack-python reads it)
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):
        return int.__int__(obj)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, bytes):
        return bytes(memoryview(obj))
    raise TypeError(f'can not serialize {type(obj).__qualname__!r} object')


def json_default(obj):
    """The stdlib json's ``default``: what orjson writes for ``obj`` (see
    ``_json.py``); TypeError for a type orjson refuses too (then the fast
    backend hands the message to the stdlib, which refuses it alike)."""
    t = type(obj)
    if isinstance(obj, enum.Enum):
        return _native(obj.value, json_default)
    if t is datetime.datetime:
        return _clock(obj)
    if t is datetime.date:
        return obj.isoformat()
    if t is datetime.time:
        if obj.tzinfo is not None:
            raise TypeError('datetime.time with a tzinfo (orjson refuses '
                            'it too): send a datetime')
        return obj.isoformat()
    if t is uuid.UUID:
        return uuid.UUID.__str__(obj)
    fields = _fields(obj, private=False, attrs=False)
    if fields is not None:
        return fields
    raise TypeError(
        f'Object of type {type(obj).__qualname__} is not JSON serializable')
