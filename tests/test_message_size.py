"""Messages too large for the transport, and values the codec cannot carry:
each fails where it is sent, before anything is sent, with an error saying
what to do, and the channel goes on serving.

The limit is ``max_frame``: ``tractor.run(max_frame=...)`` or
``$TRACTOR_MAX_FRAME``, the same in every actor of the tree. The tests
lower it to 2 MiB to work with payloads of a few MiB.
"""
import re

import pytest

import tractor
from tractor.transports import DEFAULT_MAX_FRAME, get_transport

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
LIMIT = 2 * MiB


def payload(n: int):
    """``n`` bytes of data in a form both codecs carry."""
    codec = tractor.current_actor().codec
    return bytes(n) if codec == 'msgpack' else 'x' * n


def nested(depth: int):
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


# -- what the callee serves ----------------------------------------------
def ok():
    return 'still serving'


def size_of(data):
    return len(data)


def make(n: int):
    return payload(n)


async def async_make(n: int):
    return payload(n)


async def stream_then_big(n: int):
    yield 'small'
    yield payload(n)


async def run_with_big_middle(n: int):
    # three items sent without yielding: one run, its middle item alone
    # over max_frame (a list: not sent on its own like bulky bytes)
    yield 'first'
    yield list(range(n))
    yield 'last'


def make_nested(depth: int):
    return nested(depth)


def limit_here():
    """This actor's limit, as its transport enforces it."""
    return get_transport(tractor.current_actor().transport).max_frame


# -- helpers -------------------------------------------------------------
async def with_callee(body):
    async with tractor.open_nursery() as n:
        portal = await n.start_actor('callee', rpc_module_paths=[__name__])
        try:
            return await body(portal)
        finally:
            await portal.cancel_actor()


def check_too_large(err, size: int) -> None:
    text = str(err)
    assert f'max_frame={LIMIT}' in text, text
    assert 'tractor.run(..., max_frame=N)' in text
    assert '$TRACTOR_MAX_FRAME' in text
    assert 'nothing was sent' in text
    # the encoded size: the payload's and a little framing
    said = int(re.search(r'a message of (\d+) bytes', text).group(1))
    assert size <= said < size + 1024


def run(main, transport, codec, arb_addr, **kw):
    return tractor.run(main, arbiter_addr=arb_addr, transport=transport,
                       codec=codec, **kw)


# -- tests ---------------------------------------------------------------
def test_too_large_argument_fails_locally(transport, codec, arb_addr):
    """An argument over max_frame raises MessageTooLarge in the caller,
    before sending (so never a TransportClosed), and the same portal
    answers the next call."""
    size = LIMIT + MiB

    async def body(portal):
        with pytest.raises(tractor.MessageTooLarge) as info:
            await portal.run(__name__, 'size_of', data=payload(size))
        assert portal.channel.connected
        return info.value, await portal.run(__name__, 'ok'), \
            await portal.run(__name__, 'size_of', data=payload(MiB))

    err, after, small = run(lambda: with_callee(body), transport, codec,
                            arb_addr, max_frame=LIMIT)
    assert isinstance(err, tractor.EncodeError)
    assert isinstance(err, ValueError)
    assert not isinstance(err, tractor.TransportClosed)
    check_too_large(err, size)
    assert after == 'still serving'
    assert small == MiB


def test_too_large_result_is_a_remote_error(transport, codec, arb_addr):
    """A result (sync or async function) or a stream item over max_frame:
    the callee sends the error instead, the caller raises a
    RemoteActorError of type MessageTooLarge, and the portal answers the
    next call."""
    size = LIMIT + MiB

    async def body(portal):
        errs, got = [], []
        for func in ('make', 'async_make'):
            with pytest.raises(tractor.RemoteActorError) as info:
                await portal.run(__name__, func, n=size)
            errs.append(info.value)
            got.append(await portal.run(__name__, 'ok'))
        with pytest.raises(tractor.RemoteActorError) as info:
            async for item in await portal.run(__name__, 'stream_then_big',
                                               n=size):
                got.append(item)
        errs.append(info.value)
        got.append(await portal.run(__name__, 'ok'))
        return errs, got

    errs, got = run(lambda: with_callee(body), transport, codec, arb_addr,
                    max_frame=LIMIT)
    assert got == ['still serving', 'still serving', 'small',
                   'still serving']
    for err in errs:
        assert err.type is tractor.MessageTooLarge, err
        assert err.actor_uid[0] == 'callee'
        check_too_large(err, size)


