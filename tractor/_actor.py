"""The actor: one process's trio task tree, serving calls over Channels.

An :class:`Actor` owns a listener, the channels to its peers, the calls it
serves for them and the calls it waits on. What travels on a channel is
defined in :mod:`tractor._protocol`, flow control in :mod:`tractor._flow`,
streams and contexts in :mod:`tractor._streaming`; this module reads each
channel, routes what arrives, and runs the functions it is asked to.
"""
from __future__ import annotations

import contextvars
from contextlib import nullcontext
import importlib
import inspect
import sys
import types
import uuid
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Optional

import trio

from . import _debug, _liveness
from ._channel import Channel, HandshakeError
from ._exceptions import (
    BaseExceptionGroup,
    ModuleNotExposed,
    NoSuchFunction,
    RemoteActorError,
    collapse,
    pack_error,
    unpack_error,
)
from ._flow import Dialog, MsgQueue
from ._lease import ReadLease
from ._registrar import keep_registered
from ._protocol import cancel_msg, next_cid, request, run_msg
from ._streaming import Context, error_from, queue_item, send_item
from .codecs import CodecError
from .log import get_logger
from .transports import Addr, TransportClosed, get_transport
from .transports._addr import advertised_addr

if TYPE_CHECKING:  # pragma: no cover
    from .transports import Listener

log = get_logger(__name__)


#: seconds a child that failed to start waits for its parent to cancel it
#: (the parent does so once it has read the child's error)
REPORT_LINGER = 5.0

_SYNC, _ASYNC, _AGEN, _STREAM, _CONTEXT = (
    'sync', 'async', 'agen', 'stream', 'context')


def _func_kind(fn) -> str:
    """How a function is served; computed once per function (the inspect
    checks cost more than a small call)."""
    if inspect.isasyncgenfunction(fn):
        return _AGEN
    if getattr(fn, '_tractor_context_function', False):
        return _CONTEXT
    if getattr(fn, '_tractor_stream_function', False):
        return _STREAM
    if inspect.iscoroutinefunction(fn):
        return _ASYNC
    return _SYNC


