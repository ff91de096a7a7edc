"""What the fork server does for every actor it forks, once, so that no
actor has to: it imports the parent's main module (as ``__mp_main__``)
and the modules the first actor exposes, reads the tree's TLS keys, and
fills the holes of its heap before freezing it; a script or module that
cannot be imported there is left to each actor, which reports the error
as before; a built-in transport or codec is found without scanning
every installed package's entry points (18 ms per actor); and neither
the reader of those nor the debugger is imported unless needed."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(120)

#: the tree every script below runs: ``count`` actors exposing ``module``,
#: each asked for its pid; a spawn that fails with a remote error says so
_TREE = '''

async def main():
    async with tractor.open_nursery() as an:
        try:
            portals = [await an.start_actor(f'a{{i}}', rpc_module_paths=[
                {module!r}]) for i in range({count})]
        except tractor.RemoteActorError as err:
            print('SPAWN FAILED', type(err).__name__,
                  getattr(err.type, '__name__', None), str(err))
            await an.cancel()
            return
        pids = [await p.run({module!r}, 'whoami') for p in portals]
        await an.cancel()
    print('PIDS', *pids)


if __name__ == '__main__':
    tractor.run(main, arbiter_addr=('127.0.0.1', {port}),
                start_method='forkserver'{run_kw})
'''


def _run_tree(tmp_path, prelude: str, port: int, module='__main__',
              count=4, run_kw=''):
    """Run ``prelude`` (the script's top, defining ``whoami`` if the
    script exposes itself) followed by :data:`_TREE` as a script of its
    own; returns the finished process and the actors' pids."""
    script = tmp_path / 'app.py'
    script.write_text(textwrap.dedent(prelude) + _TREE.format(
        module=module, count=count, port=port, run_kw=run_kw))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=90)
    out = proc.stdout.split('PIDS', 1)
    pids = [int(p) for p in out[1].split()] if len(out) == 2 else []
    return proc, pids


def _pids_in(log) -> list:
    """The pids a script's hooks wrote to ``log``, one per line."""
    return [int(p) for p in log.read_text().split()] if log.exists() else []


#: written at the top of a script or module: logs each import's pid,
#: then refuses to be imported if told to
_IMPORT_LOGGER = '''
with open({log!r}, 'a') as f:
    f.write(f'{{os.getpid()}}\\n')
if {fail!r}:
    raise RuntimeError('refusing to be imported')
'''

_WHOAMI = '''

def whoami():
    return os.getpid()
'''

_SCRIPT = ('import os, sys\nimport tractor\n\n'
           "if __name__ == '__mp_main__':\n"
           '    # once per import of this script outside the root'
           + textwrap.indent(_IMPORT_LOGGER, '    ') + _WHOAMI)


