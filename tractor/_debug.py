"""The multi-process debugger: ``debug_mode``, breakpoints and post-mortem
in any actor of a tree, one terminal for all of them.

Why
---
Actors are processes, and a tree of them has one terminal: the root's. A
plain ``breakpoint()`` in a child reads a stdin that is ``/dev/null`` (see
below), and several actors stopping at once would fight over one
terminal line by line. With ``debug_mode`` on (``tractor.run(...,
debug_mode=True)``, ``open_root_actor(debug_mode=True)`` or
``$TRACTOR_DEBUG=1``, passed down the tree in the spawn configuration):

* ``await tractor.breakpoint()`` (``tractor.pause()``) anywhere, and a plain
  ``breakpoint()`` in sync code, open pdb on the root's terminal with a
  prompt naming the actor: ``(Pdb) [actor 'name']``;
* an error raised in an actor opens pdb *post-mortem* at the raise point,
  in that actor, before the error travels to its parent; an error that an
  actor only relays (a ``RemoteActorError``) opens nothing there;
* one actor holds the terminal at a time: the root arbitrates a lock, the
  others wait their turn in the order they asked; ``c`` (or leaving the
  post-mortem prompt) hands it to the next; ``q`` raises ``bdb.BdbQuit``
  in that actor, which its caller gets as a ``RemoteActorError``.

How the terminal reaches a child
--------------------------------
Today's start methods do not give a child the root's stdin:
multiprocessing (``forkserver``, ``spawn``) replaces ``sys.stdin`` with
``/dev/null`` in every child (fd 0 is whatever the fork server had), and
the ``trio`` method hands the child its configuration through a pipe on
fd 0. Two designs were weighed:

* *Proxy the prompt over the channel* (the root reads lines and sends them
  to the child). pdb is synchronous: it runs in the task that stopped,
  with that actor's trio loop blocked, so the actor could not read its
  channel while pdb waits for a line -- it would take a second connection
  served from a thread, pipes as pdb's stdin/stdout, and the terminal's
  own line discipline and Ctrl-C would be lost on the way.
* *Let the lock holder open the terminal itself* (chosen). The root puts
  the path of its terminal (``os.ttyname`` of its stdin) in the spawn
  configuration; the actor that holds the lock opens that path for pdb's
  input and output for the length of its session, and closes it after.
  Only the holder reads, so no two processes compete for a line, and the
  terminal works as it does for a local pdb. It needs the children to be
  able to open the root's terminal: the same user on the same host,
  which is what a child process is.

No terminal (stdin not a tty: CI, a pipe, a service): the root passes no
path, and a breakpoint logs a WARNING naming the actor and the place and
the program goes on; post-mortem is skipped the same way. Nothing waits.

The lock
--------
An actor asks its *parent* for the terminal with the ``lock`` request of
:mod:`tractor._protocol`; a parent that is not the root relays the request
to its own parent, and the root grants it in FIFO order. The reply
``locked`` means "the terminal is yours"; the holder releases it with
``cancel`` of the same call, and the root confirms with ``cancelled``
once the next actor may have it (or the holder goes away: its channel
closing releases it too). The actor does not go on before that
confirmation, so a Ctrl-C typed right after ``c`` finds the root tearing
down again. Relaying, rather than every actor dialling the root, lets
each actor on the way know that a child of its own is in the debugger,
below it: its nursery then does not kill that child while the session
lasts (see :func:`hold_off`). A request, once made, is not abandoned when
the actor that made it is cancelled: the wait and the session are
shielded, as the user asked to stop there.

Each request travels over a channel of its own, opened for the session,
whose replies the asking task reads itself: the actor's channel to its
parent may have no reader just then (a call served inline holds it, see
``_actor._step``: an error raised there is reported, after its
post-mortem, from a task of its own for the same reason).

A plain ``breakpoint()`` in sync code holds the actor's trio loop, so it
cannot await the lock: it asks from a helper thread that runs a trio loop
of its own for the length of the session.

pdb's first prompt runs right where the actor stopped (``interaction`` on
the caller's frame); only a step (``n``, ``s``...) turns tracing on, and
the session then ends at the next ``c`` or ``q``.

While an actor is in the debugger
---------------------------------
* its trio loop is blocked (pdb waits for a line in the task that
  stopped): its peers see it silent, probe its liveness responder, which
  answers "busy" (see :mod:`tractor._liveness`), and keep the channel;
* no nursery on its way up to the root SIGKILLs it or an actor its
  request passed through (a polite cancel sent meanwhile is served once
  the session ends);
* Ctrl-C belongs to pdb: the terminal sends SIGINT to the whole process
  group, the holder turns it into pdb's ``KeyboardInterrupt`` (which pdb
  catches at its prompt), and the root ignores it while another actor
  holds the terminal. Outside any session Ctrl-C tears the tree down as
  always.

The standard library's ``pdb`` is used, or a pdb++-style ``pdbp`` when it
is installed (``pip install pdbp``).

Limits
------
* A sync ``breakpoint()`` blocks its actor's loop while it waits, so it
  cannot wait where that loop is needed to end another session: in the
  root (which serves the lock) while another actor holds the terminal,
  and in a middle actor while it relays a request of an actor below it.
  There the breakpoint is skipped with a warning; ``await
  tractor.breakpoint()`` has no such limit.
* A middle actor that is cancelled while one of its children is at the
  prompt closes its channels, which releases that child's lock early.
"""
from __future__ import annotations

