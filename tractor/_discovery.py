"""Finding actors through the arbiter."""
from __future__ import annotations

from contextlib import asynccontextmanager

from . import _state
from ._portal import open_portal
from .transports import Addr


@asynccontextmanager
async def get_arbiter(host=None, port=None):
    """A Portal to the arbiter (by default the current actor's). ``host``
    may also be a whole address (``'ipc:///path.sock'``, an ``Addr``)."""
    actor = _state.current_actor()
    async with open_portal(_arbiter_addr(actor, host, port), actor) as portal:
        yield portal


def _arbiter_addr(actor, host=None, port=None) -> Addr:
    if host is None:
        if actor.arbiter_addr is None:
            raise RuntimeError('this actor knows no arbiter')
        return actor.arbiter_addr
    if port is None:
        # a whole address: keeps what (host, port) cannot say, such as
        # the path of an ipc:// address
        return Addr.parse(host, actor.transport)
    return Addr.parse((host, port), actor.transport)


@asynccontextmanager
async def find_actor(name: str, arbiter_sockaddr=None):
    """A Portal to an actor registered as ``name``, or None if there is
    none right now."""
    async with get_arbiter(arbiter_sockaddr) as arb:
        addr = await arb.run('self', 'find_actor', name=name)
    if addr is None:
        yield None
        return
    async with open_portal(addr) as portal:
        yield portal


@asynccontextmanager
async def wait_for_actor(name: str, arbiter_sockaddr=None):
    """A Portal to an actor registered as ``name``, waiting until one
    registers."""
    async with get_arbiter(arbiter_sockaddr) as arb:
        addrs = await arb.run('self', 'wait_for_actor', name=name)
    async with open_portal(addrs[-1]) as portal:
        yield portal
