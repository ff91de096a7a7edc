"""ActorNursery: trio's nursery, for processes.

Every child actor gets a *supervisor* task in a trio nursery. The
supervisor starts the process, waits for it to connect back, runs its main
function (for ``run_in_actor``), and reaps it. Because supervisors are
ordinary trio tasks, trio's rules carry over: an error in one cancels the
others (one-cancels-all), a cancel scope around the nursery cancels every
child, and the block does not exit while a child lives.

Stopping a child is always polite first (``Portal.cancel_actor()``) and
forceful after ``KILL_GRACE`` seconds (SIGKILL), so nothing outlives its
nursery.
"""
from __future__ import annotations

import inspect
from contextlib import asynccontextmanager
from typing import Optional

import outcome
import trio

from . import _state, _spawn
from ._actor import Actor, MsgQueue, _cid_counter
from ._exceptions import ActorFailure, unpack_error
from ._portal import Portal
from .log import get_logger
from .transports import Addr, TransportClosed, get_transport

log = get_logger(__name__)

#: seconds a child may take to exit after a polite cancel before SIGKILL
KILL_GRACE = 3.0
#: seconds a new child has to connect back to its parent
SPAWN_TIMEOUT = 60.0
#: seconds the error report of a child that exited in order (code 0)
#: before it was ready may take to be read after its exit was seen
REPORT_AFTER_EXIT = 5.0


class _Child:
    __slots__ = ('name', 'uid', 'scope', 'done', 'proc', 'portal',
                 'cancel_requested', 'main_result', 'kill_at', 'asked')

    def __init__(self, name: str, uid: tuple) -> None:
        self.name = name
        self.uid = uid
        self.scope = trio.CancelScope()
        self.done = trio.Event()
        self.proc: Optional[_spawn.ProcHandle] = None
        self.portal: Optional[Portal] = None
        self.cancel_requested = False
        #: when to SIGKILL it: KILL_GRACE after the first polite cancel
        self.kill_at: Optional[float] = None
        self.asked = trio.Event()

    def note_cancel(self) -> None:
        """Called by the portal as it asks the actor to cancel itself: the
        kill clock starts now, whoever asked."""
        self.cancel_requested = True
        if self.kill_at is None:
            self.kill_at = trio.current_time() + KILL_GRACE
            self.asked.set()


