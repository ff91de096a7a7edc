"""The actor: one process's trio task tree, serving RPC over Channels.

Message protocol (every message is a dict with string keys, so it reads the
same under every codec):

caller -> callee
    ``{'cmd': 'run', 'cid': n, 'ns': module, 'func': name, 'kw': {...}}``
    ``{'cmd': 'cancel', 'cid': n}``  stop the task serving call ``n``
    ``{'cmd': 'credit', 'cid': n, 'n': k}``  the stream's reader took ``k``
callee -> caller
    ``{'cid': n, 'return': value}``  a function's result
    ``{'cid': n, 'stream': 1}``, then ``{'cid': n, 'yield': v}``...,
    then ``{'cid': n, 'stop': 1}``  a stream
    ``{'cid': n, 'error': {...}}``  see :mod:`tractor._exceptions`

Call ids are unique within the calling process, so responses are routed by
``cid`` alone. Streams are flow-controlled with credits: a producer sends at
most ``STREAM_WINDOW`` items (and ``STREAM_WINDOW_BYTES``) ahead of what
its reader consumed, so a slow reader costs bounded memory and never stalls
other calls on the channel: the reader sends ``credit`` after every half
window of items or bytes (it knows each frame's size), and a producer that
stalls anyway sends ``{'cid': n, 'ackreq': 1}`` to ask for credit for whatever the
reader has consumed so far.
"""
from __future__ import annotations

import contextvars
import importlib
import inspect
import itertools
import sys
import types
import uuid
from collections import deque
from typing import Any, Optional

import trio

from . import _liveness, _state
from ._channel import Channel, HandshakeError
from ._exceptions import (
    ModuleNotExposed,
    NoSuchFunction,
    RemoteActorError,
    pack_error,
    unpack_error,
)
from .codecs import CodecError
from .log import get_logger
from .transports import Addr, TransportClosed, get_transport
from .transports._addr import advertised_addr

log = get_logger(__name__)

#: items a stream's producer may run ahead of its reader...
STREAM_WINDOW = 4096
#: ...and encoded bytes: whichever limit is reached first
STREAM_WINDOW_BYTES = 8 * 1024 * 1024
#: the reader grants credit after consuming this many items or bytes:
#: half a window, so the producer never has to stop while the reader
#: keeps up, and credit messages stay rare (each one wakes the producer's
#: side of the connection)
_CREDIT_BATCH = STREAM_WINDOW // 2
_CREDIT_BYTES = STREAM_WINDOW_BYTES // 2

_cid_counter = itertools.count(1)


class MsgQueue:
    """An unbounded FIFO between the channel's reader loop and one caller.
    Bounded in practice: a call gets one reply, a stream at most
    ``STREAM_WINDOW`` items ahead thanks to credits."""

    __slots__ = ('_items', '_waiter', 'chan', 'closed')

    def __init__(self, chan: Channel) -> None:
        self._items: deque = deque()
        self._waiter: Optional[trio.Event] = None
        self.chan = chan
        self.closed = False

    def put(self, msg) -> None:
        self._items.append(msg)
        w = self._waiter
        if w is not None:
            self._waiter = None
            w.set()

    async def get(self):
        items = self._items
        if items:
            # a cancel point even when a message is ready: a reader whose
            # stream is never empty must still see its cancel scope
            await trio.lowlevel.checkpoint_if_cancelled()
        while not items:
            ev = self._waiter = trio.Event()
            await ev.wait()
        return items.popleft()


class _RpcTask:
    """The callee's record of one running call: its cancel scope and, for a
    stream, what is in flight to the reader (flow control)."""

    __slots__ = ('scope', 'out_items', 'out_bytes', '_sizes', '_credit_ev',
                 '_asked')

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.out_items = 0
        self.out_bytes = 0
        self._sizes: deque = deque()
        self._credit_ev: Optional[trio.Event] = None
        self._asked = False

    def sent(self, nbytes: int) -> None:
        self.out_items += 1
        self.out_bytes += nbytes
        self._sizes.append(nbytes)

    def grant(self, n: int) -> None:
        """The reader consumed ``n`` more items."""
        sizes = self._sizes
        n = min(n, len(sizes))
        freed = 0
        for _ in range(n):
            freed += sizes.popleft()
        self.out_items -= n
        self.out_bytes -= freed
        self._asked = False
        ev = self._credit_ev
        if ev is not None:
            self._credit_ev = None
            ev.set()

    async def wait_window(self, chan: Channel, cid: int) -> None:
        """Wait while ``STREAM_WINDOW`` items or ``STREAM_WINDOW_BYTES``
        are unconsumed. The reader grants credit every ``_CREDIT_BATCH``
        items; a producer stalled earlier (large items) asks it to
        acknowledge what it has consumed so far."""
        while (self.out_items >= STREAM_WINDOW
               or self.out_bytes >= STREAM_WINDOW_BYTES):
            if not self._asked:
                self._asked = True
                await chan.send_buffered({'cid': cid, 'ackreq': 1})
            ev = self._credit_ev
            if ev is None:
                ev = self._credit_ev = trio.Event()
            await ev.wait()


