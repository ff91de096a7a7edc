"""Errors that cross process boundaries.

Every error class that an actor may report to another lives here (or in
the transport and codec packages, for theirs), so that the receiving side
can name it: ``RemoteActorError.type`` is looked up by name in
:func:`_lookup_type`, and a class it cannot find leaves ``.type`` at
``None``.

The wire format of an error is a dict (see :func:`pack_error`)::

    {'type': name,          # what the sending actor raised
     'msg': text,           # the original error's message
     'tb': text,            # the original error's traceback
     'uid': [name, uuid],   # the sending actor
     'src_type': name,      # the original error's type (relays keep it)
     'relay': [uid, ...]}   # every actor it crossed, innermost first

``src_type`` and ``relay`` are newer: an error from a peer without them
reads as raised by that peer, never as a malformed message.
"""
from __future__ import annotations

import bdb
import builtins
import sys
import traceback
from typing import TYPE_CHECKING, Any, Iterator, Optional

import trio

from .codecs import CodecError, DecodeError, EncodeError, UnknownCodec
from .transports import (
    FrameTooLarge,
    HandshakeError,
    TransportClosed,
    TransportError,
    UnknownTransport,
)


if sys.version_info < (3, 11):  # pragma: no cover - 3.10
    from exceptiongroup import BaseExceptionGroup
else:
    BaseExceptionGroup = builtins.BaseExceptionGroup

