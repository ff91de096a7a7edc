"""``tractor.run()``: the root actor's lifetime, arguments and result."""
import signal

import pytest
import trio

import tractor
from tractor_testing import spawn_python, wait_pids_gone

pytestmark = pytest.mark.timeout(60)


def test_returns_main_result(arb_addr):
    async def main(a, b, *, c):
        await trio.sleep(0)
        return (a, b, c)

    assert tractor.run(main, 1, 2, c=3, arbiter_addr=arb_addr) == (1, 2, 3)


def test_raises_main_error_as_itself(arb_addr):
    class Boom(Exception):
        pass

    async def main():
        raise Boom('from main')

    with pytest.raises(Boom, match='from main'):
        tractor.run(main, arbiter_addr=arb_addr)


def test_root_attributes(arb_addr):
    """name, statespace, rpc_module_paths, transport and codec reach the
    root actor; with no arbiter at ``arbiter_addr`` the root is it."""
    async def main():
        actor = tractor.current_actor()
        return {
            'name': actor.name, 'is_arbiter': actor.is_arbiter,
            'statespace': dict(actor.statespace),
            'mods': list(actor.rpc_module_paths),
            'transport': actor.transport, 'codec': actor.codec,
            'addr': actor.accept_addr.as_tuple(),
        }

    got = tractor.run(
        main, name='rooty', arbiter_addr=arb_addr, transport='tcp',
        codec='json', statespace={'k': 1}, rpc_module_paths=[__name__])
    assert got == {
        'name': 'rooty', 'is_arbiter': True, 'statespace': {'k': 1},
        'mods': [__name__], 'transport': 'tcp', 'codec': 'json',
        'addr': arb_addr,
    }


def test_env_picks_transport_and_codec(arb_addr, monkeypatch):
    monkeypatch.setenv('TRACTOR_TRANSPORT', 'uds')
    monkeypatch.setenv('TRACTOR_CODEC', 'json')

    async def main():
        a = tractor.current_actor()
        return a.transport, a.codec

    assert tractor.run(main, arbiter_addr=arb_addr) == ('uds', 'json')
    # explicit arguments win over the environment
    assert tractor.run(main, arbiter_addr=arb_addr, transport='tcp',
                       codec='msgpack') == ('tcp', 'msgpack')


@pytest.mark.parametrize('kw, match', [
    ({'transport': 'carrier-pigeon'}, 'carrier-pigeon'),
    ({'codec': 'xml'}, 'xml'),
    ({'start_method': 'teleport'}, 'teleport'),
])
def test_bad_arguments_fail_fast(arb_addr, kw, match):
    async def main():
        raise AssertionError('must not run')

    with pytest.raises(Exception, match=match):
        tractor.run(main, arbiter_addr=arb_addr, **kw)


def test_nested_run_is_refused(arb_addr):
    async def inner():
        return 1

    async def main():
        tractor.run(inner, arbiter_addr=arb_addr)

    with pytest.raises(RuntimeError, match='already running'):
        tractor.run(main, arbiter_addr=arb_addr)


DAEMON = '''
import sys, tractor
tractor.run_daemon([], name='first_root',
                   arbiter_addr=('127.0.0.1', int(sys.argv[1])))
'''


def test_second_tree_joins_running_arbiter(arb_addr, tmp_path):
    """A second ``tractor.run`` on the same arbiter address, while a daemon
    tree holds it, registers with that arbiter instead of becoming one."""
    script = tmp_path / 'daemon.py'
    script.write_text(DAEMON)
    proc = spawn_python([str(script), str(arb_addr[1])])
    try:
        # the daemon owns the port once it answers on it
        ready = trio.run(_wait_listening, arb_addr)
        assert ready

        async def main():
            me = tractor.current_actor()
            async with tractor.get_arbiter() as arb:
                registry = await arb.run('self', 'get_registry')
                info = await arb.run('self', 'info')
            async with tractor.find_actor('first_root') as portal:
                assert portal is not None
                peer = portal.channel.uid
            return me.is_arbiter, me.uid, registry, info, peer

        is_arb, uid, registry, info, peer = tractor.run(
            main, name='second_root', arbiter_addr=arb_addr)
        assert not is_arb
        assert info['uid'][0] == 'first_root'
        names = {key.split('.')[0] for key in registry}
        assert names == {'first_root', 'second_root'}
        assert f'{uid[0]}.{uid[1]}' in registry
        assert peer[0] == 'first_root'
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        finally:
            proc.kill()
            proc.wait()
    assert not wait_pids_gone([proc.pid], 5)


async def _wait_listening(addr, timeout=20):
    """Poll-connect until something accepts on ``addr`` (the daemon's
    start-up has no other observable edge)."""
    with trio.fail_after(timeout):
        while True:
            try:
                stream = await trio.open_tcp_stream(*addr)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return True
