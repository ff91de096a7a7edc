"""``zmq`` secured: CURVE (CurveZMQ, libsodium) with the cluster keypair.

ZeroMQ has no TLS; its own encryption and authentication is CURVE. Every
``tcp://`` socket of a zmq stream -- the listener's rendezvous ROUTER and
fresh PAIRs as CURVE servers, the dialer's DEALER and PAIR as clients --
uses the cluster's one CURVE keypair (``curve.key`` of
:mod:`tractor._tls`): a client must know the server's public key to even
begin, and must hold the cluster's *secret* key to prove its own.

Proving it is checked by a ZAP handler (ZeroMQ's authentication protocol,
RFC 27): one thread per process answers libzmq's requests over
``inproc://zeromq.zap.01`` and admits a CURVE client only if its key is
the cluster's. A peer without the right keys never completes ZMTP, so no
frame of it ever reaches a stream; the listener logs each refusal at
WARNING and goes on.

Refusals on the dialing side are :class:`HandshakeError` from the monitor
events of its socket: the listener refused our key (ZAP status), the
other side does not speak CURVE (mechanism mismatch), or it dropped the
handshake (it holds another cluster's keys, so cannot read our hello).
"""
from __future__ import annotations

import os
import threading

import zmq

from ..log import get_logger
from ._base import HandshakeError

#: bytes CURVE adds around each message on the wire (the MESSAGE command's
#: name, a nonce, the box's MAC and flags: 33), which libzmq's MAXMSGSIZE
#: counts; a frame of max_frame bytes must still fit
MESSAGE_OVERHEAD = 64

log = get_logger(__name__)

_ZAP_ENDPOINT = 'inproc://zeromq.zap.01'
#: (context id, pid) -> the ZAP thread serving that context
_zap: dict[tuple[int, int], threading.Thread] = {}
_zap_lock = threading.Lock()

_EV_HS_FAILED_AUTH = int(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_EV_HS_FAILED_PROTOCOL = int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
_EV_HS_FAILED_NO_DETAIL = int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_EV_DISCONNECTED = int(zmq.EVENT_DISCONNECTED)
_EV_CLOSED = int(zmq.EVENT_CLOSED)
_MECHANISM_MISMATCH = getattr(
    zmq, 'PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH', 0x11000003)


def secure(sock: zmq.Socket, keys, server: bool) -> None:
    """Make ``sock`` a CURVE server or client with the cluster keys
    (before it binds or connects)."""
    public, secret = keys.curve()
    if server:
        ensure_zap(sock.context, public)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        # every connection asks the ZAP handler, also with a null domain
        sock.setsockopt(zmq.ZAP_DOMAIN, b'tractor')
    else:
        sock.setsockopt(zmq.CURVE_SERVERKEY, public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


def ensure_zap(ctx: zmq.Context, public: bytes) -> None:
    """Start the ZAP handler of ``ctx`` (once per context and process)."""
    k = (id(ctx), os.getpid())
    with _zap_lock:
        if k in _zap and _zap[k].is_alive():
            return
        rep = ctx.socket(zmq.REP)
        rep.setsockopt(zmq.LINGER, 0)
        rep.bind(_ZAP_ENDPOINT)
        t = threading.Thread(target=_serve_zap, args=(rep, public),
                             name='tractor-zap', daemon=True)
        t.start()
        _zap[k] = t


def _serve_zap(rep: zmq.Socket, public: bytes) -> None:
    """Answer ZAP requests until the context is terminated."""
    try:
        while True:
            req = rep.recv_multipart()
            # version, request id, domain, address, identity, mechanism,
            # credentials...
            version, rid, _, address, _, mechanism = req[:6]
            creds = req[6:]
            if mechanism == b'CURVE' and creds and creds[0] == public:
                status, text = b'200', b'OK'
            else:
                status, text = b'400', b'not a key of this cluster'
                log.warning(
                    'refused connection from %s: %s (copy the tls directory '
                    'of this cluster to its host, or start it with the same '
                    'tls=TLSConfig)', address.decode(errors='replace'),
                    f'its {mechanism.decode(errors="replace")} key is not '
                    f"this cluster's")
            rep.send_multipart([version, rid, status, text, b'', b''])
    except zmq.ContextTerminated:
        pass
    finally:
        rep.close(linger=0)


def refused(ev: int, val: int, peer, curve: bool,
            tcp_up: bool) -> HandshakeError | None:
    """The :class:`HandshakeError` for a monitor event of a dialing socket
    (``curve``: a CURVE client) that failed before ZMTP completed, after
    its TCP connection was made (``tcp_up``); None if ``ev`` is no
    refusal."""
    if ev == _EV_HS_FAILED_AUTH:
        return HandshakeError(
            f'{peer} refused our CURVE key (ZAP status {val}): it belongs '
            f'to another cluster; copy the tls directory of the cluster to '
            f'this host, or use the same tls=TLSConfig')
    if ev == _EV_HS_FAILED_PROTOCOL:
        if val == _MECHANISM_MISMATCH:
            return HandshakeError(
                f'{peer} and this side disagree on encryption (CURVE): one '
                f'speaks it and the other does not; start every program of '
                f'the cluster with tls=True, or none of them')
        return HandshakeError(
            f'CURVE handshake with {peer} failed (ZMTP protocol error '
            f'{val:#x}): it holds another cluster\'s keys')
    if curve and tcp_up and ev in (_EV_DISCONNECTED, _EV_CLOSED,
                                   _EV_HS_FAILED_NO_DETAIL):
        return HandshakeError(
            f'{peer} dropped the connection during the CURVE handshake: it '
            f'holds another cluster\'s keys, or does not speak CURVE')
    if tcp_up and ev == _EV_HS_FAILED_NO_DETAIL:
        # a CURVE listener hangs up on a plaintext greeting, sometimes
        # before its own greeting (the mismatch above) reaches us
        return HandshakeError(
            f'{peer} hung up during the ZMTP handshake: it speaks CURVE '
            f'(tls=True) and this side does not (start every program of the '
            f'cluster with tls=True, or none of them), or it is too busy to '
            f'finish a handshake in time')
    return None