import bdb
import collections
import os
import signal
import sys
import threading
from contextlib import asynccontextmanager
from typing import Any, Callable, Optional

import trio

from . import _state
from .log import get_logger

log = get_logger(__name__)


class _Config:
    """This process's debug settings (None: debug mode is off)."""

    __slots__ = ('tty', 'parent_addr', 'is_root')

    def __init__(self, tty: Optional[str], parent_addr: Optional[str],
                 is_root: bool) -> None:
        #: the root's terminal, opened by the lock holder; None: none
        self.tty = tty
        #: where a lock request dials the parent (children only)
        self.parent_addr = parent_addr
        self.is_root = is_root


#: seconds a release waits for the root to confirm it
RELEASE_WAIT = 2.0

_cfg: Optional[_Config] = None
#: the root's lock on its terminal (root only)
_terminal: Optional['_Terminal'] = None
#: direct child uid -> debug sessions (held or waited for) under it
_through: dict = {}
_through_changed: Optional[trio.Event] = None
_saved_hook = None


def enabled() -> bool:
    """Whether this process runs in debug mode."""
    return _cfg is not None


def _config() -> _Config:
    """The settings of a process in debug mode."""
    if _cfg is None:
        raise RuntimeError('debug mode is off in this process')
    return _cfg


def env_debug_mode() -> bool:
    """``$TRACTOR_DEBUG`` as a flag (``1``, ``true``, ``yes``, ``on``)."""
    value = os.environ.get('TRACTOR_DEBUG', '').strip().lower()
    if value in ('', '0', 'false', 'no', 'off'):
        return False
    if value in ('1', 'true', 'yes', 'on'):
        return True
    raise ValueError(f'$TRACTOR_DEBUG={value!r}: expected 1 or 0')


def _root_tty() -> Optional[str]:
    """The path of the terminal the root reads, or None."""
    stdin = sys.stdin
    try:
        if stdin is None or not stdin.isatty():
            return None
        return os.ttyname(stdin.fileno())
    except (OSError, ValueError):
        return None


def configure_root(on: bool) -> None:
    """Called as a root actor opens: turn debug mode on (or off)."""
    global _cfg, _terminal
    reset()
    if not on:
        return
    _cfg = _Config(_root_tty(), None, True)
    _terminal = _Terminal()
    _install_hook()


def configure_child(config: Optional[dict], parent_addr: str) -> None:
    """Called as a child actor starts, with its parent's
    :func:`child_config`."""
    global _cfg
    reset()
    if config is None:
        return
    _cfg = _Config(config.get('tty'), parent_addr, False)
    _install_hook()


def child_config() -> Optional[dict]:
    """What a child's spawn configuration carries: None when debug mode
    is off."""
    if _cfg is None:
        return None
    return {'tty': _cfg.tty}


def reset() -> None:
    """Debug mode off (a root actor closing)."""
    global _cfg, _terminal, _saved_hook
    _cfg = _terminal = None
    _through.clear()
    if _saved_hook is not None:
        sys.breakpointhook, _saved_hook = _saved_hook, None


def _install_hook() -> None:
    global _saved_hook
    if _saved_hook is None:
        _saved_hook = sys.breakpointhook
        sys.breakpointhook = _breakpointhook


