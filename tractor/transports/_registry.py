"""Transports by name.

Built-in transports are imported lazily, so ``pynng`` and ``pyzmq`` are only
needed by the programs that pick them. Third-party packages add a transport
without touching this repository by declaring an entry point::

    # their setup.cfg
    [options.entry_points]
    tractor.transports =
        quic = tractor_quic:QuicTransport

or at run time with :func:`register_transport`.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable, Union

from ._base import Transport, UnknownTransport

ENTRY_POINT_GROUP = 'tractor.transports'

# name -> "module:attr"; imported on first use
_BUILTIN = {
    'tcp': 'tractor.transports.tcp:TCPTransport',
    'uds': 'tractor.transports.tcp:UDSTransport',
    'nng': 'tractor.transports.nng:NNGTransport',
    'zmq': 'tractor.transports.zmq:ZMQTransport',
}
_factories: dict[str, Union[str, Callable[[], Transport]]] = {}
_instances: dict[str, Transport] = {}
_loaded_entry_points = False


def register_transport(name: str, factory) -> None:
    """Make ``factory()`` (a Transport class or callable, or a
    ``"module:attr"`` string) available as ``name``."""
    _factories[name] = factory
    _instances.pop(name, None)


def _all_factories() -> dict:
    global _loaded_entry_points
    if not _loaded_entry_points:
        _loaded_entry_points = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _factories.setdefault(ep.name, ep.value)
    merged = dict(_BUILTIN)
    merged.update(_factories)
    return merged


def _load(spec) -> Callable[[], Transport]:
    if isinstance(spec, str):
        mod, _, attr = spec.partition(':')
        return getattr(importlib.import_module(mod), attr)
    return spec


def available_transports() -> list[str]:
    """Names of the transports that can be used here (their backend
    library imports)."""
    names = []
    for name, spec in _all_factories().items():
        try:
            _load(spec)
        except ImportError:
            continue
        names.append(name)
    return names


def get_transport(name: str) -> Transport:
    """The transport registered as ``name`` (``'tcp'``, ``'uds'``,
    ``'nng'``, ``'zmq'``, or ``'nng+ipc'``-style with a scheme suffix,
    which is ignored here)."""
    base = name.partition('+')[0]
    try:
        return _instances[base]
    except KeyError:
        pass
    spec = _all_factories().get(base)
    if spec is None:
        raise UnknownTransport(
            f'unknown transport {name!r}; available: '
            f'{", ".join(available_transports())}')
    try:
        factory = _load(spec)
    except ImportError as err:
        raise UnknownTransport(
            f'transport {base!r} is registered but its backend is not '
            f'installed ({err}); `pip install tractor[{base}]` or pick one '
            f'of: {", ".join(available_transports())}') from err
    inst = _instances[base] = factory()
    return inst
