"""Restart strategies for actor nurseries, with Erlang/OTP's meaning.

``tractor.open_nursery(supervisor=...)`` takes one of these. When a child
*dies* -- its function raised, its process crashed or was killed, or a
daemon exited without being asked to -- the nursery asks its strategy
which children to restart:

``one_for_one``
    only the one that died;
``rest_for_one``
    it and every child started after it (they may depend on it);
``one_for_all``
    every child (they depend on each other).

Children to be restarted are stopped politely, newest first, then started
again in start order, each with its name, modules, statespace and
arguments. At most ``max_restarts`` restarts may happen within ``within``
seconds; one more and the strategy *gives up*: the nursery cancels every
child and raises the error that killed the last one, as a nursery without
restarts does at once. The default, ``one_for_all(max_restarts=0)``,
restarts nothing: that is trio's one-cancels-all.

Whether a child is restarted at all also depends on its restart type
(``start_actor(..., restart=...)``), as in OTP: ``'permanent'`` (the
default for daemons) always, ``'transient'`` (the default for
``run_in_actor``) only when it died abnormally, ``'temporary'`` never. A
child ended on purpose -- ``portal.cancel_actor()``, ``nursery.cancel()``,
a cancel scope -- is never restarted.
"""
from __future__ import annotations

from collections import deque

RESTART_TYPES = ('permanent', 'transient', 'temporary')


class Strategy:
    """Base of the three strategies: the restart intensity and which
    children a death affects."""

    name = 'strategy'

    def __init__(self, max_restarts: int = 3, within: float = 5.0) -> None:
        if max_restarts < 0 or within <= 0:
            raise ValueError(
                f'{self.name}(max_restarts={max_restarts!r}, '
                f'within={within!r}): max_restarts must be >= 0 and within '
                f'> 0 seconds')
        self.max_restarts = int(max_restarts)
        self.within = float(within)
        self._times: deque = deque()

    def __repr__(self) -> str:
        return (f'{self.name}(max_restarts={self.max_restarts}, '
                f'within={self.within})')

    @property
    def restarts_anything(self) -> bool:
        return self.max_restarts > 0

    def allow(self, now: float) -> bool:
        """Record one more restart at ``now``; False when that exceeds
        ``max_restarts`` within ``within`` seconds (give up)."""
        times = self._times
        while times and now - times[0] > self.within:
            times.popleft()
        if len(times) >= self.max_restarts:
            return False
        times.append(now)
        return True

    def affected(self, died: object, children: list) -> list:
        """The children (in start order) to restart when ``died`` died;
        ``children`` are the living ones in start order, ``died``
        included."""
        raise NotImplementedError


class one_for_one(Strategy):
    """Restart only the child that died."""

    name = 'one_for_one'

    def affected(self, died: object, children: list) -> list:
        return [died]


class rest_for_one(Strategy):
    """Restart the child that died and every child started after it."""

    name = 'rest_for_one'

    def affected(self, died: object, children: list) -> list:
        return children[children.index(died):] if died in children \
            else [died]


class one_for_all(Strategy):
    """Restart every child when one dies. With ``max_restarts=0`` (the
    default) nothing is restarted: one-cancels-all, as in trio."""

    name = 'one_for_all'

    def __init__(self, max_restarts: int = 0, within: float = 5.0) -> None:
        super().__init__(max_restarts, within)

    def affected(self, died: object, children: list) -> list:
        return list(children) if died in children else [died, *children]


def check_restart(restart: str) -> str:
    if restart not in RESTART_TYPES:
        raise ValueError(
            f'restart={restart!r}: choose one of {", ".join(RESTART_TYPES)}')
    return restart