# -- the root's lock -----------------------------------------------------
class _Terminal:
    """The root's lock on its terminal: first asked, first served, and
    released from whichever task ends the session (a pdb ``c`` may come
    from a frame of another task than the one that stopped)."""

    def __init__(self) -> None:
        self.holder: Optional[tuple] = None
        self._queue: collections.deque = collections.deque()
        self._saved_sigint: Any = None

    def try_take(self, uid: tuple) -> bool:
        if self.holder is None and not self._queue:
            self._hand_to(uid)
            return True
        return False

    async def take(self, uid: tuple) -> None:
        if self.try_take(uid):
            return
        entry = (uid, trio.Event())
        self._queue.append(entry)
        log.info('actor %r waits for the terminal (%r has it)', uid[0],
                 self.holder[0] if self.holder else None)
        try:
            await entry[1].wait()
        except BaseException:
            if entry[1].is_set():
                self.release()  # handed over as we left: pass it on
            else:
                self._queue.remove(entry)
            raise

    def release(self) -> None:
        if self._queue:
            uid, ev = self._queue.popleft()
            self._hand_to(uid)
            ev.set()
        else:
            self._hand_to(None)

    def _hand_to(self, uid: Optional[tuple]) -> None:
        self.holder = uid
        # Ctrl-C while another actor is at the prompt is that prompt's
        # (the terminal signals the whole process group): the root must
        # not tear the tree down for it
        me = _state._current_actor
        remote = uid is not None and (me is None or uid != me.uid)
        if threading.current_thread() is not threading.main_thread():
            return
        if remote and self._saved_sigint is None:
            self._saved_sigint = signal.signal(signal.SIGINT,
                                               signal.SIG_IGN)
        elif not remote and self._saved_sigint is not None:
            signal.signal(signal.SIGINT, self._saved_sigint)
            self._saved_sigint = None


@asynccontextmanager
async def _locked(actor, uid: tuple):
    """``async with _locked(actor, uid):`` the terminal is ``uid``'s inside
    the block: taken from the root's lock in the root, asked of the parent
    (the ``lock`` request) anywhere else.

    The request goes over a channel of its own, whose replies this task
    reads itself: the actor's channel to its parent may have no reader
    just then (a call served inline holds it: see ``_actor._step``),
    and the session must not depend on one. Closing it releases the
    terminal whatever happened to the session."""
    cfg = _config()
    if cfg.is_root:
        terminal = _terminal
        assert terminal is not None
        await terminal.take(uid)
        try:
            yield
        finally:
            terminal.release()
        return
    from ._channel import Channel
    from ._protocol import cancel_msg, lock_msg, next_cid
    from ._streaming import error_from
    from .transports import TransportClosed
    chan = await Channel.connect(
        cfg.parent_addr, transport=actor.transport, codec=actor.codec,
        uid=actor.uid, secret=actor.secret, **actor.channel_kw())
    try:
        async with trio.open_nursery() as n:
            n.start_soon(chan.run_service)
            cid = next_cid()
            await chan.send(lock_msg(cid, uid))
            while True:
                msg = await chan.recv()
                if msg.get('cid') == cid and 'cmd' not in msg:
                    break
            if 'locked' not in msg:
                raise error_from(msg, chan, 'the debugger lock request')
            try:
                yield
            finally:
                # released once the root says so (``cancelled``), through
                # every relay: bounded, as the channel closing releases it
                # anyway
                with trio.move_on_after(RELEASE_WAIT, shield=True):
                    try:
                        await chan.send(cancel_msg(cid))
                        while (await chan.recv()).get('cid') != cid:
                            pass
                    except TransportClosed:
                        pass
                n.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await chan.aclose()


# -- serving a child's request ------------------------------------------
def serve(actor, chan, msg: dict) -> None:
    """The reader of ``chan`` got a ``lock`` request (see
    :mod:`tractor._protocol`): serve it in a task of its own."""
    from ._flow import Dialog
    cid = msg['cid']
    uid = tuple(msg['lock'])
    if not isinstance(cid, int) or len(uid) != 2:
        raise ValueError('lock needs an int cid and an actor uid')
    if _cfg is None:
        err = RuntimeError(
            f'actor {actor.uid} does not run in debug mode: start the tree '
            f'with debug_mode=True (or $TRACTOR_DEBUG=1)')
        actor._service_n.start_soon(actor._send_error, chan, cid, err)
        return
    # kept where the actor keeps its running calls: ``cancel`` of ``cid``
    # (or the channel closing) cancels its scope, which releases the
    # terminal. Shielded: the actor's own cancellation does not end a
    # child's session
    req = Dialog(chan, cid, caller=False,
                 scope=trio.CancelScope(shield=True))
    actor._rpc_tasks[(chan, cid)] = req
    actor._service_n.start_soon(_serve, actor, chan, cid, uid, req)


