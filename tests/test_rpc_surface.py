"""What a caller may reach in an exposed module: its functions, not the
module machinery (dunders) and not non-callables."""
import pytest

import tractor

pytestmark = pytest.mark.timeout(60)

SOME_CONSTANT = 42


def public():
    return 'ok'


def test_only_functions_are_callable(arb_addr):
    async def main():
        out = {}
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('s', rpc_module_paths=[__name__])
            out['public'] = await portal.run(__name__, 'public')
            for name in ('__loader__', '__builtins__', '__dict__',
                         'SOME_CONSTANT', 'nope'):
                try:
                    await portal.run(__name__, name)
                except tractor.RemoteActorError as err:
                    out[name] = err.type_name
            # the actor still serves
            out['again'] = await portal.run(__name__, 'public')
            await portal.cancel_actor()
        return out

    out = tractor.run(main, arbiter_addr=arb_addr)
    assert out['public'] == out['again'] == 'ok'
    for name in ('__loader__', '__builtins__', '__dict__', 'SOME_CONSTANT',
                 'nope'):
        assert out[name] == 'NoSuchFunction', (name, out)
