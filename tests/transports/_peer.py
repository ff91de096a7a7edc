"""A peer in its own process, for the transport conformance suite.

Run as ``python _peer.py MODE ADDR TRANSPORT [CODEC]``. It dials ``ADDR``
with ``tractor.transports.connect`` (or ``tractor.Channel.connect`` for the
``channel-*`` modes), then:

``echo``
    sends ``b'ready'``, then sends back every frame it receives.
``idle``
    sends ``b'ready'``, then sleeps until killed.
``channel-echo``
    handshakes (secret from ``$TRACTOR_SECRET``), runs the heartbeat, and
    sends back every message it receives; ``{'spin': secs}`` is sent back
    after holding the loop for ``secs`` in pure Python.
``channel-mute``
    handshakes, then sends nothing, heartbeats included, while its loop
    runs: a live process whose connection carries nothing.

With ``$TRACTOR_TLS=1`` the transport speaks TLS (zero-config keys), as
the test's side does for a secured variant (``tcp+tls``...).

With ``$PEER_RESPONDER=1`` the ``channel-*`` modes run a liveness responder
(as an actor does), so their hello advertises it.

It exits 0 when the other side closes; anything else is a bug and shows on
stderr (which pytest captures).
"""
import os
import sys
import time

import trio

import tractor
from tractor.transports import TransportClosed, connect


async def echo(addr: str, transport: str) -> None:
    stream = await connect(addr, transport)
    try:
        await stream.send(b'ready')
        while True:
            await stream.send(await stream.recv())
    except TransportClosed:
        pass
    finally:
        await stream.aclose()


async def idle(addr: str, transport: str) -> None:
    stream = await connect(addr, transport)
    await stream.send(b'ready')
    await trio.sleep_forever()


def _spin(secs: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < secs:
        pass


async def _connect(addr: str, transport: str, codec: str):
    if os.environ.get('PEER_RESPONDER') == '1':
        from tractor import _liveness
        _liveness.acquire('127.0.0.1')
    return await tractor.Channel.connect(
        addr, transport=transport, codec=codec,
        uid=('peer', str(os.getpid())),
        secret=os.environ['TRACTOR_SECRET'],
        heartbeat_interval=float(os.environ.get('PEER_HEARTBEAT', 0.2)),
        liveness_timeout=float(os.environ.get('PEER_LIVENESS', 1.0)),
    )


async def channel_echo(addr: str, transport: str, codec: str) -> None:
    chan = await _connect(addr, transport, codec)
    async with chan, trio.open_nursery() as n:
        n.start_soon(chan.run_service)
        async for msg in chan:
            if isinstance(msg, dict) and 'spin' in msg:
                _spin(msg['spin'])
            await chan.send(msg)
        n.cancel_scope.cancel()


async def channel_mute(addr: str, transport: str, codec: str) -> None:
    chan = await _connect(addr, transport, codec)
    async with chan:
        await trio.sleep_forever()


def main() -> None:
    mode, addr, transport = sys.argv[1:4]
    if os.environ.get('TRACTOR_TLS') == '1':
        # the secured variant of the transport, as the test's side has it
        from tractor import _tls
        from tractor.transports import get_transport
        _tls.install(get_transport(transport), _tls.TLSConfig())
    codec = sys.argv[4] if len(sys.argv) > 4 else 'msgpack'
    if mode == 'echo':
        trio.run(echo, addr, transport)
    elif mode == 'idle':
        trio.run(idle, addr, transport)
    elif mode == 'channel-echo':
        trio.run(channel_echo, addr, transport, codec)
    elif mode == 'channel-mute':
        trio.run(channel_mute, addr, transport, codec)
    else:
        sys.exit(f'unknown mode {mode!r}')


if __name__ == '__main__':
    main()
