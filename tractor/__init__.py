"""tractor: structured concurrent "actors" over pluggable transports."""
from ._channel import Channel, HandshakeError
from .transports import TransportClosed

__version__ = '0.2.0.dev0'
