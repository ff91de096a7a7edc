"""Pluggable codecs: how a message becomes a frame of bytes.

``'msgpack'`` (default) and ``'json'`` are built in; others can be added
with :func:`register_codec` or the ``tractor.codecs`` entry-point group.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ._base import Codec, CodecError, DecodeError, EncodeError, UnknownCodec

ENTRY_POINT_GROUP = 'tractor.codecs'
_BUILTIN = {
    'msgpack': 'tractor.codecs._msgpack:MsgpackCodec',
    'json': 'tractor.codecs._json:JSONCodec',
}
_factories: dict = {}
_instances: dict = {}
_loaded = False


def register_codec(name: str, factory) -> None:
    _factories[name] = factory
    _instances.pop(name, None)


def _all() -> dict:
    global _loaded
    if not _loaded:
        _loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _factories.setdefault(ep.name, ep.value)
    return {**_BUILTIN, **_factories}


def _load(spec):
    if isinstance(spec, str):
        mod, _, attr = spec.partition(':')
        return getattr(importlib.import_module(mod), attr)
    return spec


def available_codecs() -> list[str]:
    out = []
    for name, spec in _all().items():
        try:
            _load(spec)
        except ImportError:
            continue
        out.append(name)
    return out


def get_codec(name: str) -> Codec:
    """The codec registered as ``name``; raises :class:`UnknownCodec`
    listing the available ones otherwise."""
    try:
        return _instances[name]
    except KeyError:
        pass
    spec = _all().get(name)
    if spec is None:
        raise UnknownCodec(
            f'unknown codec {name!r}; available: '
            f'{", ".join(available_codecs())}')
    inst = _instances[name] = _load(spec)()
    return inst


__all__ = [
    'Codec', 'CodecError', 'DecodeError', 'EncodeError', 'UnknownCodec',
    'available_codecs', 'get_codec', 'register_codec', 'ENTRY_POINT_GROUP',
]