async def _serve(actor, chan, cid: int, uid: tuple, req) -> None:
    from ._exceptions import RemoteActorError
    from .transports import TransportClosed
    _note_through(chan.uid, 1)
    try:
        with req.scope:
            try:
                async with _locked(actor, uid):
                    await chan.send({'cid': cid, 'locked': 1})
                    await trio.sleep_forever()
            except (RemoteActorError, TransportClosed, OSError) as err:
                # our parent refused or is unreachable: the asker must
                # not wait for ever (and if it is the one gone, this
                # send fails quietly)
                await actor._send_error(chan, cid, err)
        if req.scope.cancelled_caught and chan.connected:
            with trio.move_on_after(RELEASE_WAIT, shield=True):
                await chan.send({'cid': cid, 'cancelled': 'released'})
    except TransportClosed:
        pass  # the asker is gone: nothing to hold
    finally:
        actor._rpc_tasks.pop((chan, cid), None)
        _note_through(chan.uid, -1)


def _note_through(uid: tuple, n: int) -> None:
    global _through_changed
    left = _through.get(uid, 0) + n
    if left > 0:
        _through[uid] = left
    else:
        _through.pop(uid, None)
    if _through_changed is not None:
        _through_changed.set()
        _through_changed = None


async def hold_off(uid: Optional[tuple]) -> bool:
    """Wait while the child ``uid``, or an actor below it, is in the
    debugger (holding the terminal or waiting for it); True if it had to
    wait. A nursery calls this before it kills a child."""
    global _through_changed
    waited = False
    while uid is not None and _through.get(tuple(uid)):
        if not waited:
            log.info('actor %r is in the debugger: its kill waits for the '
                     'session to end', uid[0])
        waited = True
        if _through_changed is None:
            _through_changed = trio.Event()
        await _through_changed.wait()
    return waited


# -- sessions ------------------------------------------------------------
def _pdb_base():
    # imported on a session's first use: pdb (with cmd, code, pprint...)
    # is 1.7 MiB of heap that every process of the tree would carry
    try:
        import pdbp
        return pdbp.Pdb
    except ImportError:
        import pdb
        return pdb.Pdb


def _session(actor_name: str, release: Callable[[], None]):
    """A pdb on the root's terminal for this process, prompt naming the
    actor; ``release`` is called once, when the session ends (see
    :func:`_prompt`)."""
    base = _pdb_base()

    class ActorPdb(base):  # type: ignore[valid-type, misc]
        #: how the prompt was left: 'continue', 'quit', or None (a step)
        how = None
        #: a step left the prompt and tracing is on: c/q end the session
        tracing = False

        def set_continue(self):
            super().set_continue()
            self._left('continue')

        def set_quit(self):
            super().set_quit()
            self._left('quit')

        def _left(self, how):
            self.how = how
            if self.tracing:
                _end_session(self)

    tty = _config().tty
    assert tty is not None  # (checked by _no_terminal)
    tin = open(tty, 'r')
    try:
        tout = open(tty, 'w', buffering=1)
    except BaseException:
        tin.close()
        raise
    # nosigint: pdb must not take SIGINT over after ``c`` (it would break
    # into the debugger on the next Ctrl-C instead of tearing down)
    p = ActorPdb(stdin=tin, stdout=tout, nosigint=True)
    p.prompt = f"{p.prompt.rstrip()} [actor '{actor_name}'] "
    p._tractor_files = (tin, tout)
    p._tractor_release = release
    p._tractor_sigint = None
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C at the prompt is pdb's (it prints --KeyboardInterrupt--)
        p._tractor_sigint = signal.signal(signal.SIGINT,
                                          signal.default_int_handler)
    return p


def _end_session(p) -> None:
    release, p._tractor_release = p._tractor_release, None
    if release is None:
        return
    if p._tractor_sigint is not None:
        signal.signal(signal.SIGINT, p._tractor_sigint)
    for f in p._tractor_files:
        try:
            f.close()
        except OSError:
            pass
    try:
        release()
    except Exception:
        log.exception('releasing the terminal')