class Actor:
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
        self._rpc_tasks: dict[tuple, Dialog] = {}
        self._func_cache: dict[tuple, tuple] = {}
        self._service_n: Optional[trio.Nursery] = None
        self._cancel_called = False
        self._cancel_scope: Optional[trio.CancelScope] = None
        self._parent_chan: Optional[Channel] = None
        self._listener: Optional[Listener] = None
        self.registered = False
        self.registrar_scope: Optional[trio.CancelScope] = None
        self._spawn_slots: Optional[trio.CapacityLimiter] = None

    def spawn_slots(self, n: int) -> trio.CapacityLimiter:
        """The limit on this actor's children starting at once (shared
        by all its nurseries; see ``_supervise.SPAWN_CONCURRENCY``)."""
        if self._spawn_slots is None:
            self._spawn_slots = trio.CapacityLimiter(n)
        return self._spawn_slots

    # -- start-up and teardown ------------------------------------------
    @asynccontextmanager
    async def serving(self, accept_addr: Addr, *, listener=None):
        """Run this actor's runtime around the block: listen on
        ``accept_addr`` (or serve ``listener``, already bound there), serve
        every channel, and on the way out -- normally, by an error or by a
        cancel -- unregister, stop every task and channel and release the
        listener. The block runs inside the actor's service nursery, so
        ``actor.cancel()`` cancels it too; its own error leaves the block
        as itself, not wrapped in an exception group."""
        self._listener = listener
        try:
            async with trio.open_nursery() as service_n:
                self._service_n = service_n
                self._cancel_scope = service_n.cancel_scope
                if listener is None:
                    transport = get_transport(accept_addr.transport)
                    listener = self._listener = await transport.listen(
                        accept_addr)
                # listen on bind_addr, give others accept_addr: never a
                # wildcard like 0.0.0.0 (see transports._addr)
                self.bind_addr = listener.addr
                self.accept_addr = advertised_addr(
                    self.bind_addr, self.advertise_addr, self.arbiter_addr)
                # answer liveness probes while user code holds the loop
                # (before any hello goes out; see tractor._liveness)
                await service_n.start(_liveness.serve, self.bind_addr)
                service_n.start_soon(self._serve_listener, listener)
                try:
                    yield self
                finally:
                    with trio.CancelScope(shield=True):
                        await self.unregister()
                    service_n.cancel_scope.cancel()
        except BaseExceptionGroup as eg:
            exc = collapse(eg)
            if exc is eg:
                raise
            raise exc from None
        finally:
            self._service_n = None
            with trio.CancelScope(shield=True):
                if self._listener is not None:
                    await self._listener.aclose()
                await self.unregister()

    async def serve_as_child(self, accept_addr: Addr, parent_addr,
                              ready_cid) -> None:
        """A child's whole life: connect back to the parent, import the
        modules it serves (an import error goes to the parent, which
        raises it at spawn time), say ready, register, then serve until
        cancelled or orphaned."""
        async with self.serving(accept_addr):
            self._parent_chan = await self.connect(parent_addr)
            try:
                self.load_modules()
            except Exception as err:
                await self._parent_chan.send(
                    {'cid': ready_cid, 'error': pack_error(err, self.uid)})
                # and wait for the parent to cancel us once it has read it:
                # exiting sooner races our report against the parent's
                # watch on our exit, and loses it outright on a transport
                # that sends from threads of its own (zmq), which die with
                # the process
                with trio.move_on_after(REPORT_LINGER):
                    await trio.sleep_forever()
                return
            await self._parent_chan.send(
                {'cid': ready_cid, 'return': str(self.accept_addr)})
            await self.register()
            await trio.sleep_forever()

    def _arbiter_is_parent(self) -> bool:
        return (self._parent_chan is not None and self.arbiter_addr is not None
                and str(self._parent_chan.raddr) == str(self.arbiter_addr))

    async def _call_arbiter(self, method: str, **kw):
        parent = self._parent_chan
        if self._arbiter_is_parent() and parent and parent.connected:
            return await self.call(parent, 'self', method, kw)
        # a bare request on a fresh channel: needs no message loop, so it
        # also works while this actor is tearing down
        chan = await Channel.connect(
            self.arbiter_addr, codec=self.codec, uid=self.uid,
            secret=self.secret)
        try:
            return await request(chan, 'self', method, **kw)
        finally:
            with trio.CancelScope(shield=True):
                await chan.aclose()

    async def register(self) -> None:
        if self.arbiter_addr is None:
            return
        if not self._arbiter_is_parent() and self._service_n is not None:
            # stay registered across arbiter restarts (see _registrar)
            await self._service_n.start(keep_registered, self)
            return
        try:
            with trio.fail_after(5):
                await self._call_arbiter(
                    'register_actor', uid=list(self.uid),
                    addr=str(self.accept_addr))
            self.registered = True
        except (TransportClosed, OSError, trio.TooSlowError,
                RemoteActorError) as err:
            log.warning('%s could not register with the arbiter at %s: %s',
                        self.uid, self.arbiter_addr, err)

    async def unregister(self) -> None:
        if self.registrar_scope is not None:
            # leaving: the keeper must not register us again
            self.registrar_scope.cancel()
        if not self.registered:
            return
        self.registered = False
        if self._arbiter_is_parent():
            # we registered over the parent channel: the arbiter forgets
            # us when we exit (it is the parent that reaps us) or when the
            # channel closes, whichever it sees first. A request here
            # would cost every exiting child, and its parent, a round
            # trip: a quarter of the root's CPU in a teardown of 500.
            return
        with trio.move_on_after(2):
            try:
                await self._call_arbiter('unregister_actor',
                                         uid=list(self.uid))
            except (TransportClosed, OSError, RemoteActorError) as err:
                log.debug('unregister from %s failed: %s',
                          self.arbiter_addr, err)

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
        await self.unregister()
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    def cancel_soon(self) -> None:
        self._cancel_called = True
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    async def cancel_rpc_tasks(self) -> bool:
        for task in list(self._rpc_tasks.values()):
            task.cancel()
        return True

    async def ping(self) -> str:
        return 'pong'

    async def info(self) -> dict:
        return {'uid': list(self.uid), 'addr': str(self.accept_addr),
                'modules': self.rpc_module_paths,
                'transport': self.transport, 'codec': self.codec}

    # -- channels ------------------------------------------------------
    def _service(self) -> trio.Nursery:
        """The nursery of this actor's runtime tasks (while it serves)."""
        n = self._service_n
        if n is None:
            raise RuntimeError(f'{self!r} is not running')
        return n

    def channel_kw(self) -> dict:
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
            self._service().start_soon(self._handle_inbound, stream)

    async def _handle_inbound(self, stream) -> None:
        chan = Channel(stream, self.codec, **self.channel_kw())
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
            **self.channel_kw())
        await self._service().start(self._run_channel_started, chan)
        return chan

    async def _run_channel_started(self, chan, task_status) -> None:
        task_status.started()
        await self._run_channel(chan)

    async def _run_channel(self, chan: Channel) -> None:
        uid = chan.uid
        if uid is None:
            raise RuntimeError(f'{chan} has not been through the handshake')
        self._peers.setdefault(uid, []).append(chan)
        ev = self._peer_connected.get(uid)
        if ev is not None:
            ev.set()
        chan.lease = ReadLease(chan, self._route_borrowed)
        try:
            async with trio.open_nursery() as n:
                n.start_soon(chan.run_service)
                # the reading may pass from task to task (see _step);
                # whichever reads the end of the channel sets ``done``
                done = trio.Event()
                n.start_soon(self._process_messages, chan, n, done)
                await done.wait()
                n.cancel_scope.cancel()
        finally:
            chan.lease = None
            chans = self._peers.get(uid)
            if chans and chan in chans:
                chans.remove(chan)
                if not chans:
                    del self._peers[uid]
            self._fail_waiters(chan)
            for key in [k for k in self._rpc_tasks if k[0] is chan]:
                self._rpc_tasks.pop(key).cancel()
            with trio.CancelScope(shield=True):
                await chan.aclose()
            self._channel_closed(chan)
            if chan is self._parent_chan and not self._cancel_called:
                log.warning('%s lost its parent: cancelling itself', self.uid)
                self.cancel_soon()

    def _channel_closed(self, chan: Channel) -> None:
        """Hook for subclasses: ``chan`` has closed (see Arbiter)."""

    def _child_exited(self, uid: tuple) -> None:
        """Hook for subclasses: the process of child ``uid`` has exited
        and been reaped (see Arbiter)."""

    def _fail_waiters(self, chan: Channel) -> None:
        """Every call still waiting on ``chan`` learns the peer is gone,
        and why."""
        reason = chan.dead_reason or 'the connection was closed'
        for cid, q in list(self._waiting.items()):
            if q.chan is chan:
                q.closed = True
                q.put({'cid': cid, 'closed': reason})

    async def _process_messages(self, chan: Channel, n: trio.Nursery,
                                done: trio.Event, burst=None) -> None:
        """Read ``chan`` and route what arrives, until it ends (then set
        ``done``) -- or until a call run inline in this task suspends: a
        new task started in ``n`` then goes on reading, from the rest of
        the current ``burst`` on, and this one finishes the call.

        That call's cancel scope is entered here, once per reading task,
        before any call is stepped: a call that opens a cancel scope or a
        nursery before it first suspends nests it inside, as in a task of
        its own, and a call that returns at once pays for no scope at all
        (see :meth:`_start_rpc`). Until a call suspends, nothing cancels
        this scope: it becomes the call's (its Dialog's) only then."""
        with trio.CancelScope() as scope:
            await self._read(chan, n, done, burst, scope)

    async def _read(self, chan: Channel, n: trio.Nursery, done: trio.Event,
                    burst, scope: trio.CancelScope) -> None:
        recv_many = chan.recv_many
        lease = chan.lease
        assert lease is not None  # (set by _run_channel)
        deliver = self._deliver
        while True:
            if burst is not None:
                msgs, sizes = burst
                burst = None
            else:
                # read when no borrower does (see tractor._lease)
                if lease.busy:
                    await lease.reader_wait()
                err = lease.error
                if lease.handoff is not None:
                    (msgs, sizes), lease.handoff = lease.handoff, None
                elif err is None:
                    lease.busy = True
                    try:
                        msgs = await recv_many()
                        sizes = chan.last_sizes
                    except (TransportClosed, CodecError) as exc:
                        err = exc
                    except BaseException:
                        lease.busy = False
                        raise
                if err is not None:
                    if isinstance(err, CodecError):
                        log.warning('dropping %s: undecodable message: %s',
                                    chan, err)
                    elif log.isEnabledFor(10):
                        log.debug('channel %s closed: %s', chan, err)
                    done.set()
                    return
            # a burst is routed in one go (see Channel.recv_many), and the
            # replies of the calls it runs inline leave together at its end
            corked = len(msgs) > 1
            if corked:
                chan.cork()
            woken = callers = 0
            i, count = 0, len(msgs)
            while True:
                # replies and stream traffic, up to anything else
                i, w, c = deliver(chan, msgs, sizes, i)
                woken += w
                callers += c
                if i == count:
                    break
                msg = msgs[i]
                i += 1
                try:
                    cmd = msg.get('cmd')
                    if cmd == 'run':
                        handed = []

                        def hand_off():
                            # (called while this loop waits for the call)
                            handed.append(True)
                            if corked:
                                chan.release_cork()
                            n.start_soon(self._process_messages, chan, n,
                                         done, (msgs[i:], sizes[i:]))
                        await self._start_rpc(chan, msg, hand_off, scope)
                        if handed:
                            return  # another task reads on
                        continue
                    task = self._rpc_tasks.get((chan, msg['cid']))
                    if cmd == 'cancel':
                        if task is not None:
                            task.cancel_requested = True
                            if 'error' in msg:
                                # the caller failed: its error reaches the
                                # callee's stream, then the cancel
                                task.fail(unpack_error(msg['error'], chan))
                            task.cancel()
                    elif cmd == 'lock':
                        _debug.serve(self, chan, msg)
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
            if callers:
                # the callers woken may call again this pass: batch that
                chan.expect_requests(callers)
            if corked:
                try:
                    await chan.uncork()
                except TransportClosed as err:
                    if log.isEnabledFor(10):
                        log.debug('channel %s closed: %s', chan, err)
                    done.set()
                    return
            lease.busy = False
            # hold nothing while waiting: a large item is freed as soon
            # as its consumer is done with it (see _streaming.MsgStream)
            msgs = msg = None
            if woken:
                # let the tasks woken run first: one about to wait on this
                # channel again reads its answer itself (see _lease)
                await trio.lowlevel.cancel_shielded_checkpoint()
                await trio.lowlevel.cancel_shielded_checkpoint()

    def _deliver(self, chan: Channel, msgs: list, sizes: list,
                 i: int) -> tuple[int, int, int]:
        """Route ``msgs[i:]`` while they are replies to our calls or a
        caller's stream traffic (see _protocol), each to the queue waiting
        for it; stop at anything else (a request, a cancel, something
        malformed), which is the reader task's to handle. Returns where
        it stopped, how many waiting tasks it woke, and how many of those
        were plain calls' callers."""
        waiting = self._waiting
        tasks = self._rpc_tasks
        woken = callers = 0
        count = len(msgs)
        while i < count:
            msg = msgs[i]
            if type(msg) is not dict:
                break
            cid = msg.get('cid')
            if type(cid) is not int:
                break
            cmd = msg.get('cmd')
            if cmd is None:
                q = waiting.get(cid)
                if q is not None and (q.chan is chan or q.chan is None):
                    msg['_n'] = sizes[i]
                    if q._waiter is not None:
                        woken += 1
                        if type(q) is MsgQueue:
                            callers += 1
                    q.put(msg)
                elif log.isEnabledFor(10):
                    log.debug('dropping a reply for call %s, which is no '
                              'longer waiting: %s', cid, _short(msg))
            elif type(cmd) is str and cmd in _DIALOG_CMDS:
                task = tasks.get((chan, cid))
                if task is not None:
                    msg['_n'] = sizes[i]
                    if task._waiter is not None:
                        woken += 1
                    try:
                        task.put(msg)
                    except (AttributeError, KeyError, TypeError,
                            ValueError) as err:
                        log.warning('malformed message from %s: %r (%s: '
                                    '%s)', chan.uid, _short(msg),
                                    type(err).__name__, err)
            else:
                break
            i += 1
        return i, woken, callers

    def _route_borrowed(self, chan: Channel, msgs: list, sizes: list,
                        q: MsgQueue) -> Optional[tuple]:
        """Route a burst that a task waiting on ``q`` read itself from
        ``chan`` (see :mod:`tractor._lease`): returns the rest of it from
        the first message that is not a reply or stream traffic on, for
        the reader task, or None."""
        i, _, callers = self._deliver(chan, msgs, sizes, 0)
        if type(q) is MsgQueue and q._items:
            # the borrower's own reply came too: a caller in a loop calls
            # again right away, with the others this burst woke
            callers += 1
        if callers:
            chan.expect_requests(callers)
        if i < len(msgs):
            return msgs[i:], sizes[i:]
        return None

    async def _send_error(self, chan, cid, exc) -> None:
        if _debug._cfg is not None and _debug.report_later(
                self, chan, cid, exc):
            return  # after a post-mortem where it was raised
        try:
            await chan.send({'cid': cid, 'error': pack_error(exc, self.uid)})
        except TransportClosed:
            pass

    # -- serving calls -------------------------------------------------
    async def _start_rpc(self, chan: Channel, msg: dict, hand_off,
                         scope: trio.CancelScope) -> None:
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
        started = None
        if kind is _SYNC or kind is _ASYNC:
            # run it right here, in the reader's task: most calls (a
            # getter, a quick computation) return without suspending, and
            # then no task, Dialog or cancel scope is made for them and
            # the reply leaves in the scheduler pass the request arrived
            # in (see _step; the scope, should it suspend, is ``scope``)
            try:
                if kind is _SYNC:
                    result = fn(**kw)
                else:
                    done, result = _step(fn(**kw))
                    if not done:
                        started = result
                if started is None:
                    await chan.send({'cid': cid, 'return': result})
            except TransportClosed as err:
                # our caller's channel is gone (then this send fails too,
                # quietly), or the function lost a peer of its own: that
                # is its error to report
                await self._send_error(chan, cid, err)
            except BaseException as err:
                if isinstance(err, (trio.Cancelled, KeyboardInterrupt,
                                    SystemExit)):
                    raise
                await self._send_error(chan, cid, err)
            if started is None:
                return
        if started is not None:
            # it suspended: this task finishes it, in the reading task's
            # cancel scope (entered before the call started: see
            # _process_messages), while a new task goes on reading
            task = Dialog(chan, cid, caller=False, scope=scope)
            self._rpc_tasks[(chan, cid)] = task
            await self._invoke(chan, cid, fn, kind, kw, task, hand_off,
                               started)
            return
        task = Dialog(chan, cid, caller=False, scope=trio.CancelScope())
        self._rpc_tasks[(chan, cid)] = task
        self._service().start_soon(self._invoke, chan, cid, fn, kind, kw,
                                   task)

    async def _invoke(self, chan, cid, fn, kind, kw, task: Dialog,
                      hand_off=None, started=None) -> None:
        try:
            # (a call stepped inline runs in a scope already entered)
            with nullcontext() if started is not None else (
                    task.scope or trio.CancelScope()):
                try:
                    if kind is _AGEN:
                        await chan.send({'cid': cid, 'stream': 1})
                        await _feed(task, fn(**kw))
                        await _items_sent(task)
                        await chan.send({'cid': cid, 'stop': 1})
                    elif kind is _STREAM:
                        await chan.send({'cid': cid, 'stream': 1})
                        await fn(Context(task, what=_what(fn)), **kw)
                        await _items_sent(task)
                        await chan.send({'cid': cid, 'stop': 1})
                    elif kind is _CONTEXT:
                        ctx = Context(task, what=_what(fn))
                        result = await fn(ctx, **kw)
                        await _items_sent(task)
                        await chan.send({'cid': cid, 'return': result})
                    else:
                        # an async function that suspended when
                        # _start_rpc stepped it: the reading passes on
                        hand_off()
                        result = await started
                        await chan.send({'cid': cid, 'return': result})
                except trio.Cancelled:
                    # not running any more (whoever counts calls in
                    # flight), though the report below may take a moment
                    self._rpc_tasks.pop((chan, cid), None)
                    if task.cancel_requested or kind is not _ASYNC:
                        # its finally blocks have run: say so (a caller
                        # leaving a stream waits for this)
                        await _tell_cancelled(task, self._cancel_called)
                    raise
                except BaseException as err:
                    if isinstance(err, (KeyboardInterrupt, SystemExit)):
                        raise
                    if task.cancel_requested:
                        # the caller is abandoning the call (maybe with an
                        # error of its own, raised here): not our failure
                        await _tell_cancelled(task, self._cancel_called)
                    else:
                        # TransportClosed included: either our caller is
                        # gone (and this send fails too, quietly) or the
                        # function lost a peer of its own: report that,
                        # never leave the caller waiting for ever
                        await self._send_error(chan, cid, err)
        finally:
            self._rpc_tasks.pop((chan, cid), None)

    # -- making calls --------------------------------------------------
    def open_call(self, chan: Optional[Channel]) -> tuple[int, MsgQueue]:
        """A new call id on ``chan`` and the queue its replies arrive in
        (``chan`` None: a reply expected on whichever channel). Pair with
        :meth:`close_call`."""
        cid = next_cid()
        q = self._waiting[cid] = MsgQueue(chan)
        return cid, q

    def open_dialog(self, chan: Channel) -> Dialog:
        """A new streaming call on ``chan`` (see :mod:`tractor._flow`)."""
        d = Dialog(chan, next_cid(), caller=True)
        self._waiting[d.cid] = d
        return d

    def close_call(self, cid: int) -> None:
        self._waiting.pop(cid, None)

    async def call(self, chan: Channel, ns: str, func: str, kw: dict, *,
                   streams: bool = False):
        """Call ``ns.func(**kw)`` in the peer at the other end of ``chan``
        and return its result (raise its error). With ``streams``, a call
        that turns out to stream returns its :class:`~tractor._flow.Dialog`
        (which the caller then owns and must close)."""
        cid, q = self.open_call(chan)
        sent = False
        try:
            await chan.send_request(run_msg(cid, ns, func, kw))
            sent = True
            msg = await q.get()
        except BaseException:
            self.close_call(cid)
            if sent:
                await cancel_call(chan, cid)
            raise
        if 'return' in msg:
            self.close_call(cid)
            return msg['return']
        if 'stream' in msg and streams:
            d = self._waiting[cid] = Dialog.upgrade(q, cid)
            return d
        self.close_call(cid)
        if 'started' in msg:
            await cancel_call(chan, cid)
            raise TypeError(
                f'{ns}.{func} is a @tractor.context function: call it with '
                f'`async with portal.open_context(...)`')
        raise error_from(msg, chan, f'{ns}.{func}()')

    def peer_channel(self, uid: tuple) -> Optional[Channel]:
        """A channel to the actor ``uid``, if one is connected."""
        chans = self._peers.get(uid)
        return chans[0] if chans else None

    async def wait_for_peer(self, uid: tuple) -> Channel:
        """Wait until the actor ``uid`` has connected to us."""
        while not self._peers.get(uid):
            ev = self._peer_connected.setdefault(uid, trio.Event())
            await ev.wait()
            self._peer_connected.pop(uid, None)
        return self._peers[uid][0]


