"""``tractor.run()``: start the root actor of a tree."""
from __future__ import annotations

import os
import signal
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from . import _auth, _debug, _malloc, _spawn, _state, _tls
from ._actor import Actor
from ._arbiter import Arbiter
from ._channel import Channel, HandshakeError
from ._exceptions import BaseExceptionGroup, collapse
from .codecs import get_codec
from .log import get_console_log, get_logger
from .transports import (
    DEFAULT_MAX_FRAME,
    Addr,
    AddressError,
    TransportClosed,
    get_transport,
)
from .transports._addr import default_bind_toward

log = get_logger(__name__)

DEFAULT_ARBITER = ('127.0.0.1', 1616)


async def _bind_root(*, name, arbiter_addr, transport, codec, secret,
                     bind_addr, **common):
    """The root actor and what it listens on: the first root to bind the
    arbiter address becomes the arbiter (and keeps that listener); a busy
    address means one is already there, which is checked."""
    arb = Addr.parse(arbiter_addr, transport)
    tr = get_transport(arb.transport)
    listener = None
    try:
        listener = await tr.listen(arb)
    except Exception as err:  # each backend says "address in use" its way
        bind_err = err
    common.update(arbiter_addr=arb, transport=transport, codec=codec,
                  secret=secret)
    if listener is not None:
        # keep the bound listener: closing it and binding again would let
        # another root take the address in between (and some transports,
        # zmq, unbind asynchronously, so an immediate re-bind fails)
        return Arbiter(name or 'arbiter', **common), arb, listener
    # check somebody really answers there, for a clear error if not
    try:
        with trio.fail_after(5):
            chan = await Channel.connect(
                arb, codec=codec, uid=('probe', ''), secret=secret)
        await chan.aclose()
    except HandshakeError as err:
        # somebody is there, but not one of ours: say so, not "nobody"
        raise HandshakeError(
            f'the arbiter at {arb} refused this program: {err}') from err
    except (TransportClosed, OSError, trio.TooSlowError) as err:
        raise RuntimeError(
            f'cannot bind the arbiter address {arb} ({bind_err}) and no '
            f'arbiter answers there ({err}); pick another '
            f'arbiter_addr') from err
    # by default listen where the arbiter can reach us: on a program
    # joining a remote arbiter, that is not the arbiter's own host
    accept = (Addr.parse(bind_addr, transport) if bind_addr
              else default_bind_toward(arb))
    return Actor(name or 'root', **common), accept, None


def _network_defaults(arbiter_addr, transport: str | None,
                      codec: str | None) -> tuple:
    """``(arbiter_addr, transport, codec)`` with what was not given taken
    from the environment, else the defaults; a misspelt transport or codec
    fails here, with the list of choices. Shared by the runtime and the
    ``tractor`` command line, so both find the same arbiter."""
    transport = transport or os.environ.get('TRACTOR_TRANSPORT') or 'tcp'
    if arbiter_addr is None:
        arbiter_addr = _env_arbiter_addr() or DEFAULT_ARBITER
    codec = codec or os.environ.get('TRACTOR_CODEC') or 'msgpack'
    get_transport(transport)
    get_codec(codec)
    return arbiter_addr, transport, codec


def _root_config(*, arbiter_addr, transport, codec, start_method, loglevel,
                 secret, rpc_module_paths, max_frame, debug_mode, tls,
                 **rest) -> tuple[dict, int, _tls.TLSConfig | None]:
    """Options with the environment's defaults filled in, checked before
    anything is bound, and the process-wide settings they imply; with the
    tree's ``max_frame`` beside them (a transport setting, not the
    actor's)."""
    transport, tls = _tls.split_transport(
        transport or os.environ.get('TRACTOR_TRANSPORT') or 'tcp', tls)
    tls = _tls.from_option(tls)
    arbiter_addr, transport, codec = _network_defaults(
        arbiter_addr, transport, codec)
    limit = _max_frame(max_frame)
    if debug_mode is None:
        debug_mode = _debug.env_debug_mode()
    method = _spawn.check_start_method(start_method)
    _malloc.tune()
    _state._spawn_method = method
    if loglevel:
        get_console_log(loglevel)
    if secret is not None:
        _auth.set_secret(secret)
    _debug.configure_root(bool(debug_mode))
    return dict(rest, arbiter_addr=arbiter_addr, transport=transport,
                codec=codec, loglevel=loglevel,
                secret=_auth.get_secret(secret),
                rpc_module_paths=list(rpc_module_paths)), limit, tls


