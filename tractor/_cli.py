"""The ``tractor`` command line (also ``python -m tractor``).

::

    tractor ls      [-a ADDRESS] [-t TRANSPORT] [-c CODEC]  # who is registered
    tractor ping NAME [-a ADDRESS] ...                      # one round trip
    tractor arbiter [ADDRESS] [-t TRANSPORT] [-c CODEC]     # a standalone arbiter
    tractor secret                                          # where the secret is

``ls`` and ``ping`` are *clients*: each request travels over a bare
:class:`~tractor.Channel` of its own -- the runtime's handshake, so the
cluster's secret is proven exactly as an actor proves it -- and no root
actor is started. The command line therefore never appears in the
arbiter's registry, and nothing of it is left there when it exits (a root
actor would have registered itself, and a killed one would stay listed
until its connection dropped).

The arbiter, transport and codec default to what an unchanged program
would use (``$TRACTOR_ARBITER_ADDR``, ``$TRACTOR_TRANSPORT``,
``$TRACTOR_CODEC``, else ``127.0.0.1:1616``, ``tcp``, ``msgpack``): the
same function reads them for both. ``arbiter`` is
:func:`tractor.run_arbiter`, what ``examples/multihost/arbiter.py`` runs.

Every failure is one line on stderr saying what to do next, and an exit
status from :class:`ExitCode`, so scripts can tell "nobody there" from
"a stranger there" from "a typo".
"""
from __future__ import annotations

import argparse
import enum
import os
import sys
import time
import uuid
from typing import Any, Sequence

import trio

from . import _auth, _tls
from ._channel import Channel
from ._exceptions import HandshakeError, RemoteActorError
from ._keyfiles import KeyFileError
from ._protocol import request
from ._root import _network_defaults, parse_arbiter_addr, run_arbiter
from .codecs import UnknownCodec
from .transports import (
    Addr,
    AddressError,
    TransportClosed,
    UnknownTransport,
    get_transport,
)

#: seconds ``ls``/``ping`` wait for an answer by default
DEFAULT_TIMEOUT = 5.0


class ExitCode(enum.IntEnum):
    """What the exit status of ``tractor`` means."""

    OK = 0
    #: the command ran and failed: the arbiter's address is taken, the
    #: peer answered with an error, the secret file cannot be written
    FAILED = 1
    #: the command line itself is wrong (argparse's own status)
    USAGE = 2
    #: an address that cannot be read (``--arbiter``, $TRACTOR_ARBITER_ADDR)
    BAD_ADDRESS = 3
    #: a transport or codec name that is not installed or does not exist
    UNKNOWN_NAME = 4
    #: nothing answers at the address: connection refused, or closed
    UNREACHABLE = 5
    #: connected, but no answer within ``--timeout``
    TIMEOUT = 6
    #: somebody answered but the handshake failed: another secret, codec
    #: or protocol version, or not tractor at all
    DENIED = 7
    #: ``ping``: no actor of that name is registered
    NOT_FOUND = 8
    #: interrupted (Ctrl-C), as shells report it
    INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line and an exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- talking to actors -----------------------------------------------------
#: how each way a peer can fail us becomes an exit status and a sentence,
#: in one place; the first matching type wins (a HandshakeError is a
#: TransportClosed, so it comes first)
_PEER_FAILURES: list[tuple[Any, ExitCode, str]] = [
    (trio.TooSlowError, ExitCode.TIMEOUT,
     '{what} did not answer within {timeout} s (is it the right address? '
     '--timeout waits longer)'),
    (HandshakeError, ExitCode.DENIED,
     '{what} refused us: {err} (this command uses $TRACTOR_SECRET or the '
     'file `tractor secret` names, and --codec)'),
    ((TransportClosed, OSError), ExitCode.UNREACHABLE,
     '{what} does not answer ({err}): is it running, and on this '
     'transport?'),
    (RemoteActorError, ExitCode.FAILED,
     '{what} answered with an error (is it an arbiter?): {err}'),
]


