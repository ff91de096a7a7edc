"""TLS for a whole actor tree: who holds which keys, and how they are made.

``tractor.run(..., tls=True)`` (or ``open_root_actor(tls=True)``, or
``$TRACTOR_TLS=1``) encrypts and mutually authenticates every channel of
the tree on the network transports:

* ``tcp``: TLS 1.3 (the standard :mod:`ssl` module) over the transport's
  own non-blocking socket, see :mod:`tractor.transports._tls_tcp`;
* ``nng``: nng's ``tls+tcp://`` with the same certificates;
* ``zmq``: CURVE, with a cluster keypair.

``uds`` and the ``ipc://`` variants never leave the host (a socket file in
a 0700 directory) and are left as they are.

Who is a peer
-------------
Peers are authenticated by the *cluster CA*, never by host name: actors
move between addresses, bind wildcards, and a whole cluster may share one
certificate. Both sides present a certificate (mutual TLS) and each checks
the other's against the CA, its validity dates and its purpose (TLS client
/ server). The HMAC handshake of :mod:`tractor._channel` still runs inside
the encrypted channel, so the shared secret keeps its meaning.

Zero configuration
------------------
With no files given, the first program that needs them creates, next to
the secret (:mod:`tractor._keyfiles`), a directory ``tls/`` holding a fresh
per-user CA certificate ``ca.pem``, a certificate ``cert.pem`` issued by it
with its key ``key.pem``, and a CURVE keypair ``curve.key``. The CA's own
private key is thrown away once the certificate is signed: nothing can
issue more certificates of this cluster, and there is one less key to
leak. To run a cluster across hosts, copy that directory to the same place
on every host (keeping its modes), or bring your own CA with
``tls=TLSConfig(ca=..., cert=..., key=...)``.

Keys are generated with the ``cryptography`` package (the ``tls`` extra),
which is only needed to *create* them.
"""
from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass, replace

from . import _keyfiles
from .log import get_logger

log = get_logger(__name__)

_ENV = 'TRACTOR_TLS'
#: the name every zero-config certificate carries (never checked: peers
#: are authenticated by the CA, see the module docstring)
CERT_NAME = 'tractor'
#: how long zero-config certificates are valid
_VALIDITY = datetime.timedelta(days=3650)
_FILES = ('ca.pem', 'cert.pem', 'key.pem', 'curve.key')


class TLSError(RuntimeError):
    """TLS was asked for but cannot be set up (missing files, missing
    ``cryptography``, unreadable keys); the message says what to do."""


def default_dir() -> str:
    """Where zero-config key material lives: ``<config dir>/tls``."""
    return os.path.join(_keyfiles.config_dir(), 'tls')


@dataclass(frozen=True)
class TLSConfig:
    """Where the TLS and CURVE key material of a tree comes from.

    ``ca``: PEM certificate(s) of the CA that issued every peer's
    certificate; ``cert``: this program's PEM certificate (chain);
    ``key``: its PEM private key; ``curve``: the zmq CURVE key file. Any
    left out comes from the zero-config directory (:func:`default_dir`),
    created on first use. ``TLSConfig()`` is what ``tls=True`` means.

    The files are read by every actor of the tree on its own host (only
    their paths travel to children), and private ones must be readable by
    this user alone (mode 0600 in a 0700 directory), as ssh requires of
    its keys.
    """

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    curve: str | None = None

    def __post_init__(self) -> None:
        given = [f for f in ('ca', 'cert', 'key') if getattr(self, f)]
        if given and len(given) != 3:
            raise TypeError(
                f'TLSConfig needs ca, cert and key together (got only '
                f'{", ".join(given)}): a certificate is checked against '
                f'its CA, and needs its private key')

    def absolute(self) -> 'TLSConfig':
        """The same config with absolute paths (for children that may run
        in another working directory)."""
        return replace(self, **{
            f: os.path.abspath(os.path.expanduser(v))
            for f in ('ca', 'cert', 'key', 'curve')
            if (v := getattr(self, f))})


def from_option(tls) -> TLSConfig | None:
    """``tls=`` of :func:`tractor.run` as a :class:`TLSConfig` (or None):
    ``True``, ``False``, a ``TLSConfig``, or ``None`` for
    ``$TRACTOR_TLS`` (``1``/``0``)."""
    if tls is None:
        raw = os.environ.get(_ENV, '').strip().lower()
        if raw in ('', '0', 'no', 'false', 'off'):
            return None
        if raw not in ('1', 'yes', 'true', 'on'):
            raise ValueError(
                f'${_ENV}={raw!r}: expected 1 (encrypt every channel) or 0')
        tls = True
    if tls is True:
        return TLSConfig()
    if tls is False:
        return None
    if isinstance(tls, TLSConfig):
        return tls.absolute()
    raise TypeError(
        f'tls= takes True, False or a tractor.TLSConfig, not {tls!r}')


