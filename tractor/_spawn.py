"""Starting actor processes.

Three start methods:

``'forkserver'`` (default on Linux)
    multiprocessing's fork server, preloaded with tractor, trio and the
    codecs: a child is a fork of a warm interpreter, the fastest start.
``'spawn'``
    multiprocessing's fresh interpreter; the only choice on Windows/macOS.
``'trio'``
    a fresh ``python -m tractor._child`` started as a trio subprocess, with
    no multiprocessing machinery at all.

Under every method the parent's ``__main__`` script is imported in the
child as ``__mp_main__`` (multiprocessing's own convention), so functions
defined in the script can be run remotely; a ``tractor.run()`` call at the
script's top level does nothing during that import.
"""
from __future__ import annotations

import multiprocessing as mp
import multiprocessing.spawn as mp_spawn
import os
import pickle
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Optional

import trio
from trio.lowlevel import RunVar

from .log import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from ._child import ChildConfig

log = get_logger(__name__)

START_METHODS = ('forkserver', 'spawn', 'trio')
_default_method = 'forkserver' if sys.platform.startswith('linux') else 'spawn'
_ctx_cache: dict[str, mp.context.BaseContext] = {}


def default_start_method() -> str:
    return _default_method


def check_start_method(method: Optional[str]) -> str:
    method = method or _default_method
    if method not in START_METHODS:
        raise ValueError(f'unknown start_method {method!r}; choose one of '
                         f'{", ".join(START_METHODS)}')
    if method == 'forkserver' and not sys.platform.startswith('linux'):
        raise ValueError("start_method 'forkserver' needs Linux; use 'spawn'")
    return method


#: what the fork server imports before it forks anyone: everything an actor
#: imports as it starts (the first tree's transport is added), so that each
#: actor shares these modules with the server instead of importing its own
#: copy into private memory (``tcp`` and the ``idna`` codec with its
#: ``stringprep`` are what a tcp actor imported after the fork: 1.8 MB of
#: private memory per actor); ``_forkserver`` last, as it freezes the heap
#: the others built. A module the server cannot import is skipped.
FORKSERVER_PRELOAD = [
    'tractor', 'tractor._child', 'trio', 'tractor.transports.tcp',
    'encodings.idna', 'stringprep', 'pkgutil', 'multiprocessing.connection',
    # the codecs with their backends (msgspec, orjson when installed)
    'tractor.codecs._msgpack', 'tractor.codecs._json',
]


def _mp_context(method: str, transport: str | None = None,
                modules: list | tuple = (), tls=None):
    """The multiprocessing context of ``method``, made once per process.
    The fork server it starts (on the first actor's start) preloads
    :data:`FORKSERVER_PRELOAD`, the parent's main module, the first
    actor's transport and the modules it exposes (``modules``: each actor
    imports those anyway; imported once in the server, they are shared by
    every actor instead of copied into each, and an actor starts without
    importing them). Actors started later that expose other modules
    import those themselves. With ``tls`` (the first actor's
    :class:`~tractor._tls.TLSConfig`), the server also reads that key
    material and builds what the transport makes of it, which every actor
    of the tree would otherwise do after the fork."""
    ctx = _ctx_cache.get(method)
    if ctx is None:
        ctx = mp.get_context(method)
        if method == 'forkserver':
            preload = list(FORKSERVER_PRELOAD) + _main_preload()
            if transport is not None:
                from .transports import get_transport
                module = type(get_transport(transport)).__module__
                if module not in preload:
                    preload.append(module)
            preload += [f'{MODULE_MARKER}{m}' for m in modules
                        if m not in preload]
            if tls is not None and transport is not None:
                import dataclasses
                import json
                preload.append(f'{TLS_MARKER}{transport}:' + json.dumps(
                    dataclasses.asdict(tls)))
            ctx.set_forkserver_preload(preload + ['tractor._forkserver'])
        _ctx_cache[method] = ctx
    return ctx


#: a fork server preload entry that names the parent's main module (see
#: _main_preload): not a module name, so multiprocessing's preloading
#: skips it, and ``tractor._forkserver`` finds it and imports the module
MAIN_MARKER = 'tractor-main='
#: likewise for a module an actor exposes (``rpc_module_paths``): imported
#: by ``tractor._forkserver`` after the main module, and silently skipped
#: if it fails there (the actor then imports it and reports the error)
MODULE_MARKER = 'tractor-module='
#: and for the tree's TLS key material: ``<transport>:<TLSConfig as JSON>``
TLS_MARKER = 'tractor-tls='


