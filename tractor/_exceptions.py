"""Errors that cross process boundaries."""
from __future__ import annotations

import builtins
import sys
import traceback

import trio

from .codecs import DecodeError, EncodeError
from .transports import TransportClosed

if sys.version_info < (3, 11):  # pragma: no cover - 3.10
    from exceptiongroup import BaseExceptionGroup
else:
    BaseExceptionGroup = builtins.BaseExceptionGroup


class RemoteActorError(Exception):
    """An error raised in another actor, re-raised here.

    ``.type`` is the remote exception's class when it is a builtin or a
    tractor error (else ``None``), ``.type_name`` its name either way, and
    the message carries the remote traceback.
    """

    def __init__(self, message: str, type_name: str = 'Exception',
                 actor_uid=None, tb: str = '') -> None:
        super().__init__(message)
        self.type_name = type_name
        self.type = _lookup_type(type_name)
        self.actor_uid = tuple(actor_uid) if actor_uid else None
        self.remote_traceback = tb


class ContextCancelled(RemoteActorError):
    """The remote side of a stream or context was cancelled before it
    finished (by its actor's cancellation, or by a request of its
    caller): raised on the other side instead of a result."""


class ModuleNotExposed(ModuleNotFoundError):
    """A call named a module the actor does not serve: add it to the
    actor's ``rpc_module_paths``."""


class NoSuchFunction(AttributeError):
    """A call named a function the exposed module does not have."""


class NoResult(RuntimeError):
    """``Portal.result()`` on an actor that runs no main function."""


def _lookup_type(name: str):
    t = getattr(builtins, name, None)
    if isinstance(t, type) and issubclass(t, BaseException):
        return t
    return {'RemoteActorError': RemoteActorError,
            'ContextCancelled': ContextCancelled,
            'ModuleNotExposed': ModuleNotExposed,
            'NoSuchFunction': NoSuchFunction,
            'TransportClosed': TransportClosed,
            'EncodeError': EncodeError,
            'DecodeError': DecodeError}.get(name)


def pack_error(exc: BaseException, uid) -> dict:
    """An error as a codec-safe message body."""
    if isinstance(exc, RemoteActorError):
        # relay: keep the original type and traceback, say where it passed
        return {'type': exc.type_name, 'msg': str(exc),
                'tb': exc.remote_traceback, 'uid': list(uid)}
    tb = ''.join(traceback.format_exception(type(exc), exc,
                                            exc.__traceback__))
    return {'type': type(exc).__name__, 'msg': str(exc), 'tb': tb,
            'uid': list(uid)}


def unpack_error(err: dict, chan=None) -> RemoteActorError:
    try:
        tname = str(err.get('type', 'Exception'))
        uid = err.get('uid') or (chan.uid if chan else None)
        tb = str(err.get('tb', ''))
        msg = str(err.get('msg', ''))
    except AttributeError:
        return RemoteActorError(f'malformed error message {err!r}')
    text = (f'{tname}: {msg}\n'
            f'--- raised in actor {tuple(uid) if uid else "?"} ---\n{tb}')
    return RemoteActorError(text, tname, uid, tb)


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


def _leaves(eg):
    for exc in eg.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
