"""``Portal``: calling every kind of function in another actor."""
import os

import pytest
import trio

import tractor
from tractor_testing import pid_alive

pytestmark = pytest.mark.timeout(60)


def sync_fn(x):
    return {'sync': x}


async def async_fn(x):
    await trio.sleep(0)
    return {'async': x}


async def agen_fn(n):
    for i in range(n):
        yield i
        await trio.sleep(0)


@tractor.stream
async def multi_source(ctx, sources, per_source):
    """Several tasks push into one stream through the same Context."""
    async def push(tag):
        for i in range(per_source):
            await ctx.send_yield([tag, i])
            await trio.sleep(0)

    async with trio.open_nursery() as n:
        for tag in sources:
            n.start_soon(push, tag)


def getpid():
    return os.getpid()


def test_call_kinds(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('callee',
                                         rpc_module_paths=[__name__])
            got = {
                'sync': await portal.run(__name__, 'sync_fn', x=1),
                'async': await portal.run(__name__, 'async_fn', x=2),
                'agen': [i async for i in await portal.run(
                    __name__, 'agen_fn', n=4)],
            }
            items = [i async for i in await portal.run(
                __name__, 'multi_source', sources=['a', 'b', 'c'],
                per_source=50)]
            await portal.cancel_actor()
        return got, items

    got, items = tractor.run(main, arbiter_addr=arb_addr)
    assert got == {'sync': {'sync': 1}, 'async': {'async': 2},
                   'agen': [0, 1, 2, 3]}
    # every task's values arrive, each task's in order
    for tag in 'abc':
        assert [i for t, i in items if t == tag] == list(range(50))
    assert len(items) == 150


def test_module_object_as_namespace(arb_addr):
    """``portal.run`` takes a module object as well as its path."""
    import sys
    this = sys.modules[__name__]

    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('callee',
                                         rpc_module_paths=[__name__])
            try:
                return await portal.run(this, 'sync_fn', x=3)
            finally:
                await portal.cancel_actor()

    assert tractor.run(main, arbiter_addr=arb_addr) == {'sync': 3}


def test_self_namespace_and_channel_uid(arb_addr):
    """``ns='self'`` reaches the actor's runtime methods; the portal's
    ``channel.uid`` is the actor's uid."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('selfish',
                                         rpc_module_paths=[__name__])
            pong = await portal.run('self', 'ping')
            info = await portal.run('self', 'info')
            uid = portal.channel.uid
            await portal.cancel_actor()
        return pong, info, uid

    pong, info, uid = tractor.run(main, arbiter_addr=arb_addr)
    assert pong == 'pong'
    assert tuple(info['uid']) == tuple(uid)
    assert uid[0] == 'selfish'
    assert __name__ in info['modules']


def test_self_namespace_is_restricted(arb_addr):
    """Only the runtime's remotely callable methods are reachable."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('selfish')
            try:
                await portal.run('self', '_do_cancel')
            finally:
                await portal.cancel_actor()

    with pytest.raises(tractor.RemoteActorError) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    assert exc_info.value.type is tractor.NoSuchFunction


def test_result_of_daemon_is_an_error(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('daemon')
            try:
                await portal.result()
            finally:
                await portal.cancel_actor()

    with pytest.raises(tractor.NoResult):
        tractor.run(main, arbiter_addr=arb_addr)


def test_cancel_actor(arb_addr):
    """``cancel_actor()`` makes the actor exit (its process is gone once
    the nursery exits) and later calls fail clearly."""
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('doomed',
                                         rpc_module_paths=[__name__])
            pid = await portal.run(__name__, 'getpid')
            assert await portal.cancel_actor() is True
        # the nursery waited for the process to exit
        assert not pid_alive(pid)
        assert await portal.cancel_actor() is False
        with pytest.raises(tractor.TransportClosed):
            await portal.run(__name__, 'getpid')
        return pid

    tractor.run(main, arbiter_addr=arb_addr)


def test_portal_to_sibling(arb_addr):
    """A child reaches a sibling through the arbiter and calls it."""
    async def main():
        async with tractor.open_nursery() as n:
            a = await n.start_actor('a', rpc_module_paths=[__name__])
            b = await n.run_in_actor('b', call_sibling, sibling='a')
            pid_a = await a.run(__name__, 'getpid')
            got = await b.result()
            # a daemon keeps the block open until cancelled
            await a.cancel_actor()
        return pid_a, got

    pid_a, got = tractor.run(main, arbiter_addr=arb_addr)
    assert got == {'pid': pid_a, 'peer': 'a'}


async def call_sibling(sibling):
    async with tractor.find_actor(sibling) as portal:
        pid = await portal.run(__name__, 'getpid')
        peer = portal.channel.uid[0]
    return {'pid': pid, 'peer': peer}
