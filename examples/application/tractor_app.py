"""The program behind the README's "Windows gotchas" layout."""
import tractor


def work():
    return f'hello from {tractor.current_actor().name}'


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('worker', work)
    print(await portal.result())
