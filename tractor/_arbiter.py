"""The arbiter: a registry of actor names to addresses, for discovery."""
from __future__ import annotations

import trio

from ._actor import Actor


class Arbiter(Actor):
    """An actor that also keeps the registry. The first root actor to find
    no arbiter at ``arbiter_addr`` becomes it."""

    is_arbiter = True
    _self_rpc = Actor._self_rpc | {
        'register_actor', 'unregister_actor', 'find_actor',
        'wait_for_actor', 'get_registry',
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # uid -> address string (which carries the transport)
        self._registry: dict[tuple, str] = {}
        self._waiters: dict[str, trio.Event] = {}
        # what each channel registered: a registration lasts as long as
        # the channel it came over, so an actor that dies without
        # unregistering (SIGKILL, a crash) is forgotten when its
        # connection drops, and a restarted one is not shadowed by it
        self._by_chan: dict = {}

    async def register(self) -> None:
        # the registry is here: no arbiter to call
        await self.register_actor(self.uid, str(self.accept_addr))

    async def _start_rpc(self, chan, msg, hand_off, scope) -> None:
        if msg.get('ns') == 'self' and msg.get('func') == 'register_actor':
            kw = msg.get('kw')
            if isinstance(kw, dict):
                msg['kw'] = {**kw, '_chan': chan}
        await super()._start_rpc(chan, msg, hand_off, scope)

    def _channel_closed(self, chan) -> None:
        for uid in self._by_chan.pop(chan, ()):
            self._registry.pop(uid, None)

    def _child_exited(self, uid: tuple) -> None:
        # a child of the arbiter does not unregister (see
        # Actor.unregister): it is forgotten here, once it is gone, so
        # that nobody finds it after its nursery has waited for it
        self._registry.pop(tuple(uid), None)

    async def register_actor(self, uid, addr: str, _chan=None) -> bool:
        uid = tuple(uid)
        self._registry[uid] = str(addr)
        if _chan is not None:
            self._by_chan.setdefault(_chan, set()).add(uid)
        ev = self._waiters.pop(uid[0], None)
        if ev is not None:
            ev.set()
        return True

    async def unregister_actor(self, uid) -> bool:
        return self._registry.pop(tuple(uid), None) is not None

    async def find_actor(self, name: str):
        """The address of the newest actor called ``name``, or None."""
        found = [a for (n, _), a in self._registry.items() if n == name]
        return found[-1] if found else None

    async def wait_for_actor(self, name: str) -> list:
        """Addresses of every actor called ``name``, once there is one."""
        while True:
            found = [a for (n, _), a in self._registry.items() if n == name]
            if found:
                return found
            ev = self._waiters.setdefault(name, trio.Event())
            await ev.wait()

    async def get_registry(self) -> dict:
        return {f'{n}.{u}': a for (n, u), a in self._registry.items()}
