"""Addresses that carry their transport with them.

An actor's address travels through the arbiter's registry and across
codecs, so it must be a plain string that says *how* to reach the actor as
well as *where*. The string form is ``[transport+]scheme://location``:

==================================  ============  ======  ==================
string                              transport     scheme  location
==================================  ============  ======  ==================
``tcp://127.0.0.1:1616``            tcp           tcp     host and port
``ipc:///tmp/tractor-0/a.sock``     uds           ipc     socket file path
``nng+tcp://127.0.0.1:1616``        nng           tcp     host and port
``zmq+ipc:///tmp/tractor-0/b.sock`` zmq           ipc     socket file path
==================================  ============  ======  ==================

The seed README's ``(host, port)`` tuples still work everywhere an address
is accepted: they are read against the transport in force (``tcp`` unless
``tractor.run(transport=...)`` said otherwise). Under an ``ipc`` scheme a
tuple maps to a fixed socket path per ``(host, port)``, so the well-known
arbiter address ``('127.0.0.1', 1616)`` means one well-known socket file.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Union

#: schemes whose location is ``host:port``
INET_SCHEMES = frozenset({'tcp'})
#: schemes whose location is a filesystem path
PATH_SCHEMES = frozenset({'ipc'})

# bare scheme -> the transport that speaks it natively
_BARE = {'tcp': 'tcp', 'ipc': 'uds', 'unix': 'uds', 'uds': 'uds'}
# transport -> the scheme meant when a string or tuple does not say
_DEFAULT_SCHEME = {'tcp': 'tcp', 'uds': 'ipc'}


class AddressError(ValueError):
    """An address string or tuple that cannot be understood."""


def runtime_dir() -> str:
    """A private per-user directory for ipc socket files.

    Kept short because a unix socket path may not exceed 107 bytes.
    """
    base = os.environ.get('XDG_RUNTIME_DIR')
    if not base or not os.access(base, os.W_OK):
        base = tempfile.gettempdir()
    path = os.path.join(base, f'tractor-{os.getuid()}')
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


@dataclass(frozen=True)
class Addr:
    """A parsed address. ``str(addr)`` is its canonical wire form."""

    transport: str
    scheme: str
    host: str = ''
    port: int = 0
    path: str = ''

    # -- construction --------------------------------------------------
    @classmethod
    def parse(
        cls,
        addr: Union['Addr', str, tuple, list],
        transport: str = 'tcp',
    ) -> 'Addr':
        """Read ``addr`` (an Addr, a string or a ``(host, port)`` pair).

        ``transport`` (``'nng'``, or ``'nng+ipc'`` to pick a scheme) is
        used when ``addr`` does not name one itself.
        """
        if isinstance(addr, Addr):
            return addr
        tname, _, tscheme = transport.partition('+')
        if isinstance(addr, (tuple, list)):
            if len(addr) != 2:
                raise AddressError(
                    f'expected a (host, port) pair, got {addr!r}')
            host, port = addr
            scheme = tscheme or _DEFAULT_SCHEME.get(tname, 'tcp')
            if scheme in PATH_SCHEMES:
                return cls(tname, scheme,
                           path=_tuple_path(tname, host, int(port)))
            return cls(tname, scheme, host=str(host), port=int(port))
        if not isinstance(addr, str):
            raise AddressError(
                f'an address is a string or a (host, port) pair, '
                f'not {type(addr).__name__}: {addr!r}')
        head, sep, loc = addr.partition('://')
        if not sep:
            raise AddressError(
                f'{addr!r} has no scheme; write e.g. tcp://127.0.0.1:1616 '
                f'or ipc:///path/to.sock')
        if '+' in head:
            tname, _, scheme = head.partition('+')
        elif head in _BARE:
            tname, scheme = _BARE[head], ('ipc' if head != 'tcp' else 'tcp')
        else:
            # a transport name alone: guess the scheme from the location
            tname = head
            scheme = 'ipc' if loc.startswith('/') else 'tcp'
        if scheme in PATH_SCHEMES:
            if not loc:
                raise AddressError(f'{addr!r} names no socket path')
            return cls(tname, scheme, path=loc)
        if scheme in INET_SCHEMES:
            host, sep, port = loc.rpartition(':')
            if not sep or not port.isdigit():
                raise AddressError(f'{addr!r} needs host:port')
            return cls(tname, scheme, host=host.strip('[]'), port=int(port))
        raise AddressError(
            f'unknown scheme {scheme!r} in {addr!r}; known: tcp, ipc')

    def with_port(self, port: int) -> 'Addr':
        return Addr(self.transport, self.scheme, self.host, port, self.path)

    def fresh(self) -> 'Addr':
        """An address of the same kind that any new actor may bind:
        port 0 for inet schemes, a new socket file for path schemes."""
        if self.scheme in PATH_SCHEMES:
            return Addr(self.transport, self.scheme, path=os.path.join(
                runtime_dir(), f'{self.transport}-{uuid.uuid4().hex[:12]}.sock'))
        return self.with_port(0)

    # -- views ---------------------------------------------------------
    @property
    def is_inet(self) -> bool:
        return self.scheme in INET_SCHEMES

    @property
    def location(self) -> str:
        """What follows ``://``: ``host:port`` or the path."""
        if self.scheme in PATH_SCHEMES:
            return self.path
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'{host}:{self.port}'

    @property
    def url(self) -> str:
        """``scheme://location`` without the transport, the form nng and
        zmq take natively."""
        return f'{self.scheme}://{self.location}'

    def as_tuple(self) -> tuple:
        """``(host, port)`` for inet addresses, ``(path, 0)`` otherwise,
        for code written against the seed README's tuples."""
        if self.is_inet:
            return (self.host, self.port)
        return (self.path, 0)

    def __str__(self) -> str:
        if _BARE.get(self.scheme) == self.transport:
            return self.url
        return f'{self.transport}+{self.url}'


def _tuple_path(transport: str, host: str, port: int) -> str:
    if port == 0:
        name = uuid.uuid4().hex[:12]
    else:
        name = f'{host}-{port}'
    return os.path.join(runtime_dir(), f'{transport}-{name}.sock')
