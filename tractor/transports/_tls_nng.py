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

Limits of nng's TLS layer (not of TLS), all seen with nng 1.11:

* a peer's close is sometimes never reported: when it arrives together
  with data, or while the reader has left more than nng's queue of frames
  unread (nng loses the end of the stream it met then); the TCP
  connection is gone, the pipe stays. A Channel's heartbeat declares the
  peer gone within ``liveness_timeout``, as it would a silent peer;
* closing a connection while nng still moves its data can abort the
  process with a native panic (nanomsg/nng#2238, open upstream): the
  README tells users who need a process to survive hostile or churning
  peers to use tcp+tls or zmq+curve;
* overlapping handshakes sometimes fail (below).

nng's TLS layer sometimes fails a dial whose handshake overlaps others
on the same listener, more so while peers that do not speak TLS are being
turned away: about one dial in a hundred, ten at a time, here. The dialer
sees ``NNG_ECONNSHUT`` (nng issues #1666 and #1668 describe it), or now and
then ``NNG_ECRYPTO`` or ``NNG_EPEERAUTH``, although both sides hold good
certificates of one CA. A real refusal never ends in ``NNG_ECONNSHUT`` here
(another CA, a bad certificate or a plaintext listener give ``NNG_ECRYPTO``
or ``NNG_EPEERAUTH``, every time), so a TLS dial that meets it is tried
again up to :data:`DIAL_RETRIES` times, and one that meets the other two
:data:`CRYPTO_RETRIES` times: a peer that does not belong is still refused,
after three quick handshakes. The transport's handshake timeout bounds
the whole connect either way.

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


#: how many more times a TLS dial is tried after nng's listener hung up
#: on it (``NNG_ECONNSHUT``), and after a failed handshake (what a peer
#: that does not belong also gets); the pause before the first retry,
#: doubling each time
DIAL_RETRIES = 6
CRYPTO_RETRIES = 2
DIAL_BACKOFF = 0.005


def retries(err) -> int:
    """How many times a TLS dial that failed with ``err`` is worth trying
    again (see the module's docstring)."""
    code = getattr(err, 'errno', None)
    lib = pynng._nng.lib
    if code == lib.NNG_ECONNSHUT:
        return DIAL_RETRIES
    if code in (lib.NNG_ECRYPTO, lib.NNG_EPEERAUTH):
        return CRYPTO_RETRIES
    return 0


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
