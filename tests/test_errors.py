"""Errors crossing actors: remote errors, unexposed modules, modules that
fail to import, unknown functions, results the codec cannot carry, refused
connections, errors relayed through a tree."""
import os
import signal

import pytest
import trio

import tractor
from tractor_testing import free_port, speaking

pytestmark = pytest.mark.timeout(60)


class Opaque:
    """No codec can carry this."""


def raise_key_error():
    {}['missing-key']


async def async_raise_runtime():
    await trio.sleep(0)
    raise RuntimeError('async failure')


def ok():
    return 'still serving'


def returns_bytes():
    return b'\x00\xffraw'


def returns_opaque():
    return Opaque()


async def async_returns_opaque():
    await trio.sleep(0)
    return Opaque()


async def yields_opaque():
    yield 1
    yield Opaque()


async def daemon_call(arb_addr, func, *, ns=__name__, codec=None,
                      mods=(__name__,), **kw):
    async with tractor.open_nursery() as n:
        portal = await n.start_actor('callee', rpc_module_paths=list(mods))
        try:
            return await portal.run(ns, func, **kw)
        finally:
            await portal.cancel_actor()


def _run_daemon_call(arb_addr, func, codec=None, **kw):
    return tractor.run(daemon_call, arb_addr, func, arbiter_addr=arb_addr,
                       codec=codec, **kw)


@pytest.mark.parametrize('func, etype, text', [
    ('raise_key_error', KeyError, 'missing-key'),
    ('async_raise_runtime', RuntimeError, 'async failure'),
])
def test_remote_error_has_type_and_traceback(arb_addr, func, etype, text):
    with pytest.raises(tractor.RemoteActorError) as exc_info:
        _run_daemon_call(arb_addr, func)
    err = exc_info.value
    assert err.type is etype
    assert err.type_name == etype.__name__
    assert err.actor_uid[0] == 'callee'
    # raised where it was called: its own source, no relay
    assert err.src_type is etype and err.src_type_name == etype.__name__
    assert err.relay_path == [err.actor_uid]
    # the remote traceback names the remote function and its module
    assert func in err.remote_traceback
    assert 'test_errors.py' in err.remote_traceback
    assert text in str(err) and 'Traceback' in str(err)


def test_module_not_exposed(arb_addr):
    with pytest.raises(tractor.RemoteActorError) as exc_info:
        _run_daemon_call(arb_addr, 'getcwd', ns='os')
    err = exc_info.value
    assert err.type is tractor.ModuleNotExposed
    assert 'rpc_module_paths' in str(err)


def test_unknown_function(arb_addr):
    with pytest.raises(tractor.RemoteActorError) as exc_info:
        _run_daemon_call(arb_addr, 'no_such_function')
    err = exc_info.value
    assert err.type is tractor.NoSuchFunction
    # where it is raised, `except AttributeError` catches it
    assert issubclass(err.type, AttributeError)
    assert 'no_such_function' in str(err)


@pytest.mark.parametrize('source, etype', [
    (None, ModuleNotFoundError),
    ('def broken(:\n    pass\n', SyntaxError),
    ('raise ImportError("refusing to load")\n', ImportError),
])
@pytest.mark.parametrize('how', ['start_actor', 'run_in_actor'])
def test_module_import_failure_raises_at_spawn(arb_addr, tmp_path,
                                               monkeypatch, source, etype,
                                               how):
    """A module in rpc_module_paths that cannot be imported makes the
    spawn itself raise the import error, in the parent, promptly."""
    modname = f'tractor_test_badmod_{etype.__name__.lower()}'
    if source is not None:
        (tmp_path / f'{modname}.py').write_text(source)
        # children receive our sys.path when they start
        monkeypatch.syspath_prepend(str(tmp_path))

    async def main():
        async with tractor.open_nursery() as n:
            with trio.fail_after(30):
                if how == 'start_actor':
                    await n.start_actor('importer',
                                        rpc_module_paths=[modname])
                else:
                    await n.run_in_actor('importer', ok,
                                         rpc_module_paths=[modname])
        raise AssertionError('spawn did not fail')

    with pytest.raises(tractor.RemoteActorError) as exc_info:
        tractor.run(main, arbiter_addr=arb_addr)
    err = exc_info.value
    assert err.type is etype
    assert modname in str(err) or 'refusing to load' in str(err)


