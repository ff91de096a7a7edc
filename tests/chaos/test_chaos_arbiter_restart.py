"""The arbiter dies and a new one starts on the same address.

A non-arbiter root with a daemon child is streaming from it when the
arbiter is SIGKILLed at a seeded point. What must hold, on every
transport: the root survives; the stream and later calls over the existing
channel go on unharmed (nothing lost, nothing reordered); discovery fails
with a clear error, not a hang, while there is no arbiter; and once a new
arbiter is up on the same address both actors have registered again
(tractor/_registrar.py) and ``find_actor`` finds them within a bound.
"""
from __future__ import annotations

import pytest

#: seconds from the new arbiter being up to find_actor finding an actor:
#: the keeper's longest backoff (RETRY_MAX=2s) plus a handshake, with slack
FIND_BOUND = 6.0


def check(res: dict, stream_n: int) -> None:
    assert not res['root_is_arbiter']
    assert res['found_before']
    assert res['stream_items'] == stream_n and not res['wrong'], res
    assert res['calls_ok'], res
    down = res['find_while_down']
    assert isinstance(down, dict), f'find_actor with no arbiter: {down}'
    assert res['arbiter2']['is_arbiter'], res
    found = res['found_after']
    assert set(found) == {'svc', 'root'}, (
        f'not registered again after the arbiter restart: found {found}')
    assert found['svc'][0] == [3, 9], found
    assert found['root'][0] == res['root_addr'], found
    for name, (answer, after) in found.items():
        assert after < FIND_BOUND, (name, after)
    assert res['calls_ok_after'], res


@pytest.mark.timeout(90)
def test_arbiter_restart(chaos, chaos_transport):
    res = chaos.run('rereg', chaos_transport, timeout=80, stream_n=2000)
    check(res, 2000)
    chaos.assert_all_gone(10)


@pytest.mark.slow
@pytest.mark.timeout(200)
@pytest.mark.parametrize('seed', [1, 2, 3])
def test_arbiter_restart_seeds(chaos, chaos_transport, seed):
    res = chaos.run('rereg', chaos_transport, timeout=180, seed=seed,
                    stream_n=50_000)
    check(res, 50_000)
    chaos.assert_all_gone(10)