@asynccontextmanager
async def open_root_actor(
    *,
    name: str | None = None,
    arbiter_addr=None,
    start_method: str | None = None,
    loglevel: str | None = None,
    transport: str | None = None,
    codec: str | None = None,
    rpc_module_paths=(),
    statespace: dict | None = None,
    secret: bytes | str | None = None,
    bind_addr=None,
    advertise_addr=None,
    heartbeat: tuple | None = None,
    max_frame: int | None = None,
    debug_mode: bool | None = None,
    tls: 'bool | _tls.TLSConfig | None' = None,
) -> AsyncIterator[Actor]:
    """Run the root actor of a tree around the block, inside the trio
    program (or pytest-trio test) that is already running::

        async with tractor.open_root_actor(transport='nng') as actor:
            async with tractor.open_nursery() as n:
                ...

    The options are :func:`run`'s. Leaving the block -- normally, by an
    error or by a cancel -- cancels what the actor serves, tears down the
    actors it started and releases its listener, so the same process may
    open another root afterwards (one at a time).
    """
    if _state._current_actor is not None:
        raise RuntimeError(
            'a root actor is already running in this process: use it (call '
            'tractor APIs directly) instead of opening a second one')
    cfg, limit, tls_config = _root_config(
        name=name, arbiter_addr=arbiter_addr, start_method=start_method,
        loglevel=loglevel, transport=transport, codec=codec,
        rpc_module_paths=rpc_module_paths, statespace=statespace,
        secret=secret, bind_addr=bind_addr, advertise_addr=advertise_addr,
        heartbeat=heartbeat, max_frame=max_frame, debug_mode=debug_mode,
        tls=tls)
    # the transport instance is shared by the whole process: its limit and
    # TLS keys are this tree's while the root runs (children get them in
    # their config) and the previous ones again after
    tr: Any = get_transport(cfg['transport'])  # (.tls where it has TLS)
    before_tls = _tls.install(tr, tls_config)
    before, tr.max_frame = tr.max_frame, limit
    try:
        actor, accept, listener = await _bind_root(**cfg)
        _state._set_current_actor(actor)
        async with actor.serving(accept, listener=listener):
            actor.load_modules()
            await actor.register()
            try:
                yield actor
            except BaseException as err:
                if _debug.enabled():
                    await _debug.post_mortem_of(actor, err)
                raise
    finally:
        tr.max_frame = before
        if tls_config is not None or before_tls is not None:
            tr.tls = before_tls
        _state._set_current_actor(None)
        _debug.reset()


async def _run_main(async_fn, args, kwargs, options):
    async with open_root_actor(**options):
        return await async_fn(*args, **kwargs)