async def spawn_importers(modname: str, times: int) -> list:
    """Spawn ``times`` actors serving ``modname`` (start_actor and
    run_in_actor in turn); return what each spawn raised."""
    errors = []
    async with tractor.open_nursery() as n:
        for i in range(times):
            with trio.fail_after(30):
                try:
                    if i % 2:
                        await n.start_actor('importer',
                                            rpc_module_paths=[modname])
                    else:
                        await n.run_in_actor('importer', ok,
                                             rpc_module_paths=[modname])
                except Exception as err:
                    errors.append(err)
                else:
                    raise AssertionError(f'spawn {i} did not fail')
    return errors


def check_import_errors(errors, times, etype, modname):
    assert len(errors) == times
    for i, err in enumerate(errors):
        # never "ActorFailure: ... exited (code 0) before it was ready":
        # the child's report must win the race with its exit
        assert type(err) is tractor.RemoteActorError, (i, err)
        assert err.type is etype, (i, err)
        assert modname in str(err), (i, err)


def test_import_error_always_wins(transport, arb_addr):
    """50 spawns of an actor whose module does not exist: every one
    raises the child's ModuleNotFoundError, whatever the transport."""
    modname = 'tractor_test_no_such_module'
    errors = tractor.run(spawn_importers, modname, 50, arbiter_addr=arb_addr,
                         transport=transport)
    check_import_errors(errors, 50, ModuleNotFoundError, modname)


