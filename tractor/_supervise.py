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

import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Iterable, NoReturn, Optional

import outcome
import trio

from . import _debug, _state, _spawn
from ._child import ChildConfig
from ._actor import Actor
from ._exceptions import (
    ActorFailure,
    BaseExceptionGroup,
    collapse,
    unpack_error,
)
from ._flow import MsgQueue
from ._portal import MainResult, Portal
from ._strategies import Strategy, check_restart, one_for_all
from ._streaming import MsgStream
from ._env import env_number
from .log import get_logger
from .transports import Addr, TransportClosed, get_transport

log = get_logger(__name__)

#: seconds a child may take to exit after a polite cancel before SIGKILL
KILL_GRACE = 3.0
#: seconds a new child has to connect back to its parent
SPAWN_TIMEOUT = 60.0


def _spawn_concurrency() -> int:
    return env_number(
        'TRACTOR_SPAWN_CONCURRENCY', max(8, 4 * (os.cpu_count() or 1)),
        int, ok=lambda v: v >= 1,
        expected='a whole number of children starting at once, at least 1',
        default_text='4 per CPU, at least 8')


#: children of one actor starting at once (started, not yet ready): a
#: start costs CPU (a fork, imports, a handshake), and 500 starts sharing
#: two cores all run past their handshake timeouts where the same 500
#: started a few at a time are up in seconds; the others wait their turn
SPAWN_CONCURRENCY = _spawn_concurrency()
#: seconds the error report of a child that exited in order (code 0)
#: before it was ready may take to be read after its exit was seen
REPORT_AFTER_EXIT = 5.0


class _Child:
    """One child of a nursery, across its restarts (each restart is a new
    process with a new uid, under the same name and Portal)."""

    __slots__ = ('name', 'uid', 'scope', 'done', 'proc', 'portal',
                 'cancel_requested', 'main_result', 'kill_at', 'asked',
                 'failure', 'restart', 'restart_pending', 'down', 'go',
                 'up', 'main_done')

    def __init__(self, name: str, restart: str) -> None:
        self.name = name
        self.uid: Optional[tuple] = None
        self.scope = trio.CancelScope()
        self.done = trio.Event()
        self.proc: Optional[_spawn.ProcHandle] = None
        self.portal: Optional[Portal] = None
        self.main_result: Optional[MainResult] = None
        #: the error its main function raised (run_in_actor)
        self.failure: Optional[BaseException] = None
        #: OTP restart type: permanent, transient or temporary
        self.restart = restart
        self.main_done = False
        self._new_life()

    def _new_life(self) -> None:
        self.cancel_requested = False
        #: when to SIGKILL it: KILL_GRACE after the first polite cancel
        self.kill_at: Optional[float] = None
        self.asked = trio.Event()
        #: a restart of its group stopped it: start again when told
        self.restart_pending = False
        self.down = trio.Event()
        self.go = trio.Event()
        self.up = trio.Event()

    def note_cancel(self) -> None:
        """Called by the portal as it asks the actor to cancel itself: the
        kill clock starts now, whoever asked."""
        self.cancel_requested = True
        if self.kill_at is None:
            self.kill_at = trio.current_time() + KILL_GRACE
            self.asked.set()


