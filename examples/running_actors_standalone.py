"""A standalone actor joining an existing tree: run this while another
tree (e.g. ``python -m tractor.daemon``-style ``tractor.run_daemon``) holds
the arbiter. The README used a LAN address; here it is loopback."""
import tractor


async def main():
    async with tractor.get_arbiter() as portal:
        registry = await portal.run('self', 'get_registry')
        print(f'joined a tree of {len(registry)} actors')


tractor.run(main, arbiter_addr=('127.0.0.1', 1616))
