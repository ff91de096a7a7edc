"""Pluggable codecs: how a message becomes a frame of bytes.

``'msgpack'`` (default) and ``'json'`` are built in; others can be added
with :func:`register_codec` or the ``tractor.codecs`` entry-point group.
"""
from __future__ import annotations

from .._plugins import PluginRegistry
from ._base import (
    Batch,
    Codec,
    CodecError,
    DecodeError,
    EncodeError,
    UnknownCodec,
)

ENTRY_POINT_GROUP = 'tractor.codecs'

_registry = PluginRegistry('codec', ENTRY_POINT_GROUP, {
    'msgpack': 'tractor.codecs._msgpack:MsgpackCodec',
    'json': 'tractor.codecs._json:JSONCodec',
}, UnknownCodec)


def register_codec(name: str, factory) -> None:
    """Make ``factory()`` (a Codec class or callable, or a
    ``"module:attr"`` string) available as ``name``."""
    _registry.register(name, factory)


def available_codecs() -> list[str]:
    return _registry.available()


def get_codec(name: str) -> Codec:
    """The codec registered as ``name``; raises :class:`UnknownCodec`
    listing the available ones otherwise."""
    return _registry.get(name)


__all__ = [
    'Batch', 'Codec', 'CodecError', 'DecodeError', 'EncodeError',
    'UnknownCodec',
    'available_codecs', 'get_codec', 'register_codec', 'ENTRY_POINT_GROUP',
]
