"""Every start method: 'forkserver' (the Linux default), 'spawn', 'trio'.
In-process (functions from this importable test module) and from a script
run as ``__main__`` (functions only the script defines)."""
import os

import pytest
import trio

import tractor
from tractor._spawn import START_METHODS
from tractor_testing import SCRIPTS, free_port, run_python

pytestmark = pytest.mark.timeout(60)


def where():
    return os.getpid(), tractor.current_actor().name


async def agen(n):
    for i in range(n):
        yield i
        await trio.sleep(0)


async def spawn_grandchild():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('grandchild', where)
    return await portal.result()


@pytest.mark.parametrize('start_method', START_METHODS)
def test_spawn_and_run(arb_addr, start_method):
    async def main():
        async with tractor.open_nursery() as n:
            daemon = await n.start_actor('daemon',
                                         rpc_module_paths=[__name__])
            got = await daemon.run(__name__, 'where')
            streamed = [i async for i in await daemon.run(
                __name__, 'agen', n=3)]
            nested = await n.run_in_actor('middle', spawn_grandchild)
            await daemon.cancel_actor()
        return got, streamed, await nested.result()

    (pid, name), streamed, (gpid, gname) = tractor.run(
        main, arbiter_addr=arb_addr, start_method=start_method)
    assert name == 'daemon' and pid != os.getpid()
    assert streamed == [0, 1, 2]
    # children spawn with the root's start method too
    assert gname == 'grandchild' and gpid not in (pid, os.getpid())


@pytest.mark.parametrize('start_method', START_METHODS)
def test_main_script_functions(start_method):
    """A script's own functions (module ``__main__``) run in its actors,
    and its top-level ``tractor.run()`` does not run again in them."""
    proc = run_python(
        [os.path.join(SCRIPTS, 'main_functions.py'), start_method,
         str(free_port())], timeout=50)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        'run_in_actor 49', 'portal.run 9', 'stream [0, 1, 2]']


def test_child_config_never_prints_its_secret():
    """What a child is started with is a ChildConfig; printed (in an error,
    a log line, a debugger), it shows everything but the tree's secret."""
    from tractor._child import ChildConfig
    secret = os.urandom(16)
    cfg = ChildConfig(
        name='kid', uid=('kid', '1'), rpc_module_paths=[], statespace={},
        loglevel=None, transport='tcp', codec='msgpack',
        arbiter_addr='tcp://127.0.0.1:1', parent_addr='tcp://127.0.0.1:1',
        bind_addr='tcp://127.0.0.1:0', advertise_addr=None, ready_cid=1,
        secret=secret, heartbeat=None, max_frame=None, tls=None,
        start_method='forkserver', debug=None)
    assert "name='kid'" in repr(cfg)
    assert secret.hex() not in repr(cfg) and repr(secret) not in repr(cfg)
    with pytest.raises(AttributeError):
        cfg.name = 'other'  # type: ignore[misc]
