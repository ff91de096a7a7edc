"""The conformance kit itself: ``check_transport`` passes a correct
transport and fails a broken one with a message naming the rule broken.

The broken transports here are tiny wrappers around the real ``tcp``
transport, each with one deliberate defect (reordering frames, leaking a
backend error, no ``abort``, a ``max_frame`` it does not enforce). They
are the kit's test subjects, not stand-ins for a transport under test.
"""
from __future__ import annotations

import pytest

from tractor.testing import RULES, TransportReport, check_transport
from tractor.transports import DEFAULT_MAX_FRAME, TransportClosed
from tractor.transports.tcp import TCPTransport

pytestmark = pytest.mark.timeout(60)

ADDR = 'tcp://127.0.0.1:0'


class Passthrough:
    """A correct stream: every call goes to a real tcp stream."""

    def __init__(self, inner) -> None:
        self._s = inner
        self.local_addr = inner.local_addr
        self.peer_addr = inner.peer_addr

    async def send(self, data) -> None:
        await self._s.send(data)

    async def recv(self):
        return await self._s.recv()

    async def aclose(self) -> None:
        await self._s.aclose()

    def abort(self) -> None:
        self._s.abort()


class Reorders(Passthrough):
    """Holds every 1000th frame back and sends it after the next one."""

    sent = 0
    held = None

    async def send(self, data) -> None:
        self.sent += 1
        if self.sent % 1000 == 0:
            self.held = bytes(data)
            return
        await self._s.send(data)
        if self.held is not None:
            held, self.held = self.held, None
            await self._s.send(held)


class LeaksBackendErrors(Passthrough):
    """Lets the backend's own error out when the peer goes."""

    async def recv(self):
        try:
            return await self._s.recv()
        except TransportClosed as err:
            raise ConnectionResetError(104, f'reset: {err}') from None


class NoAbort(Passthrough):
    abort = None  # not a method: the stream lacks abort()


class _Listener:
    def __init__(self, inner, wrap) -> None:
        self._l = inner
        self._wrap = wrap
        self.addr = inner.addr

    async def accept(self):
        return self._wrap(await self._l.accept())

    async def aclose(self) -> None:
        await self._l.aclose()


class Wrapping:
    """A transport whose streams are ``wrap(a real tcp stream)``."""

    schemes = ('tcp',)

    def __init__(self, wrap, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.name = f'{wrap.__name__.lower()}-tcp'
        self.max_frame = max_frame
        self._wrap = wrap
        self._tcp = TCPTransport()

    async def connect(self, addr):
        return self._wrap(await self._tcp.connect(addr))

    async def listen(self, addr):
        return _Listener(await self._tcp.listen(addr), self._wrap)


async def test_a_correct_wrapper_passes():
    """The wrapper without a defect passes the rules the broken ones
    fail: the failures below come from their defects."""
    report = await check_transport(
        Wrapping(Passthrough), ADDR,
        rules=['objects', 'order', 'close', 'abort', 'framing'])
    assert isinstance(report, TransportReport)
    assert [r for r, _ in report.passed] == [
        'objects', 'order', 'close', 'abort', 'framing']


async def test_reordered_frames_fail_the_order_rule():
    with pytest.raises(AssertionError) as info:
        await check_transport(Wrapping(Reorders), ADDR, rules=['order'])
    msg = str(info.value)
    assert "transport 'reorders-tcp'" in msg
    assert "broke rule 'order'" in msg
    assert 'arrive in the order they were sent' in msg  # the rule's text
    assert 'frames lost or out of order' in msg  # what happened


async def test_a_leaked_backend_error_fails_the_close_rule():
    with pytest.raises(AssertionError) as info:
        await check_transport(Wrapping(LeaksBackendErrors), ADDR,
                              rules=['close'])
    msg = str(info.value)
    assert "broke rule 'close'" in msg
    assert 'ConnectionResetError' in msg
    assert 'the contract wants TransportClosed' in msg


async def test_a_stream_without_abort_fails_the_objects_rule():
    with pytest.raises(AssertionError) as info:
        await check_transport(Wrapping(NoAbort), ADDR, rules=['objects'])
    msg = str(info.value)
    assert "broke rule 'objects'" in msg and 'abort' in msg


async def test_an_unenforced_max_frame_fails_its_rule():
    """A transport that says max_frame is 1 MiB but sends more."""
    with pytest.raises(AssertionError) as info:
        await check_transport(Wrapping(Passthrough, max_frame=1024 * 1024),
                              ADDR, rules=['frame-too-large'])
    msg = str(info.value)
    assert "broke rule 'frame-too-large'" in msg
    assert 'returned; the contract wants FrameTooLarge' in msg


async def test_by_registry_name_and_skipped_capabilities():
    """A registered name works; absent optional capabilities are
    reported as skipped, not failed."""
    report = await check_transport('tcp', ADDR,
                                   rules=['objects', 'parts'])
    assert [r for r, _ in report.passed] == ['objects']
    assert [(r, why) for r, _, why in report.skipped] == [
        ('parts', 'no frames in parts (optional)')]


async def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown rule.*'?no-such'?"):
        await check_transport('tcp', ADDR, rules=['no-such'])
    assert 'order' in RULES and 'abort' in RULES
