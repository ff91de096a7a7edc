"""``tractor.current_actor()``: who am I, in the root and in children."""
import os

import pytest

import tractor

pytestmark = pytest.mark.timeout(60)


def describe():
    actor = tractor.current_actor()
    return {'name': actor.name, 'uid': list(actor.uid),
            'statespace': dict(actor.statespace),
            'is_arbiter': actor.is_arbiter, 'pid': os.getpid()}


def test_outside_any_actor_is_an_error():
    with pytest.raises(RuntimeError, match='no actor'):
        tractor.current_actor()


def test_root_and_children(arb_addr):
    async def main():
        root = describe()
        async with tractor.open_nursery() as n:
            p1 = await n.run_in_actor('kid', describe,
                                      statespace={'doggy': 10})
            p2 = await n.start_actor('daemon', statespace={'cat': [1, 2]},
                                     rpc_module_paths=[__name__])
            daemon = await p2.run(__name__, 'describe')
            uid = p2.channel.uid
            await p2.cancel_actor()
        return root, await p1.result(), daemon, uid

    root, kid, daemon, uid = tractor.run(
        main, name='director', arbiter_addr=arb_addr,
        statespace={'root': True})
    assert root['name'] == 'director' and root['is_arbiter']
    assert root['statespace'] == {'root': True}
    assert root['uid'][0] == 'director' and root['uid'][1]
    assert kid['name'] == 'kid' and not kid['is_arbiter']
    assert kid['statespace'] == {'doggy': 10}
    assert daemon['statespace'] == {'cat': [1, 2]}
    assert tuple(daemon['uid']) == tuple(uid)
    assert len({root['pid'], kid['pid'], daemon['pid']}) == 3
    # the uid's second part is unique per actor
    assert len({root['uid'][1], kid['uid'][1], daemon['uid'][1]}) == 3
    # and nothing is left over in this process afterwards
    with pytest.raises(RuntimeError):
        tractor.current_actor()
