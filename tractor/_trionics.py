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

from contextlib import asynccontextmanager
from typing import Optional

import outcome
import trio

from . import _state, _spawn
from ._actor import Actor
from ._exceptions import (
    BaseExceptionGroup,
    RemoteActorError,
    _leaves,
    unpack_error,
)
from ._flow import MsgQueue
from ._portal import MainResult, Portal
from ._streaming import MsgStream
from .log import get_logger
from .transports import Addr, TransportClosed

log = get_logger(__name__)

#: seconds a child may take to exit after a polite cancel before SIGKILL
KILL_GRACE = 3.0
#: seconds a new child has to connect back to its parent
SPAWN_TIMEOUT = 60.0


class ActorFailure(RemoteActorError):
    """A child actor died without reporting an error: killed, crashed, or
    unreachable."""


class _Child:
    __slots__ = ('name', 'uid', 'scope', 'done', 'proc', 'portal',
                 'cancel_requested', 'main_result', 'kill_at', 'asked',
                 'failure')

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
        self.main_result: Optional[MainResult] = None
        #: the error its main function raised (run_in_actor)
        self.failure: Optional[BaseException] = None

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
        #: every child ever started here, in start order (errors are
        #: reported in that order)
        self._records: list[_Child] = []
        self._failing = False

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
            'start_method': _state._spawn_method,
        }

    async def _supervise(self, name, paths, statespace, loglevel, bind_addr,
                         main, task_status=trio.TASK_STATUS_IGNORED):
        import uuid
        actor = self._actor
        uid = (name, str(uuid.uuid4()))
        child = self._children[uid] = _Child(name, uid)
        self._records.append(child)
        # the child's ready message may come over any channel: it connects
        # back to us first
        ready_cid, ready_q = actor.open_call(None)
        try:
            with child.scope:
                cfg = self._config(name, uid, paths, statespace, loglevel,
                                   bind_addr, ready_cid)
                child.proc = await _spawn.start_process(
                    name, _state._spawn_method, cfg)
                if main is not None:
                    child.main_result = MainResult()
                await self._wait_ready(child, ready_q, child.main_result)
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
            actor.close_call(ready_cid)
            with trio.CancelScope(shield=True):
                await self._reap(child)
            self._children.pop(uid, None)
            child.done.set()
        if child.scope.cancelled_caught:
            self.cancelled = True

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
                if c.failure is not None and not c.main_result.claimed]

    def _main_finished(self) -> None:
        self._mains_left -= 1
        if not self._mains_left:
            self._mains_done.set()

    async def _wait_ready(self, child: _Child, ready_q: MsgQueue,
                          main: MainResult | None) -> None:
        """Wait for the child's ready message, or its early death."""
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
        if msg is None:
            raise ActorFailure(
                f'actor {child.uid} exited (code {died}) before it was ready;'
                f' see its stderr above', 'ActorFailure', child.uid)
        if 'error' in msg:
            child.cancel_requested = True
            raise unpack_error(msg['error'])
        chan = await self._actor.wait_for_peer(child.uid)
        child.portal = Portal(chan, self._actor, main=main,
                              on_cancel=child.note_cancel)

    async def _run_main(self, child: _Child, mod, fname, kwargs) -> None:
        portal = child.portal
        box = child.main_result
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
                box.set(outcome.Error(ActorFailure(
                    f'actor {child.uid} was cancelled before {fname}() '
                    f'returned', 'ActorFailure', child.uid)))
            else:
                box.set(outcome.Error(err))
            if isinstance(err, TransportClosed) and not cancelled:
                # died under its function: the nursery stops at once
                raise ActorFailure(
                    f'actor {child.uid} died while running {fname}(): {err}',
                    'ActorFailure', child.uid) from err
            if cancelled or isinstance(err, (KeyboardInterrupt,
                                             SystemExit)):
                if not isinstance(err, TransportClosed):
                    raise
                return
            # its function failed: gathered, as trio gathers every error
            # raised before its cancellation lands (see open_nursery)
            child.failure = err
            self._main_failed()
            return
        if not isinstance(value, MsgStream):
            box.set(outcome.Value(value))
            return
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


@asynccontextmanager
async def open_nursery():
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
            an = ActorNursery(actor, n)
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
    leaves = [] if failure is None else (
        list(_leaves(failure)) if isinstance(failure, BaseExceptionGroup)
        else [failure])
    errors = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    for err in gathered:
        if not any(err is e for e in errors):
            errors.append(err)
    if any(isinstance(e, KeyboardInterrupt) for e in errors):
        raise next(e for e in errors if isinstance(e, KeyboardInterrupt))
    if not errors:
        raise failure  # cancelled, and nothing failed: as trio would
    if len(errors) == 1:
        if errors[0] is failure:
            raise failure
        raise errors[0] from None
    raise BaseExceptionGroup('several actors failed', errors) from None