class ActorNursery:
    """Spawns actors and supervises them; see :func:`open_nursery`."""

    def __init__(self, actor: Actor, nursery: trio.Nursery,
                 supervisor: Strategy | None = None) -> None:
        self._actor = actor
        self._n = nursery
        self._supervisor = supervisor or one_for_all()
        #: the living children (across their restarts)
        self._children: dict[_Child, _Child] = {}
        #: name -> how many times that child was restarted
        self.restarts: dict[str, int] = {}
        self._restart_lock = trio.Lock()
        self.cancelled = False
        self._body_done = trio.Event()
        self._mains_left = 0
        self._mains_done = trio.Event()
        #: every child ever started here, in start order (errors are
        #: reported in that order)
        self._records: list[_Child] = []
        self._failing = False

    def __enter__(self) -> NoReturn:
        raise RuntimeError(
            'an ActorNursery is async: write `async with '
            'tractor.open_nursery() as n:`')

    def __exit__(self, *exc: object) -> None:  # pragma: no cover
        pass

    # -- spawning ------------------------------------------------------
    async def start_actor(
        self,
        name: str,
        rpc_module_paths: Iterable[str] = (),
        statespace: dict | None = None,
        loglevel: str | None = None,
        bind_addr: Any = None,
        advertise_addr: Any = None,
        restart: str = 'permanent',
    ) -> Portal:
        """Start a daemon actor serving ``rpc_module_paths``; it lives
        until cancelled. ``bind_addr``/``advertise_addr``: where it
        listens and what address it registers (see :func:`tractor.run`);
        by default it binds like its parent (same host, or every
        interface) and advertises the parent's host. ``restart``: its
        OTP restart type under a restarting supervisor (see
        :mod:`tractor._strategies`)."""
        return await self._n.start(
            self._supervise, name, list(rpc_module_paths), statespace,
            loglevel, (bind_addr, advertise_addr), None,
            check_restart(restart))

    async def run_in_actor(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        statespace: dict | None = None,
        loglevel: str | None = None,
        rpc_module_paths: Iterable[str] = (),
        bind_addr: Any = None,
        advertise_addr: Any = None,
        restart: str = 'transient',
        **kwargs: Any,
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
        restart = check_restart(restart)
        return await self._n.start(
            self._supervise, name, paths, statespace, loglevel,
            (bind_addr, advertise_addr), (mod, fn.__name__, kwargs),
            restart)

    def _config(self, name, uid, paths, statespace, loglevel, bind_addr,
                ready_cid) -> ChildConfig:
        actor = self._actor
        parent, accept = actor.bind_addr, actor.accept_addr
        if parent is None or accept is None:
            raise RuntimeError(f'{actor!r} is not serving: it cannot spawn')
        bind_addr, advertise = bind_addr
        if bind_addr is not None:
            bind = Addr.parse(bind_addr, actor.transport)
        else:
            # like the parent: its host, or every interface if it is on
            # every interface
            bind = parent.fresh()
        if (advertise is None and accept.is_inet
                and (bind_addr is None or bind.is_wildcard)):
            # same host as the parent, so the parent's advertised host
            advertise = accept.host
        # the child reaches its parent locally; an arbiter parent is also
        # the child's arbiter (compared by address to reuse the channel)
        if parent.is_wildcard:
            parent = parent.with_host('::1' if ':' in parent.host
                                      else '127.0.0.1')
        arbiter = parent if actor.is_arbiter else actor.arbiter_addr
        transport = get_transport(actor.transport)
        return ChildConfig(
            name=name,
            uid=tuple(uid),
            rpc_module_paths=paths,
            statespace=statespace if statespace is not None else {},
            loglevel=loglevel or actor.loglevel,
            transport=actor.transport,
            codec=actor.codec,
            arbiter_addr=str(arbiter),
            parent_addr=str(parent),
            bind_addr=str(bind),
            advertise_addr=advertise,
            ready_cid=ready_cid,
            secret=actor.secret,
            heartbeat=actor.heartbeat,
            max_frame=transport.max_frame,
            tls=getattr(getattr(transport, 'tls', None), 'config', None),
            start_method=_state._spawn_method,
            debug=_debug.child_config(),
        )

    async def _supervise(self, name, paths, statespace, loglevel, bind_addr,
                         main, restart,
                         task_status=trio.TASK_STATUS_IGNORED):
        """One child's whole supervision: a life (process) at a time, and
        another after each death its restart strategy answers with a
        restart (see :mod:`tractor._strategies`)."""
        child = _Child(name, restart)
        self._children[child] = child
        self._records.append(child)
        if main is not None:
            child.main_result = MainResult()
        spec = (name, paths, statespace, loglevel, bind_addr, main)
        try:
            with child.scope:
                while await self._life(child, spec, task_status):
                    task_status = None
                    # stopped for a restart: wait until the restart of
                    # our group lets us start again (in start order)
                    up, go = trio.Event(), trio.Event()
                    child.up, child.go = up, go
                    child.down.set()
                    await go.wait()
                    child._new_life()
                    child.up, child.go = up, go
        finally:
            if main is not None and not child.main_done:
                self._main_finished(child)
            self._children.pop(child, None)
            child.down.set()
            child.done.set()
        if child.scope.cancelled_caught:
            self.cancelled = True

    async def _life(self, child: _Child, spec, task_status) -> bool:
        """Run one process of ``child`` to its end; True if it is to be
        started again. Raises what killed it when nobody restarts it."""
        import uuid
        name, paths, statespace, loglevel, bind_addr, main = spec
        actor = self._actor
        uid = child.uid = (name, str(uuid.uuid4()))
        # the child's ready message may come over any channel: it connects
        # back to us first
        ready_cid, ready_q = actor.open_call(None)
        try:
            cfg = self._config(name, uid, paths, statespace, loglevel,
                               bind_addr, ready_cid)
            async with self._actor.spawn_slots(SPAWN_CONCURRENCY):
                child.proc = await _spawn.start_process(
                    name, _state._spawn_method, cfg)
                await self._wait_ready(child, ready_q, child.main_result)
            if task_status is not None:
                task_status.started(child.portal)
            child.up.set()
            if main is not None:
                died = await self._run_main(child, *main)
                if child.restart_pending:
                    return True  # stopped by its group's restart
                if died is not None:
                    if self._restarting(child, died):
                        return True
                    if isinstance(died, ActorFailure):
                        raise died
                    # gathered (see open_nursery)
                    assert child.main_result is not None  # (a main's)
                    child.main_result.set(outcome.Error(died))
                    child.failure = died
                    self._main_failed()
                self._main_finished(child)
                # like the original tractor, run_in_actor actors stay up
                # until every one of the nursery's mains has returned,
                # so siblings can still call each other
                await self._mains_done.wait()
                child.cancel_requested = True
                assert child.portal is not None  # (it was ready)
                await child.portal.cancel_actor()
            code = await self._wait_exit(child)
            if child.restart_pending:
                return True
            if child.cancel_requested:
                return False
            if code != 0:
                err = ActorFailure(
                    f'actor {uid} died unexpectedly (exit code {code})',
                    'ActorFailure', uid)
                if self._restarting(child, err):
                    return True
                raise err
            # it ended itself: a permanent child is started again
            return self._restarting(child, None)
        finally:
            actor.close_call(ready_cid)
            with trio.CancelScope(shield=True):
                await self._reap(child)
            actor._child_exited(uid)

    def _restarting(self, child: _Child, cause) -> bool:
        """Whether this end of ``child`` (``cause`` None: it exited by
        itself) calls for a restart. If so the restart is under way (see
        _restart_group) when this returns True; if the strategy's
        intensity is exceeded it gives up: raises the cause."""
        if child.cancel_requested or child.restart == 'temporary':
            return False
        if child.restart == 'transient' and cause is None:
            return False
        sup = self._supervisor
        if not sup.restarts_anything:
            return False
        if child.restart_pending:
            return True  # already part of a group restart
        if not sup.allow(trio.current_time()):
            log.warning('%s gives up: more than %d restarts within %ss '
                        '(last: %s %s)', sup, sup.max_restarts, sup.within,
                        child.name, _why(cause))
            if cause is None:
                cause = ActorFailure(
                    f'actor {child.uid} exited by itself, and its '
                    f'supervisor {sup} gave up restarting it',
                    'ActorFailure', child.uid)
            raise cause
        self.restarts[child.name] = self.restarts.get(child.name, 0) + 1
        log.warning('%s restarts %s (restart %d): %s', sup, child.name,
                    self.restarts[child.name], _why(cause))
        child.restart_pending = True
        self._n.start_soon(self._restart_group, child)
        return True

    async def _restart_group(self, died: _Child) -> None:
        """Stop the children the strategy names with ``died`` (newest
        first, politely), then start them again in start order, each
        once the one before is up."""
        async with self._restart_lock:
            live = [c for c in self._records
                    if c in self._children and not c.cancel_requested]
            if died not in live:
                live.append(died)
            group = self._supervisor.affected(died, live)
            for other in reversed(group):
                if other is died or other.restart_pending:
                    continue
                other.restart_pending = True
                portal = other.portal
                if portal is not None and portal.channel.connected:
                    await portal.cancel_actor()
            for c in group:
                await c.down.wait()
            for c in group:
                if c.done.is_set():
                    continue
                c.go.set()
                await c.up.wait()

    def _main_failed(self) -> None:
        if self._body_done.is_set():
            self._fail_all()

    def _fail_all(self) -> None:
        """A main function failed (and the body is done): one cancels
        all. Politely -- each child is asked to cancel itself -- so that
        errors already on their way from siblings still arrive and are
        gathered; one that ignores the request is killed after
        ``KILL_GRACE``."""
        if self._failing:
            return
        self._failing = self.cancelled = True
        for child in list(self._children.values()):
            if child.cancel_requested or child.done.is_set():
                continue
            child.cancel_requested = True
            if child.portal is not None and child.portal.channel.connected:
                self._n.start_soon(child.portal.cancel_actor)
            else:
                child.scope.cancel()

    def _body_finished(self) -> None:
        self._body_done.set()
        if any(c.failure is not None for c in self._records):
            self._fail_all()

    def _teardown(self) -> None:
        """The body raised (or was cancelled): cancel every child."""
        self.cancelled = True
        for child in list(self._children.values()):
            child.cancel_requested = True
            child.scope.cancel()

    def _unclaimed_failures(self) -> list:
        """Errors of main functions nobody received through
        ``portal.result()``, in start order."""
        return [c.failure for c in self._records
                if c.failure is not None
                and not (c.main_result and c.main_result.claimed)]

    def _main_finished(self, child: _Child) -> None:
        child.main_done = True
        self._mains_left -= 1
        if not self._mains_left:
            self._mains_done.set()

    async def _wait_ready(self, child: _Child, ready_q: MsgQueue,
                          main: MainResult | None) -> None:
        """Wait for the child's ready message, or its early death.

        A child that cannot start (a module of ``rpc_module_paths`` fails
        to import) sends its error, waits for us to cancel it once we
        have read it, and exits with code 0. Its error must win over its
        exit, or the user gets "exited before it was ready" instead of
        the ImportError that says what to fix: if the exit is seen first
        anyway (a child that stopped waiting), an orderly exit still
        means the report is on its way, so wait for it, bounded. A crash
        (non-zero code, a signal) is reported at once."""
        uid = child.uid
        assert uid is not None  # (given in _life)
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
            # it waits for this before it exits (see Actor.serve_as_child)
            chan = self._actor.peer_channel(uid)
            if chan is not None:
                await Portal(chan, self._actor).cancel_actor()
            raise err
        chan = await self._actor.wait_for_peer(uid)
        if child.portal is None:
            child.portal = Portal(chan, self._actor, main=main,
                                  on_cancel=child.note_cancel)
        else:
            # a restart: the Portal the user holds follows it
            child.portal.rebind(chan)

    async def _run_main(self, child: _Child, mod, fname, kwargs):
        """Run the child's main function; returns None once it returned
        (or the child was cancelled), else what killed it: the function's
        error, or an ActorFailure if the actor died under it. The result
        box is filled only with an outcome that is final (see _life)."""
        portal, box = child.portal, child.main_result
        assert portal is not None and box is not None  # (ready, a main's)
        try:
            value = await portal.run(mod, fname, **kwargs)
        except BaseException as err:
            cancelled = (isinstance(err, trio.Cancelled)
                         or (child.cancel_requested
                             and isinstance(err, TransportClosed)))
            if cancelled:
                if not child.restart_pending:
                    # no result, and not a failure: the actor was
                    # cancelled (its channel may close before our scope
                    # is cancelled). Never store a trio.Cancelled for
                    # result() to raise outside of the scope cancelled.
                    box.set(outcome.Error(ActorFailure(
                        f'actor {child.uid} was cancelled before {fname}() '
                        f'returned', 'ActorFailure', child.uid)))
                if isinstance(err, TransportClosed):
                    return None
                raise
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
            if isinstance(err, TransportClosed):
                # died under its function
                died = ActorFailure(
                    f'actor {child.uid} died while running {fname}(): {err}',
                    'ActorFailure', child.uid)
                died.__cause__ = err
                if not self._supervisor.restarts_anything:
                    box.set(outcome.Error(err))
                return died
            # its function failed: gathered, as trio gathers every error
            # raised before its cancellation lands (see open_nursery), or
            # restarted
            return err
        if not isinstance(value, MsgStream):
            box.set(outcome.Value(value))
            return None
        # a stream: hand it out, and wait until it has been consumed (or
        # drain it ourselves if nobody asked for it by the end of the block)
        finished = trio.Event()
        taken = trio.Event()

        async def relay():
            try:
                async with value:
                    async for item in value:
                        yield item
            finally:
                finished.set()

        stream = relay()
        box.set(_Taken(stream, taken))
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
                while await _debug.hold_off(child.uid):
                    # the cancel it got while in the debugger is served
                    # now: give it its grace again
                    await trio.sleep(KILL_GRACE)
                log.warning('actor %s ignored cancellation for %ss: killing',
                            child.uid, KILL_GRACE)
                child.proc.kill()
            n.start_soon(kill_when_due)
            assert child.proc is not None  # (started)
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
            while (proc.returncode is None
                   and await _debug.hold_off(child.uid)):
                with trio.move_on_after(KILL_GRACE):
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


def _why(cause) -> str:
    if cause is None:
        return 'it exited by itself'
    return str(cause).splitlines()[0] if str(cause) else repr(cause)


class _Taken:
    """The stream result of a run_in_actor actor; notes when handed out."""

    def __init__(self, value: Any, taken: trio.Event) -> None:
        self.value = value
        self._taken = taken

    def unwrap(self) -> Any:
        self._taken.set()
        return self.value


@asynccontextmanager
async def open_nursery(supervisor: Strategy | None = None
                       ) -> AsyncIterator[ActorNursery]:
    """Open an :class:`ActorNursery`; the block exits once every actor
    started in it has finished (run_in_actor) or been cancelled.

    Errors follow trio's rules. The block's own error cancels every child.
    A ``run_in_actor`` function's error is gathered: while the block runs
    it cancels nothing (a block that starts several actors sees all their
    errors); once the block is done, the first one cancels the rest
    (politely, so errors already on their way still arrive). An actor that
    dies unexpectedly cancels the block at once. Everything gathered
    leaves the block together: one error as itself, several as a
    ``BaseExceptionGroup``. An error you took with ``portal.result()`` is
    yours, and is not raised again.
    """
    actor = _state.current_actor()
    an = None
    failure = None
    try:
        async with trio.open_nursery() as n:
            an = ActorNursery(actor, n, supervisor)
            try:
                yield an
            except BaseException:
                an._teardown()
                raise
            finally:
                an._body_finished()
    except BaseException as exc:
        failure = exc
    gathered = an._unclaimed_failures() if an is not None else []
    if failure is None and not gathered:
        return
    # the block's own failure (maybe a group from trio's nursery) and the
    # gathered errors, as one: flattened, cancellations and duplicates
    # dropped, one error as itself
    everything = BaseExceptionGroup(
        'several actors failed', ([failure] if failure else []) + gathered)
    merged = collapse(everything)
    if merged is everything or merged is failure:
        # (only cancelled, and nothing failed: as trio would)
        raise failure  # type: ignore[misc]
    raise merged from None