# -- key material -------------------------------------------------------
def _need_cryptography():
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise TLSError(
            'creating TLS keys needs the cryptography package: pip install '
            '"tractor[tls]" (or copy an existing key directory, or pass '
            'tls=tractor.TLSConfig(ca=..., cert=..., key=...))') from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization as ser
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                             ser.NoEncryption())


def _key_usage(**allowed):
    """An X.509 key usage allowing only ``allowed``."""
    from cryptography import x509
    flags = dict.fromkeys((
        'digital_signature', 'content_commitment', 'key_encipherment',
        'data_encipherment', 'key_agreement', 'key_cert_sign', 'crl_sign',
        'encipher_only', 'decipher_only'), False)
    return x509.KeyUsage(**{**flags, **allowed})


def make_ca(name: str = 'tractor cluster CA'):
    """A new self-signed CA: ``(certificate, private key)`` objects of
    ``cryptography``."""
    _need_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                           critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca_cert, ca_key, *, not_before=None, not_after=None,
          purposes=None) -> tuple[bytes, bytes]:
    """A certificate for :data:`CERT_NAME` signed by the CA: ``(cert PEM,
    key PEM)``. ``purposes`` are extended key usage OIDs (default: TLS
    client and server, what every actor is)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    if purposes is None:
        purposes = [ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, CERT_NAME)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - datetime.timedelta(hours=1))
            .not_valid_after(not_after or now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(CERT_NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(_key_usage(digital_signature=True),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM), _pem_key(key)


def _curve_secret() -> bytes:
    """A new CURVE (X25519) secret key, as the hex text of curve.key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey)
    from cryptography.hazmat.primitives.serialization import (
        Encoding, NoEncryption, PrivateFormat)
    raw = X25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return raw.hex().encode() + b'\n'


