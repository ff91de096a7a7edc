"""Channel: a transport's message stream plus a codec, with a handshake and a
heartbeat. The runtime talks to peers only through this class.

The handshake
-------------
Before any message, both sides send (at the same time, so it costs one
round trip) a *hello* frame and then a *proof* frame:

* hello: ``b'TRACTOR\\x01'`` + JSON ``{"v": protocol version, "codec": name,
  "uid": [name, uuid], "nonce": hex, "batch": 1, "alive": [host, port]}``
  ("batch" when the codec can join messages into one frame, see Batches
  below; "alive" when the process answers liveness probes, see Liveness).
  It is JSON whatever the codec, so two peers with different codecs can
  still tell each other so clearly. Fields a peer does not know are
  ignored, so optional ones need no new protocol version.
* proof: ``b'TRACTOR\\x02'`` + HMAC-SHA256(secret, role + peer's nonce +
  own nonce). The secret itself never crosses the wire; the role
  (``dial``/``listen``) stops a listener's own proof being reflected back
  at it.

A peer that sends anything else, the wrong version, the wrong codec or the
wrong proof is refused with :class:`HandshakeError` saying which, and
nothing it sent is ever decoded as a message.

Liveness
--------
An empty frame is a heartbeat (no codec ever encodes a message to zero
bytes). :meth:`Channel.run_service` sends one whenever nothing else was
sent for ``heartbeat_interval`` seconds, and closes the channel with
:class:`TransportClosed` when nothing at all arrived for
``liveness_timeout`` seconds: a peer that is SIGSTOPped, or behind a pulled
cable, is noticed within that bound even though its kernel still ACKs.

An actor's heartbeats come from its trio loop, which user code holds while
it computes. So when the silence bound is reached and the peer's hello
named a liveness responder (``"alive"``: a thread of the peer's process on a
UDP port of its own, see :mod:`tractor._liveness`), the peer is probed
first: if it answers that its loop is blocked, it is busy, not dead, and
the wait goes on; if it does not answer within about one heartbeat
interval (SIGSTOPped, frozen holding the GIL, cut off), or answers that its
loop runs although nothing arrives (the connection is broken), the channel
is closed as above.

Batches
-------
What :meth:`Channel.send_buffered` queued goes out together; when both
peers' hellos say so, runs of small frames in it are joined by the codec
into one batch frame (``encode_batch``), which the receiving Channel splits
again. A burst of stream items then costs one frame to write, to move
through the transport and to read instead of one per message -- the
per-frame cost that dominates message-oriented transports (zmq, nng).
Messages keep their order; a frame in parts or a large one is never
joined.
"""
from __future__ import annotations

import hmac
import json
import os
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Optional

import trio

from . import _auth, _liveness
from ._exceptions import HandshakeError, MessageTooLarge
from .codecs import Batch, Codec, get_codec
from .transports import (
    DEFAULT_MAX_FRAME,
    Addr,
    FrameStream,
    TransportClosed,
    frame_size,
    get_transport,
    optional_method,
    takes_parts,
)
from ._env import env_number
from .log import get_logger

if TYPE_CHECKING:  # pragma: no cover
    from ._lease import ReadLease

log = get_logger(__name__)

#: 2: two-way streams (see tractor._protocol); peers of another version
#: are refused at the handshake with a message saying so
PROTOCOL_VERSION = 2
_HELLO = b'TRACTOR\x01'
_PROOF = b'TRACTOR\x02'
_MAX_HELLO = 4096