def _is_stream_func(fn) -> bool:
    return getattr(fn, '_tractor_stream_function', False)


_SYNC, _ASYNC, _AGEN, _STREAM = 'sync', 'async', 'agen', 'stream'


def _func_kind(fn) -> str:
    """How a function is served; computed once per function (the inspect
    checks cost more than a small call)."""
    if inspect.isasyncgenfunction(fn):
        return _AGEN
    if _is_stream_func(fn):
        return _STREAM
    if inspect.iscoroutinefunction(fn):
        return _ASYNC
    return _SYNC


class _ActorLifecycle:
    """Start-up and teardown, mixed into :class:`Actor` below."""

    async def _async_main(
        self,
        accept_addr: Addr,
        *,
        parent_addr=None,
        ready_cid=None,
        main=None,
        listener=None,
    ):
        """Serve until cancelled (a child) or until ``main`` returns (the
        root); returns ``main()``'s result. ``listener``, if given, is
        already bound to ``accept_addr`` and is served instead of a new
        one."""
        _state._set_current_actor(self)
        result = None
        self._listener = listener
        try:
            async with trio.open_nursery() as service_n:
                self._service_n = service_n
                self._cancel_scope = service_n.cancel_scope
                if self._listener is None:
                    transport = get_transport(accept_addr.transport)
                    self._listener = await transport.listen(accept_addr)
                # listen on bind_addr, give others accept_addr: never a
                # wildcard like 0.0.0.0 (see transports._addr)
                self.bind_addr = self._listener.addr
                self.accept_addr = advertised_addr(
                    self.bind_addr, self.advertise_addr, self.arbiter_addr)
                # answer liveness probes while user code holds the loop
                # (before any hello goes out; see tractor._liveness)
                await service_n.start(_liveness.serve, self.bind_addr)
                service_n.start_soon(self._serve_listener, self._listener)
                if parent_addr is not None:
                    self._parent_chan = await self.connect(parent_addr)
                    try:
                        self.load_modules()
                    except Exception as err:
                        # the parent raises this at spawn time
                        await self._parent_chan.send(
                            {'cid': ready_cid,
                             'error': pack_error(err, self.uid)})
                        service_n.cancel_scope.cancel()
                        return None
                    await self._parent_chan.send(
                        {'cid': ready_cid, 'return': str(self.accept_addr)})
                else:
                    self.load_modules()
                await self._register()
                if main is not None:
                    try:
                        result = await main()
                    finally:
                        with trio.CancelScope(shield=True):
                            await self._unregister()
                        service_n.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if self._listener is not None:
                    await self._listener.aclose()
                await self._unregister()
        return result

    def _arbiter_is_parent(self) -> bool:
        return (self._parent_chan is not None and self.arbiter_addr is not None
                and str(self._parent_chan.raddr) == str(self.arbiter_addr))

    async def _call_arbiter(self, method: str, **kw):
        from ._portal import Portal
        if self._arbiter_is_parent() and self._parent_chan.connected:
            return await Portal(self._parent_chan, self).run('self', method,
                                                             **kw)
        # a bare request on a fresh channel: needs no message loop, so it
        # also works while this actor is tearing down
        chan = await Channel.connect(
            self.arbiter_addr, codec=self.codec, uid=self.uid,
            secret=self.secret)
        try:
            await chan.send({'cmd': 'run', 'cid': 0, 'ns': 'self',
                             'func': method, 'kw': kw})
            while True:
                msg = await chan.recv()
                if isinstance(msg, dict) and msg.get('cid') == 0:
                    break
            if 'error' in msg:
                raise unpack_error(msg['error'], chan)
            return msg.get('return')
        finally:
            with trio.CancelScope(shield=True):
                await chan.aclose()

    async def _register(self) -> None:
        if self.is_arbiter:
            await self.register_actor(self.uid, str(self.accept_addr))
            return
        if self.arbiter_addr is None:
            return
        if not self._arbiter_is_parent() and self._service_n is not None:
            # stay registered across arbiter restarts (see _registrar)
            from ._registrar import keep_registered
            await self._service_n.start(keep_registered, self)
            return
        try:
            with trio.fail_after(5):
                await self._call_arbiter(
                    'register_actor', uid=list(self.uid),
                    addr=str(self.accept_addr))
            self._registered = True
        except (TransportClosed, OSError, trio.TooSlowError,
                RemoteActorError) as err:
            log.warning('%s could not register with the arbiter at %s: %s',
                        self.uid, self.arbiter_addr, err)

    async def _unregister(self) -> None:
        if self._registrar_scope is not None:
            # leaving: the keeper must not register us again
            self._registrar_scope.cancel()
        if not self._registered:
            return
        self._registered = False
        with trio.move_on_after(2):
            try:
                await self._call_arbiter('unregister_actor',
                                         uid=list(self.uid))
            except (TransportClosed, OSError, RemoteActorError) as err:
                log.debug('unregister from %s failed: %s',
                          self.arbiter_addr, err)


