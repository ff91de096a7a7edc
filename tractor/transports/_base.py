"""The contract every transport fulfils.

The runtime never touches a socket. It asks a :class:`Transport` (found by
name in the registry) to ``connect`` to or ``listen`` on an address, and
gets back :class:`FrameStream` objects that move whole frames of bytes between
exactly two peers. Everything above this layer -- codecs, the handshake,
heartbeats, actors -- is written against these three small protocols, so a
new transport is one module and one registry entry.

Writing a transport
-------------------
A transport module defines a class with:

``name``
    The registry name (``'tcp'``, ``'uds'``, ``'nng'``, ``'zmq'``, ...).
``schemes``
    The address schemes it speaks, first one being the default, e.g.
    ``('tcp', 'ipc')`` for nng. See :mod:`tractor.transports._addr`.
``async connect(addr: Addr) -> FrameStream``
    Open a stream to one listening peer. Raise :class:`TransportClosed`
    (or ``OSError``) if nobody listens there: never hang forever.
``async listen(addr: Addr) -> Listener``
    Bind and start accepting. ``listener.addr`` is the *bound* address
    (port 0 resolved to the real port), which is what gets advertised.

Frames
------
A *frame* is the unit a stream moves: what one ``send`` hands over is
what one ``recv`` on the other side returns, never split, merged or
reordered. A frame is either

* bytes -- ``recv`` returns ``bytes``, or a ``bytearray`` that is the
  caller's to keep (a large frame received straight into a buffer of its
  own); ``send`` takes any bytes-like object (``bytes``, ``bytearray``,
  ``memoryview``) and copies what it must before it returns, so the
  caller may reuse its buffer; or
* a ``list`` of bytes-like *parts*, only on a stream that declares it
  takes frames in parts (:class:`TakesParts`, below): one frame whose
  parts travel without being joined, and which ``recv`` returns as a
  ``list`` of ``bytes``. Its size is the sum of its parts.

:data:`Frame` is the type; :func:`frame_size` its size.

The rules
---------
A frame stream obeys these rules, which :func:`tractor.testing.check_transport`
checks (the project's own conformance suite in ``tests/transports/`` runs
it for every registered transport; a third-party transport's author runs
it on theirs):

* **Framing.** ``send(b)`` delivers exactly ``b`` to one ``recv()`` on the
  other side; frames of any length from 0 bytes up to the transport's
  ``max_frame`` arrive whole and in order.
* **Reliability and back-pressure.** Nothing is ever dropped. A sender
  faster than its reader is slowed down (``send`` blocks), never buffered
  without bound and never silently discarded.
* **Concurrency.** Many tasks may ``send`` at once; frames never interleave,
  and they go out in the order the ``send`` calls *began*: a send must not
  yield to the scheduler before its frame is committed (written, queued,
  or in line behind a waiting sender), or a later caller overtakes it. A
  periodic yield after the frame is out must be cancel-shielded. One task
  at a time calls ``recv``.
* **Cancel safety.** A ``recv`` cancelled half way through a frame leaves the
  stream usable: the next ``recv`` returns that frame whole.
* **One failure type.** Every way the peer can go away (clean close, an
  ``abort()``, EOF, reset, a SIGKILLed process, a missed heartbeat)
  surfaces as :class:`TransportClosed` from ``send``/``recv``, promptly.
  Backend exceptions (``OSError``, ``pynng.Closed``, ``zmq.ZMQError``...)
  never leak. After ``aclose()`` or ``abort()`` both calls raise
  ``TransportClosed`` at once.
  ``TransportClosed`` is also a ``ConnectionError`` (so an ``OSError``):
  a refused or lost connection is one in Python's own terms, and code
  written against plain sockets, or against tractor versions that raised
  ``OSError`` here, keeps catching it with ``except OSError``. The
  promise is unchanged: transports raise this one type, never the
  backend's.
* **Closing.** ``aclose()`` closes this side gracefully: what was sent
  is still delivered (within a bounded linger), then the peer sees
  :class:`TransportClosed`. ``abort()`` (synchronous, as dask's
  ``Comm.abort``) drops the connection now: no flush, no linger, what is
  still queued may be lost. Both are idempotent. A class that must get
  rid of a stream it does not own (a listener closing a stream its peer
  never attached to) calls ``abort()``, never the stream's private
  close.

Optional capabilities
---------------------
A stream declares each of these by having it; the Channel looks once per
stream (``isinstance`` against the runtime-checkable protocols below),
never per message:

* :class:`SendsMany`: ``async send_many(frames)`` sends a list of frames
  with fewer system calls, in order, as if by consecutive ``send`` calls
  begun at once (cancellable only until the first is out). The Channel
  uses it for bursts of stream items and falls back to one ``send`` per
  frame, under a lock, otherwise.
* :class:`ReceivesMany`: ``async recv_many(limit)`` returns the next frame
  plus whichever frames have already arrived behind it (at most
  ``limit``), blocking only for the first and cancel-safe like ``recv``;
  the runtime's reader then routes a burst per wake-up.
* :class:`TakesParts`: a stream whose ``parts`` attribute is ``True``
  also accepts, wherever it takes a frame, a ``list`` of bytes-like parts
  (see Frames): gathered writes, zero-copy for large immutable ``bytes``,
  and the peer's ``recv()`` returns a ``list`` of ``bytes``, one per part.
  Its size, for ``max_frame`` and back-pressure, is the sum of its parts.
  The Channel uses this so that a 1 MiB ``bytes`` value inside a message
  is never copied into an encoded buffer on one side nor out of one on
  the other (see ``Codec.encode_parts``). Streams without it never see a
  list.

Shared pieces for transport authors (errors worded alike, ipc path
claiming, a FIFO sender, a rendezvous accept queue, keepalive values)
live in :mod:`tractor.transports._kit`.
* **Limits.** A frame above ``max_frame`` (a peer claiming a 4 GiB frame)
  is refused with :class:`FrameTooLarge` and the connection dropped.
"""
from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Literal,
    Protocol,
    Sequence,
    Union,
    runtime_checkable,
)

