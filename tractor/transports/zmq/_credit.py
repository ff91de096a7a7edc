"""The byte-credit window of a zmq stream: flow control in bytes on top
of zmq's high-water mark, which counts messages.

On its own the high-water mark lets ``hwm x max_frame`` bytes pile up
toward a reader that stopped. So a sender may have at most ``window``
bytes (frame lengths plus :data:`FRAME_COST` each, so that a flood of
empty frames is bounded too) not yet handed to the peer's application.
The reader reports its running total of bytes taken in an *ack*; a
sender out of credit may *request* one, for everything it sent so far (a
quarter-window ack may never come for a small backlog in front of a big
frame).

This module only keeps the accounts and spells the control payloads
(``b'A'`` or ``b'R'`` + a u64 byte total): the stream sends them as the
two-part message ``[b'', payload]`` and hands what it receives to
:meth:`CreditWindow.on_control`. No socket here, so the rules are tested
on their own (``tests/transports/test_zmq_credit.py``).
"""
from __future__ import annotations

import struct

#: what a frame costs in the window besides its payload
FRAME_COST = 64

_U64 = struct.Struct('!Q')
_pack = _U64.pack
_ACK = b'A'
_REQUEST = b'R'
_CTRL_LEN = 1 + _U64.size


class CreditWindow:
    """The accounts of one stream end, as sender and as reader.

    Sender: :meth:`fits` before a frame, :meth:`spend` once it is out,
    :meth:`request` when out of credit. Reader: :meth:`took` for each
    frame handed to the application, :meth:`ack` when it says an ack is
    due (then :meth:`ack_sent` once it went out). Both:
    :meth:`on_control` for each control payload from the peer.
    """

    __slots__ = ('window', 'ack_every', 'sent', 'acked', 'consumed',
                 'last_ack', 'ack_due', 'ack_target', 'requested')

    def __init__(self, window: int) -> None:
        if window <= 0:
            raise ValueError(f'credit window must be positive, not {window}')
        self.window = window
        #: the reader acks at least every this many bytes taken
        self.ack_every = max(1, window // 4)
        self.sent = 0         # bytes (plus cost) sent
        self.acked = 0        # ... of which the peer's reader has taken
        self.consumed = 0     # bytes (plus cost) our reader has taken
        self.last_ack = 0     # ... as last reported to the peer
        self.ack_due = False  # an ack should go out now
        self.ack_target = 0   # ack once consumed reaches this (if set)
        self.requested = 0    # sent, when we last asked for credit

    def __repr__(self) -> str:
        return (f'<CreditWindow {self.sent - self.acked}/{self.window} '
                f'out, {self.consumed - self.last_ack} unacked>')

    # -- sender --------------------------------------------------------
    def fits(self, cost: int) -> bool:
        """Whether a frame costing ``cost`` (length + FRAME_COST) may go out
        now. Always true with nothing outstanding, so a frame bigger than
        the window still goes, alone."""
        out = self.sent - self.acked
        return not out or out + cost <= self.window

    def spend(self, cost: int) -> None:
        """A frame costing ``cost`` went out."""
        self.sent += cost

    def request(self) -> bytes | None:
        """The control payload asking the peer to ack everything sent so
        far once read, or None if that was asked already. Call
        :meth:`requested_sent` once it went out."""
        if self.requested == self.sent:
            return None
        return _REQUEST + _pack(self.sent)

    def requested_sent(self) -> None:
        self.requested = self.sent

    # -- reader --------------------------------------------------------
    def took(self, n: int) -> bool:
        """The application took a frame of ``n`` bytes; returns whether
        an ack is due now."""
        self.consumed += n + FRAME_COST
        if self.ack_due or (self.consumed - self.last_ack
                            >= self.ack_every) or (
                self.ack_target and self.consumed >= self.ack_target):
            self.ack_due = True
        return self.ack_due

    def ack(self) -> bytes:
        """The control payload reporting what the reader has taken."""
        return _ACK + _pack(self.consumed)

    def ack_sent(self) -> None:
        """The ack from :meth:`ack` went out."""
        self.last_ack = self.consumed
        self.ack_due = False
        if self.ack_target and self.consumed >= self.ack_target:
            self.ack_target = 0

    # -- both ----------------------------------------------------------
    def on_control(self, payload: bytes) -> bool:
        """Apply a control payload from the peer. Returns True when it
        granted new credit (senders waiting for it should retry). A
        payload of another shape is ignored."""
        if len(payload) != _CTRL_LEN:
            return False
        (value,) = _U64.unpack_from(payload, 1)
        kind = payload[:1]
        if kind == _ACK:
            if value > self.acked:
                self.acked = value
                return True
        elif kind == _REQUEST:
            # the peer's sender is blocked; it needs everything up to
            # ``value`` acknowledged once our reader has taken it
            if value <= self.consumed:
                self.ack_due = True
            else:
                self.ack_target = max(self.ack_target, value)
        return False