def _prompt(p, frame, tb=None) -> Optional[str]:
    """pdb's prompt at ``frame`` (a live one) or post-mortem of ``tb``.

    Returns how the user left it: ``'continue'`` or ``'quit'``, and the
    session is over (the caller then waits until the terminal is released
    before the actor goes on: a Ctrl-C typed right after ``c`` must find
    the root tearing down again, not still ignoring it); or None for a
    step (``n``, ``s``, ``r``...): tracing is then on from ``frame`` and
    the session ends at the next ``c`` or ``q``, released without that
    wait."""
    p.reset()
    try:
        p.interaction(frame, tb)
    except BaseException:
        _end_session(p)
        raise
    if p.how is not None or frame is None:
        _end_session(p)
        return p.how or 'continue'
    p.tracing = True
    f = frame
    while f is not None:
        f.f_trace = p.trace_dispatch
        p.botframe = f
        f = f.f_back
    sys.settrace(p.trace_dispatch)
    return None


def _where(frame) -> str:
    code = frame.f_code
    return f'{code.co_filename}:{frame.f_lineno} in {code.co_name}()'


def _no_terminal(actor, what: str, frame) -> bool:
    """True (after a warning) when there is no terminal to stop at."""
    if _config().tty is not None:
        return False
    log.warning('%s in actor %r at %s skipped: the program has no terminal '
                '(stdin is not a tty)', what, actor.name, _where(frame))
    return True


async def _acquire(actor) -> tuple:
    """Wait for the terminal (shielded: see the module docstring); return
    the function that releases it and an event set once it is released
    (the root has it back)."""
    release, released = trio.Event(), trio.Event()

    async def hold(task_status=trio.TASK_STATUS_IGNORED):
        try:
            with trio.CancelScope(shield=True):
                async with _locked(actor, actor.uid):
                    task_status.started()
                    await release.wait()
        finally:
            released.set()

    await actor._service_n.start(hold)
    return release.set, released


async def breakpoint() -> None:
    """Stop here in a pdb session on the root's terminal, in whichever
    actor this runs, once this actor's turn comes (debug mode only: else a
    warning says how to turn it on). ``c`` goes on, ``q`` raises
    ``bdb.BdbQuit`` here. See :mod:`tractor._debug`."""
    await _pause_at(sys._getframe(1))


async def pause() -> None:
    """:func:`breakpoint` under the name of the builtin's hook."""
    await _pause_at(sys._getframe(1))


async def _pause_at(frame) -> None:
    """``tractor.breakpoint()`` stopping at ``frame`` (the caller's)."""
    actor = _state.current_actor()
    if _cfg is None:
        log.warning(
            'tractor.breakpoint() in actor %r at %s skipped: debug mode is '
            'off; start the tree with debug_mode=True (or $TRACTOR_DEBUG=1)',
            actor.name, _where(frame))
        return
    if _no_terminal(actor, 'breakpoint', frame):
        return
    if actor._service_n is None:
        log.warning('breakpoint in actor %r at %s skipped: the actor is '
                    'shutting down', actor.name, _where(frame))
        return
    release, released = await _acquire(actor)
    try:
        p = _session(actor.name, release)
    except BaseException:
        release()
        raise
    how = _prompt(p, frame)
    if how is None:
        return  # stepping: nothing may run here before ``frame`` goes on
    with trio.CancelScope(shield=True):
        await released.wait()
    if how == 'quit':
        raise bdb.BdbQuit


def _wants_post_mortem(err: BaseException) -> bool:
    from ._exceptions import ModuleNotExposed, NoSuchFunction, \
        RemoteActorError
    from .transports import TransportClosed
    return (err.__traceback__ is not None
            and not getattr(err, '_tractor_post_mortem', False)
            and not isinstance(err, (
                RemoteActorError, bdb.BdbQuit, trio.Cancelled,
                KeyboardInterrupt, SystemExit, GeneratorExit,
                TransportClosed, ModuleNotExposed, NoSuchFunction)))


async def post_mortem(actor, err: BaseException) -> None:
    """With debug mode on, open pdb at the point ``err`` was raised (in
    this actor) before it is reported; an error relayed from another
    actor, a cancellation or a quit from pdb open nothing."""
    if _cfg is None or not _wants_post_mortem(err):
        return
    setattr(err, '_tractor_post_mortem', True)
    tb = err.__traceback__
    assert tb is not None  # (checked by _wants_post_mortem)
    while tb.tb_next is not None:
        tb = tb.tb_next
    if _no_terminal(actor, f'post-mortem of {type(err).__name__}',
                    tb.tb_frame):
        return
    if actor._service_n is None:
        return
    release, released = await _acquire(actor)
    try:
        p = _session(actor.name, release)
        p.message(f'[actor {actor.name!r}] {type(err).__name__}: {err}')
        _prompt(p, None, err.__traceback__)
    except Exception:
        log.exception('post-mortem in actor %r', actor.name)
    finally:
        release()
        with trio.CancelScope(shield=True):
            await released.wait()