if TYPE_CHECKING:  # pragma: no cover
    from ._addr import Addr

#: A frame (see "Frames" above): bytes-like, or on a stream that
#: :class:`TakesParts`, a list of bytes-like parts. ``recv`` returns
#: ``bytes`` or ``bytearray`` (or a list of ``bytes``).
Frame = Union[bytes, bytearray, memoryview, list]

#: Default upper bound for one frame. Large enough for any sane message,
#: small enough that a hostile length prefix cannot make us allocate GiBs.
DEFAULT_MAX_FRAME = 64 * 1024 * 1024


def frame_size(frame: Frame) -> int:
    """Bytes in a frame, whole or in parts (see "Frames in parts")."""
    if type(frame) is list:
        return sum(map(len, frame))
    return len(frame)


class TransportError(Exception):
    """Base of every error raised by the transport layer."""


class TransportClosed(TransportError, ConnectionError):
    """The peer is gone: closed, reset, killed, or silent past the heartbeat
    bound, or nobody listens where we dialed. The stream cannot be used any
    more; open a new one.

    A ``ConnectionError`` as well, so ``except OSError`` (what a refused
    connection raises everywhere else in Python, and what tractor raised
    before it had transports) still catches it."""


class FrameTooLarge(TransportClosed):
    """A frame longer than ``max_frame`` was sent or announced. The
    connection is dropped because the byte stream can no longer be trusted.
    Raise ``max_frame`` on both sides if the payload is legitimate."""


class HandshakeError(TransportClosed):
    """The peer is not a compatible, authenticated tractor actor: wrong
    protocol version, codec or secret, not tractor at all, or refused by
    TLS (another CA, an expired or wrong-purpose certificate, TLS spoken to
    plaintext or the reverse). Defined here, below the runtime, because a
    transport's own handshake (TLS) refuses peers too; the runtime
    re-exports it as ``tractor.HandshakeError``."""


class UnknownTransport(TransportError, LookupError):
    """No transport is registered under the requested name."""


@runtime_checkable
class FrameStream(Protocol):
    """An ordered, reliable, bidirectional stream of frames to one peer."""

    #: this side's address (string form, see :class:`Addr`)
    local_addr: "Addr"
    #: the other side's address
    peer_addr: "Addr"

    async def send(self, data: Frame) -> None:
        """Send one frame. Blocks while the peer is not keeping up."""

    async def recv(self) -> Frame:
        """Return the next whole frame; cancel-safe."""

    async def aclose(self) -> None:
        """Close this side, delivering what was sent (bounded linger).
        Idempotent; the peer's ``recv`` then raises
        :class:`TransportClosed`."""

    def abort(self) -> None:
        """Drop the connection now: no flush, no linger, no await.
        Idempotent; pending and later calls on this side, and the peer's
        ``recv``, raise :class:`TransportClosed`."""


@runtime_checkable
class SendsMany(Protocol):
    """Optional capability: several frames per call."""

    async def send_many(self, frames: Sequence[Frame]) -> None:
        """Send ``frames`` in order, as consecutive ``send`` calls begun
        at once would; cancellable only until the first is out."""


@runtime_checkable
class ReceivesMany(Protocol):
    """Optional capability: a burst of frames per wake-up."""

    async def recv_many(self, limit: int = 64) -> list[Frame]:
        """The next frame and those already arrived behind it (at most
        ``limit``); blocks only for the first; cancel-safe."""


@runtime_checkable
class TakesParts(Protocol):
    """Optional capability: frames in parts (see "Frames")."""

    #: ``True``: ``send`` takes a list of parts, ``recv`` may return one
    parts: Literal[True]


# The optional capabilities are read off a stream directly, not by an
# ``isinstance`` against their runtime-checkable protocols: that recomputes
# the protocol's members on every call (10-15 us each), which was half of
# the cost of making a Channel (once per connection).

def takes_parts(stream: object) -> bool:
    """Whether ``stream`` declares frames in parts (its ``parts`` is
    ``True``, not merely present)."""
    return getattr(stream, 'parts', None) is True


def optional_method(stream: object, name: str):
    """``stream``'s optional method ``name`` (``'send_many'`` of
    :class:`SendsMany`, ``'recv_many'`` of :class:`ReceivesMany`), or
    None if it has none."""
    method = getattr(stream, name, None)
    return method if callable(method) else None


@runtime_checkable
class Listener(Protocol):
    """Accepts many peers on one address, each as its own FrameStream."""

    #: the bound address: port 0 is resolved, ipc paths are absolute
    addr: "Addr"

    async def accept(self) -> FrameStream:
        """Wait for the next peer. Raises ``TransportClosed`` once the
        listener is closed."""

    async def aclose(self) -> None:
        """Stop accepting and release the address (an ipc socket file is
        removed). Streams already accepted stay open."""


@runtime_checkable
class Transport(Protocol):
    """A way of carrying frames; see the module docstring for the rules."""

    name: str
    schemes: tuple[str, ...]
    max_frame: int

    async def connect(self, addr: "Addr") -> FrameStream:
        ...

    async def listen(self, addr: "Addr") -> Listener:
        ...