class RemoteActorError(Exception):
    """An error raised in another actor, re-raised here.

    ``.type`` is the class of what the actor we called raised when it is a
    builtin or a tractor error (else ``None``), ``.type_name`` its name
    either way. When that actor was only relaying an error from further
    down the tree, ``.type`` is ``RemoteActorError`` (as a local
    ``except`` would have seen it there), and the original error is
    described by ``.src_type`` / ``.src_type_name``; ``.relay_path`` lists
    the uids of the actors the error crossed, the one that raised it
    first and the one we called last. ``.actor_uid`` is the actor we
    called, ``.remote_traceback`` the original error's traceback, and the
    message carries both.
    """

    def __init__(self, message: str, type_name: str = 'Exception',
                 actor_uid: Optional[tuple] = None, tb: str = '', *,
                 src_type_name: str | None = None,
                 relay_path: Optional[list] = None,
                 src_msg: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.type = _lookup_type(type_name)
        self.actor_uid = tuple(actor_uid) if actor_uid else None
        self.remote_traceback = tb
        self.src_type_name = src_type_name or type_name
        self.src_type = (self.type if self.src_type_name == type_name
                         else _lookup_type(self.src_type_name))
        if relay_path is None:
            relay_path = [self.actor_uid] if self.actor_uid else []
        self.relay_path = [tuple(u) for u in relay_path]
        # the original error's own message, relayed as it is
        self._src_msg = message if src_msg is None else src_msg


class ContextCancelled(RemoteActorError):
    """The remote side of a stream or context was cancelled before it
    finished (by its actor's cancellation, or by a request of its
    caller): raised on the other side instead of a result."""


class ActorFailure(RemoteActorError):
    """A child actor died without reporting an error: killed, crashed, or
    unreachable."""


class ModuleNotExposed(ModuleNotFoundError):
    """A call named a module the actor does not serve: add it to the
    actor's ``rpc_module_paths``."""


class NoSuchFunction(AttributeError):
    """A call named a function the exposed module does not have. An
    ``AttributeError``, so ``except AttributeError`` catches it where it
    is raised, as it would a missing attribute of a local module."""


class NoResult(RuntimeError):
    """``Portal.result()`` on an actor that runs no main function."""


class MessageTooLarge(EncodeError, ValueError):
    """A message whose encoding is larger than the transport's
    ``max_frame``: refused before anything is sent, so the channel stays
    usable. Raised where the message was sent: in the caller for an
    argument, in the callee for a result (which the caller then gets as a
    ``RemoteActorError`` of this type). An ``EncodeError`` (the value
    cannot be sent as it is) and a ``ValueError`` (it is too big), never
    a ``TransportClosed``: nothing is wrong with the connection. (Compare
    ``FrameTooLarge``: a peer *announced* an oversized frame, and the
    connection is dropped.)"""


#: the non-builtin errors an actor may report, by name
_TYPES = {cls.__name__: cls for cls in (
    RemoteActorError, ActorFailure, ContextCancelled, ModuleNotExposed,
    NoSuchFunction,
    NoResult, HandshakeError, MessageTooLarge,
    TransportError, TransportClosed, FrameTooLarge, UnknownTransport,
    CodecError, EncodeError, DecodeError, UnknownCodec,
    trio.TooSlowError,
    # ``q`` at a debugger prompt (see _debug)
    bdb.BdbQuit,
)}


def _lookup_type(name: str) -> Optional[type]:
    t = getattr(builtins, name, None)
    if isinstance(t, type) and issubclass(t, BaseException):
        return t
    return _TYPES.get(name)


#: characters of an error's message, and of its traceback, that are sent
#: (the start of the message, the end of the traceback): an error report
#: must always fit in a frame, or the error it reports is lost
MSG_MAX = 16 * 1024
TB_MAX = 32 * 1024


#: characters of one traceback line that are sent (a long error message
#: fills the last line of its traceback)
TB_LINE_MAX = 2 * 1024


def _cut(text: str, limit: int) -> str:
    """``text`` without what is past ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    return f'{text[:limit]} [... {len(text) - limit} characters cut ...]'


def _cut_tb(tb: str) -> str:
    """A traceback with every line and the whole cut to size: the end,
    where the error was raised, is what is kept."""
    if len(tb) <= TB_MAX:
        return tb
    lines = [_cut(line.rstrip('\n'), TB_LINE_MAX) + '\n'
             for line in tb.splitlines()]
    tb = ''.join(lines)
    if len(tb) <= TB_MAX:
        return tb
    return (f'[... {len(tb) - TB_MAX} characters cut ...]\n'
            + tb[-TB_MAX:])


def pack_error(exc: BaseException, uid: tuple) -> dict:
    """An error as a codec-safe message body (see the module docstring).
    A ``RemoteActorError`` being passed on keeps its original type,
    message and traceback and adds ``uid`` to its relay path."""
    if isinstance(exc, RemoteActorError):
        path = [list(u) for u in exc.relay_path]
        return {'type': type(exc).__name__,
                'msg': _cut(exc._src_msg, MSG_MAX),
                'tb': _cut_tb(exc.remote_traceback),
                'uid': list(uid), 'src_type': exc.src_type_name,
                'relay': path + [list(uid)]}
    tname = type(exc).__name__
    tb = ''.join(traceback.format_exception(type(exc), exc,
                                            exc.__traceback__))
    return {'type': tname, 'msg': _cut(str(exc), MSG_MAX),
            'tb': _cut_tb(tb), 'uid': list(uid),
            'src_type': tname, 'relay': [list(uid)]}


def unpack_error(err: dict, chan: Any = None) -> RemoteActorError:
    """The ``RemoteActorError`` for a packed error that came over
    ``chan``: always that class, whatever the remote type (``.type``
    says), as a remote ``ValueError`` is not a local one."""
    try:
        tname = str(err.get('type', 'Exception'))
        uid = err.get('uid') or (chan.uid if chan else None)
        tb = str(err.get('tb', ''))
        msg = str(err.get('msg', ''))
        src = str(err.get('src_type') or tname)
        relay = [tuple(u) for u in (err.get('relay') or [])] or (
            [tuple(uid)] if uid else [])
    except (AttributeError, TypeError):
        return RemoteActorError(f'malformed error message {err!r}')
    where = f'raised in actor {relay[0] if relay else "?"}'
    if len(relay) > 1:
        where += ', relayed by ' + ', '.join(map(str, relay[1:]))
    text = f'{src}: {msg}\n--- {where} ---\n{tb}'
    return RemoteActorError(text, tname, uid, tb, src_type_name=src,
                            relay_path=relay, src_msg=msg)


def collapse(eg: BaseExceptionGroup) -> BaseException:
    """One error raises as itself; several stay a group. Cancellations
    and duplicates (one error seen through two tasks) are dropped. Used
    where a nursery of the runtime's own would otherwise wrap a user's
    error in a group the user never asked for."""
    seen: list[BaseException] = []
    for exc in _leaves(eg):
        if isinstance(exc, KeyboardInterrupt):
            return exc
        if isinstance(exc, trio.Cancelled):
            continue
        if not any(exc is s for s in seen):
            seen.append(exc)
    if not seen:
        return eg
    if len(seen) == 1:
        return seen[0]
    return BaseExceptionGroup('several actors failed', seen)


def _leaves(eg: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in eg.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