def _env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from ``$name``."""
    return env_number(name, default, float, ok=lambda v: v > 0,
                      expected=f'a positive number of seconds, like '
                               f'{default}')


#: seconds between heartbeats on an otherwise idle channel
HEARTBEAT_INTERVAL = _env_seconds('TRACTOR_HEARTBEAT_INTERVAL', 1.0)
#: seconds of total silence after which the peer is declared gone
LIVENESS_TIMEOUT = _env_seconds('TRACTOR_LIVENESS_TIMEOUT', 5.0)
#: a buffered batch is written at once when it holds this many frames...
BATCH_FRAMES = 64
#: ...or this many bytes
BATCH_BYTES = 64 * 1024
#: requests that leave together at most (see Channel.send_request). A wave
#: of expected requests is written in two halves, so that the callee
#: starts on the first while the rest are made: one write for all 64 calls
#: in flight made caller and callee take turns, each idle while the other
#: worked through the lot (tcp: 40,000 calls/s against 55,000-75,000)
REQUEST_BATCH = 32
#: frames up to this size may be joined into a batch frame (see Batches)
BATCH_ITEM_MAX = 8 * 1024
#: seconds a new connection has to complete the handshake
HANDSHAKE_TIMEOUT = _env_seconds('TRACTOR_HANDSHAKE_TIMEOUT', 10.0)


def _whole(frame):
    """A frame as one buffer, even if a peer sent it in parts."""
    return b''.join(frame) if type(frame) is list else frame


class Channel:
    """Messages to and from one peer actor.

    ``send(obj)``/``recv()`` move whole messages; ``async for msg in chan``
    iterates until the peer closes. ``uid`` is the peer's actor uid once the
    handshake has run.
    """

    def __init__(
        self,
        stream: FrameStream,
        codec: Codec | str = 'msgpack',
        *,
        transport: str = '',
        heartbeat_interval: float | None = None,
        liveness_timeout: float | None = None,
    ) -> None:
        self.stream = stream
        self.codec = get_codec(codec) if isinstance(codec, str) else codec
        self._encode = self.codec.encode
        self._decode = self.codec.decode
        self._decode_parts = self._join_parts
        # the stream's optional capabilities are looked up once, here
        # (see tractor.transports._base), never per message
        if takes_parts(stream) and hasattr(self.codec, 'encode_parts'):
            # large buffers travel as parts of their frame, uncopied (see
            # the codec and transport contracts)
            parts: Any = self.codec  # (has the optional part methods)
            self._encode = parts.encode_parts
            self._decode_parts = parts.decode_parts
        self.transport = transport or getattr(stream.local_addr,
                                              'transport', '')
        self.uid: Optional[tuple] = None
        self.heartbeat_interval = heartbeat_interval or HEARTBEAT_INTERVAL
        self.liveness_timeout = liveness_timeout or LIVENESS_TIMEOUT
        self._closed = False
        self._dead: TransportClosed | None = None
        #: (host, port) of the peer's liveness responder, from its hello
        self._alive: tuple | None = None
        self._rx = 0
        self._tx = 0
        #: how many times this channel handed its transport something to
        #: send: one frame, or a burst of them in one call (messages sent
        #: per write is how well sends are batched)
        self.writes = 0
        self._receiving = False
        self.last_size = 0
        #: the frame size of each message the last recv_many returned
        self.last_sizes: list = []
        self._native_recv_many = optional_method(stream, 'recv_many')
        self._recv_error: Exception | None = None
        # the rest of a batch frame that recv() split (message, size)
        self._backlog: deque = deque()
        # the codec's encode_batch, once the peer said it can split batches
        self._join = None
        # runs of stream items to encode at the next write (see defer())
        self._deferred: list = []
        # send_buffered() state
        self._pending: list = []
        self._pending_bytes = 0
        # a transport without send_many gets one frame per send() call; a
        # batch must then go out under a lock (see _send_many)
        self._native_send_many = optional_method(stream, 'send_many')
        self._send_lock = trio.Lock()
        self._flush_ev = trio.Event()
        self._service_running = False
        #: who may read: set by the actor serving this channel, so that a
        #: task waiting on it reads its answer itself (see tractor._lease)
        self.lease: Optional[ReadLease] = None
        # the task routing a burst of arrived messages: what it sends
        # waits for the burst's end and leaves in one write (see cork())
        self._corked_by: trio.lowlevel.Task | None = None
        # a heartbeat is due (see _watch_liveness)
        self._beat_due = False
        # requests expected in the coming scheduler pass, from the callers
        # that the last bursts of replies woke (see send_request()), and
        # how many times an expectation was raised (see _service_sends)
        self._expect = 0
        self._expect_gen = 0
        self._batch_cap = REQUEST_BATCH

    # -- construction --------------------------------------------------
    @classmethod
    async def connect(
        cls,
        addr,
        *,
        transport: str = 'tcp',
        codec: str = 'msgpack',
        uid: tuple = ('anonymous', ''),
        secret: bytes | str | None = None,
        **kw,
    ) -> 'Channel':
        """Dial ``addr``, run the handshake and return the Channel."""
        a = Addr.parse(addr, transport)
        # resolve the codec first: an unknown name must fail with
        # UnknownCodec before anything is dialed (and no stream leaks)
        codec_obj = get_codec(codec) if isinstance(codec, str) else codec
        stream = await get_transport(a.transport).connect(a)
        chan = cls(stream, codec_obj, transport=a.transport, **kw)
        try:
            await chan.handshake(uid, secret=secret, role='dial')
        except BaseException:
            await chan.aclose()
            raise
        return chan

    async def handshake(
        self,
        uid: tuple,
        *,
        secret: bytes | str | None = None,
        role: str = 'listen',
        timeout: float | None = None,
    ) -> tuple:
        """Exchange hellos and proofs with the peer; return its uid."""
        key = _auth.get_secret(secret)
        nonce = os.urandom(16)
        join = getattr(self.codec, 'encode_batch', None)
        alive = _liveness.hello_field()
        hello = _HELLO + json.dumps({
            'v': PROTOCOL_VERSION, 'codec': self.codec.name,
            'uid': list(uid), 'nonce': nonce.hex(),
            **({'batch': 1} if join is not None else {}),
            **({'alive': alive} if alive is not None else {}),
        }).encode()
        limit = timeout or HANDSHAKE_TIMEOUT
        with trio.move_on_after(limit) as too_slow:
            await self.stream.send(hello)
            peer = self._parse_hello(_whole(await self.stream.recv()))
            peer_nonce = bytes.fromhex(peer['nonce'])
            await self.stream.send(
                _PROOF + _auth.proof(key, role, peer_nonce, nonce))
            got = _whole(await self.stream.recv())
        if too_slow.cancelled_caught:
            raise HandshakeError(
                f'peer at {self.raddr} did not complete the tractor '
                f'handshake within {limit}s; dropping it')
        if not got.startswith(_PROOF):
            raise HandshakeError(
                f'peer at {self.raddr} sent no proof of the shared secret')
        other = 'listen' if role == 'dial' else 'dial'
        want = _auth.proof(key, other, nonce, peer_nonce)
        if not hmac.compare_digest(bytes(got[len(_PROOF):]), want):
            raise HandshakeError(
                f'peer {peer["uid"]} at {self.raddr} does not know this '
                f"cluster's secret; refusing it (set the same secret on "
                f'both sides: tractor.run(secret=...) or $TRACTOR_SECRET)')
        self.uid = tuple(peer['uid'])
        if join is not None and peer.get('batch') == 1:
            self._join = join
        self._alive = _liveness.parse_field(peer.get('alive'))
        return self.uid

    def _parse_hello(self, frame) -> dict:
        if not frame.startswith(_HELLO) or len(frame) > _MAX_HELLO:
            raise HandshakeError(
                f'peer at {self.raddr} is not speaking the tractor protocol '
                f'(first frame {bytes(frame[:16])!r}...)')
        try:
            peer = json.loads(bytes(frame[len(_HELLO):]))
            v, codec, uid = peer['v'], peer['codec'], peer['uid']
            bytes.fromhex(peer['nonce'])
            if not (isinstance(uid, list) and len(uid) == 2):
                raise ValueError(f'bad uid {uid!r}')
        except (ValueError, KeyError, TypeError) as err:
            raise HandshakeError(
                f'peer at {self.raddr} sent a malformed hello: {err}') from None
        if v != PROTOCOL_VERSION:
            raise HandshakeError(
                f'peer {uid} speaks tractor protocol version {v}, this '
                f'actor speaks {PROTOCOL_VERSION}: upgrade the older side')
        if codec != self.codec.name:
            raise HandshakeError(
                f'peer {uid} uses codec {codec!r} but this actor uses '
                f'{self.codec.name!r}: every actor of a tree must use the '
                f'same codec')
        return peer

    def _join_parts(self, parts: list):
        # a codec without decode_parts never asked for parts, but a peer
        # may still send them: decode them as the one frame they make
        return self._decode(b''.join(parts))

    # -- messages ------------------------------------------------------
    async def send(self, msg: Any) -> None:
        """Send ``msg`` now (after anything :meth:`send_buffered` queued).
        Raises :class:`MessageTooLarge` for a message over ``max_frame``,
        before anything is sent."""
        data = self._encode(msg)
        if type(data) is not bytes or len(data) > self.max_frame:
            size = frame_size(data)
            if size > self.max_frame:
                raise self._refuse(size)
        corked = self._corked_by
        if corked is not None and corked is trio.lowlevel.current_task():
            self._queue(data)
            if self._pending_bytes < BATCH_BYTES:
                return
            await self._write_pending()
            return
        await self._send_now(data)

    async def send_request(self, msg: Any) -> None:
        """Send a call's request, like :meth:`send`; but when the last
        burst of replies woke several callers (``_expect``, see
        :meth:`expect_requests`), their next requests, issued in the same
        scheduler pass, leave together: each is queued, and the last one
        expected writes them all -- one write, one batch frame, one wake-up
        of the peer for the lot, where each call would otherwise pay its
        own. A lone call, the latency case, goes out at once; a wave of
        expected requests goes in two writes (of at most ``REQUEST_BATCH``
        each), so that the callee starts on the first half while the rest
        are made. If fewer requests come than expected, the service task
        writes them a pass later and forgets the rest of the
        expectation."""
        if self._expect and self._service_running:
            self._expect -= 1
            if self._expect and len(self._pending) < self._batch_cap - 1:
                await self.send_buffered(msg)
                return
        # (written behind whatever the expected callers queued)
        await self.send(msg)

    def expect_requests(self, n: int) -> None:
        """The reader just handed ``n`` callers their replies: their next
        requests are likely to come in the coming pass (see
        :meth:`send_request`). Adds to what earlier bursts of the same
        pass announced: a reader that finds a second burst waiting reads
        it before the first one's callers have run."""
        self._expect += n
        self._expect_gen += 1
        # a write per half of the wave (see send_request)
        self._batch_cap = min(REQUEST_BATCH, max(2, self._expect // 2))

    def cork(self) -> None:
        """Until :meth:`uncork`, what the current task sends is queued
        instead of written. The reader corks the channel while it routes a
        burst of requests, so that the replies of the calls it runs inline
        leave in one write at the burst's end (a burst of 64 requests costs
        one system call back, not 64). Other tasks' sends are not held:
        they write the queue ahead of their own frame, so order holds."""
        self._corked_by = trio.lowlevel.current_task()

    def release_cork(self) -> None:
        """Stop queueing, without writing now (the reader is passing its
        burst on to another task): the service task writes the queue."""
        self._corked_by = None
        if self._pending and self._service_running:
            self._flush_ev.set()

    async def uncork(self) -> None:
        """Stop queueing the current task's sends, and write what is
        queued. Raises :class:`TransportClosed` if that write fails."""
        self._corked_by = None
        if self._pending or self._deferred:
            await self.flush_runs(now=True)

    def _queue(self, data) -> None:
        """Put the encoded ``data`` behind what is already queued."""
        if self._deferred:
            self._drain_runs()
        self._tx += 1
        self._pending.append(data)
        self._pending_bytes += frame_size(data)

    def _refuse(self, size: int) -> MessageTooLarge:
        """The error for a message of ``size`` bytes over ``max_frame``.
        Checked here, before the transport sees it, so that it is one
        check for every transport, the channel stays usable (a transport
        refusing the frame would raise TransportClosed, and the peer
        would drop a connection that announced it), and the user learns
        the size, the limit and how to raise it."""
        return MessageTooLarge(
            f'a message of {size} bytes is too large to send to '
            f'{self.uid or self.raddr} over '
            f'{self.transport or "this transport"}: the limit is '
            f'max_frame={self.max_frame} bytes, and nothing was sent. '
            f'Send large data in pieces (stream it from an async '
            f'generator), or raise the limit for the whole tree with '
            f'tractor.run(..., max_frame=N) or $TRACTOR_MAX_FRAME=N '
            f'(every program of a cluster must use the same)')

    async def _send_now(self, data) -> None:
        self._tx += 1
        if self._deferred:
            self._drain_runs()
        try:
            if self._pending:
                frames, self._pending = self._pending, []
                frames.append(data)
                self._pending_bytes = 0
                await self._send_many(frames)
                return
            self.writes += 1
            if self._native_send_many is not None:
                await self.stream.send(data)
            else:
                async with self._send_lock:
                    await self.stream.send(data)
        except TransportClosed:
            raise self._lost() from None

    async def send_buffered(self, msg: Any) -> int:
        """Queue ``msg`` to go out with the next batch: written when the
        sender next yields to the scheduler (by the channel's service task,
        :meth:`run_service`), or at once when ``BATCH_FRAMES`` or
        ``BATCH_BYTES`` are waiting. Streams use this so that a burst of
        small messages costs one system call instead of one each; order with
        :meth:`send` is preserved. Returns the encoded size, for flow
        control. Raises :class:`MessageTooLarge` like :meth:`send`."""
        data = self._encode(msg)
        size = frame_size(data)
        if size > self.max_frame:
            raise self._refuse(size)
        if not self._service_running:
            await self._send_now(data)
            return size
        self._queue(data)
        pending = self._pending
        if (len(pending) >= BATCH_FRAMES
                or self._pending_bytes >= BATCH_BYTES):
            await self._write_pending()
        elif len(pending) == 1:
            self._flush_ev.set()
        return size

    def _lost(self) -> TransportClosed:
        """Why a send failed: the liveness verdict, if there was one."""
        return self._dead or TransportClosed(
            f'channel to {self.uid} at {self.raddr} is closed')

    async def _write_pending(self) -> None:
        """Write what is pending now (in the calling task)."""
        frames, self._pending = self._pending, []
        self._pending_bytes = 0
        try:
            await self._send_many(frames)
        except TransportClosed:
            raise self._lost() from None

    def post(self, msg: Any) -> None:
        """Queue ``msg`` like :meth:`send_buffered`, without waiting: for
        small control messages (credit) that code which cannot await must
        send. Needs the channel's service task (:meth:`run_service`),
        which writes it out; order with other sends is kept."""
        if not self._service_running:
            raise RuntimeError(f'{self!r} has no service task to send with')
        self._queue(self._encode(msg))
        self._flush_ev.set()

    # -- runs of stream items ------------------------------------------
    def defer(self, sender, wake: bool = True) -> bool:
        """``sender`` (a stream's Dialog) has items queued: they are
        encoded together, as one message, when the channel next writes --
        once the sending task yields to the scheduler (the service task's
        flush), or before anything else is sent, so order holds. See
        :mod:`tractor._flow` (runs). False if no service task will flush
        them: then the sender calls :meth:`flush_runs` itself.
        ``wake=False``: the caller flushes at once itself, so the service
        task is not woken for nothing."""
        self._deferred.append(sender)
        if not wake:
            return False
        if self._service_running:
            self._flush_ev.set()
            return True
        return False

    async def flush_runs(self, now: bool = False) -> None:
        """Encode what :meth:`defer` queued; write what is pending if it
        is a batch's worth, or ``now`` (a task about to wait for the
        peer's answer: the service task's turn would only add latency)."""
        if self._deferred:
            self._drain_runs()
        if not self._pending:
            return
        if (now or len(self._pending) >= BATCH_FRAMES
                or self._pending_bytes >= BATCH_BYTES
                or not self._service_running):
            await self._write_pending()
        else:
            self._flush_ev.set()

    async def send_answer(self, sender, item: Any) -> bool:
        """Send a stream's lone item now, the way :meth:`send` sends a
        reply: straight to the transport, past the machinery of runs,
        when nothing else waits to be written on this channel (a stage
        answering the item it just received). False, having done nothing,
        when something does, or when ``item`` cannot go as it is (the
        codec refuses it, or it is over ``max_frame``): then the caller
        takes the general path (``defer``, ``flush_runs``), which reports
        such items as a run's do."""
        if self._deferred or self._pending or self._corked_by is not None:
            return False
        try:
            data, size = self._run_frame(sender, [item])
        except Exception:
            return False
        sender.out_items += 1
        sender.run_sent(1, size)
        await self._send_now(data)
        return True

    def _drain_runs(self) -> None:
        """Encode every deferred run onto the pending frames. Never
        raises: a run that cannot be sent (an item the codec cannot carry,
        too large a message) is reported to its sender, whose next send
        raises the error."""
        senders, self._deferred = self._deferred, []
        for sender in senders:
            items = sender.take_run()
            if items:
                self._encode_run(sender, items)

    def _encode_run(self, sender, items: list) -> None:
        """Encode a run onto the pending frames. An item that cannot go
        (the codec cannot carry it, or it alone is over ``max_frame``) is
        found by halving the run: the items before it still go, and it and
        every item after it do not -- as if each ``send`` had been made
        alone and the failing one had raised -- the sender's next send
        raises why. A run merely too large as a whole goes as two."""
        try:
            data, size = self._run_frame(sender, items)
        except Exception as err:
            failed: BaseException = err
        else:
            sender.run_sent(len(items), size)
            self._tx += 1
            self._pending.append(data)
            self._pending_bytes += size
            return
        if len(items) == 1:
            sender.run_failed(1, failed)
            return
        half = len(items) // 2
        self._encode_run(sender, items[:half])
        if sender.send_error is None:
            self._encode_run(sender, items[half:])
        else:
            sender.run_failed(len(items) - half, sender.send_error)

    def _run_frame(self, sender, items: list) -> tuple[Any, int]:
        """The message of ``sender``'s run of ``items``, encoded, and its
        size. Raises why it cannot go: the codec's error (EncodeError, or
        the codec's own), or :class:`MessageTooLarge`."""
        data = self._encode(sender.run_message(items))
        size = frame_size(data)
        if size > self.max_frame:
            raise self._refuse(size)
        return data, size

    def _coalesce(self, frames: list, join: Callable[[list], bytes]
                  ) -> list:
        """``frames`` with each run of small whole frames joined into one
        batch frame (kept under the transport's ``max_frame``)."""
        limit = self.max_frame - 64  # room for the batch's framing
        out: list = []
        run: list = []
        size = 0
        for f in frames:
            small = type(f) is bytes and len(f) <= BATCH_ITEM_MAX
            if run and (not small or size + len(f) >= limit):
                out.append(run[0] if len(run) == 1 else join(run))
                run, size = [], 0
            if small:
                run.append(f)
                size += len(f) + 1
            else:
                out.append(f)
        if run:
            out.append(run[0] if len(run) == 1 else join(run))
        return out

    async def _send_many(self, frames: list) -> None:
        self.writes += 1
        join = self._join
        if join is not None and len(frames) > 1:
            frames = self._coalesce(frames, join)
        many = self._native_send_many
        if many is not None:
            await many(frames)
            return
        # Frame by frame: hold the lock for the whole batch, else the
        # frames of two concurrent batches (the service task's flush and a
        # full batch, or a send() racing a flush) interleave and reach the
        # peer out of order.
        async with self._send_lock:
            for data in frames:
                await self.stream.send(data)

    async def recv(self) -> Any:
        """The next message."""
        backlog = self._backlog
        if not backlog:
            msgs = await self.recv_many(1)
            self.last_size = self.last_sizes[0]
            if len(msgs) == 1:
                return msgs[0]
            # a batch frame: the rest waits for the next calls
            backlog.extend(zip(msgs, self.last_sizes))
        else:
            await trio.lowlevel.checkpoint()
        msg, self.last_size = backlog.popleft()
        return msg

    async def recv_many(self, limit: int = 64) -> list:
        """The next message and those that arrived right behind it,
        decoded; ``last_sizes`` holds their frame sizes. One wake-up for a
        burst of up to ``limit`` frames when the transport offers
        ``recv_many`` (a batch frame yields all its messages)."""
        backlog = self._backlog
        if backlog:
            # what a recv() left of a batch comes first
            await trio.lowlevel.checkpoint()
            self.last_sizes = [n for _, n in backlog]
            msgs = [m for m, _ in backlog]
            backlog.clear()
            return msgs
        if self._recv_error is not None:
            err, self._recv_error = self._recv_error, None
            raise err
        while True:
            frames = await self._frames(limit)
            msgs = []
            sizes: list = []
            for data in frames:
                if not data:
                    continue  # a heartbeat
                try:
                    self._unpack(data, msgs, sizes)
                except Exception as err:
                    # what came before it is delivered; the error is
                    # raised by the next call
                    if not msgs:
                        raise
                    self._recv_error = err
                    break
            if msgs:
                self.last_sizes = sizes
                return msgs

    async def _frames(self, limit: int) -> list:
        """The next frames off the transport (heartbeats included): a
        burst of up to ``limit`` if it offers ``recv_many``, else one."""
        many = self._native_recv_many
        self._receiving = True
        try:
            if many is not None:
                frames = await many(limit)
            else:
                frames = [await self.stream.recv()]
        except TransportClosed:
            if self._dead is not None:
                raise self._dead from None
            raise
        finally:
            self._receiving = False
        self._rx += len(frames)
        return frames

    def _unpack(self, data, msgs: list, sizes: list) -> None:
        """Decode the frame ``data`` onto ``msgs``, and the frame size of
        each message onto ``sizes`` (for the runtime's byte-based flow
        control; each message of a batch counts an equal share)."""
        if type(data) is list:
            msgs.append(self._decode_parts(data))
            sizes.append(frame_size(data))
            return
        msg = self._decode(data)
        if type(msg) is Batch:
            if msg:
                msgs += msg
                sizes += [len(data) // len(msg)] * len(msg)
            return
        msgs.append(msg)
        sizes.append(len(data))

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.recv()
            except TransportClosed:
                return

    # -- the service task: buffered sends, heartbeats, liveness ---------
    async def run_service(self) -> None:
        """The channel's service task: flushes what :meth:`send_buffered`,
        :meth:`post` and stream runs queued, sends heartbeats, and closes
        the channel when the peer has been silent past
        ``liveness_timeout``. Run it in a nursery beside whatever reads the
        channel; it returns when the channel closes."""
        self._service_running = True
        try:
            async with trio.open_nursery() as n:
                # the liveness watch runs apart from the sending: a send
                # blocked on a peer that stopped reading (SIGSTOPped, hung)
                # must not keep that peer from being declared dead -- which
                # closes the stream and so also wakes the blocked send
                n.start_soon(self._watch_liveness)
                await self._service_sends()
                n.cancel_scope.cancel()
        finally:
            self._service_running = False
            if self._deferred:
                self._drain_runs()
            if self._pending and not self._closed:
                # flush what is left, bounded: the task is going away
                frames, self._pending = self._pending, []
                with trio.move_on_after(1, shield=True):
                    try:
                        await self._send_many(frames)
                    except TransportClosed:
                        pass

    #: the earlier name of :meth:`run_service` (it does more than beat)
    run_heartbeat = run_service

    async def _service_sends(self) -> None:
        """Flush buffered sends, and send the heartbeats that
        :meth:`_watch_liveness` asks for. It waits on an event alone, no
        timeout: a stream's runs wake it once per burst, often for nothing
        (the sender flushed them itself before waiting), and a cancel
        scope with a deadline per wake-up would make that the dearer part
        of a round trip."""
        try:
            while not self._closed:
                if (not self._pending and not self._deferred
                        and not self._beat_due):
                    ev = self._flush_ev = trio.Event()
                    await ev.wait()
                if self._deferred:
                    self._drain_runs()
                if self._pending:
                    gen = self._expect_gen
                    if self._expect:
                        # woken by the first expected request, perhaps in
                        # the very pass whose callers are still to queue
                        # theirs (trio runs a pass in either order): let
                        # them, and the last one writes the lot
                        await trio.lowlevel.cancel_shielded_checkpoint()
                        if not self._pending:
                            continue
                    if gen == self._expect_gen:
                        # requests still expected did not come this pass
                        # (and no new burst raised the expectation since)
                        self._expect = 0
                    frames, self._pending = self._pending, []
                    self._pending_bytes = 0
                    await self._send_many(frames)
                    continue
                if self._beat_due and not self._closed:
                    self._beat_due = False
                    self.writes += 1
                    await self.stream.send(b'')
        except TransportClosed:
            return

    async def _watch_liveness(self) -> None:
        """Close the channel once nothing at all arrived for
        ``liveness_timeout`` while somebody was waiting for it, unless the
        peer's process answers that user code holds its loop (see
        Liveness in the module docstring)."""
        interval = self.heartbeat_interval
        misses_allowed = max(1, int(self.liveness_timeout / interval))
        last_rx, silent = self._rx, 0
        last_tx = self._tx
        heard_at = trio.current_time()
        while not self._closed:
            due = trio.current_time() + interval
            await trio.sleep(interval)
            if self._tx == last_tx:
                # nothing went out for an interval: a heartbeat does (sent
                # by the service task, so this watch never blocks on a
                # peer that stopped reading)
                self._beat_due = True
                self._flush_ev.set()
            last_tx = self._tx
            if trio.current_time() - due > interval:
                # woke far too late: user code held *this* process's loop,
                # and what the peer sent meanwhile waits unread. The gap
                # is ours, not the peer's: count no miss for it
                continue
            if self._rx == last_rx and self._receiving:
                # only silence while somebody waits counts: a reader that
                # is itself slow (back-pressure) is not the peer's fault
                silent += 1
                if silent < misses_allowed:
                    continue
                why = await self._silence_excused()
                if self._closed:
                    return
                if why is None:
                    silent, last_rx = 0, self._rx
                    continue
                self._dead = TransportClosed(
                    f'peer {self.uid} at {self.raddr} sent nothing for '
                    f'{trio.current_time() - heard_at:.1f}s (liveness '
                    f'timeout {self.liveness_timeout}s){why}')
                log.warning('%s', self._dead)
                await self.aclose()
                self._flush_ev.set()  # wake the send loop to exit
                return
            else:
                silent = 0
                last_rx = self._rx
                heard_at = trio.current_time()

    async def _silence_excused(self) -> str | None:
        """None if the silent peer is only busy (its process answers a
        liveness probe saying user code holds its loop) or spoke while we
        asked; else the end of the error message, saying why it is not."""
        if self._alive is None:
            return ': it is hung or unreachable'
        host, port = self._alive
        if not host:
            # "the host you reach me at"
            raddr = self.raddr
            host = (raddr.host if getattr(raddr, 'is_inet', False)
                    and not raddr.is_wildcard else '127.0.0.1')
        wait = max(self.heartbeat_interval, _liveness.MIN_PROBE_WAIT)
        rx = self._rx
        status = await _liveness.probe(host, port, wait)
        if status == _liveness.LOOP_BLOCKED:
            if log.isEnabledFor(10):
                log.debug('peer %s at %s is silent but busy (user code '
                          'holds its loop): still waiting', self.uid,
                          self.raddr)
            return None
        if status == _liveness.LOOP_RUNNING and self._rx == rx:
            # its loop runs, so it is sending: frames that a loop just
            # back from a long block sent are on their way. One more wait
            await trio.sleep(wait)
        if self._rx != rx:
            return None
        if status is None:
            return (f' and its process did not answer a liveness probe at '
                    f'{host}:{port}: it is hung, stopped or unreachable')
        return (f'; its process answers liveness probes at {host}:{port} '
                f'and its loop runs, so the connection is broken')

    # -- state ---------------------------------------------------------
    @property
    def dead_reason(self) -> str | None:
        """Why the peer was declared dead (liveness), if it was."""
        return None if self._dead is None else str(self._dead)

    @property
    def max_frame(self) -> int:
        """The largest message this channel sends (see ``_refuse``): its
        stream's limit, which is the transport's."""
        return getattr(self.stream, 'max_frame', DEFAULT_MAX_FRAME)

    @property
    def connected(self) -> bool:
        return not self._closed and self._dead is None

    @property
    def laddr(self) -> Addr:
        return self.stream.local_addr

    @property
    def raddr(self) -> Addr:
        return self.stream.peer_addr

    async def aclose(self) -> None:
        self._closed = True
        await self.stream.aclose()

    async def __aenter__(self) -> 'Channel':
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (f'<Channel {self.transport}/{self.codec.name} '
                f'peer={self.uid} {self.laddr} -> {self.raddr}>')