class ActorNursery:
    """Spawns actors and supervises them; see :func:`open_nursery`."""

    def __init__(self, actor: Actor, nursery: trio.Nursery) -> None:
        self._actor = actor
        self._n = nursery
        self._children: dict[tuple, _Child] = {}
        self.cancelled = False
        self._body_done = trio.Event()
        self._mains_left = 0
        self._mains_done = trio.Event()

    def __enter__(self):
        raise RuntimeError(
            'an ActorNursery is async: write `async with '
            'tractor.open_nursery() as n:`')

    def __exit__(self, *exc):  # pragma: no cover - __enter__ raised
        pass

    # -- spawning ------------------------------------------------------
    async def start_actor(
        self,
        name: str,
        rpc_module_paths=(),
        statespace: dict | None = None,
        loglevel: str | None = None,
        bind_addr=None,
        advertise_addr=None,
    ) -> Portal:
        """Start a daemon actor serving ``rpc_module_paths``; it lives
        until cancelled. ``bind_addr``/``advertise_addr``: where it
        listens and what address it registers (see :func:`tractor.run`);
        by default it binds like its parent (same host, or every
        interface) and advertises the parent's host."""
        return await self._n.start(
            self._supervise, name, list(rpc_module_paths), statespace,
            loglevel, (bind_addr, advertise_addr), None)

    async def run_in_actor(
        self,
        name: str,
        fn,
        *,
        statespace: dict | None = None,
        loglevel: str | None = None,
        rpc_module_paths=(),
        bind_addr=None,
        advertise_addr=None,
        **kwargs,
    ) -> Portal:
        """Start an actor that runs ``fn(**kwargs)`` and ends when it
        returns; ``await portal.result()`` gives the return value."""
        if not callable(fn):
            raise TypeError(f'run_in_actor needs a function, got {fn!r}')
        mod = fn.__module__
        if '<locals>' in fn.__qualname__:
            raise TypeError(
                f'{fn.__qualname__} is defined inside a function; an actor '
                f'can only run module-level functions')
        paths = list(rpc_module_paths)
        if mod not in paths:
            paths.append(mod)
        self._mains_left += 1
        self._mains_done = (trio.Event() if self._mains_done.is_set()
                            else self._mains_done)
        return await self._n.start(
            self._supervise, name, paths, statespace, loglevel,
            (bind_addr, advertise_addr), (mod, fn.__name__, kwargs))

    def _config(self, name, uid, paths, statespace, loglevel, bind_addr,
                ready_cid) -> dict:
        actor = self._actor
        bind_addr, advertise = bind_addr
        if bind_addr is not None:
            bind = Addr.parse(bind_addr, actor.transport)
        else:
            # like the parent: its host, or every interface if it is on
            # every interface
            bind = actor.bind_addr.fresh()
        if (advertise is None and actor.accept_addr.is_inet
                and (bind_addr is None or bind.is_wildcard)):
            # same host as the parent, so the parent's advertised host
            advertise = actor.accept_addr.host
        # the child reaches its parent locally; an arbiter parent is also
        # the child's arbiter (compared by address to reuse the channel)
        parent = actor.bind_addr
        if parent.is_wildcard:
            parent = parent.with_host('::1' if ':' in parent.host
                                      else '127.0.0.1')
        arbiter = parent if actor.is_arbiter else actor.arbiter_addr
        return {
            'name': name,
            'uid': list(uid),
            'rpc_module_paths': paths,
            'statespace': statespace if statespace is not None else {},
            'loglevel': loglevel or actor.loglevel,
            'transport': actor.transport,
            'codec': actor.codec,
            'arbiter_addr': str(arbiter),
            'parent_addr': str(parent),
            'bind_addr': str(bind),
            'advertise_addr': advertise,
            'ready_cid': ready_cid,
            'secret': actor.secret,
            'heartbeat': actor.heartbeat,
            'max_frame': get_transport(actor.transport).max_frame,
            'start_method': _state._spawn_method,
        }

    async def _supervise(self, name, paths, statespace, loglevel, bind_addr,
                         main, task_status=trio.TASK_STATUS_IGNORED):
        import uuid
        actor = self._actor
        uid = (name, str(uuid.uuid4()))
        child = self._children[uid] = _Child(name, uid)
        ready_cid = next(_cid_counter)
        ready_q = actor._waiting[ready_cid] = MsgQueue(None)
        try:
            with child.scope:
                cfg = self._config(name, uid, paths, statespace, loglevel,
                                   bind_addr, ready_cid)
                child.proc = await _spawn.start_process(
                    name, _state._spawn_method, cfg)
                await self._wait_ready(child, ready_q)
                task_status.started(child.portal)
                if main is not None:
                    try:
                        await self._run_main(child, *main)
                    finally:
                        self._main_finished()
                        main = None
                    # like the original tractor, run_in_actor actors stay up
                    # until every one of the nursery's mains has returned,
                    # so siblings can still call each other
                    await self._mains_done.wait()
                    child.cancel_requested = True
                    await child.portal.cancel_actor()
                code = await self._wait_exit(child)
                if code != 0 and not child.cancel_requested:
                    raise ActorFailure(
                        f'actor {uid} died unexpectedly (exit code {code})',
                        'ActorFailure', uid)
        finally:
            if main is not None:  # never got to run it
                self._main_finished()
            actor._waiting.pop(ready_cid, None)
            with trio.CancelScope(shield=True):
                await self._reap(child)
            self._children.pop(uid, None)
            child.done.set()
        if child.scope.cancelled_caught:
            self.cancelled = True

    def _main_finished(self) -> None:
        self._mains_left -= 1
        if not self._mains_left:
            self._mains_done.set()

    async def _wait_ready(self, child: _Child, ready_q: MsgQueue) -> None:
        """Wait for the child's ready message, or its early death.

        A child that cannot start (a module of ``rpc_module_paths`` fails
        to import) sends its error, waits for us to cancel it once we
        have read it, and exits with code 0. Its error must win over its
        exit, or the user gets "exited before it was ready" instead of
        the ImportError that says what to fix: if the exit is seen first
        anyway (a child that stopped waiting), an orderly exit still
        means the report is on its way, so wait for it, bounded. A crash
        (non-zero code, a signal) is reported at once."""
        died = None
        msg = None
        async with trio.open_nursery() as n:
            async def watch_exit():
                nonlocal died
                died = await child.proc.wait()
                n.cancel_scope.cancel()
            n.start_soon(watch_exit)
            with trio.fail_after(SPAWN_TIMEOUT):
                msg = await ready_q.get()
            n.cancel_scope.cancel()
        if msg is None and died == 0:
            with trio.move_on_after(REPORT_AFTER_EXIT):
                msg = await ready_q.get()
        if msg is None:
            raise ActorFailure(
                f'actor {child.uid} exited (code {died}) before it was ready;'
                f' see its stderr above', 'ActorFailure', child.uid)
        if 'error' in msg:
            child.cancel_requested = True
            err = unpack_error(msg['error'])
            # it waits for this before it exits (see Actor._async_main)
            chans = self._actor._peers.get(child.uid)
            if chans:
                await Portal(chans[0], self._actor).cancel_actor()
            raise err
        chan = await self._actor.wait_for_peer(child.uid)
        child.portal = Portal(chan, self._actor)
        child.portal._on_cancel = child.note_cancel

    async def _run_main(self, child: _Child, mod, fname, kwargs) -> None:
        portal = child.portal
        portal._result_ready = ready = trio.Event()
        try:
            value = await portal.run(mod, fname, **kwargs)
        except BaseException as err:
            cancelled = (isinstance(err, trio.Cancelled)
                         or (child.cancel_requested
                             and isinstance(err, TransportClosed)))
            if cancelled:
                # no result, and not a failure: the actor was cancelled
                # (its channel may close before our scope is cancelled).
                # Never store a trio.Cancelled for result() to raise
                # outside of the scope that was cancelled.
                portal._result = outcome.Error(ActorFailure(
                    f'actor {child.uid} was cancelled before {fname}() '
                    f'returned', 'ActorFailure', child.uid))
            else:
                portal._result = outcome.Error(err)
            ready.set()
            if isinstance(err, TransportClosed) and not cancelled:
                raise ActorFailure(
                    f'actor {child.uid} died while running {fname}(): {err}',
                    'ActorFailure', child.uid) from err
            if isinstance(err, TransportClosed):
                return
            raise
        if not inspect.isasyncgen(value):
            portal._result = outcome.Value(value)
            ready.set()
            return
        # a stream: hand it out, and wait until it has been consumed (or
        # drain it ourselves if nobody asked for it by the end of the block)
        finished = trio.Event()
        taken = trio.Event()

        async def relay():
            try:
                async for item in value:
                    yield item
            finally:
                finished.set()

        stream = relay()
        portal._result = _Taken(stream, taken)
        ready.set()
        async with trio.open_nursery() as n:
            async def drain_if_unclaimed():
                await self._body_done.wait()
                if not taken.is_set():
                    async for _ in stream:
                        pass
                    finished.set()
            n.start_soon(drain_if_unclaimed)
            await finished.wait()
            n.cancel_scope.cancel()

    async def _wait_exit(self, child: _Child) -> int:
        """Wait for the child to exit; once somebody asked it to cancel
        (``portal.cancel_actor()``), SIGKILL it if it is still there
        ``KILL_GRACE`` seconds later."""
        async with trio.open_nursery() as n:
            async def kill_when_due():
                await child.asked.wait()
                await trio.sleep_until(child.kill_at)
                log.warning('actor %s ignored cancellation for %ss: killing',
                            child.uid, KILL_GRACE)
                child.proc.kill()
            n.start_soon(kill_when_due)
            code = await child.proc.wait()
            n.cancel_scope.cancel()
        return code

    async def _reap(self, child: _Child) -> None:
        """Make sure the child process is gone: polite, then SIGKILL."""
        proc = child.proc
        if proc is None:
            return
        if proc.returncode is None:
            portal = child.portal
            if (child.kill_at is None and portal is not None
                    and portal.channel.connected):
                child.cancel_requested = True
                await portal.cancel_actor()
            kill_at = child.kill_at
            if kill_at is None:
                kill_at = trio.current_time() + KILL_GRACE
            with trio.move_on_at(kill_at):
                await proc.wait()
            if proc.returncode is None:
                log.warning('actor %s ignored cancellation for %ss: killing',
                            child.uid, KILL_GRACE)
                proc.kill()
                await proc.wait()
        proc.close()

    # -- cancelling ----------------------------------------------------
    async def cancel(self, hard_kill: bool = False) -> None:
        """Cancel every child of this nursery and wait until all are gone.
        With ``hard_kill`` they are SIGKILLed without asking."""
        self.cancelled = True
        children = list(self._children.values())
        for child in children:
            child.cancel_requested = True
            if hard_kill and child.proc is not None:
                child.proc.kill()
        async with trio.open_nursery() as n:
            for child in children:
                if child.portal is not None and not hard_kill:
                    n.start_soon(child.portal.cancel_actor)
        for child in children:
            child.scope.cancel()
        for child in children:
            await child.done.wait()

    async def wait(self) -> None:
        """Wait until every child has exited."""
        for child in list(self._children.values()):
            await child.done.wait()


class _Taken:
    """The stream result of a run_in_actor actor; notes when handed out."""

    def __init__(self, value, taken: trio.Event) -> None:
        self.value = value
        self._taken = taken

    def unwrap(self):
        self._taken.set()
        return self.value


def _collapse(eg: BaseExceptionGroup) -> BaseException:
    """One error raises as itself; several stay a group. Cancellations
    and duplicates (one error seen through two tasks) are dropped."""
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


@asynccontextmanager
async def open_nursery():
    """Open an :class:`ActorNursery`; the block exits once every actor
    started in it has finished (run_in_actor) or been cancelled."""
    actor = _state.current_actor()
    try:
        async with trio.open_nursery() as n:
            an = ActorNursery(actor, n)
            try:
                yield an
            except BaseException:
                an.cancelled = True
                for child in list(an._children.values()):
                    child.cancel_requested = True
                    child.scope.cancel()
                raise
            finally:
                an._body_done.set()
    except BaseExceptionGroup as eg:
        exc = _collapse(eg)
        if exc is eg:
            raise
        raise exc from None