#: caller -> callee messages routed to the call's Dialog
_DIALOG_CMDS = frozenset({'yield', 'stop', 'ackreq', 'credit'})


async def cancel_call(chan: Channel, cid: int) -> None:
    """Tell the callee to stop serving ``cid``; best effort and bounded."""
    if not chan.connected:
        return
    with trio.move_on_after(1, shield=True):
        try:
            await chan.send(cancel_msg(cid))
        except TransportClosed:
            pass


async def _tell_cancelled(task: Dialog, by_actor: bool) -> None:
    """Tell the caller its call was cancelled; shielded and bounded, as it
    runs in a cancelled task."""
    chan = task.chan
    if not chan.connected:
        return
    reason = ('requested by the caller' if task.cancel_requested else
              'its actor was cancelled' if by_actor else 'cancelled')
    with trio.move_on_after(1, shield=True):
        try:
            await chan.send({'cid': task.cid, 'cancelled': reason})
        except TransportClosed:
            pass


async def _feed(task: Dialog, agen) -> None:
    """Send what the async generator ``agen`` yields as stream items, at
    most a window ahead of the caller (see :mod:`tractor._flow`)."""
    try:
        async for item in agen:
            if not queue_item(task, item):
                await send_item(task, item)
    finally:
        with trio.CancelScope(shield=True):
            await agen.aclose()