def _main_preload() -> list[str]:
    """The parent's main module, for the fork server to import once (as
    ``__mp_main__``, as multiprocessing does in each child so that the
    script's functions can be run remotely) instead of every actor
    importing it anew: 8 of an actor's 20 ms of start-up CPU went to a
    small script's imports. ``tractor._forkserver`` does the import, so
    that a script that fails to import there leaves each actor to import
    it itself (and report the error) instead of stopping the server."""
    main = sys.modules.get('__main__')
    spec = getattr(main, '__spec__', None)
    name = getattr(spec, 'name', None)
    if name:
        # python -m pytest and the like: multiprocessing skips those
        if name.endswith('__main__'):
            return []
        return [f'{MAIN_MARKER}name:{name}']
    path = getattr(main, '__file__', None)
    if path:
        return [f'{MAIN_MARKER}path:{os.path.abspath(path)}']
    return []


class ProcHandle:
    """A child process, whichever way it was started."""

    def __init__(self, name: str, method: str) -> None:
        self.name = name
        self.method = method
        self._mp: Optional[mp.process.BaseProcess] = None
        self._trio: Optional[trio.Process] = None

    def _trio_proc(self) -> trio.Process:
        if self._trio is None:
            raise RuntimeError(f'{self.name}: no process was started')
        return self._trio

    @property
    def pid(self) -> int:
        pid = self._mp.pid if self._mp is not None else self._trio_proc().pid
        assert pid is not None  # (started)
        return pid

    @property
    def returncode(self) -> Optional[int]:
        if self._mp is not None:
            return self._mp.exitcode
        return self._trio_proc().returncode

    async def wait(self) -> int:
        if self._mp is not None:
            if self._mp.exitcode is None:
                await trio.lowlevel.wait_readable(self._mp.sentinel)
            self._mp.join()
            code = self._mp.exitcode
            assert code is not None  # (joined)
            return code
        return await self._trio_proc().wait()

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        if self._mp is not None and self._mp.exitcode is not None:
            try:
                self._mp.close()
            except ValueError:
                pass


async def start_process(name: str, method: str,
                        config: ChildConfig) -> ProcHandle:
    """Start a process that runs ``tractor._child.main(config)``."""
    handle = ProcHandle(name, method)
    if method == 'trio':
        # the config (which holds the secret) goes through stdin, not argv
        proc = handle._trio = await trio.lowlevel.open_process(
            [sys.executable, '-m', 'tractor._child', name],
            stdin=subprocess.PIPE,
        )
        stdin = proc.stdin
        assert stdin is not None  # (a pipe was asked for)
        prep = mp_spawn.get_preparation_data(name)
        # multiprocessing refuses to pickle its AuthenticationString outside
        # of its own spawning; the child's prepare() wraps bytes again
        if 'authkey' in prep:
            prep['authkey'] = bytes(prep['authkey'])
        data = pickle.dumps(prep) + pickle.dumps(config)
        await stdin.send_all(data)
        await stdin.aclose()
    else:
        from ._child import mp_main
        ctx = _mp_context(method, config.transport,
                          config.rpc_module_paths, config.tls)
        proc = ctx.Process(target=mp_main, args=(config,), name=name)
        # forkserver: one round trip to the warm server, which forks while
        # we wait; spawn: a fork and exec. Both block, so they run in a
        # thread, one at a time (multiprocessing's bookkeeping is not
        # thread-safe), while this actor goes on serving the handshakes
        # of the children started before.
        await trio.to_thread.run_sync(_start_mp, proc,
                                      limiter=_start_limiter())
        handle._mp = proc
    return handle


#: one process start at a time, per trio run (a RunVar: trio objects are
#: not shared between runs, and a process may run one root after another)
_start_limiter_var: RunVar[trio.CapacityLimiter] = RunVar('start_limiter')


def _start_limiter() -> trio.CapacityLimiter:
    try:
        return _start_limiter_var.get()
    except LookupError:
        limiter = trio.CapacityLimiter(1)
        _start_limiter_var.set(limiter)
        return limiter


def _start_mp(proc: mp.process.BaseProcess) -> None:
    proc.start()
    # multiprocessing keeps every process it started in a set, and polls
    # each of them (a selector apiece) on every start(): O(n) per start
    # and O(n^2) for n children up at once -- with 500 actors, seconds of
    # this actor's CPU. This actor reaps its children itself
    # (ProcHandle.wait), so they leave that set at once.
    children = getattr(mp.process, '_children', None)
    if children is not None:
        children.discard(proc)
