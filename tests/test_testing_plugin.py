"""``tractor.testing`` as a user meets it: a test file of their own,
outside this repository, using ``tractor_test``, the plugin's fixtures and
options, and a plain pytest-trio test around ``open_root_actor``."""
import os
import textwrap

import pytest

from tractor_testing import python_env, run_python

pytestmark = pytest.mark.timeout(180)

USER_TESTS = textwrap.dedent('''
    import tractor
    from tractor.testing import tractor_test


    async def double(x):
        return 2 * x


    @tractor_test
    async def test_with_the_decorator(arb_addr, start_method):
        assert tractor.current_actor().is_arbiter
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('doubler', double, x=21)
            assert await portal.result() == 42


    @tractor_test
    async def test_without_asking_for_fixtures():
        assert tractor.current_actor().name == 'arbiter'


    async def test_plain_pytest_trio(arb_addr, tractor_transport,
                                     tractor_codec):
        async with tractor.open_root_actor(arbiter_addr=arb_addr,
                                           transport=tractor_transport,
                                           codec=tractor_codec):
            async with tractor.open_nursery() as n:
                portal = await n.run_in_actor('doubler', double, x=2)
                assert await portal.result() == 4
''')


@pytest.mark.parametrize('options', [
    [],
    ['--tractor-transport', 'zmq', '--tractor-codec', 'json',
     '--spawn-method', 'trio'],
])
def test_user_suite_with_the_plugin(tmp_path, options):
    (tmp_path / 'test_user.py').write_text(USER_TESTS)
    env = python_env()
    env.pop('PYTHONPATH', None)  # only what `pip install tractor` gives
    proc = run_python(
        ['-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         '-o', 'trio_mode=true', 'test_user.py', *options],
        cwd=str(tmp_path), env=env, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '3 passed' in proc.stdout


def test_importing_tractor_testing_does_not_import_pytest():
    proc = run_python(
        ['-c', 'import sys, tractor.testing; print("pytest" in sys.modules)'],
        timeout=30, cwd=os.path.dirname(__file__))
    assert proc.stdout.strip() == 'False', proc.stderr
