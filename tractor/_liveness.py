"""Telling a busy actor from a hung one.

Why
---
A Channel declares its peer dead when nothing arrived for
``liveness_timeout`` seconds (see :mod:`tractor._channel`): that is how a
SIGSTOPped process, a frozen one or a host behind a pulled cable is noticed
although its kernel still ACKs. But an actor sends its heartbeats from its
trio loop, and user code holds that loop while it runs: a plain function
computing for 8 s -- the very reason to use processes -- or an async
function that never yields, fell silent and lost its actor.

How
---
Each actor process runs one small *responder*: a daemon thread on a UDP
socket of its own (so the data channel, and whatever TLS or zmq state it
has, needs no lock and no thread-safety). It answers *probe* datagrams
(``PROBE`` + a random nonce) with ``ANSWER`` + the same nonce + one status
byte. Pure-Python code gives up the GIL every switch interval (5 ms), so the
thread answers while user code holds the trio loop; a SIGSTOPped process,
a host cut off from the network, or a process that exited does not answer.

The status byte says whether the process's trio loop is *blocked*: the
thread asks the loop to run a no-op (``run_sync_soon``) and waits up to
``LOOP_CHECK`` seconds for it. ``B`` means it did not run: user code holds
the loop, and that excuses the silence. ``R`` means the loop runs: the
process is alive and unblocked, so its heartbeats should be arriving, and
if they are not the connection itself is broken (a stateful firewall or NAT
dropped the flow while UDP still passes, or the peer's channel is wedged):
the channel is then declared dead, as before this module existed.

The peer learns where to probe from the Channel hello's optional
``"alive": [host, port]`` field (``host`` empty: "the host you reach me
at"). Peers without it, or with a responder that is unreachable, are judged
by silence alone, exactly as before. Probes and answers have different
prefixes and an answer is never answered, so two responders cannot be made
to bounce datagrams between each other; an answer is as small as the probe,
so a responder amplifies nothing.

Limits
------
* A C call that holds the GIL for longer than the liveness timeout (a
  huge ``sum(range(...))``, a pathological regex, an extension that does not
  release the GIL) freezes the responder too: that actor is declared dead,
  like a SIGSTOPped one. Code that releases the GIL (``time.sleep``, I/O,
  numpy's large operations) or plain Python code is fine.
* A blocked loop is excused however long it stays blocked: a function
  that never returns keeps its actor "busy" for ever. Bound such calls
  from the caller (``trio.move_on_after``); a nursery's cancel still ends
  an actor that ignores it (SIGKILL after the grace period), which does
  not depend on liveness.
* The responder must be reachable over UDP from the peer, at the host the
  actor's listener binds (ipc transports: 127.0.0.1). Where UDP is
  filtered, or a NAT hides the actor, probes go unanswered and a busy actor
  is declared dead after the timeout as before.
* One responder per process (reference-counted), bound where the first
  actor of the process asked; a process runs one actor at a time.
"""
from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Optional

import trio

from .log import get_logger

log = get_logger(__name__)

#: a probe: this prefix, then a nonce of NONCE_LEN bytes
PROBE = b'TRACTOR?'
#: an answer: this prefix, the probe's nonce, then LOOP_BLOCKED/LOOP_RUNNING
ANSWER = b'TRACTOR!'
NONCE_LEN = 16
LOOP_BLOCKED = b'B'
LOOP_RUNNING = b'R'
_PROBE_LEN = len(PROBE) + NONCE_LEN
_ANSWER_LEN = len(ANSWER) + NONCE_LEN + 1
#: seconds the responder gives the trio loop to run a no-op before saying
#: it is blocked: far above a healthy loop's latency, far below a timeout
LOOP_CHECK = 0.1
#: a prober waits at least this long in all for an answer (a loaded
#: machine may not schedule the peer's thread at once)
MIN_PROBE_WAIT = 0.5
#: hosts that mean "every interface"
_WILDCARDS = frozenset({'', '0.0.0.0', '::', '*'})