def run(
    async_fn,
    *args,
    name: str | None = None,
    arbiter_addr=None,
    start_method: str | None = None,
    loglevel: str | None = None,
    transport: str | None = None,
    codec: str | None = None,
    rpc_module_paths=(),
    statespace: dict | None = None,
    secret: bytes | str | None = None,
    bind_addr=None,
    advertise_addr=None,
    heartbeat: tuple | None = None,
    max_frame: int | None = None,
    debug_mode: bool | None = None,
    tls: 'bool | _tls.TLSConfig | None' = None,
    **kwargs,
) -> Any:
    """Run ``async_fn(*args, **kwargs)`` in a new root actor and return its
    result (or raise its error): ``trio.run`` of :func:`open_root_actor`
    around it.

    If no arbiter answers at ``arbiter_addr`` the root becomes the arbiter.
    When it is not given it comes from ``$TRACTOR_ARBITER_ADDR``
    (``host:port`` or an address string like ``tcp://127.0.0.1:1616``),
    else ``('127.0.0.1', 1616)``.
    ``transport`` (``'tcp'``, ``'uds'``, ``'nng'``, ``'zmq'``, optionally
    with a scheme: ``'nng+ipc'``) and ``codec`` (``'msgpack'``, ``'json'``)
    apply to every actor of the tree; when not given they come from
    ``$TRACTOR_TRANSPORT`` and ``$TRACTOR_CODEC``, else ``tcp`` and
    ``msgpack``, so an unchanged program can be run over any transport.
    ``heartbeat=(interval, timeout)``
    tunes how fast a silent peer is declared dead. ``max_frame`` is the
    largest message, in encoded bytes, that any actor of the tree sends
    or accepts (else ``$TRACTOR_MAX_FRAME``, else 64 MiB); a larger one
    raises :class:`MessageTooLarge` where it is sent.

    ``debug_mode=True`` (else ``$TRACTOR_DEBUG=1``) turns on the
    multi-process debugger for the whole tree: ``await
    tractor.breakpoint()`` and ``breakpoint()`` stop in any actor with a
    pdb prompt on this terminal, and an error raised in an actor opens pdb
    post-mortem where it was raised (see :mod:`tractor._debug`).
    ``tls=True`` (else ``$TRACTOR_TLS=1``) encrypts and mutually
    authenticates every channel of the tree on tcp (TLS 1.3), nng (TLS)
    and zmq (CURVE) with a per-user cluster CA created on first use;
    ``tls=tractor.TLSConfig(ca=..., cert=..., key=...)`` brings your own.
    ``transport='tcp+tls'`` (``'nng+tls'``, ``'zmq+curve'``) says the
    same. uds and ``ipc://`` addresses stay on the host and are left as
    they are. See :mod:`tractor._tls`.

    Several hosts: ``arbiter_addr=('10.0.0.1', 1616)`` joins (or, on
    10.0.0.1, becomes) the arbiter there. A root that joins listens by
    default on this host's address on the route to the arbiter;
    ``bind_addr=('0.0.0.0', 0)`` listens on every interface and
    ``advertise_addr='203.0.113.7'`` (a host, ``host:port`` or
    ``(host, port)``; else ``$TRACTOR_ADVERTISE_HOST``) says what address
    to register, so other hosts can reach it. A wildcard is never
    advertised, and children bind the way their parent did.
    """
    caller = sys._getframe(1).f_globals.get('__name__')
    if caller == '__mp_main__':
        # a child actor is importing the parent's script: the top-level
        # tractor.run() call there must not start another tree
        return None
    if _state._current_actor is not None:
        raise RuntimeError(
            'tractor.run() is already running in this process: call async '
            'functions directly instead of starting a second root actor')
    if not callable(async_fn):
        raise TypeError(
            f'tractor.run() needs an async function to run, got '
            f'{async_fn!r}')
    options = dict(
        name=name, arbiter_addr=arbiter_addr, start_method=start_method,
        loglevel=loglevel, transport=transport, codec=codec,
        rpc_module_paths=rpc_module_paths, statespace=statespace,
        secret=secret, bind_addr=bind_addr, advertise_addr=advertise_addr,
        heartbeat=heartbeat, max_frame=max_frame, debug_mode=debug_mode,
        tls=tls)
    try:
        return trio.run(_run_main, async_fn, args, kwargs, options)
    except BaseExceptionGroup as eg:
        exc = collapse(eg)
        if exc is eg:
            raise
        raise exc from None


