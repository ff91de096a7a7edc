"""Run the transport contract on a transport, as its author would: here
the one ``$TRACTOR_TRANSPORT`` names (``tcp`` by default), on a loopback
or socket-file address per scheme it speaks. A broken rule raises an
AssertionError that names it."""
import os

import trio

from tractor.testing import check_transport


async def main():
    name = os.environ.get('TRACTOR_TRANSPORT', 'tcp')
    report = await check_transport(
        name, rules=['objects', 'order', 'close', 'abort'])
    print(f'{report.transport}: {len(report.passed)} checks passed')


if __name__ == '__main__':
    trio.run(main)
