"""Entry point of every actor process but the root, and what it is told.

A parent describes the child it spawns in a :class:`ChildConfig`, which
travels to the new process (pickled: through the fork server, or the
child's stdin for the ``trio`` start method) and is all the child knows
of its tree before it connects back to its parent.
"""
from __future__ import annotations

import pickle
import signal
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import trio

if TYPE_CHECKING:  # pragma: no cover
    from ._tls import TLSConfig


@dataclass(frozen=True)
class ChildConfig:
    """Everything a child actor is started with (see
    ``_supervise.ActorNursery``, which makes it). Addresses are strings,
    so that it pickles without the transport's classes."""

    #: the actor's name and unique id ``(name, uuid)``
    name: str
    uid: tuple
    #: modules whose functions the actor exposes to callers
    rpc_module_paths: list
    #: the ``statespace`` dict its functions find in ``tractor.current_actor()``
    statespace: dict
    #: console log level, or None
    loglevel: Optional[str]
    #: the tree's transport and codec names
    transport: str
    codec: str
    #: where the arbiter, the parent and this actor's listener are
    arbiter_addr: str
    parent_addr: str
    bind_addr: str
    #: the host others are told to reach this actor at, if not its own
    advertise_addr: Optional[str]
    #: the call id the parent waits on for the child's "ready"
    ready_cid: int
    #: the tree's HMAC secret (never printed: see ``repr``)
    secret: Optional[bytes] = field(repr=False)
    #: the liveness settings (see ``tractor._liveness``), or None
    heartbeat: Optional[tuple]
    #: the tree's frame size limit, set process-wide in the child
    max_frame: Optional[int]
    #: the TLS key files' paths (never the keys), or None: see tractor._tls
    tls: Optional['TLSConfig']
    #: how the process was started (forkserver, spawn, trio)
    start_method: str
    #: debug mode's settings (``_debug.child_config()``), or None
    debug: Optional[dict]


def main(config: ChildConfig) -> None:
    """Run the child actor described by ``config`` until it is cancelled
    or its parent goes away."""
    # Ctrl-C in a terminal reaches the whole process group; the root turns
    # it into a cancellation of the tree, so children must not die of it
    # on their own and race their supervisor.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import _auth, _debug, _malloc, _state
    from .log import get_console_log
    from .transports import Addr

    _malloc.tune()
    if config.loglevel:
        get_console_log(config.loglevel)
    _auth.set_secret(config.secret)
    _state._spawn_method = config.start_method
    _debug.configure_child(config.debug, config.parent_addr)
    actor = _build_actor(config)
    accept = Addr.parse(config.bind_addr, config.transport)
    _state._set_current_actor(actor)
    try:
        trio.run(actor.serve_as_child, accept,
                 Addr.parse(config.parent_addr), config.ready_cid)
    except BaseException as err:  # noqa: B902 - report, then exit non-zero
        if not isinstance(err, (KeyboardInterrupt, trio.Cancelled)):
            print(f'tractor actor {config.name} crashed: {err!r}',
                  file=sys.stderr)
        sys.exit(1)


def _build_actor(config: ChildConfig):
    from ._actor import Actor
    from .transports import get_transport
    if config.max_frame:
        # the tree's limit (see tractor.run): a process-wide setting of
        # the transport, like the secret, made before any socket exists
        get_transport(config.transport).max_frame = config.max_frame
    if config.tls is not None:
        from ._tls import keys_for
        transport: Any = get_transport(config.transport)  # (has .tls)
        transport.tls = keys_for(config.tls)
    return Actor(
        config.name,
        uid=config.uid,
        rpc_module_paths=config.rpc_module_paths,
        statespace=config.statespace,
        arbiter_addr=config.arbiter_addr,
        transport=config.transport,
        codec=config.codec,
        loglevel=config.loglevel,
        secret=config.secret,
        heartbeat=config.heartbeat,
        advertise_addr=config.advertise_addr,
    )


def mp_main(config: ChildConfig) -> None:
    """Target of multiprocessing's ``Process`` (spawn and forkserver)."""
    main(config)


if __name__ == '__main__':
    stdin = sys.stdin.buffer
    # first the parent's preparation data (plain stdlib values): import
    # its script as __mp_main__ like multiprocessing does, so that the
    # config, which may hold objects from that script, can be unpickled
    import multiprocessing.spawn as mp_spawn
    mp_spawn.prepare(pickle.load(stdin))
    main(pickle.load(stdin))