def test_too_large_item_inside_a_run(transport, codec, arb_addr):
    """Stream items sent in one go travel as one run; one of them alone
    over max_frame fails as if it had been sent alone: the items before it
    arrive, then its error, and none of the items after it."""
    async def body(portal):
        got = []
        with pytest.raises(tractor.RemoteActorError) as info:
            async with portal.open_stream_from(
                    __name__, 'run_with_big_middle', n=600_000) as stream:
                async for item in stream:
                    got.append(item)
        return got, info.value, await portal.run(__name__, 'ok')

    got, err, after = run(lambda: with_callee(body), transport, codec,
                          arb_addr, max_frame=LIMIT)
    assert got == ['first']
    assert err.type is tractor.MessageTooLarge, err
    assert after == 'still serving'


def test_max_frame_option_raises_the_limit(transport, codec, arb_addr):
    """``max_frame=`` set above a message's size lets it through both
    ways, and every actor of the tree has that limit."""
    size = LIMIT + MiB

    async def body(portal):
        return (await portal.run(__name__, 'size_of', data=payload(size)),
                len(await portal.run(__name__, 'make', n=size)),
                await portal.run(__name__, 'limit_here'), limit_here())

    sent, received, child_limit, root_limit = run(
        lambda: with_callee(body), transport, codec, arb_addr,
        max_frame=2 * LIMIT)
    assert sent == size and received == size
    assert child_limit == root_limit == 2 * LIMIT
    # the process-wide transport is left as it was found
    assert get_transport(transport).max_frame == DEFAULT_MAX_FRAME


def test_max_frame_from_environment(arb_addr, monkeypatch):
    """``$TRACTOR_MAX_FRAME`` sets the limit when ``max_frame=`` is not
    given, down the whole tree."""
    monkeypatch.setenv('TRACTOR_MAX_FRAME', str(LIMIT))

    async def body(portal):
        with pytest.raises(tractor.MessageTooLarge):
            await portal.run(__name__, 'size_of', data=payload(LIMIT + 1))
        with pytest.raises(tractor.RemoteActorError) as info:
            await portal.run(__name__, 'make', n=LIMIT + 1)
        return info.value.type, await portal.run(__name__, 'limit_here')

    etype, child_limit = tractor.run(lambda: with_callee(body),
                                     arbiter_addr=arb_addr)
    assert etype is tractor.MessageTooLarge
    assert child_limit == LIMIT


@pytest.mark.parametrize('value', [0, 1000, 2**33, 'big', 1.5e6])
def test_bad_max_frame_says_what_is_expected(arb_addr, value):
    async def main():
        raise AssertionError('ran with a bad max_frame')

    with pytest.raises(ValueError) as info:
        tractor.run(main, arbiter_addr=arb_addr, max_frame=value)
    assert 'expected a number of bytes' in str(info.value)


def test_deep_nesting_is_an_encode_error(transport, codec, arb_addr):
    """A value nested deeper than the codec goes is an EncodeError (never a
    bare RecursionError): raised locally for an argument, reported as a
    RemoteActorError of type EncodeError for a result; the portal goes
    on answering."""
    async def body(portal):
        with pytest.raises(tractor.EncodeError) as local:
            await portal.run(__name__, 'size_of', data=nested(100_000))
        with pytest.raises(tractor.RemoteActorError) as remote:
            await portal.run(__name__, 'make_nested', depth=100_000)
        return local.value, remote.value, await portal.run(__name__, 'ok')

    local, remote, after = run(lambda: with_callee(body), transport, codec,
                               arb_addr)
    assert 'nested' in str(local) and codec in str(local)
    assert remote.type is tractor.EncodeError
    assert 'nested' in str(remote)
    assert after == 'still serving'
