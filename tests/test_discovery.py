"""Discovery through the arbiter: get_arbiter, find_actor, wait_for_actor,
registration on start and removal on exit."""
import os

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

import tractor

pytestmark = pytest.mark.timeout(60)


def getpid():
    return os.getpid()


async def registry_names():
    async with tractor.get_arbiter() as arb:
        reg = await arb.run('self', 'get_registry')
    return sorted(key.split('.')[0] for key in reg)


def test_get_arbiter(arb_addr):
    async def main():
        async with tractor.get_arbiter() as arb:
            info = await arb.run('self', 'info')
            via_host_port = None
        async with tractor.get_arbiter(*arb_addr) as arb2:
            via_host_port = await arb2.run('self', 'info')
        return info, via_host_port, list(tractor.current_actor().uid)

    info, info2, uid = tractor.run(main, arbiter_addr=arb_addr)
    assert info['uid'] == uid == info2['uid']


def test_register_find_and_unregister(arb_addr):
    async def main():
        async with tractor.find_actor('nobody') as none:
            assert none is None
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('svc', rpc_module_paths=[__name__])
            pid = await portal.run(__name__, 'getpid')
            assert 'svc' in await registry_names()
            async with tractor.find_actor('svc') as found:
                assert isinstance(found, tractor.Portal)
                assert found.channel.uid == portal.channel.uid
                assert await found.run(__name__, 'getpid') == pid
            # a child can find it too
            via_child = await n.run_in_actor('seeker', find_pid, service='svc')
            assert await via_child.result() == pid
            await portal.cancel_actor()
        # gone from the registry once it exited
        async with tractor.find_actor('svc') as gone:
            assert gone is None
        return await registry_names()

    # the root itself stays registered until it exits
    names = tractor.run(main, name='root', arbiter_addr=arb_addr)
    assert names == ['root']


async def find_pid(service):
    async with tractor.find_actor(service) as portal:
        return await portal.run(__name__, 'getpid')


def test_wait_for_actor_waits_until_registered(arb_addr):
    async def main():
        got = {}

        async def waiter():
            async with tractor.wait_for_actor('late') as portal:
                got['uid'] = portal.channel.uid
                got['pid'] = await portal.run(__name__, 'getpid')

        async with tractor.open_nursery() as n:
            async with trio.open_nursery() as tn:
                tn.start_soon(waiter)
                # everything here is idle: the waiter is parked at the
                # arbiter, and nobody called 'late' exists yet
                await wait_all_tasks_blocked(cushion=0.05)
                assert not got
                portal = await n.start_actor(
                    'late', rpc_module_paths=[__name__])
            assert got['uid'] == portal.channel.uid
            assert got['pid'] == await portal.run(__name__, 'getpid')
            await portal.cancel_actor()
        return True

    assert tractor.run(main, arbiter_addr=arb_addr)


def test_two_actors_may_share_a_name(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            p1 = await n.start_actor('twin', rpc_module_paths=[__name__])
            p2 = await n.start_actor('twin', rpc_module_paths=[__name__])
            pids = {await p.run(__name__, 'getpid') for p in (p1, p2)}
            assert p1.channel.uid != p2.channel.uid
            assert (await registry_names()).count('twin') == 2
            async with tractor.find_actor('twin') as found:
                assert await found.run(__name__, 'getpid') in pids
            await p1.cancel_actor()
            # the other one is still found
            async with tractor.find_actor('twin') as found:
                assert found.channel.uid == p2.channel.uid
            await p2.cancel_actor()
        return len(pids)

    assert tractor.run(main, arbiter_addr=arb_addr) == 2


def test_child_finds_arbiter(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('kid', arbiter_uid)
        return await portal.result(), list(tractor.current_actor().uid)

    theirs, mine = tractor.run(main, arbiter_addr=arb_addr)
    assert theirs == mine


async def arbiter_uid():
    async with tractor.get_arbiter() as arb:
        return (await arb.run('self', 'info'))['uid']
