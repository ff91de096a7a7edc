"""``nng`` with TLS: nng's own ``tls+tcp://`` (mbedTLS), same certificates.

Every socket of an nng stream -- the listener's rendezvous, the dialer's
request and both ends of the pair -- carries one :class:`pynng.TLSConfig`
built from the tree's key material (:class:`tractor._tls.Keys`): the
listening side as TLS server, the dialing side as client, both presenting
a certificate and requiring one from the CA.

nng (mbedTLS) checks the server certificate's *name* against the dialed
host unless told which name to expect; tractor authenticates peers by the
CA, not by host (see :mod:`tractor._tls`), so the dialer expects the name
its own certificate carries: ``tractor`` for zero-config certificates, and
for your own CA the (first) DNS name of your certificate, which must then
be shared by the certificates of the cluster on nng.

One limitation of nng's TLS layer (not of TLS): a peer that closes while
the reader has left more than nng's queue of frames unread is sometimes
not noticed when the reader catches up (nng loses the end of the stream
it met while reading was paused); a Channel's heartbeat then declares it
gone within ``liveness_timeout``, as it would a silent peer.

nng runs the TLS handshake on its own threads and only reports that it
failed (``NNG_ECRYPTO``, ``NNG_EPEERAUTH``), not why, so a refusal here
says what the possible causes are rather than which one it was.
"""
from __future__ import annotations

import atexit

import pynng

from ._base import HandshakeError

_REFUSED = (
    'it trusts another CA, one of the two certificates is expired or not '
    'for TLS client/server use, or it does not speak TLS (start every '
    'program of the cluster with tls=True, or none of them)')


def url(url: str) -> str:
    """``tcp://host:port`` as nng's TLS url."""
    return 'tls+' + url


def config(keys, server: bool) -> pynng.TLSConfig:
    """The :class:`pynng.TLSConfig` of a listening (``server``) or dialing
    socket, cached on ``keys``."""
    k = ('nng', server)
    conf = keys._cache.get(k)
    if conf is None:
        if not _made:
            # free them while pynng is still whole (its __del__ fails at
            # interpreter teardown)
            atexit.register(_drop, _made)
            # and skip pynng's nng_fini() at exit: with a TLS connection
            # still being torn down inside nng it panics ("pthread_mutex_
            # lock: Invalid argument") and the process dies of SIGABRT;
            # the OS frees everything at exit anyway
            try:
                atexit.unregister(pynng.nng._pynng_atexit)
            except AttributeError:  # pragma: no cover - another pynng
                pass
        ca, cert, key = keys.pem()
        conf = keys._cache[k] = pynng.TLSConfig(
            pynng.TLSConfig.MODE_SERVER if server
            else pynng.TLSConfig.MODE_CLIENT,
            server_name=None if server else keys.cert_name(),
            ca_string=ca, own_cert_string=cert, own_key_string=key,
            auth_mode=pynng.TLSConfig.AUTH_MODE_REQUIRED)
        _made.append((keys, k))
    return conf


_made: list = []


def _drop(made: list) -> None:
    for keys, k in made:
        keys._cache.pop(k, None)
    made.clear()


def refused(what, err) -> HandshakeError | None:
    """The :class:`HandshakeError` for a failed TLS dial, None if ``err``
    is not a TLS failure."""
    if isinstance(err, (pynng.CryptoError, pynng.AuthenticationError)):
        return HandshakeError(
            f'TLS handshake with {what} failed ({err}): {_REFUSED}')
    return None


def plaintext_refused(what, err) -> HandshakeError | None:
    """The :class:`HandshakeError` for a plaintext dial that a TLS
    listener hung up on during nng's connection handshake."""
    if isinstance(err, pynng.NNGException) and \
            getattr(err, 'errno', None) == pynng._nng.lib.NNG_ECONNSHUT:
        return HandshakeError(
            f'{what} hung up during the connection handshake ({err}): it '
            f'probably speaks TLS and this side does not; start every '
            f'program of the cluster with tls=True, or none of them')
    return None