def _run(tmp_path, port, fail):
    log = tmp_path / 'imports.log'
    proc, pids = _run_tree(tmp_path, _SCRIPT.format(log=str(log), fail=fail),
                           port)
    return proc, pids, _pids_in(log)


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the forkserver start method needs Linux')
def test_script_the_server_cannot_import_is_left_to_each_actor(
        tmp_path, arb_addr):
    """The server reports the failure and keeps serving; the first actor
    then fails to import the script itself, and the root gets an
    ActorFailure that points at that actor's stderr."""
    proc, _, imports = _run(tmp_path, arb_addr[1], fail=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'fork server could not import' in proc.stderr
    assert 'SPAWN FAILED ActorFailure' in proc.stdout, proc.stdout
    assert 'before it was ready' in proc.stdout
    # the server tried, then the actor did
    assert len(imports) >= 2, imports


def test_builtin_names_need_no_entry_point_scan(monkeypatch):
    """``get('tcp')`` (and any built-in or registered name) never reads
    the installed packages' metadata; an unknown name still does, and
    the error lists what is available."""
    import importlib.metadata

    import tractor._plugins as plugins
    from tractor.transports import UnknownTransport
    scans = []

    def entry_points(**kw):
        scans.append(kw)
        return []
    monkeypatch.setattr(importlib.metadata, 'entry_points', entry_points)
    reg = plugins.PluginRegistry(
        'transport', 'tractor.transports',
        {'tcp': 'tractor.transports.tcp:TCPTransport'}, UnknownTransport)
    assert reg.get('tcp') is reg.get('tcp')
    reg.register('mine', object)
    reg.get('mine')
    assert scans == []
    with pytest.raises(UnknownTransport, match='available: .*tcp'):
        reg.get('nope')
    assert scans == [{'group': 'tractor.transports'}]


#: what no actor needs unless it asks for it (an entry point's name, a
#: debugger session), and would carry in its heap, as the fork server's,
#: if tractor imported it: importlib.metadata brings email, zipfile, csv
_HEAVY = ('importlib.metadata', 'email', 'zipfile', 'pdb')


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the forkserver start method needs Linux')
def test_actors_carry_no_metadata_reader_or_debugger(tmp_path, arb_addr):
    """A plain script's actors (and so its fork server) have none of
    ``_HEAVY`` imported."""
    log = tmp_path / 'loaded.log'
    prelude = f"""
        import os, sys
        import tractor


        def whoami():
            with open({str(log)!r}, 'a') as f:
                f.write(repr([m for m in {_HEAVY!r} if m in sys.modules]))
                f.write('\\n')
            return os.getpid()
        """
    proc, pids = _run_tree(tmp_path, prelude, arb_addr[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(pids) == 4
    assert log.read_text().splitlines() == ['[]'] * 4


_MODULE = 'import os\n' + _IMPORT_LOGGER + _WHOAMI


def _run_exposing(tmp_path, port, fail):
    log = tmp_path / 'imports.log'
    (tmp_path / 'exposed.py').write_text(
        textwrap.dedent(_MODULE.format(log=str(log), fail=fail)))
    proc, pids = _run_tree(tmp_path, 'import tractor\n', port,
                           module='exposed')
    return proc, pids, _pids_in(log)


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the forkserver start method needs Linux')
@pytest.mark.parametrize('what', ['script', 'exposed module'])
def test_imported_once_by_the_fork_server(tmp_path, arb_addr, what):
    """The parent's script, and a module the first actor exposes
    (rpc_module_paths), are imported by the fork server, once, and by
    none of the actors, which run their functions all the same: each
    shares them with the server instead of importing a private copy (a
    script's imports were 8 of an actor's 20 ms of start-up CPU; the
    benchmark's module 0.8 MiB of an idle actor's memory)."""
    run = _run if what == 'script' else _run_exposing
    proc, pids, imports = run(tmp_path, arb_addr[1], fail=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(set(pids)) == 4
    assert len(imports) == 1, imports
    assert imports[0] not in pids


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the forkserver start method needs Linux')
def test_exposed_module_the_server_cannot_import_is_left_to_the_actor(
        tmp_path, arb_addr):
    """The server's failed import says nothing (it is not the server's
    to report); the actor then imports the module itself, and its error
    reaches the root as it always did."""
    proc, _, imports = _run_exposing(tmp_path, arb_addr[1], fail=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'SPAWN FAILED RemoteActorError RuntimeError' in proc.stdout, \
        proc.stdout
    assert 'could not import' not in proc.stderr
    # the server tried, then the actor did
    assert len(imports) >= 2, imports



_TLS_SCRIPT = """
import os, ssl, sys
import tractor

KEYS = {keys!r}


def _log_key_reads(event, args):
    if (event == 'open' and isinstance(args[0], str)
            and args[0].startswith(KEYS)):
        with open({log!r}, 'a') as f:
            f.write(f'{{os.getpid()}}\\n')


def _logged(load):
    def load_cert_chain(self, *args, **kw):
        _log_key_reads('open', (KEYS,))
        return load(self, *args, **kw)
    return load_cert_chain


if __name__ == '__mp_main__':
    # in the fork server, which imports this script: every process forked
    # from it inherits the hook, the root (__main__) has none. Python's
    # open() raises an audit event; OpenSSL reads its files itself
    sys.addaudithook(_log_key_reads)
    ssl.SSLContext.load_cert_chain = _logged(ssl.SSLContext.load_cert_chain)


def whoami():
    return os.getpid()


TLS = tractor.TLSConfig(ca=os.path.join(KEYS, 'ca.pem'),
                        cert=os.path.join(KEYS, 'cert.pem'),
                        key=os.path.join(KEYS, 'key.pem'),
                        curve=os.path.join(KEYS, 'curve.key'))
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the forkserver start method needs Linux')
@pytest.mark.parametrize('transport', ['tcp', 'nng', 'zmq'])
def test_fork_server_reads_the_tree_keys_once(tmp_path, arb_addr,
                                              transport):
    """With TLS on, the fork server reads the tree's key material and
    builds what the transport makes of it (ssl contexts, nng's PEM text
    and certificate name, CURVE keys) before it forks; its actors find it
    ready and read no key file themselves."""
    from tractor.transports import available_transports
    if transport not in available_transports():
        pytest.skip(f'{transport} is not installed here')
    from tractor import _tls
    keys = tmp_path / 'keys'
    keys.mkdir(mode=0o700)
    _tls.fill_dir(str(keys))
    log = tmp_path / 'reads.log'
    proc, pids = _run_tree(
        tmp_path, _TLS_SCRIPT.format(keys=str(keys), log=str(log)),
        arb_addr[1], count=3, run_kw=f', transport={transport!r}, tls=TLS')
    assert proc.returncode == 0, proc.stderr[-3000:]
    readers = set(_pids_in(log))
    # the server read them (it is no actor), no actor did
    assert pids and readers and not readers & set(pids), (readers, pids)


_HOLES = '''
import gc, sys
from tractor import _malloc, _pymalloc

# holes of every size class: a lot of objects, every other one dropped
keep = []
for size in range(48, 513, 16):
    objs = [bytes(size - 33) for _ in range(2000)]
    keep.append(objs[::2])
del objs
gc.collect()
before = _pymalloc.free_blocks()
plugged = _pymalloc.plug()
after = _pymalloc.free_blocks()
print('POOLS', sum(before.values()), plugged, max(
    size * free for size, free in after.items()))

# and holes in the heap: 1 KiB chunks, every other one freed
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
chunks = [libc.malloc(1024) for _ in range(4000)]
for p in chunks[::2]:
    libc.free(p)
libc.mallinfo2.restype = _malloc._MallInfo2
m0 = libc.mallinfo2()
plugged = _malloc.plug_heap()
m1 = libc.mallinfo2()
print('HEAP', m0.fordblks - m0.keepcost, plugged, m1.fordblks - m1.keepcost)
'''


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc',
                    reason='plugging the heap is for glibc')
def test_fork_server_plugs_the_holes_it_would_share():
    """What the fork server does before it freezes its heap: every free
    block of its object pools, and every free chunk inside its heap, is
    filled, so that an actor's first allocations take fresh pages of its
    own instead of copying shared ones (about 0.5 MiB per idle actor)."""
    proc = subprocess.run([sys.executable, '-c', _HOLES],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict((line.split()[0], [int(x) for x in line.split()[1:]])
               for line in proc.stdout.splitlines())
    holes, plugged, left = out['POOLS']
    assert holes > 30000 and plugged >= 30000
    # what is left free is at most one pool (16 KiB) of a size class: one
    # the plugging itself started
    assert left <= 16 * 1024, out
    holes, plugged, left = out['HEAP']
    assert holes > 2000 * 1024 and plugged >= 2000 * 1024
    assert left < 64 * 1024, out
