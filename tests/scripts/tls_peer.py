"""Actor trees for tests/test_tls.py, run as a script.

``python tls_peer.py listen TRANSPORT PORT (CA CERT KEY CURVE | plain)``
    a root actor (the arbiter) on ``127.0.0.1:PORT``, with TLS from the
    given files (``plain`` instead of CA: no TLS), logging at WARNING to
    stderr; prints ``ready`` once it serves, then sleeps until SIGINT.
``python tls_peer.py token TRANSPORT PORT TOKEN``
    a tree (``TRANSPORT`` may be a secured variant, ``tcp+tls``...) whose
    root has a child echo ``TOKEN`` back over the wire; prints ``ok``.

The secret comes from ``$TRACTOR_SECRET``.
"""
import sys

import trio

import tractor


async def echo(token: str) -> str:
    return token


async def token_main(token: str) -> None:
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('echoer', echo, token=token)
        assert await portal.result() == token
    print('ok', flush=True)


async def listen_main() -> None:
    print('ready', flush=True)
    await trio.sleep_forever()


def main() -> None:
    mode, transport, port = sys.argv[1:4]
    arb = ('127.0.0.1', int(port))
    if mode == 'token':
        tractor.run(token_main, sys.argv[4], transport=transport,
                    arbiter_addr=arb, rpc_module_paths=[__name__])
    elif mode == 'listen':
        files = sys.argv[4:8]
        tls = (None if files[0] == 'plain' else
               tractor.TLSConfig(ca=files[0], cert=files[1], key=files[2],
                                 curve=files[3]))
        try:
            tractor.run(listen_main, transport=transport, arbiter_addr=arb,
                        tls=tls, loglevel='warning')
        except KeyboardInterrupt:
            pass
    else:
        sys.exit(f'unknown mode {mode!r}')


if __name__ == '__main__':
    main()
