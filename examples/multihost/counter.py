"""The service's functions: what the client calls on host C.

A module of its own, so that every program agrees on its name
(``portal.run('counter', 'count')``) and the service actor can import it.
"""
import trio
import tractor


async def count(start: int = 0, limit: int | None = None,
                delay: float = 0.05):
    """Stream ``start, start + 1, ...`` (forever unless ``limit``)."""
    n = start
    while limit is None or n < start + limit:
        yield n
        n += 1
        await trio.sleep(delay)


def where() -> dict:
    """Where this actor listens and what it told the arbiter."""
    actor = tractor.current_actor()
    return {'bind': str(actor.bind_addr), 'advertised': str(actor.accept_addr)}