def fill_dir(path: str) -> None:
    """Write a new cluster's key material into directory ``path``: CA
    certificate, certificate and key, CURVE key (see the module
    docstring; the CA key is not kept)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    ca_cert, ca_key = make_ca()
    cert, key = issue(ca_cert, ca_key)
    _keyfiles.write_private(os.path.join(path, 'ca.pem'),
                            ca_cert.public_bytes(Encoding.PEM))
    _keyfiles.write_private(os.path.join(path, 'cert.pem'), cert)
    _keyfiles.write_private(os.path.join(path, 'key.pem'), key)
    _keyfiles.write_private(os.path.join(path, 'curve.key'), _curve_secret())


def ensure_dir(path: str | None = None) -> str:
    """The zero-config directory, created (race-safely) if missing."""
    path = path or default_dir()
    if not os.path.isdir(path):
        _need_cryptography()
        _keyfiles.publish_dir(path, fill_dir)
        log.info('created TLS key material for this user in %s', path)
    return path


class Keys:
    """The key material of one :class:`TLSConfig`, read and checked once
    per process; what a transport is given as its ``tls``. Builds what
    each backend wants from it (and caches it): :mod:`ssl` contexts for
    tcp, PEM text for nng, raw keys for zmq CURVE."""

    def __init__(self, config: TLSConfig) -> None:
        self.config = config
        self._cache: dict = {}

    def __repr__(self) -> str:
        return f'<tractor TLS keys {self.config}>'

    def _path(self, what: str) -> str:
        path = getattr(self.config, what)
        if path is None:
            path = os.path.join(ensure_dir(), f'{what}.{_ext(what)}')
        if not os.path.exists(path):
            raise TLSError(
                f'TLS {what} file {path} does not exist'
                + ('' if getattr(self.config, what) else
                   f': the directory {os.path.dirname(path)} is incomplete; '
                   f'copy it whole from another host, or delete it to have '
                   f'a new cluster CA created'))
        return path

    def paths(self) -> tuple[str, str, str]:
        """``(ca, cert, key)``, the key's permissions checked."""
        got = self._cache.get('paths')
        if got is None:
            ca, cert, key = (self._path(w) for w in ('ca', 'cert', 'key'))
            _keyfiles.check_private(key)
            got = self._cache['paths'] = (ca, cert, key)
        return got

    def _context(self, side) -> ssl.SSLContext:
        ca, cert, key = self.paths()
        ctx = ssl.SSLContext(side)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        # peers are authenticated by the cluster CA, not by name
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(cafile=ca)
            ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as err:
            raise TLSError(
                f'cannot load the TLS certificate {cert} / key {key} / CA '
                f'{ca}: {err}') from None
        if side == ssl.PROTOCOL_TLS_SERVER:
            # no session resumption: every connection authenticates anew,
            # and no tickets to send after the handshake
            ctx.num_tickets = 0
        return ctx

    def ssl_context(self, server: bool) -> ssl.SSLContext:
        """The :mod:`ssl` context of a TLS 1.3 server or client: mutual
        authentication against the CA, host names not checked."""
        k = ('ssl', server)
        ctx = self._cache.get(k)
        if ctx is None:
            ctx = self._cache[k] = self._context(
                ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        return ctx

    def pem(self) -> tuple[str, str, str]:
        """``(ca, cert, key)`` as PEM text (for nng)."""
        got = self._cache.get('pem')
        if got is None:
            texts = []
            for p in self.paths():
                with open(p) as f:
                    texts.append(f.read())
            got = self._cache['pem'] = tuple(texts)
        return got

    def cert_name(self) -> str:
        """The (first DNS, else common) name in our certificate."""
        got = self._cache.get('name')
        if got is None:
            got = CERT_NAME
            try:
                from cryptography import x509
                from cryptography.x509.oid import NameOID
            except ImportError:
                pass
            else:
                with open(self.paths()[1], 'rb') as f:
                    cert = x509.load_pem_x509_certificate(f.read())
                try:
                    san = cert.extensions.get_extension_for_class(
                        x509.SubjectAlternativeName).value
                    got = san.get_values_for_type(x509.DNSName)[0]
                except (x509.ExtensionNotFound, IndexError):
                    cn = cert.subject.get_attributes_for_oid(
                        NameOID.COMMON_NAME)
                    got = str(cn[0].value) if cn else CERT_NAME
            self._cache['name'] = got
        return got

    def curve(self) -> tuple[bytes, bytes]:
        """``(public, secret)`` CURVE keys, 32 raw bytes each."""
        got = self._cache.get('curve')
        if got is None:
            path = self._path('curve')
            _keyfiles.check_private(path)
            with open(path, 'rb') as f:
                text = f.read().strip()
            try:
                secret = bytes.fromhex(text.decode())
                if len(secret) != 32:
                    raise ValueError(f'{len(secret)} bytes, not 32')
            except ValueError as err:
                raise TLSError(
                    f'the CURVE key file {path} does not hold a 64-digit hex '
                    f'secret key ({err})') from None
            from zmq import curve_public
            from zmq.utils.z85 import decode, encode
            public = decode(curve_public(encode(secret)))
            got = self._cache['curve'] = (public, secret)
        return got


def _ext(what: str) -> str:
    return 'key' if what == 'curve' else 'pem'


def keys_for(config: TLSConfig | None) -> Keys | None:
    """The :class:`Keys` of ``config``, shared by every transport of the
    process that uses the same config."""
    if config is None:
        return None
    # files left out come from the default directory as it is now
    k = (config, default_dir())
    keys = _keys.get(k)
    if keys is None:
        keys = _keys[k] = Keys(config)
    return keys


_keys: dict[tuple, Keys] = {}


#: ``transport=`` suffixes that mean "this transport, secured": what the
#: benchmark and test matrices call the variants (``tcp+tls``...)
SUFFIXES = ('tls', 'curve')


def split_transport(transport: str, tls) -> tuple[str, object]:
    """``('tcp', True)`` for ``transport='tcp+tls'`` (``'zmq+curve'``
    likewise): the secured variant name is ``tls=True`` on the plain
    transport."""
    name, sep, suffix = transport.rpartition('+')
    if not sep or suffix not in SUFFIXES:
        return transport, tls
    if suffix == 'curve' and name.partition('+')[0] != 'zmq':
        raise ValueError(
            f'transport={transport!r}: CURVE is zmq\'s; use {name}+tls')
    if tls is False:
        raise ValueError(
            f'transport={transport!r} asks for TLS but tls=False')
    return name, True if tls is None else tls


def install(transport, config: TLSConfig | None):
    """Give ``transport`` (an instance) the keys of ``config``, checked
    now so that a missing or loose key fails the program at start, not at
    its first connection; returns what it had, to put back."""
    before = getattr(transport, 'tls', None)
    if config is None:
        if before is not None:
            transport.tls = None
        return before
    if not hasattr(transport, 'tls'):
        raise TLSError(
            f'the {transport.name!r} transport does not support TLS; use '
            f'tcp, nng or zmq with tls=True')
    keys = keys_for(config)
    assert keys is not None  # (config is not None)
    if transport.name == 'zmq':
        keys.curve()
    elif transport.name in ('tcp', 'nng'):
        keys.paths()
    transport.tls = keys
    return before
