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

from .._plugins import PluginRegistry
from ._base import Transport, UnknownTransport

ENTRY_POINT_GROUP = 'tractor.transports'

_registry = PluginRegistry('transport', ENTRY_POINT_GROUP, {
    'tcp': 'tractor.transports.tcp:TCPTransport',
    'uds': 'tractor.transports.tcp:UDSTransport',
    'nng': 'tractor.transports.nng:NNGTransport',
    'zmq': 'tractor.transports.zmq:ZMQTransport',
}, UnknownTransport, extras={'nng': 'nng', 'zmq': 'zmq'})


def register_transport(name: str, factory) -> None:
    """Make ``factory()`` (a Transport class or callable, or a
    ``"module:attr"`` string) available as ``name``."""
    _registry.register(name, factory)


def available_transports() -> list[str]:
    """Names of the transports that can be used here (their backend
    library imports)."""
    return _registry.available()


def get_transport(name: str) -> Transport:
    """The transport registered as ``name`` (``'tcp'``, ``'uds'``,
    ``'nng'``, ``'zmq'``, or ``'nng+ipc'``-style with a scheme suffix,
    which is ignored here)."""
    return _registry.get(name.partition('+')[0])
