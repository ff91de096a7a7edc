"""Per-process runtime state: which actor this process is."""
from __future__ import annotations

_current_actor = None


def current_actor():
    """The actor running in this process (its ``.name``, ``.uid``,
    ``.statespace``, ``.is_arbiter``)."""
    if _current_actor is None:
        raise RuntimeError(
            'no actor is running in this process: call tractor.run(main) '
            'first, and use tractor APIs inside main')
    return _current_actor


def _set_current_actor(actor) -> None:
    global _current_actor
    _current_actor = actor
_spawn_method: str = 'forkserver'  # (set by the root actor)