#: the bounds of max_frame: room for any runtime message (an error report
#: is up to ~200 KB, see _exceptions.MSG_MAX), and the largest frame the
#: tcp transport's 4-byte length prefix can announce
_MIN_FRAME, _MAX_FRAME = 1024 * 1024, 2**32 - 1


def _max_frame(value) -> int:
    """``max_frame`` as given to :func:`run`, else ``$TRACTOR_MAX_FRAME``,
    else the transports' default, checked."""
    where = 'max_frame'
    if value is None:
        env = os.environ.get('TRACTOR_MAX_FRAME', '').strip()
        if not env:
            return DEFAULT_MAX_FRAME
        where = '$TRACTOR_MAX_FRAME'
        try:
            value = int(env)
        except ValueError:
            raise ValueError(
                f'$TRACTOR_MAX_FRAME={env!r}: expected a number of bytes, '
                f'like {DEFAULT_MAX_FRAME}') from None
    if (not isinstance(value, int) or isinstance(value, bool)
            or not _MIN_FRAME <= value <= _MAX_FRAME):
        raise ValueError(
            f'{where}={value!r}: expected a number of bytes from '
            f'{_MIN_FRAME} to {_MAX_FRAME} (default {DEFAULT_MAX_FRAME})')
    return value


def _env_arbiter_addr():
    """``$TRACTOR_ARBITER_ADDR`` as an address: a string with a scheme
    as is, ``host:port`` as a ``(host, port)`` pair read against the
    transport in force."""
    value = os.environ.get('TRACTOR_ARBITER_ADDR', '').strip()
    if not value:
        return None
    return parse_arbiter_addr(value, '$TRACTOR_ARBITER_ADDR=')


def parse_arbiter_addr(value: str, where: str = ''):
    """An arbiter address as a person writes it: a string with a scheme
    (``tcp://10.0.0.1:1616``, ``ipc:///path.sock``) as is, ``host:port``
    as a ``(host, port)`` pair read against the transport in force. A bad
    one raises :class:`~tractor.transports.AddressError` naming it, after
    ``where`` (the option or variable it came from)."""
    value = value.strip()
    if '://' in value:
        return value
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit():
        raise AddressError(
            f'{where}{value!r}: expected host:port or an address like '
            f'tcp://127.0.0.1:1616')
    return (host.strip('[]') or '127.0.0.1', int(port))


def run_daemon(rpc_module_paths, **kwargs) -> None:
    """Run an actor that serves ``rpc_module_paths`` until cancelled
    (Ctrl-C)."""
    return run(trio.sleep_forever, rpc_module_paths=rpc_module_paths,
               **kwargs)


def run_arbiter(arbiter_addr=None, **options) -> None:
    """Run a standalone arbiter on ``arbiter_addr`` -- the registry the
    programs of a cluster find each other's actors in -- until Ctrl-C or
    SIGTERM, then return.

    It prints ``arbiter ready at ADDRESS`` once it listens (the address
    others dial; ``(listening on ...)`` follows when it is bound to a
    wildcard). Raises :class:`RuntimeError` if an arbiter already answers
    on that address. ``options`` are :func:`run`'s. This is what
    ``tractor arbiter`` runs.
    """
    run(_serve_as_arbiter, name=options.pop('name', 'arbiter'),
        arbiter_addr=arbiter_addr, **options)


async def _serve_as_arbiter() -> None:
    actor = _state.current_actor()
    if not actor.is_arbiter:
        raise RuntimeError(
            f'an arbiter is already running at {actor.arbiter_addr}; stop '
            f'it first, or pick another address')
    where = ('' if actor.bind_addr == actor.accept_addr
             else f' (listening on {actor.bind_addr})')
    print(f'arbiter ready at {actor.accept_addr}{where}', flush=True)
    # both signals end the arbiter normally: the listener is closed (an
    # ipc socket file removed) rather than the process killed mid-way
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
        async for _ in sigs:
            return
