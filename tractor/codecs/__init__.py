"""Pluggable codecs: how a message becomes a frame of bytes.

``'msgpack'`` (default) and ``'json'`` are built in; others can be added
with :func:`register_codec` or the ``tractor.codecs`` entry-point group.
The built-in ones run on a fast backend when ``tractor[fast]`` is installed
(same wire; see ``_base.py``): ``$TRACTOR_CODEC_BACKEND`` or
``MsgpackCodec(backend=...)`` / ``JSONCodec(backend=...)`` choose.
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

_BUILTIN = {
    'MsgpackCodec': 'tractor.codecs._msgpack:MsgpackCodec',
    'JSONCodec': 'tractor.codecs._json:JSONCodec',
}
_registry = PluginRegistry('codec', ENTRY_POINT_GROUP, {
    'msgpack': _BUILTIN['MsgpackCodec'],
    'json': _BUILTIN['JSONCodec'],
}, UnknownCodec)


def register_codec(name: str, factory) -> None:
    """Make ``factory()`` (a Codec class or callable, or a
    ``"module:attr"`` string) available as ``name``."""
    _registry.register(name, factory)


def __getattr__(name: str):
    # the built-in classes, imported on first use like the registry's
    # (their fast backends cost an import a program may not need)
    if name in ('MsgpackCodec', 'JSONCodec'):
        return _registry._load(_BUILTIN[name])
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def available_codecs() -> list[str]:
    return _registry.available()


def get_codec(name: str) -> Codec:
    """The codec registered as ``name``; raises :class:`UnknownCodec`
    listing the available ones otherwise."""
    return _registry.get(name)


__all__ = [
    'Batch', 'Codec', 'CodecError', 'DecodeError', 'EncodeError',
    'UnknownCodec', 'MsgpackCodec', 'JSONCodec',
    'available_codecs', 'get_codec', 'register_codec', 'ENTRY_POINT_GROUP',
]
