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

import ipaddress
import os
import socket
import tempfile
import uuid
from dataclasses import dataclass
from typing import Union

#: schemes whose location is ``host:port``
INET_SCHEMES = frozenset({'tcp'})
#: schemes whose location is a filesystem path
PATH_SCHEMES = frozenset({'ipc'})

#: hosts that mean "every interface" when bound; never advertised
WILDCARD_HOSTS = frozenset({'0.0.0.0', '::', '', '*'})
#: environment variable naming the host to advertise when bound to a wildcard
ADVERTISE_ENV = 'TRACTOR_ADVERTISE_HOST'

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

    def with_host(self, host: str) -> 'Addr':
        return Addr(self.transport, self.scheme, host, self.port, self.path)

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
    def is_wildcard(self) -> bool:
        """Bound to every interface (``0.0.0.0``, ``::``): an address to
        listen on, never one to give to others."""
        return self.is_inet and self.host in WILDCARD_HOSTS

    @property
    def is_loopback(self) -> bool:
        return self.is_inet and _is_loopback(self.host)

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


# -- which address to give to others -------------------------------------
def _is_loopback(host: str) -> bool:
    if host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_host_toward(host: str) -> str | None:
    """This host's address on the route to ``host``, or None if there is
    no route. A UDP socket is "connected" there and asked its name: the
    kernel picks the source address it would use, and no packet is sent."""
    if not host or host in WILDCARD_HOSTS:
        return None
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, type_, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, type_, proto) as s:
                s.connect(sockaddr)
                return s.getsockname()[0]
        except OSError:
            continue
    return None


def _fallback_host(bound: Addr) -> str:
    """A last resort for a wildcard-bound actor that knows no arbiter to
    route toward: the address the host name resolves to, else loopback."""
    v6 = ':' in bound.host
    try:
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None,
                                               fam):
            host = str(sockaddr[0])
            if not _is_loopback(host):
                return host
    except OSError:
        pass
    return '::1' if v6 else '127.0.0.1'


def parse_advertise(advertise, bound: Addr) -> Addr:
    """Read an ``advertise_addr`` against the ``bound`` listen address.

    Accepted: a host (``'203.0.113.7'``), ``'host:port'``, a
    ``(host, port)`` pair, or a full address string. Port 0 (or none)
    means "the port actually bound". The transport is always the bound
    one: advertising is about *where*, not *how*.
    """
    if isinstance(advertise, Addr):
        host, port = advertise.host, advertise.port
    elif isinstance(advertise, (tuple, list)):
        if len(advertise) != 2:
            raise AddressError(
                f'advertise_addr: expected a host or (host, port), got '
                f'{advertise!r}')
        host, port = str(advertise[0]), int(advertise[1] or 0)
    elif isinstance(advertise, str) and '://' in advertise:
        a = Addr.parse(advertise, bound.transport)
        if not a.is_inet:
            raise AddressError(
                f'advertise_addr {advertise!r} is not a host:port address')
        host, port = a.host, a.port
    elif isinstance(advertise, str):
        host, _, port_s = advertise.rpartition(':')
        if advertise.count(':') == 1 and port_s.isdigit():
            port = int(port_s)  # host:port
        elif advertise.startswith('[') and ']:' in advertise:
            host, port_s = advertise[1:].split(']:', 1)  # [v6]:port
            port = int(port_s)
        else:
            host, port = advertise.strip('[]'), 0  # a host (maybe v6)
    else:
        raise AddressError(
            f'advertise_addr must be a host, host:port or (host, port), '
            f'not {type(advertise).__name__}: {advertise!r}')
    if not host or host in WILDCARD_HOSTS:
        raise AddressError(
            f'advertise_addr {advertise!r} names no host other actors could '
            f'reach')
    return Addr(bound.transport, bound.scheme, host=host,
                port=port or bound.port)


def advertised_addr(bound: Addr, advertise=None,
                    toward: Addr | None = None) -> Addr:
    """The address an actor listening on ``bound`` gives to others (its
    parent, the arbiter's registry).

    * ``advertise`` given: that (see :func:`parse_advertise`);
    * ``bound`` is a specific host (or an ipc path): ``bound`` itself;
    * bound to ``0.0.0.0``/``::``: ``$TRACTOR_ADVERTISE_HOST`` if set,
      else this host's address on the route to ``toward`` (the arbiter),
      else the address the host name resolves to, else loopback.
      A wildcard address is never advertised.
    """
    if not bound.is_inet:
        return bound
    if advertise is not None:
        return parse_advertise(advertise, bound)
    if not bound.is_wildcard:
        return bound
    env = os.environ.get(ADVERTISE_ENV)
    if env:
        return parse_advertise(env, bound)
    host = None
    if toward is not None and toward.is_inet:
        host = local_host_toward(toward.host)
    return bound.with_host(host or _fallback_host(bound))


def default_bind_toward(arbiter: Addr) -> Addr:
    """Where a root actor that is not the arbiter listens by default: the
    arbiter's own host when that is loopback or a wildcard (port 0), else
    this host's address on the route to the arbiter (port 0), so that a
    program on host B can join an arbiter on host A."""
    fresh = arbiter.fresh()
    if not arbiter.is_inet or arbiter.is_wildcard or arbiter.is_loopback:
        return fresh
    host = local_host_toward(arbiter.host)
    return fresh.with_host(host) if host else fresh
