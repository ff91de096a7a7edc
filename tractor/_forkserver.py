"""Imported last by multiprocessing's fork server, after tractor, trio and
the codecs (see ``_spawn``), and by nothing else.

First it imports the parent's main module, as every actor would
otherwise do on its own (see ``_spawn._main_preload``): under the name
``__mp_main__``, so that a top-level ``tractor.run()`` there does nothing,
and where each actor's multiprocessing start-up finds it already imported.
A module that fails to import here is reported and skipped: each actor
then imports it itself, as before, and reports the error to its parent.
Then, likewise but silently, the modules the first actor exposes
(``rpc_module_paths``, see ``_spawn._mp_context``), and the tree's TLS key
material (``_prepare_tls``).

Then it freezes the heap. Every actor is a fork of the server and shares
its heap page by page until it writes to one. The garbage collector writes
to every object it traverses (its header's reference bookkeeping), so an
actor's first full collection would copy nearly the whole inherited heap
into private memory. Frozen objects are never traversed: what the server
imported stays shared. Just before, it fills the free blocks of its object
pools and the free chunks of its heap, so that an actor's first objects do
not land all over the pages it shares with the server (see ``_pymalloc``
and ``_malloc.plug_heap``).
"""
import gc
import sys
import traceback
from types import FrameType
from typing import Optional

from . import _malloc, _pymalloc


def _preload_entries() -> list:
    """The fork server's preload list: a local of multiprocessing's
    ``forkserver.main``, which is importing this module."""
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get('__name__') == 'multiprocessing.forkserver':
            return list(frame.f_locals.get('preload') or ())
        frame = frame.f_back
    return []


def _marked(marker: str) -> list:
    """What the preload entries that start with ``marker`` (one of
    ``_spawn``'s ``*_MARKER``) say, the marker cut off."""
    return [entry[len(marker):] for entry in _PRELOAD
            if isinstance(entry, str) and entry.startswith(marker)]


def _import_main() -> None:
    import multiprocessing.process as mp_process
    import multiprocessing.spawn as mp_spawn
    from ._spawn import MAIN_MARKER
    for entry in _marked(MAIN_MARKER):
        kind, _, value = entry.partition(':')
        current = mp_process.current_process()
        current._inheriting = True  # type: ignore[attr-defined]
        try:
            if kind == 'name':
                mp_spawn._fixup_main_from_name(value)  # type: ignore
            else:
                mp_spawn._fixup_main_from_path(value)  # type: ignore
        except BaseException:
            print(f'tractor: the fork server could not import {value} '
                  f'(each actor will import it itself):\n'
                  f'{traceback.format_exc()}', file=sys.stderr)
        finally:
            del current._inheriting  # type: ignore[attr-defined]


def _import_modules() -> None:
    """The modules the first actor exposes: each actor would import them
    anyway. One that fails here is left to the actor, which reports the
    error to its parent as it would have without this."""
    import importlib
    from ._spawn import MODULE_MARKER
    for module in _marked(MODULE_MARKER):
        try:
            importlib.import_module(module)
        except BaseException:
            pass


def _prepare_tls() -> None:
    """The tree's TLS key material, read and made into what its transport
    uses (``ssl`` contexts for tcp, PEM text and the certificate's name
    for nng, CURVE keys for zmq) and cached where every actor looks for
    it (``_tls.keys_for``): each would otherwise build its own copy after
    the fork (1-2 MiB of OpenSSL state, and ``cryptography``'s import on
    nng). Nothing native of pynng or pyzmq is made here: no library
    thread may start in the server. Whatever fails is left to each actor,
    which reports it as before."""
    import json
    from ._spawn import TLS_MARKER
    for entry in _marked(TLS_MARKER):
        try:
            from . import _tls
            transport, _, fields = entry.partition(':')
            keys = _tls.keys_for(_tls.TLSConfig(**json.loads(fields)))
            assert keys is not None
            name = transport.partition('+')[0]
            if name == 'zmq':
                keys.curve()
            elif name == 'nng':
                keys.pem()
                keys.cert_name()
            else:
                keys.ssl_context(server=True)
                keys.ssl_context(server=False)
            import importlib
            importlib.import_module(f'tractor.transports._tls_{name}')
        except BaseException:
            pass


_PRELOAD = _preload_entries()
_import_main()
_import_modules()
_prepare_tls()
gc.collect()
_pymalloc.plug()
_malloc.plug_heap()
gc.freeze()
