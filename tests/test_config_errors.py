"""Configuration a user gets wrong, or addresses the API must not mangle:
each fails with an error naming the problem, or just works.
"""
import pytest

import tractor
from tractor._plugins import PluginRegistry
from tractor.transports import UnknownTransport, register_transport
from tractor_testing import python_env, run_python

pytestmark = pytest.mark.timeout(60)


def getpid():
    import os
    return os.getpid()


@pytest.mark.parametrize('transport', ['nng+ipc', 'zmq+ipc', 'uds'])
def test_discovery_through_a_path_address(transport, arb_addr):
    """find_actor/wait_for_actor given the arbiter's whole address (an
    ipc:// path, which a (host, port) pair cannot say) reach it."""
    async def main():
        arbiter = str(tractor.current_actor().arbiter_addr)
        async with tractor.open_nursery() as n:
            await n.start_actor('svc', rpc_module_paths=[__name__])
            async with tractor.wait_for_actor(
                    'svc', arbiter_sockaddr=arbiter) as portal:
                pid = await portal.run(__name__, 'getpid')
            async with tractor.find_actor(
                    'svc', arbiter_sockaddr=arbiter) as portal:
                assert await portal.run(__name__, 'getpid') == pid
            async with tractor.get_arbiter(arbiter) as arb:
                assert any(a.startswith(arbiter.split('://')[0])
                           for a in (await arb.run(
                               'self', 'get_registry')).values())
            await n.cancel()
        return arbiter

    arbiter = tractor.run(main, arbiter_addr=arb_addr, transport=transport)
    assert '://' in arbiter


@pytest.mark.parametrize('variable, value, expected', [
    ('TRACTOR_HEARTBEAT_INTERVAL', 'abc', 'positive number of seconds'),
    ('TRACTOR_HEARTBEAT_INTERVAL', '0', 'positive number of seconds'),
    ('TRACTOR_HEARTBEAT_INTERVAL', '-1', 'positive number of seconds'),
    ('TRACTOR_SPAWN_CONCURRENCY', 'many', 'at least 1'),
    ('TRACTOR_SPAWN_CONCURRENCY', '0', 'at least 1'),
    ('TRACTOR_SPAWN_CONCURRENCY', '-3', 'at least 1'),
])
def test_bad_variable_is_named(variable, value, expected):
    """A bad value read at import fails ``import tractor`` with an error
    naming the variable, its value and what was expected."""
    proc = run_python(['-c', 'import tractor'], timeout=30,
                      env=python_env(**{variable: value}))
    assert proc.returncode != 0
    assert f'${variable}={value!r}' in proc.stderr
    assert expected in proc.stderr


def test_missing_backend_says_what_to_install():
    reg = PluginRegistry('transport', 'tractor.no_such_group', {
        'nng': 'no_such_module_for_tractor_tests:Thing',
        'other': 'no_such_module_for_tractor_tests:Thing',
    }, UnknownTransport, extras={'nng': 'nng'})
    with pytest.raises(UnknownTransport, match=r'pip install tractor\[nng\]'):
        reg.get('nng')
    with pytest.raises(UnknownTransport) as info:
        reg.get('other')
    assert 'tractor[' not in str(info.value)
    assert 'no_such_module_for_tractor_tests' in str(info.value)


def test_registered_broken_transport_fails_clearly():
    register_transport('broken_for_tests',
                       'no_such_module_for_tractor_tests:Thing')
    with pytest.raises(UnknownTransport, match='broken_for_tests'):
        tractor.transports.get_transport('broken_for_tests')