class Actor(_ActorLifecycle):
    """A process-local runtime: a listener, channels to peers, and the RPC
    tasks they request."""

    is_arbiter = False
    #: methods reachable as ``portal.run('self', name)``
    _self_rpc = frozenset({'cancel', 'cancel_rpc_tasks', 'ping', 'info'})

    def __init__(
        self,
        name: str,
        *,
        rpc_module_paths=(),
        statespace: dict | None = None,
        uid: tuple | None = None,
        arbiter_addr=None,
        transport: str = 'tcp',
        codec: str = 'msgpack',
        loglevel: str | None = None,
        secret: bytes | None = None,
        heartbeat: tuple | None = None,
        advertise_addr=None,
    ) -> None:
        self.name = name
        self.uid = tuple(uid) if uid else (name, str(uuid.uuid4()))
        self.rpc_module_paths = list(rpc_module_paths)
        self.statespace = statespace if statespace is not None else {}
        self.transport = transport
        self.codec = codec
        self.loglevel = loglevel
        self.secret = secret
        self.heartbeat = heartbeat
        self.arbiter_addr: Optional[Addr] = (
            Addr.parse(arbiter_addr, transport) if arbiter_addr else None)
        #: what this actor listens on (may be a wildcard: 0.0.0.0:port)
        self.bind_addr: Optional[Addr] = None
        #: what it tells others, given as host, host:port or (host, port)
        self.advertise_addr = advertise_addr
        #: the address others reach it at (registered with the arbiter)
        self.accept_addr: Optional[Addr] = None
        self._mods: dict[str, Any] = {}
        self._peers: dict[tuple, list[Channel]] = {}
        self._peer_connected: dict[tuple, trio.Event] = {}
        self._waiting: dict[int, MsgQueue] = {}
        self._rpc_tasks: dict[tuple, _RpcTask] = {}
        self._func_cache: dict[tuple, tuple] = {}
        self._service_n: Optional[trio.Nursery] = None
        self._cancel_called = False
        self._cancel_scope: Optional[trio.CancelScope] = None
        self._parent_chan: Optional[Channel] = None
        self._listener = None
        self._registered = False
        self._registrar_scope: Optional[trio.CancelScope] = None

    def __repr__(self) -> str:
        return f'<{type(self).__name__} {self.uid} at {self.accept_addr}>'

    # -- modules -------------------------------------------------------
    def load_modules(self) -> None:
        """Import every module in ``rpc_module_paths`` now, so a missing or
        broken one fails at spawn time with its real error."""
        self.rpc_module_paths = [_main_alias(p) for p in self.rpc_module_paths]
        for path in self.rpc_module_paths:
            self._mods[path] = self._import(path)

    def _import(self, path: str):
        mod = sys.modules.get(path)
        if mod is None:
            mod = importlib.import_module(path)
        return mod

    def expose(self, path: str) -> None:
        path = _main_alias(path)
        if path not in self._mods:
            self._mods[path] = self._import(path)
            self.rpc_module_paths.append(path)

    def _get_rpc_func(self, ns: str, funcname: str):
        ns = _main_alias(ns)
        if ns == 'self':
            if funcname not in self._self_rpc:
                raise NoSuchFunction(
                    f'actor runtime method {funcname!r} is not callable '
                    f'remotely; callable: {", ".join(sorted(self._self_rpc))}')
            return getattr(self, funcname)
        try:
            mod = self._mods[ns]
        except KeyError:
            raise ModuleNotExposed(
                f'module {ns!r} is not exposed by actor {self.uid}; add it '
                f'to rpc_module_paths when starting the actor (exposed: '
                f'{self.rpc_module_paths})') from None
        fn = getattr(mod, funcname, None) if not (
            funcname.startswith('__') and funcname.endswith('__')) else None
        if not callable(fn):
            # dunders (``__builtins__``, ``__loader__``...) are module
            # machinery, not an API: never reachable remotely
            raise NoSuchFunction(
                f'module {ns!r} has no function {funcname!r}')
        return fn

    # -- remotely callable runtime methods -----------------------------
    async def cancel(self) -> bool:
        """Cancel this actor: its RPC tasks, its children, its channels.
        Replies before the teardown begins."""
        self._cancel_called = True
        if self._service_n is not None:
            self._service_n.start_soon(self._do_cancel)
        return True

    async def _do_cancel(self) -> None:
        # let the reply to ``cancel`` leave first
        await trio.sleep(0)
        await self._unregister()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    def cancel_soon(self) -> None:
        self._cancel_called = True
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    async def cancel_rpc_tasks(self) -> bool:
        for task in list(self._rpc_tasks.values()):
            task.scope.cancel()
        return True

    async def ping(self) -> str:
        return 'pong'

    async def info(self) -> dict:
        return {'uid': list(self.uid), 'addr': str(self.accept_addr),
                'modules': self.rpc_module_paths,
                'transport': self.transport, 'codec': self.codec}

    # -- channels ------------------------------------------------------
    def _channel_kw(self) -> dict:
        if self.heartbeat:
            return {'heartbeat_interval': self.heartbeat[0],
                    'liveness_timeout': self.heartbeat[1]}
        return {}

    async def _serve_listener(self, listener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except TransportClosed:
                return
            self._service_n.start_soon(self._handle_inbound, stream)

    async def _handle_inbound(self, stream) -> None:
        chan = Channel(stream, self.codec, **self._channel_kw())
        try:
            await chan.handshake(self.uid, secret=self.secret, role='listen')
        except (HandshakeError, trio.TooSlowError, ValueError) as err:
            log.warning('refused connection from %s: %s', stream.peer_addr,
                        err)
            await chan.aclose()
            return
        except TransportClosed as err:
            # gone before saying who it is: a port scan, or a peer that
            # died while connecting
            log.info('connection from %s closed during the handshake: %s',
                     stream.peer_addr, err)
            await chan.aclose()
            return
        await self._run_channel(chan)

    async def connect(self, addr) -> Channel:
        """Open a Channel to the actor at ``addr`` and serve it (so the
        peer may call back over it). Close it with ``chan.aclose()``."""
        a = Addr.parse(addr, self.transport)
        chan = await Channel.connect(
            a, codec=self.codec, uid=self.uid, secret=self.secret,
            **self._channel_kw())
        await self._service_n.start(self._run_channel_started, chan)
        return chan

    async def _run_channel_started(self, chan, task_status) -> None:
        task_status.started()
        await self._run_channel(chan)

    async def _run_channel(self, chan: Channel) -> None:
        uid = chan.uid
        self._peers.setdefault(uid, []).append(chan)
        ev = self._peer_connected.get(uid)
        if ev is not None:
            ev.set()
        try:
            async with trio.open_nursery() as n:
                n.start_soon(chan.run_heartbeat)
                # the reading may pass from task to task (see _run_inline);
                # whichever reads the end of the channel sets ``done``
                done = trio.Event()
                n.start_soon(self._process_messages, chan, n, done)
                await done.wait()
                n.cancel_scope.cancel()
        finally:
            chans = self._peers.get(uid)
            if chans and chan in chans:
                chans.remove(chan)
                if not chans:
                    del self._peers[uid]
            self._fail_waiters(chan)
            for key in [k for k in self._rpc_tasks if k[0] is chan]:
                self._rpc_tasks.pop(key).scope.cancel()
            with trio.CancelScope(shield=True):
                await chan.aclose()
            if chan is self._parent_chan and not self._cancel_called:
                log.warning('%s lost its parent: cancelling itself', self.uid)
                self.cancel_soon()

    def _fail_waiters(self, chan: Channel) -> None:
        """Every call still waiting on ``chan`` learns the peer is gone,
        and why."""
        reason = str(chan._dead or 'the connection was closed')
        for cid, q in list(self._waiting.items()):
            if q.chan is chan:
                q.closed = True
                q.put({'cid': cid, 'closed': reason})

    async def _process_messages(self, chan: Channel, n: trio.Nursery,
                                done: trio.Event, burst=None) -> None:
        """Read ``chan`` and route what arrives, until it ends (then set
        ``done``) -- or until a call run inline in this task suspends: a
        new task started in ``n`` then goes on reading, from the rest of
        the current ``burst`` on, and this one finishes the call."""
        waiting = self._waiting
        recv_many = chan.recv_many
        while True:
            if burst is not None:
                msgs, sizes = burst
                burst = None
            else:
                try:
                    msgs = await recv_many()
                except TransportClosed as err:
                    if log.isEnabledFor(10):
                        log.debug('channel %s closed: %s', chan, err)
                    done.set()
                    return
                except CodecError as err:
                    log.warning('dropping %s: undecodable message: %s',
                                chan, err)
                    done.set()
                    return
                sizes = chan.last_sizes
            # a burst is routed in one go (see Channel.recv_many)
            for i in range(len(msgs)):
                msg = msgs[i]
                try:
                    cmd = msg.get('cmd')
                    if cmd is None:
                        q = waiting.get(msg['cid'])
                        if q is not None and (q.chan is chan
                                              or q.chan is None):
                            msg['_n'] = sizes[i]
                            q.put(msg)
                        elif log.isEnabledFor(10):
                            log.debug('dropping a reply for call %s, which '
                                      'is no longer waiting: %s', msg['cid'],
                                      _short(msg))
                        continue
                    if cmd == 'run':
                        handed = []

                        def hand_off():
                            # (called while this loop waits for the call)
                            handed.append(True)
                            n.start_soon(self._process_messages, chan, n,
                                         done, (msgs[i + 1:], sizes[i + 1:]))
                        await self._start_rpc(chan, msg, hand_off)
                        if handed:
                            return  # another task reads on
                    elif cmd == 'credit':
                        task = self._rpc_tasks.get((chan, msg['cid']))
                        if task is not None:
                            task.grant(int(msg['n']))
                    elif cmd == 'cancel':
                        task = self._rpc_tasks.get((chan, msg['cid']))
                        if task is not None:
                            task.scope.cancel()
                    else:
                        raise ValueError(f'unknown command {cmd!r}')
                except (AttributeError, KeyError, TypeError,
                        ValueError) as err:
                    log.warning('malformed message from %s: %r (%s: %s)',
                                chan.uid, _short(msg), type(err).__name__,
                                err)
                    cid = msg.get('cid') if isinstance(msg, dict) else None
                    if isinstance(cid, int):
                        await self._send_error(chan, cid, ValueError(
                            f'malformed message {_short(msg)}: {err}'))
            # hold nothing while waiting: a large item is freed as soon
            # as its consumer is done with it (see _portal._stream)
            msgs = msg = None

    async def _send_error(self, chan, cid, exc) -> None:
        try:
            await chan.send({'cid': cid, 'error': pack_error(exc, self.uid)})
        except TransportClosed:
            pass

    # -- serving calls -------------------------------------------------
    async def _start_rpc(self, chan: Channel, msg: dict, hand_off) -> None:
        cid = msg['cid']
        kw = msg.get('kw') or {}
        if not isinstance(kw, dict) or not isinstance(cid, int):
            raise TypeError('cid must be an int and kw a dict')
        key = (msg['ns'], msg['func'])
        try:
            fn, kind = self._func_cache[key]
        except (KeyError, TypeError):
            try:
                fn = self._get_rpc_func(str(key[0]), str(key[1]))
            except (ModuleNotExposed, NoSuchFunction) as err:
                await self._send_error(chan, cid, err)
                return
            kind = _func_kind(fn)
            if isinstance(key[0], str) and isinstance(key[1], str):
                self._func_cache[key] = (fn, kind)
        if kind is _SYNC:
            # a plain function runs inline: no task to start
            try:
                result = fn(**kw)
                data = {'cid': cid, 'return': result}
                await chan.send(data)
            except TransportClosed as err:
                # our caller's channel is gone (then this send fails too,
                # quietly), or the function lost a peer of its own: that
                # is its error to report
                await self._send_error(chan, cid, err)
            except BaseException as err:
                if isinstance(err, trio.Cancelled):
                    raise
                await self._send_error(chan, cid, err)
            return
        task = _RpcTask()
        self._rpc_tasks[(chan, cid)] = task
        if kind is _ASYNC:
            # run right here as far as it goes (see _run_inline)
            await self._invoke(chan, cid, fn, kind, kw, task, hand_off)
            return
        self._service_n.start_soon(self._invoke, chan, cid, fn, kind, kw,
                                   task)

    async def _invoke(self, chan, cid, fn, kind, kw, task: _RpcTask,
                      hand_off=None) -> None:
        try:
            with task.scope:
                try:
                    if kind is _AGEN:
                        await chan.send({'cid': cid, 'stream': 1})
                        agen = fn(**kw)
                        try:
                            async for item in agen:
                                await task.wait_window(chan, cid)
                                task.sent(await chan.send_buffered(
                                    {'cid': cid, 'yield': item}))
                        finally:
                            with trio.CancelScope(shield=True):
                                await agen.aclose()
                        await chan.send({'cid': cid, 'stop': 1})
                    elif kind is _STREAM:
                        from ._streaming import Context
                        await chan.send({'cid': cid, 'stream': 1})
                        await fn(Context(chan, cid, task), **kw)
                        await chan.send({'cid': cid, 'stop': 1})
                    else:
                        result = await _run_inline(fn, kw, hand_off)
                        await chan.send({'cid': cid, 'return': result})
                except TransportClosed as err:
                    # either our caller is gone (and this send fails too,
                    # quietly) or the function lost a peer of its own (a
                    # child it streamed from was killed): report that,
                    # never leave the caller waiting for ever
                    await self._send_error(chan, cid, err)
                except trio.Cancelled:
                    raise
                except BaseException as err:
                    if isinstance(err, (KeyboardInterrupt, SystemExit)):
                        raise
                    await self._send_error(chan, cid, err)
        finally:
            self._rpc_tasks.pop((chan, cid), None)

    # -- making calls --------------------------------------------------
    def _open_call(self, chan: Channel) -> tuple[int, MsgQueue]:
        cid = next(_cid_counter)
        q = self._waiting[cid] = MsgQueue(chan)
        return cid, q

    def _close_call(self, cid: int) -> None:
        self._waiting.pop(cid, None)

    async def wait_for_peer(self, uid: tuple) -> Channel:
        """Wait until the actor ``uid`` has connected to us."""
        while not self._peers.get(uid):
            ev = self._peer_connected.setdefault(uid, trio.Event())
            await ev.wait()
            self._peer_connected.pop(uid, None)
        return self._peers[uid][0]


async def _run_inline(fn, kw, hand_off):
    """``await fn(**kw)``, started in the task that reads the caller's
    channel: most calls (a getter, a quick computation) return without
    ever suspending, and then no task is started for them and the reply
    leaves in the scheduler pass the request arrived in (a task per call
    cost a third of a round trip). If the call does suspend,
    ``hand_off()`` passes the reading on to a new task and this one
    finishes the call -- in the cancel scope and the context it started
    in, so nothing about it differs from a task of its own."""
    coro = fn(**kw)
    if type(coro) is not types.CoroutineType:
        hand_off()
        return await coro
    # a context of its own, as a task of its own would have
    ctx = contextvars.copy_context()
    try:
        trap = ctx.run(coro.send, None)
    except StopIteration as stop:
        return stop.value
    hand_off()
    return await _resume(ctx, coro, trap)


@types.coroutine
def _resume(ctx: contextvars.Context, coro, trap):
    """``await coro`` for a coroutine that was stepped by hand up to
    yielding ``trap`` (see _run_inline): hands the trap to trio and
    trio's answers back to the coroutine, each step in ``ctx``."""
    while True:
        try:
            value = yield trap
        except BaseException as exc:
            try:
                trap = ctx.run(coro.throw, exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                trap = ctx.run(coro.send, value)
            except StopIteration as stop:
                return stop.value


def _main_alias(ns: str) -> str:
    """A script's functions live in ``__main__`` in the process that ran
    it and in ``__mp_main__`` in the actors that imported it: one name."""
    return '__main__' if ns == '__mp_main__' else ns


def _short(msg, limit: int = 200) -> str:
    text = repr(msg)
    return text if len(text) <= limit else text[:limit] + '...'