class Responder:
    """The thread answering probes for this process; see the module
    docstring. Use :func:`acquire`/:func:`release`, not this directly."""

    def __init__(self, host: str) -> None:
        bind = '0.0.0.0' if host in ('', '*') else host
        family, type_, proto, _, sockaddr = socket.getaddrinfo(
            bind, 0, type=socket.SOCK_DGRAM)[0]
        self.sock = socket.socket(family, type_, proto)
        try:
            self.sock.bind(sockaddr)
            self.sock.setblocking(False)
            self.host, self.port = self.sock.getsockname()[:2]
            self._wake_r, self._wake_w = socket.socketpair()
        except BaseException:
            self.sock.close()
            raise
        #: the host a peer is told to probe: empty for a wildcard bind
        #: ("the host you reach me at")
        self.advertised = '' if bind in _WILDCARDS else self.host
        self.pid = os.getpid()
        self.token: Optional[trio.lowlevel.TrioToken] = None
        # the loop check in flight: (when it was posted, set when it ran)
        self._check: Optional[tuple] = None
        self._thread = threading.Thread(
            target=self._serve, name='tractor-liveness', daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sock = self.sock
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        wake_fd = self._wake_r.fileno()
        while True:
            events = poller.poll()
            if any(fd == wake_fd for fd, _ in events):
                return
            while True:
                try:
                    data, addr = sock.recvfrom(64)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    return
                if len(data) != _PROBE_LEN or not data.startswith(PROBE):
                    continue  # never answer an answer, nor noise
                try:
                    status = self._loop_status()
                    if status is None:
                        continue  # no loop: this process serves nothing
                    sock.sendto(ANSWER + data[len(PROBE):] + status, addr)
                except OSError:
                    pass
                except Exception:
                    # a bug here must not end the thread: its peers would
                    # then take this process for dead whenever it is busy
                    log.exception('liveness responder: answering %s', addr)

    def _loop_status(self) -> Optional[bytes]:
        """LOOP_RUNNING if the trio loop ran a no-op within LOOP_CHECK,
        LOOP_BLOCKED if not, None if there is no loop any more.

        One check is in flight at a time: while a blocked loop has not run
        it, every probe is answered at once from it, so many peers probing
        a busy actor together are all answered within LOOP_CHECK (and no
        callbacks pile up in the blocked loop)."""
        check = self._check
        if check is not None and not check[1].is_set():
            left = check[0] + LOOP_CHECK - time.monotonic()
            return LOOP_RUNNING if left > 0 and check[1].wait(left) \
                else LOOP_BLOCKED
        token = self.token
        if token is None:
            return None
        ran = threading.Event()
        try:
            token.run_sync_soon(ran.set)
        except trio.RunFinishedError:
            return None
        self._check = (time.monotonic(), ran)
        return LOOP_RUNNING if ran.wait(LOOP_CHECK) else LOOP_BLOCKED

    def hello_field(self) -> list:
        return [self.advertised, self.port]

    def stop(self) -> None:
        """Stop the thread and close the socket (the port is free after)."""
        if self.pid == os.getpid():
            try:
                self._wake_w.send(b'x')
            except OSError:
                pass
            self._thread.join(timeout=5)
        for s in (self.sock, self._wake_r, self._wake_w):
            s.close()


_responder: Optional[Responder] = None
_refs = 0


def _forget_after_fork() -> None:
    # a forked child has the socket but not the thread: close it, so the
    # child neither holds the port nor advertises a responder it lacks
    global _responder, _refs
    if _responder is not None:
        for s in (_responder.sock, _responder._wake_r, _responder._wake_w):
            s.close()
    _responder, _refs = None, 0


os.register_at_fork(after_in_child=_forget_after_fork)


def bind_host(bind_addr) -> str:
    """Where the responder of an actor listening on ``bind_addr`` binds:
    the listener's host (a wildcard stays a wildcard), 127.0.0.1 for an
    ipc transport."""
    if getattr(bind_addr, 'is_inet', False):
        return bind_addr.host or '0.0.0.0'
    return '127.0.0.1'


def acquire(host: str = '127.0.0.1') -> Responder:
    """Start this process's responder (or count one more user of it) and
    let it check the calling trio run's loop."""
    global _responder, _refs
    if _responder is None:
        _responder = Responder(host)
        _refs = 0
    elif host != _responder.host and log.isEnabledFor(10):
        log.debug('liveness responder stays at %s:%s (asked for %s)',
                  _responder.host, _responder.port, host)
    _refs += 1
    token = trio.lowlevel.current_trio_token()
    if token is not _responder.token:
        # a check posted to an earlier run's loop will never run
        _responder.token, _responder._check = token, None
    return _responder


def release() -> None:
    """One user fewer; the last one stops the responder."""
    global _responder, _refs
    if _responder is None:
        return
    _refs -= 1
    if _refs <= 0:
        r, _responder, _refs = _responder, None, 0
        r.stop()


async def serve(bind_addr, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run the responder while this task runs (an actor starts it in its
    service nursery, which is cancelled when the actor exits)."""
    acquire(bind_host(bind_addr))
    try:
        task_status.started()
        await trio.sleep_forever()
    finally:
        release()


def hello_field() -> Optional[list]:
    """The hello's ``"alive"`` value, or None without a responder."""
    r = _responder
    if r is None or r.pid != os.getpid():
        return None
    return r.hello_field()


def parse_field(value) -> Optional[tuple]:
    """``(host, port)`` from a peer's ``"alive"`` value; None if it sent
    none or something unusable (the peer is then judged by silence
    alone)."""
    if not (isinstance(value, list) and len(value) >= 2):
        return None
    host, port = value[0], value[1]
    if (not isinstance(host, str) or len(host) > 255
            or type(port) is not int or not 0 < port < 65536):
        return None
    return host, port


async def probe(host: str, port: int, wait: float = 1.0,
                tries: int = 3) -> Optional[bytes]:
    """Probe the responder at ``(host, port)`` up to ``tries`` times within
    ``wait`` seconds, each time with a fresh nonce (a late answer to an
    earlier try counts). Returns its status byte (LOOP_BLOCKED or
    LOOP_RUNNING), or None if nothing answered."""
    try:
        infos = await trio.socket.getaddrinfo(host, port,
                                              type=socket.SOCK_DGRAM)
        family, type_, proto, _, sockaddr = infos[0]
    except (OSError, IndexError):
        return None
    sent: set = set()
    start = trio.current_time()
    with trio.socket.socket(family, type_, proto) as s:
        try:
            # connected: only the responder's datagrams are read, and a
            # closed port is reported (ICMP) instead of waited out
            await s.connect(sockaddr)
        except OSError:
            return None
        for i in range(tries):
            nonce = os.urandom(NONCE_LEN)
            sent.add(nonce)
            try:
                await s.send(PROBE + nonce)
            except ConnectionRefusedError:
                return None  # nothing listens there: the process is gone
            except OSError:
                pass
            with trio.move_on_at(start + wait * (i + 1) / tries):
                while True:
                    try:
                        data = await s.recv(64)
                    except ConnectionRefusedError:
                        return None
                    except OSError:
                        break
                    if (len(data) == _ANSWER_LEN and data.startswith(ANSWER)
                            and data[len(ANSWER):-1] in sent):
                        return data[-1:]
    return None