def _said(err: BaseException) -> str:
    """The first line of what ``err`` says (a remote error's message
    carries its whole traceback), after its type if it is remote."""
    first = (str(err).splitlines() or [''])[0]
    if isinstance(err, RemoteActorError):
        return f'{err.type_name}: {first}'
    return first


async def _call(addr, args, what: str, method: str,
                **kw) -> tuple[Any, float, tuple]:
    """Call the runtime method ``method`` of the actor at ``addr`` over a
    channel of our own; return its result, the seconds the call took (the
    handshake excluded) and the actor's uid. ``what`` names the peer in
    errors."""
    try:
        with trio.fail_after(args.timeout):
            chan = await Channel.connect(
                addr, transport=args.transport, codec=args.codec,
                uid=('tractor-cli', str(uuid.uuid4())))
            try:
                start = time.perf_counter()
                result = await request(chan, 'self', method, **kw)
                took = time.perf_counter() - start
            finally:
                with trio.CancelScope(shield=True):
                    await chan.aclose()
    except Exception as err:
        for kind, code, text in _PEER_FAILURES:
            if isinstance(err, kind):
                raise CliError(code, text.format(
                    what=what, timeout=args.timeout, err=_said(err))) from None
        raise
    return result, took, chan.uid or ('?', '?')


def _network(args, address: str | None) -> Addr:
    """The arbiter's address, with ``args.transport`` and ``args.codec``
    filled in as an unchanged program would fill them."""
    given = (parse_arbiter_addr(address, 'the address ')
             if address is not None else None)
    addr, args.transport, args.codec = _network_defaults(
        given, args.transport, args.codec)
    # a TLS cluster ($TRACTOR_TLS=1, or --transport tcp+tls) is spoken to
    # over TLS, with this user's keys
    args.transport, tls = _tls.split_transport(args.transport, None)
    args.tls = _tls.from_option(tls)
    _tls.install(get_transport(args.transport), args.tls)
    return Addr.parse(addr, args.transport)


def registry_rows(registry: dict) -> list[tuple[str, str, str]]:
    """``(name, uuid, address)`` for every entry of the arbiter's
    ``get_registry()`` answer (keys are ``name.uuid``; a name may hold
    dots, a uuid does not), sorted by name."""
    rows = []
    for key, addr in registry.items():
        name, _, uid = key.rpartition('.')
        rows.append((name, uid, str(addr)))
    return sorted(rows)


# -- the commands ----------------------------------------------------------
def _ls(args) -> None:
    arb = _network(args, args.arbiter)
    registry, _, _ = trio.run(
        _call, arb, args, f'the arbiter at {arb}', 'get_registry')
    rows = registry_rows(registry)
    width = max(len(name) for name, _, _ in rows) if rows else 0
    for name, uid, addr in rows:
        print(f'{name:<{width}}  {uid}  {addr}')


async def _ping_actor(args) -> None:
    arb = _network(args, args.arbiter)
    addr, _, _ = await _call(arb, args, f'the arbiter at {arb}',
                             'find_actor', name=args.name)
    if addr is None:
        raise CliError(ExitCode.NOT_FOUND,
                       f'no actor named {args.name!r} is registered with '
                       f'the arbiter at {arb} (`tractor ls` lists those '
                       f'that are)')
    reply, took, uid = await _call(addr, args,
                                   f'actor {args.name!r} at {addr}', 'ping')
    print(f'{reply} from {uid[0]} {uid[1]} at {addr}: '
          f'time={took * 1000:.2f} ms')


def _ping(args) -> None:
    trio.run(_ping_actor, args)


def _arbiter(args) -> None:
    arb = _network(args, args.address)
    try:
        run_arbiter(arb, transport=args.transport, codec=args.codec,
                    loglevel=args.loglevel, tls=args.tls)
    except (RuntimeError, OSError) as err:
        raise CliError(ExitCode.FAILED, str(err)) from None


