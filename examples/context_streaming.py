"""The README's ``@tractor.stream`` examples, with a local stand-in for the
web feed: ``web_request()`` fetches from an HTTP server this script runs
itself on 127.0.0.1, so the example needs no network."""
from typing import List

import trio
import tractor

# -- a local stand-in for 'http://data.feed.com' ------------------------


async def web_request(url):
    """GET ``url`` (http://127.0.0.1:PORT/...) and return the body."""
    host_port = url.split('//', 1)[1].split('/', 1)[0]
    host, port = host_port.split(':')
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            f'GET / HTTP/1.0\r\nHost: {host}\r\n\r\n'.encode())
        data = b''
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b'\r\n\r\n', 1)[1].decode()


async def serve_feed(task_status=trio.TASK_STATUS_IGNORED):
    count = 0

    async def handler(stream):
        nonlocal count
        count += 1
        await stream.receive_some(65536)
        body = f'price tick {count}'
        await stream.send_all(
            f'HTTP/1.0 200 OK\r\nContent-Length: {len(body)}\r\n\r\n'
            f'{body}'.encode())
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host='127.0.0.1')
    port = listeners[0].socket.getsockname()[1]
    task_status.started(f'http://127.0.0.1:{port}/feed')
    await trio.serve_listeners(handler, listeners)


# -- the README's streaming functions -----------------------------------

@tractor.stream
async def streamer(ctx: tractor.Context, url: str, rate: int = 2) -> None:
    """A simple web response streaming server.
    """
    while True:
        val = await web_request(url)

        # this is the same as ``yield`` in the async gen case
        await ctx.send_yield(val)

        await trio.sleep(1 / rate)


async def _streamer(
    ctx: tractor.Context,
    url: str,
    rate: int = 2
) -> None:
    """A simple web response streaming server.
    """
    while True:
        val = await web_request(url)

        # this is the same as ``yield`` in the async gen case
        await ctx.send_yield(val)

        await trio.sleep(1 / rate)


@tractor.stream
async def stream_multiple_sources(
    ctx: tractor.Context,
    sources: List[str]
) -> None:
    async with trio.open_nursery() as n:
        for url in sources:
            n.start_soon(_streamer, ctx, url)


async def main():
    async with trio.open_nursery() as feeds:
        url_a = await feeds.start(serve_feed)
        url_b = await feeds.start(serve_feed)
        async with tractor.open_nursery() as n:
            portal = await n.start_actor(
                'feeder', rpc_module_paths=[__name__])

            got = []
            async for value in await portal.run(
                    __name__, 'streamer', url=url_a, rate=50):
                got.append(value)
                if len(got) == 3:
                    break
            print('single source:', got)

            got = []
            async for value in await portal.run(
                __name__, 'stream_multiple_sources', sources=[url_a, url_b]
            ):
                got.append(value)
                if len(got) == 4:
                    break
            print('multiple sources:', len(got), 'ticks')

            await portal.cancel_actor()
        feeds.cancel_scope.cancel()


tractor.run(main)
