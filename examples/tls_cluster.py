"""Every channel of the tree encrypted and mutually authenticated: tcp
with TLS 1.3, nng with TLS, zmq with CURVE (uds and ipc:// stay local
and are left as they are). The keys are made on first use in
~/.config/tractor/tls; copy that directory to the other hosts of a
cluster, or pass tls=tractor.TLSConfig(ca=..., cert=..., key=...)."""
import tractor


async def whoami() -> str:
    return tractor.current_actor().name


async def main():
    async with tractor.open_nursery() as n:
        portal = await n.run_in_actor('worker', whoami)
        print(f'{await portal.result()} answered')


if __name__ == '__main__':
    tractor.run(main, tls=True)
