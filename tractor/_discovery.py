"""Finding actors through the arbiter."""
from __future__ import annotations

from contextlib import asynccontextmanager

from . import _state
from ._portal import open_portal
from .transports import Addr


@asynccontextmanager
async def get_arbiter(host=None, port=None):
    """A Portal to the arbiter (by default the current actor's)."""
    actor = _state.current_actor()
    if host is None:
        addr = actor.arbiter_addr
        if addr is None:
            raise RuntimeError('this actor knows no arbiter')
    else:
        addr = Addr.parse((host, port), actor.transport)
    async with open_portal(addr, actor) as portal:
        yield portal


@asynccontextmanager
async def find_actor(name: str, arbiter_sockaddr=None):
    """A Portal to an actor registered as ``name``, or None if there is
    none right now."""
    host, port = _split(arbiter_sockaddr)
    async with get_arbiter(host, port) as arb:
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
    host, port = _split(arbiter_sockaddr)
    async with get_arbiter(host, port) as arb:
        addrs = await arb.run('self', 'wait_for_actor', name=name)
    async with open_portal(addrs[-1]) as portal:
        yield portal


def _split(addr):
    if addr is None:
        return None, None
    if isinstance(addr, (tuple, list)):
        return addr[0], addr[1]
    a = Addr.parse(addr)
    return a.host, a.port