def report_later(actor, chan, cid: int, err: BaseException) -> bool:
    """Called as ``err`` is about to be reported to the caller of ``cid``:
    when it calls for a post-mortem, do that and then report it in a task
    of its own, and return True. The task that got the error may be the
    reader of the caller's channel (see ``_actor._step``): the
    actor goes on serving that channel meanwhile (its registration, other
    calls), and the caller gets the error once the session ends."""
    if not _wants_post_mortem(err) or actor._service_n is None:
        return False
    actor._service_n.start_soon(_post_mortem_then_report, actor, chan, cid,
                                err)
    return True


async def _post_mortem_then_report(actor, chan, cid: int,
                                   err: BaseException) -> None:
    with trio.CancelScope(shield=True):
        await post_mortem(actor, err)
        await actor._send_error(chan, cid, err)


async def post_mortem_of(actor, err: BaseException) -> None:
    """:func:`post_mortem` of a root's own error (or of the one error of
    a group, as a nursery of the runtime wraps it)."""
    from ._exceptions import BaseExceptionGroup, collapse
    if isinstance(err, BaseExceptionGroup):
        err = collapse(err)
        if isinstance(err, BaseExceptionGroup):
            return
    await post_mortem(actor, err)


# -- plain breakpoint() --------------------------------------------------
def _breakpointhook(*args, **kwargs):
    """``sys.breakpointhook`` in debug mode: ``breakpoint()`` in sync code
    running in an actor stops there, on the root's terminal."""
    frame = sys._getframe(1)
    actor = _state._current_actor
    if _cfg is None or actor is None:
        return sys.__breakpointhook__(*args, **kwargs)
    if _no_terminal(actor, 'breakpoint()', frame):
        return None
    if _cfg.is_root:
        if not _terminal.try_take(actor.uid):
            log.warning(
                'breakpoint() in the root actor at %s skipped: actor %r is '
                'at the prompt, and sync code in the root cannot wait for '
                'it (use `await tractor.breakpoint()` there)',
                _where(frame), _terminal.holder[0])
            return None
        release, released = _terminal.release, None
    elif _through:
        # a child's session is relayed by this actor's loop, which the
        # wait below would block: neither session could end
        log.warning(
            'breakpoint() in actor %r at %s skipped: a debugger session of '
            'an actor below it goes through this actor, and sync code here '
            'cannot wait for it (use `await tractor.breakpoint()` there)',
            actor.name, _where(frame))
        return None
    else:
        try:
            release, released = _take_from_thread(actor)
        except Exception as err:
            log.warning('breakpoint() in actor %r at %s skipped: could not '
                        'get the terminal: %s', actor.name, _where(frame), err)
            return None
    how = _prompt(_session(actor.name, release), frame)
    if how is not None and released is not None:
        released.wait(RELEASE_WAIT)
    if how == 'quit':
        raise bdb.BdbQuit
    return None


def _take_from_thread(actor) -> tuple:
    """Take the terminal for sync code that holds this actor's trio loop:
    a helper thread asks the parent over a channel of its own, in a trio
    loop of its own, and keeps the session until the returned function is
    called; the returned ``threading.Event`` is set once it is released."""
    granted, released = threading.Event(), threading.Event()
    box: dict = {}

    def run():
        try:
            trio.run(_hold_from_thread, actor, granted, box)
        except BaseException as err:  # noqa: B902 - handed to the waiter
            box.setdefault('error', err)
        finally:
            granted.set()
            released.set()

    threading.Thread(target=run, name='tractor-debug-lock',
                     daemon=True).start()
    granted.wait()
    if 'release' not in box:
        raise box.get('error') or RuntimeError('the lock was not granted')
    return box['release'], released


async def _hold_from_thread(actor, granted: threading.Event,
                            box: dict) -> None:
    done = trio.Event()
    async with _locked(actor, actor.uid):
        token = trio.lowlevel.current_trio_token()
        box['release'] = lambda: token.run_sync_soon(done.set)
        granted.set()
        await done.wait()