async def _items_sent(task: Dialog) -> None:
    """Before a stream's end is reported: its last run is out, or the
    reason it could not be sent is raised (and reported instead)."""
    if task.outbox or task.send_error is not None:
        await task.chan.flush_runs()
    if task.send_error is not None:
        raise task.send_error


def _what(fn) -> str:
    return f'{fn.__module__}.{fn.__qualname__}()'


def _step(coro) -> tuple[bool, Any]:
    """Run the coroutine ``coro`` (an async function's call) up to its
    first suspension, in the current task: ``(True, its result)`` if it
    returned without suspending, else ``(False, an awaitable that finishes
    it)``. The actor serves a call this way in the task that reads the
    caller's channel: most calls return at once, and then no task is
    started for them (a task per call cost a third of a round trip); one
    that suspends is finished by :meth:`Actor._invoke`, in the cancel
    scope its task entered before stepping it (see
    :meth:`Actor._process_messages`), while a new task goes on reading.
    Either way the call runs in a copy of the context, as a task of its
    own would."""
    if type(coro) is not types.CoroutineType:
        return False, coro  # some other awaitable: nothing to step
    ctx = contextvars.copy_context()
    try:
        trap = ctx.run(coro.send, None)
    except StopIteration as stop:
        return True, stop.value
    return False, _resume(ctx, coro, trap)


@types.coroutine
def _resume(ctx: contextvars.Context, coro, trap):
    """``await coro`` for a coroutine that was stepped by hand up to
    yielding ``trap`` (see _step): hands the trap to trio and
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

