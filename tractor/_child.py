"""Entry point of every actor process but the root."""
from __future__ import annotations

import pickle
import signal
import sys
from typing import Any

import trio


def main(config: dict) -> None:
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
    if config.get('loglevel'):
        get_console_log(config['loglevel'])
    _auth.set_secret(config.get('secret'))
    _state._spawn_method = config['start_method']
    _debug.configure_child(config.get('debug'), config['parent_addr'])
    actor = _build_actor(config)
    accept = Addr.parse(config['bind_addr'], config['transport'])
    _state._set_current_actor(actor)
    try:
        trio.run(actor.serve_as_child, accept,
                 Addr.parse(config['parent_addr']), config['ready_cid'])
    except BaseException as err:  # noqa: B902 - report, then exit non-zero
        if not isinstance(err, (KeyboardInterrupt, trio.Cancelled)):
            print(f'tractor actor {config["name"]} crashed: {err!r}',
                  file=sys.stderr)
        sys.exit(1)


def _build_actor(config: dict):
    from ._actor import Actor
    from .transports import get_transport
    if config.get('max_frame'):
        # the tree's limit (see tractor.run): a process-wide setting of
        # the transport, like the secret, made before any socket exists
        get_transport(config['transport']).max_frame = config['max_frame']
    if config.get('tls') is not None:
        from ._tls import keys_for
        transport: Any = get_transport(config['transport'])  # (has .tls)
        transport.tls = keys_for(config['tls'])
    return Actor(
        config['name'],
        uid=config['uid'],
        rpc_module_paths=config['rpc_module_paths'],
        statespace=config['statespace'],
        arbiter_addr=config['arbiter_addr'],
        transport=config['transport'],
        codec=config['codec'],
        loglevel=config.get('loglevel'),
        secret=config.get('secret'),
        heartbeat=config.get('heartbeat'),
        advertise_addr=config.get('advertise_addr'),
    )


def mp_main(config: dict) -> None:
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
