"""Pluggable transports: how frames of bytes get from one actor to another.

See :mod:`tractor.transports._base` for the contract a transport fulfils
and :mod:`tractor.transports._addr` for the address format.
"""
from ._base import (
    DEFAULT_MAX_FRAME,
    Frame,
    FrameTooLarge,
    HandshakeError,
    ReceivesMany,
    SendsMany,
    TakesParts,
    Listener,
    FrameStream,
    Transport,
    TransportClosed,
    TransportError,
    UnknownTransport,
    frame_size,
    optional_method,
    takes_parts,
)
from ._addr import Addr, AddressError, runtime_dir
from ._registry import (
    ENTRY_POINT_GROUP,
    available_transports,
    get_transport,
    register_transport,
)


async def connect(addr, transport: str = 'tcp') -> FrameStream:
    """Open a FrameStream to ``addr`` (string, Addr or ``(host, port)`` read
    against ``transport``)."""
    a = Addr.parse(addr, transport)
    return await get_transport(a.transport).connect(a)


async def listen(addr, transport: str = 'tcp') -> Listener:
    """Listen on ``addr``; ``listener.addr`` is the bound address."""
    a = Addr.parse(addr, transport)
    return await get_transport(a.transport).listen(a)


__all__ = [
    'Addr', 'AddressError', 'DEFAULT_MAX_FRAME', 'ENTRY_POINT_GROUP',
    'Frame', 'FrameTooLarge', 'HandshakeError', 'Listener', 'FrameStream',
    'ReceivesMany', 'SendsMany', 'TakesParts', 'Transport',
    'TransportClosed',
    'TransportError', 'UnknownTransport', 'available_transports', 'connect',
    'frame_size', 'optional_method', 'takes_parts',
    'get_transport', 'listen', 'register_transport', 'runtime_dir',
]
