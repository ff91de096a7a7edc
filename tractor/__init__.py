"""tractor: structured concurrent "actors" over pluggable transports.

Users write trio code: :func:`run` starts a root actor, :func:`open_nursery`
spawns actors (processes) that run functions for each other through
:class:`Portal` objects. See README.rst.
"""
from ._actor import Actor
from ._arbiter import Arbiter
from ._channel import Channel
from ._debug import breakpoint, pause
from ._discovery import find_actor, get_arbiter, wait_for_actor
from ._exceptions import (
    ActorFailure,
    ContextCancelled,
    HandshakeError,
    MessageTooLarge,
    ModuleNotExposed,
    NoResult,
    NoSuchFunction,
    RemoteActorError,
)
from ._portal import Portal, open_portal
from ._root import open_root_actor, run, run_arbiter, run_daemon
from ._state import current_actor
from ._strategies import one_for_all, one_for_one, rest_for_one
from ._streaming import Context, MsgStream, context, stream
from ._supervise import ActorNursery, open_nursery
from ._tls import TLSConfig, TLSError
from ._keyfiles import KeyFileError
from .codecs import EncodeError, DecodeError, UnknownCodec
from .transports import TransportClosed, UnknownTransport
from . import log

__version__ = '0.2.0.dev0'

__all__ = [
    'Actor', 'ActorFailure', 'ActorNursery', 'Arbiter', 'Channel',
    'Context', 'ContextCancelled', 'DecodeError', 'EncodeError',
    'HandshakeError', 'KeyFileError', 'MessageTooLarge', 'ModuleNotExposed', 'MsgStream',
    'NoResult', 'NoSuchFunction', 'Portal', 'RemoteActorError',
    'TLSConfig', 'TLSError', 'TransportClosed', 'UnknownCodec',
    'UnknownTransport', 'breakpoint', 'context', 'current_actor',
    'find_actor', 'get_arbiter', 'log', 'open_nursery', 'open_portal',
    'one_for_all', 'one_for_one', 'open_root_actor', 'pause',
    'rest_for_one', 'run', 'run_arbiter', 'run_daemon', 'stream',
    'wait_for_actor',
]
