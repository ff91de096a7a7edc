"""The zmq stream's byte-credit window, on its own: no socket, no trio.

Two windows stand for the two ends of a stream; control payloads are
handed from one to the other as the stream would send them.
"""
import pytest

pytest.importorskip('zmq')

from tractor.transports.zmq import CreditWindow  # noqa: E402
from tractor.transports.zmq._credit import FRAME_COST  # noqa: E402

KiB = 1024


def send(sender: CreditWindow, n: int) -> bool:
    """Send a frame of ``n`` bytes if the window lets it: what the stream
    does around each zmq send."""
    cost = n + FRAME_COST
    if not sender.fits(cost):
        return False
    sender.spend(cost)
    return True


def read(reader: CreditWindow, sender: CreditWindow, n: int) -> None:
    """The reader's application takes a frame of ``n`` bytes; a due ack
    travels to the sender at once."""
    if reader.took(n):
        granted = sender.on_control(reader.ack())
        reader.ack_sent()
        assert granted or sender.acked == reader.consumed


def test_window_bounds_bytes_in_flight():
    sender, reader = CreditWindow(64 * KiB), CreditWindow(64 * KiB)
    sent = 0
    while send(sender, KiB):
        sent += 1
    # no more than the window is out, counting the per-frame cost
    assert sent * (KiB + FRAME_COST) <= 64 * KiB
    assert sent == 64 * KiB // (KiB + FRAME_COST)
    assert not sender.fits(KiB + FRAME_COST)
    # the reader takes them; its acks give the credit back
    for _ in range(sent):
        read(reader, sender, KiB)
    assert sender.fits(KiB + FRAME_COST)


def test_empty_frames_cost_something():
    """A flood of empty frames is bounded too."""
    sender = CreditWindow(64 * KiB)
    n = 0
    while send(sender, 0):
        n += 1
    assert n == 64 * KiB // FRAME_COST


def test_frame_bigger_than_window_goes_alone():
    """Nothing outstanding: a frame over the window still goes (else it
    never could); with anything outstanding it waits."""
    sender = CreditWindow(64 * KiB)
    assert send(sender, 1024 * KiB)
    assert not send(sender, 0)
    sender.on_control(b'A' + (1024 * KiB + FRAME_COST).to_bytes(8, 'big'))
    assert send(sender, 1024 * KiB)


def test_reader_acks_every_quarter_window():
    reader = CreditWindow(64 * KiB)
    assert reader.ack_every == 16 * KiB
    due = [reader.took(KiB) for _ in range(20)]
    # the first ack falls due once a quarter window was taken
    first = due.index(True)
    assert (first + 1) * (KiB + FRAME_COST) >= 16 * KiB
    assert first * (KiB + FRAME_COST) < 16 * KiB
    assert reader.ack() == b'A' + reader.consumed.to_bytes(8, 'big')
    reader.ack_sent()
    assert not reader.ack_due
    assert not reader.took(0)


def test_credit_request_makes_a_small_backlog_acked():
    """A sender stuck behind a small backlog (less than a quarter window
    unacked at the reader) asks for credit; the reader acks once it has
    taken everything the request covers, not before."""
    sender, reader = CreditWindow(64 * KiB), CreditWindow(64 * KiB)
    assert send(sender, KiB) and send(sender, KiB)
    assert not send(sender, 63 * KiB)  # out of credit
    ask = sender.request()
    assert ask == b'R' + sender.sent.to_bytes(8, 'big')
    sender.requested_sent()
    assert sender.request() is None  # asked already
    assert reader.on_control(ask) is False  # a request grants nothing
    assert not reader.took(KiB)  # half of it read: no ack yet
    assert reader.took(KiB)  # all of it: ack due
    assert sender.on_control(reader.ack()) is True
    reader.ack_sent()
    assert reader.ack_target == 0
    assert send(sender, 63 * KiB)


def test_request_for_what_was_read_already_acks_at_once():
    reader = CreditWindow(64 * KiB)
    reader.took(KiB)
    reader.on_control(b'R' + (KiB + FRAME_COST).to_bytes(8, 'big'))
    assert reader.ack_due


def test_stale_ack_and_garbage_are_ignored():
    sender = CreditWindow(64 * KiB)
    send(sender, KiB)
    assert sender.on_control(b'A' + (KiB + FRAME_COST).to_bytes(8, 'big'))
    assert not sender.on_control(b'A' + (1).to_bytes(8, 'big'))  # older
    assert sender.acked == KiB + FRAME_COST
    for junk in (b'', b'A', b'X' + bytes(8), b'A' + bytes(9)):
        assert not sender.on_control(junk)
    assert sender.acked == KiB + FRAME_COST


def test_many_rounds_never_exceed_the_window():
    """A long run of random frame sizes, reader and sender interleaved:
    the bytes out never exceed the window (unless one frame alone), and
    everything sent is eventually acked."""
    import random
    rnd = random.Random(7)
    w = 256 * KiB
    sender, reader = CreditWindow(w), CreditWindow(w)
    queue = []
    for _ in range(20_000):
        if rnd.random() < 0.55:
            n = rnd.choice([0, 10, 1000, 30 * KiB, 300 * KiB])
            if send(sender, n):
                queue.append(n)
                out = sender.sent - sender.acked
                assert out <= w or out == n + FRAME_COST
        elif queue:
            read(reader, sender, queue.pop(0))
        else:
            ask = sender.request()
            if ask is not None:
                reader.on_control(ask)
                sender.requested_sent()
    while queue:
        read(reader, sender, queue.pop(0))
    ask = sender.request()
    if ask is not None:
        reader.on_control(ask)
        if reader.ack_due:
            sender.on_control(reader.ack())
            reader.ack_sent()
    assert sender.acked == sender.sent == reader.consumed


def test_window_must_be_positive():
    with pytest.raises(ValueError, match='positive'):
        CreditWindow(0)