def test_syntax_error_always_wins(arb_addr, tmp_path, monkeypatch):
    """The same with a module that exists but does not compile (written
    to a temporary directory on the children's sys.path, so that it
    never reaches the test collection)."""
    modname = 'tractor_test_syntax_error_mod'
    (tmp_path / f'{modname}.py').write_text('def broken(:\n    pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    errors = tractor.run(spawn_importers, modname, 50, arbiter_addr=arb_addr)
    check_import_errors(errors, 50, SyntaxError, modname)


@pytest.mark.parametrize('codec', ['msgpack', 'json'])
@pytest.mark.parametrize('func', [
    'returns_bytes', 'returns_opaque', 'async_returns_opaque',
    'yields_opaque'])
def test_unencodable_result(arb_addr, codec, func):
    """A value the codec cannot carry becomes a clear error for the caller
    and the actor keeps serving."""
    if func == 'returns_bytes' and codec == 'msgpack':
        pytest.skip('msgpack carries bytes')

    async def main():
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('callee',
                                         rpc_module_paths=[__name__])
            got = []
            try:
                res = await portal.run(__name__, func)
                if func == 'yields_opaque':
                    async for item in res:
                        got.append(item)
                raise AssertionError(f'no error, got {res!r}')
            except tractor.RemoteActorError as err:
                error = err
            after = await portal.run(__name__, 'ok')
            await portal.cancel_actor()
        return error, got, after

    err, got, after = tractor.run(main, arbiter_addr=arb_addr, codec=codec)
    assert err.type is tractor.EncodeError
    text = str(err)
    assert codec in text.lower() or 'encode' in text.lower()
    assert after == 'still serving'
    if func == 'yields_opaque':
        assert got == [1]


# -- a refused connection ------------------------------------------------
async def dial_nobody(addr):
    async with tractor.open_portal(addr):
        raise AssertionError(f'connected to {addr} where nobody listens')


def test_refused_connection_is_a_connection_error(transport, arb_addr):
    """Dialing an address nobody listens on raises a ConnectionError (so
    ``except OSError`` catches it, as with plain sockets), which is still
    the transports' one failure type, TransportClosed, on every
    transport. (For the ipc variants the ``(host, port)`` pair names a
    socket path nobody is bound to.)"""
    nobody = ('127.0.0.1', free_port())
    with pytest.raises(ConnectionError) as exc_info:
        tractor.run(dial_nobody, nobody, arbiter_addr=arb_addr,
                    transport=transport)
    err = exc_info.value
    assert isinstance(err, tractor.TransportClosed)
    assert 'cannot connect' in str(err)


async def test_refused_channel_connect_is_an_oserror(transport):
    """The same without a runtime: ``Channel.connect`` straight to a free
    address."""
    nobody = ('127.0.0.1', free_port())
    with speaking(transport) as name, trio.fail_after(10):
        with pytest.raises(OSError) as exc_info:
            await tractor.Channel.connect(nobody, transport=name)
    assert isinstance(exc_info.value, tractor.TransportClosed)


# -- errors relayed up a tree ------------------------------------------
async def leaf_fails():
    raise ValueError(f'leaf failed: {tractor.current_actor().uid[1]}')


async def leaf_dies():
    os.kill(os.getpid(), signal.SIGKILL)


async def middle_runs_leaf(how, leaf_func):
    """The middle of a 3-level tree: runs ``leaf_func`` in a child of its
    own and lets its error go up."""
    async with tractor.open_nursery() as n:
        if how == 'run_in_actor':
            await n.run_in_actor('leaf', globals()[leaf_func])
        else:
            portal = await n.start_actor('leaf', rpc_module_paths=[__name__])
            await portal.run(__name__, leaf_func)


async def root_of_three(how, leaf_func):
    portal = None
    try:
        async with tractor.open_nursery() as n:
            portal = await n.run_in_actor('middle', middle_runs_leaf,
                                          how=how, leaf_func=leaf_func)
    except tractor.RemoteActorError as err:
        return err, portal.channel.uid
    raise AssertionError('no error came up')


@pytest.mark.parametrize('how', ['run_in_actor', 'portal.run'])
def test_relayed_error_keeps_type_and_path(arb_addr, how):
    """root -> middle -> leaf, the leaf raises ValueError: the root sees
    what the middle raised (a RemoteActorError) as ``.type``, the leaf's
    ValueError as ``.src_type``, and the two actors it crossed, leaf
    first, as ``.relay_path``."""
    err, middle_uid = tractor.run(root_of_three, how, 'leaf_fails',
                                  arbiter_addr=arb_addr)
    assert err.type is tractor.RemoteActorError
    assert err.type_name == 'RemoteActorError'
    assert err.src_type is ValueError
    assert err.src_type_name == 'ValueError'
    assert err.actor_uid == middle_uid
    leaf_uuid = str(err).split('leaf failed: ')[1].split()[0]
    assert err.relay_path == [('leaf', leaf_uuid), middle_uid]
    # the leaf's own message and traceback, once, and the path in words
    text = str(err)
    assert text.startswith(f'ValueError: leaf failed: {leaf_uuid}')
    assert 'leaf_fails' in err.remote_traceback
    assert text.count('leaf_fails') == err.remote_traceback.count(
        'leaf_fails')
    assert f'relayed by {middle_uid}' in text


def test_relayed_actor_failure_has_a_type(arb_addr):
    """An ActorFailure (the leaf was SIGKILLed) raised in the middle and
    relayed to the root is named: ``.type`` and ``.src_type`` are
    ActorFailure."""
    err, middle_uid = tractor.run(root_of_three, 'run_in_actor',
                                  'leaf_dies', arbiter_addr=arb_addr)
    assert err.type is tractor.ActorFailure
    assert err.src_type is tractor.ActorFailure
    assert [u[0] for u in err.relay_path] == ['leaf', 'middle']
    assert err.relay_path[-1] == middle_uid
    assert 'died' in str(err)


def test_error_from_an_older_peer_is_read():
    """An error packed without ``src_type`` and ``relay`` (an older
    peer) reads as raised by the peer that sent it."""
    from tractor._exceptions import unpack_error
    err = unpack_error({'type': 'KeyError', 'msg': "'k'", 'tb': 'tb text',
                        'uid': ['old', 'u1']})
    assert err.type is KeyError and err.src_type is KeyError
    assert err.relay_path == [('old', 'u1')]
    assert err.actor_uid == ('old', 'u1')
    assert "KeyError: 'k'" in str(err)
    odd = unpack_error({'type': 'KeyError', 'uid': 5})
    assert isinstance(odd, tractor.RemoteActorError)
    assert 'malformed' in str(odd)
