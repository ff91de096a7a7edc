"""Many actors started at once. A start costs CPU (a fork, imports, a
handshake): an actor starts at most ``SPAWN_CONCURRENCY`` children at a
time (``$TRACTOR_SPAWN_CONCURRENCY``) and the others wait their turn, so
that a burst of starts on a small machine comes up instead of timing out
its handshakes. The limit here is 2, so that 40 starts queue."""

import pytest

from tractor_testing import python_env, run_python

pytestmark = [pytest.mark.timeout(240), pytest.mark.alone]

SCRIPT = '''
import sys, trio, tractor

def whoami():
    return tractor.current_actor().name

async def main(count):
    async with tractor.open_nursery() as an:
        portals = [None] * count

        async def start(i):
            portals[i] = await an.start_actor(
                f'many{i}', rpc_module_paths=[__name__])

        async with trio.open_nursery() as tn:
            for i in range(count):
                tn.start_soon(start, i)
        names = [await p.run(__name__, 'whoami') for p in portals]
        await an.cancel()
    return names

if __name__ == '__main__':
    count = int(sys.argv[1])
    names = tractor.run(main, count, arbiter_addr=('127.0.0.1', int(sys.argv[2])))
    assert names == [f'many{i}' for i in range(count)], names
    print('all', len(names), 'answered')
'''


def test_a_burst_of_starts_waits_its_turn(tmp_path, arb_addr):
    script = tmp_path / 'many.py'
    script.write_text(SCRIPT)
    proc = run_python([str(script), '40', str(arb_addr[1])], timeout=200,
                      env=python_env(TRACTOR_SPAWN_CONCURRENCY='2'),
                      cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'all 40 answered' in proc.stdout
