"""Core: spawn actors and call functions in them, over every transport and
codec. The functions live in this test module, which the actors import."""
import os

import pytest
import trio

import tractor
from tractor.transports import get_transport

pytestmark = pytest.mark.timeout(60)


def sync_add(a, b):
    return a + b


async def async_describe(tag):
    await trio.sleep(0)
    actor = tractor.current_actor()
    tls = getattr(get_transport(actor.transport), 'tls', None)
    return {'tag': tag, 'name': actor.name, 'pid': os.getpid(),
            'transport': actor.transport, 'codec': actor.codec,
            'tls': tls is not None}


def test_spawn_and_call(transport, codec, arb_addr):
    """start_actor + Portal.run of a sync and an async function, and
    run_in_actor's result, in real child processes over ``transport``."""

    async def main():
        async with tractor.open_nursery() as n:
            daemon = await n.start_actor(
                'daemon', rpc_module_paths=[__name__])
            worker = await n.run_in_actor(
                'worker', async_describe, tag='main-fn')

            assert await daemon.run(__name__, 'sync_add', a=1, b=2) == 3
            info = await daemon.run(__name__, 'async_describe', tag='x')
            assert daemon.channel.uid[0] == 'daemon'
            await daemon.cancel_actor()
        # the block waited for the run_in_actor actor's main function
        return info, await worker.result()

    info, result = tractor.run(main, arbiter_addr=arb_addr,
                               transport=transport, codec=codec)
    me = os.getpid()
    assert info['name'] == 'daemon' and info['tag'] == 'x'
    assert result['name'] == 'worker' and result['tag'] == 'main-fn'
    assert info['pid'] != me and result['pid'] != me
    assert info['pid'] != result['pid']
    # every actor of the tree speaks the root's transport and codec, and
    # TLS if the root does ('tcp+tls' is tcp with tls=True)
    plain, _, suffix = transport.rpartition('+')
    secured = suffix in ('tls', 'curve')
    for got in (info, result):
        assert got['transport'] == (plain if secured else transport)
        assert got['tls'] is secured
        assert got['codec'] == codec