def _secret(args) -> None:
    if os.environ.get(_auth._ENV):
        print('the secret comes from $TRACTOR_SECRET (no file is read)')
        return
    path = _auth.secret_file()
    created = not os.path.exists(path)
    try:
        _auth._read_or_create(path)
    except KeyFileError as err:
        # where it is, and (as every program will refuse it) how to fix it
        print(f'warning: {err}', file=sys.stderr)
    except OSError as err:
        raise CliError(ExitCode.FAILED,
                       f'cannot read or create the secret file: {err} (set '
                       f'$TRACTOR_SECRET_FILE to a writable path)') from None
    if created:
        print(f'created a new secret in {path}', file=sys.stderr)
    print(path)


# -- the parser ------------------------------------------------------------
def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(
            f'{value!r} is not a positive number of seconds')
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='tractor',
        description='Ask a running tractor cluster what is registered, '
                    'ping an actor, run a standalone arbiter.',
        epilog='Exit status: ' + ', '.join(
            f'{c.value} {c.name.lower()}' for c in ExitCode) + '.')
    sub = parser.add_subparsers(title='commands', metavar='COMMAND')

    wire = argparse.ArgumentParser(add_help=False)
    wire.add_argument(
        '-t', '--transport',
        help='how to read a host:port address: tcp, uds, nng, zmq, '
             'nng+ipc... (default: $TRACTOR_TRANSPORT, else tcp)')
    wire.add_argument(
        '-c', '--codec',
        help="the cluster's codec: msgpack, json (default: "
             '$TRACTOR_CODEC, else msgpack)')
    client = argparse.ArgumentParser(add_help=False, parents=[wire])
    client.add_argument(
        '-a', '--arbiter', metavar='ADDRESS',
        help='the arbiter: host:port or an address such as '
             'tcp://10.0.0.1:1616 or ipc:///path.sock (default: '
             '$TRACTOR_ARBITER_ADDR, else 127.0.0.1:1616)')
    client.add_argument(
        '--timeout', type=_timeout, default=DEFAULT_TIMEOUT,
        metavar='SECONDS',
        help=f'give up on a peer after this long (default '
             f'{DEFAULT_TIMEOUT:g})')

    def command(name, run, parents, summary, description):
        cmd = sub.add_parser(name, parents=parents, help=summary,
                             description=description)
        cmd.set_defaults(run=run)
        return cmd

    command('ls', _ls, [client], 'list the registered actors',
            'List the actors registered with the arbiter, one line each: '
            'name, uid, address.')
    ping = command(
        'ping', _ping, [client], 'time a round trip to an actor',
        'Find the actor NAME through the arbiter (the newest one of that '
        'name), call it once and print the round-trip time.')
    ping.add_argument('name', metavar='NAME')
    arbiter = command(
        'arbiter', _arbiter, [wire], 'run a standalone arbiter',
        'Run an arbiter, the registry the programs of a cluster find actors '
        'in, until Ctrl-C or SIGTERM. Give it the address other hosts reach '
        'this one at.')
    arbiter.add_argument(
        'address', nargs='?', metavar='ADDRESS',
        help='host:port or an address such as tcp://10.0.0.1:1616 '
             '(default: $TRACTOR_ARBITER_ADDR, else 127.0.0.1:1616)')
    arbiter.add_argument('-l', '--loglevel',
                         help='console log level (info, debug, trace...)')
    command('secret', _secret, [], "print where the cluster's secret is kept",
            "Print the path of the file holding the cluster's secret "
            '($TRACTOR_SECRET_FILE, else ~/.config/tractor/secret), creating '
            'it (mode 0600) if there is none. Copy it to every host of a '
            'cluster, or set $TRACTOR_SECRET everywhere.')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, 'run'):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    try:
        args.run(args)
    except CliError as err:
        return _fail(err.code, str(err))
    except AddressError as err:
        return _fail(ExitCode.BAD_ADDRESS, str(err))
    except (UnknownTransport, UnknownCodec) as err:
        return _fail(ExitCode.UNKNOWN_NAME, str(err))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return ExitCode.OK


def _fail(code: ExitCode, message: str) -> int:
    print(f'tractor: error: {message}', file=sys.stderr)
    return code


def console_main() -> None:
    """The ``tractor`` console script."""
    sys.exit(main())
