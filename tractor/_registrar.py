"""Staying registered: an actor's registration outlives its arbiter.

An actor registers its name and address with the arbiter so that others
can ``find_actor`` it. The arbiter's registry lives only in its memory, so
if the arbiter process dies and a new one starts on the same address, the
new registry is empty. To repair it without anybody's help, every actor
that is not the arbiter and whose parent is not the arbiter runs a *keeper*
task (:func:`keep_registered`) that

* holds one channel open to the arbiter, with the tree's heartbeat, so the
  arbiter's death (or a hang) is noticed within the liveness timeout;
* registers over that channel;
* when the channel drops, reconnects with a bounded exponential backoff
  (``RETRY_MIN`` doubling to ``RETRY_MAX`` seconds) and registers again.

Nothing else depends on the arbiter: channels between living actors are
direct and keep working while it is away; only discovery (``find_actor``,
``wait_for_actor``) fails, with a clear connection error, until it is back.
An actor whose parent *is* the arbiter needs no keeper: it cancels itself
when it loses its parent.
"""
from __future__ import annotations

import trio

from ._channel import Channel
from ._exceptions import RemoteActorError
from ._protocol import request
from .log import get_logger
from .transports import TransportClosed

log = get_logger(__name__)

#: first delay before reconnecting to a lost arbiter, in seconds
RETRY_MIN = 0.1
#: the longest delay between two attempts: once the arbiter is back, every
#: actor is registered again within about this bound (plus a handshake)
RETRY_MAX = 2.0
#: seconds one attempt (connect, handshake, register) may take
ATTEMPT_TIMEOUT = 5.0


async def _register_on(chan: Channel, actor) -> None:
    """Register ``actor`` over ``chan`` (a bare channel with no message
    loop of its own)."""
    await request(chan, 'self', 'register_actor', uid=list(actor.uid),
                  addr=str(actor.accept_addr))


async def _hold(chan: Channel) -> None:
    """Return once ``chan`` is closed (or its peer went silent past the
    liveness timeout). The arbiter never calls us over this channel;
    anything it sends is ignored."""
    async with trio.open_nursery() as n:
        n.start_soon(chan.run_service)
        try:
            while True:
                await chan.recv()
        except TransportClosed:
            pass
        n.cancel_scope.cancel()


async def keep_registered(actor, task_status=trio.TASK_STATUS_IGNORED):
    """Register ``actor`` with its arbiter, and again whenever the arbiter
    comes back after losing it. Reports started after the first attempt,
    successful or not; runs until cancelled (see ``Actor.unregister``)."""
    scope = actor.registrar_scope = trio.CancelScope()
    started = False
    delay = RETRY_MIN
    lost = False
    with scope:
        while True:
            chan = None
            try:
                with trio.fail_after(ATTEMPT_TIMEOUT):
                    chan = await Channel.connect(
                        actor.arbiter_addr, codec=actor.codec, uid=actor.uid,
                        secret=actor.secret, **actor.channel_kw())
                    await _register_on(chan, actor)
                actor.registered = True
                delay = RETRY_MIN
                if lost:
                    log.warning('%s registered again with the arbiter at %s',
                                actor.uid, actor.arbiter_addr)
                if not started:
                    started = True
                    task_status.started()
                await _hold(chan)
                log.warning('%s lost the arbiter at %s: will register again '
                            'when it is back', actor.uid, actor.arbiter_addr)
            except (TransportClosed, OSError, trio.TooSlowError,
                    RemoteActorError) as err:
                if not lost:
                    log.warning('%s cannot register with the arbiter at %s '
                                '(%s): retrying every %ss at most', actor.uid,
                                actor.arbiter_addr, err, RETRY_MAX)
            finally:
                if chan is not None:
                    with trio.CancelScope(shield=True):
                        await chan.aclose()
            # not registered anywhere now: nothing to unregister at exit
            actor.registered = False
            lost = True
            if not started:
                started = True
                task_status.started()
            await trio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
