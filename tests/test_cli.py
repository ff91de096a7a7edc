"""The ``tractor`` command line, run for real: ``python -m tractor`` (and
the installed console script) as a subprocess against real trees, real
arbiters and real sockets.

The trees run in the test (``open_root_actor``), so the test knows every
actor's uid and address and can compare ``ls`` with them exactly; the
command runs beside them with ``trio.run_process``. A standalone arbiter
(``tractor arbiter``) is waited for by reading its ``arbiter ready at``
line, with a deadline, never by sleeping.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import sysconfig

import pytest
import trio

import tractor
from tractor._cli import ExitCode
from tractor._tls import split_transport
from tractor.transports import Addr
from tractor_testing import free_port, python_env

pytestmark = pytest.mark.timeout(90)

#: seconds any one command may take before the test fails
DEADLINE = 30

MODULE = [sys.executable, '-m', 'tractor']


def console_script() -> list[str]:
    """The installed ``tractor`` script of this interpreter."""
    path = os.path.join(sysconfig.get_path('scripts'), 'tractor')
    if not os.path.exists(path):
        pytest.fail(f'no console script at {path}: reinstall the package '
                    f"(pip install -e '.[test]') to get it", pytrace=False)
    return [path]


async def cli(*args: str, env: dict | None = None,
              command: list[str] = MODULE) -> subprocess.CompletedProcess:
    """Run the command line to completion (beside the running tree)."""
    with trio.fail_after(DEADLINE):
        result = await trio.run_process(
            [*command, *args], env=env or python_env(), capture_stdout=True,
            capture_stderr=True, check=False, stdin=subprocess.DEVNULL)
    result.stdout = result.stdout.decode()
    result.stderr = result.stderr.decode()
    return result


def run_cli(*args: str, env: dict | None = None,
            command: list[str] = MODULE) -> subprocess.CompletedProcess:
    """The same, for a test that runs no trio loop."""
    return subprocess.run(
        [*command, *args], env=env or python_env(), capture_output=True,
        text=True, timeout=DEADLINE, stdin=subprocess.DEVNULL)


def arbiter_opts(arb_addr, transport: str = 'tcp') -> list[str]:
    host, port = arb_addr
    return ['--arbiter', f'{host}:{port}', '--transport', transport]


def rows(stdout: str) -> list[tuple[str, ...]]:
    return [tuple(line.split()) for line in stdout.splitlines()]


async def info_row(portal) -> tuple[str, str, str]:
    """``(name, uuid, address)`` of an actor, as it describes itself."""
    info = await portal.run('self', 'info')
    return info['uid'][0], info['uid'][1], info['addr']


def own_row(actor) -> tuple[str, str, str]:
    return actor.uid[0], actor.uid[1], str(actor.accept_addr)


@pytest.fixture
def silent_addr():
    """A tcp address that accepts connections (the kernel completes them)
    but never says a word: a hung arbiter."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        s.listen(8)
        yield s.getsockname()


# -- ls ----------------------------------------------------------------------
async def test_ls_lists_a_running_tree(transport, arb_addr):
    """Every actor of a tree, one line each: name, uid, address in its URL
    form, on every transport; the command itself is never listed."""
    async with tractor.open_root_actor(
            name='root', arbiter_addr=arb_addr, transport=transport) as root:
        async with tractor.open_nursery() as n:
            # a dotted name: the registry's keys are "name.uuid"
            portal = await n.start_actor('worker.one', rpc_module_paths=[])
            async with tractor.wait_for_actor('worker.one'):
                pass
            want = sorted([own_row(root), await info_row(portal)])
            # addresses in their URL form, carrying the tree's transport
            for _, _, addr in want:
                assert Addr.parse(addr).transport == transport.split('+')[0]
                assert str(Addr.parse(addr)) == addr
            for _ in range(2):  # a second look: the first left no trace
                r = await cli('ls', *arbiter_opts(arb_addr, transport))
                assert r.returncode == ExitCode.OK, r.stderr
                assert rows(r.stdout) == want
            await n.cancel()


async def test_ls_with_another_codec(arb_addr):
    """``--codec`` (else ``$TRACTOR_CODEC``) must be the tree's: a mismatch
    is refused by the handshake, with a status of its own."""
    async with tractor.open_root_actor(arbiter_addr=arb_addr,
                                       codec='json') as root:
        r = await cli('ls', *arbiter_opts(arb_addr), '--codec', 'json')
        assert r.returncode == ExitCode.OK, r.stderr
        assert rows(r.stdout) == [own_row(root)]
        r = await cli('ls', *arbiter_opts(arb_addr),
                      env=python_env(TRACTOR_CODEC='json'))
        assert rows(r.stdout) == [own_row(root)]
        r = await cli('ls', *arbiter_opts(arb_addr), '--codec', 'msgpack')
        assert r.returncode == ExitCode.DENIED
        assert "uses codec 'json'" in r.stderr and '--codec' in r.stderr


async def test_ls_reads_the_environment(arb_addr):
    """With no options, the arbiter and transport an unchanged program
    would use: ``$TRACTOR_ARBITER_ADDR``, ``$TRACTOR_TRANSPORT``."""
    async with tractor.open_root_actor(arbiter_addr=arb_addr,
                                       transport='uds') as root:
        host, port = arb_addr
        r = await cli('ls', env=python_env(
            TRACTOR_ARBITER_ADDR=f'{host}:{port}', TRACTOR_TRANSPORT='uds'))
        assert r.returncode == ExitCode.OK, r.stderr
        assert rows(r.stdout) == [own_row(root)]
        # an address string names its transport itself
        r = await cli('ls', '--arbiter', str(root.accept_addr))
        assert rows(r.stdout) == [own_row(root)]


# -- ping --------------------------------------------------------------------
async def test_ping(arb_addr, silent_addr):
    """``ping NAME`` finds the actor and times a real call to it (through
    the console script); an unknown name, a registered actor that does not
    answer, and a cluster with another secret each fail with their own
    status."""
    async with tractor.open_root_actor(name='root',
                                       arbiter_addr=arb_addr) as root:
        async with tractor.open_nursery() as n:
            portal = await n.start_actor('worker', rpc_module_paths=[])
            async with tractor.wait_for_actor('worker'):
                pass
            name, uid, addr = await info_row(portal)
            r = await cli('ping', 'worker', *arbiter_opts(arb_addr),
                          command=console_script())
            assert r.returncode == ExitCode.OK, r.stderr
            assert re.fullmatch(
                rf'pong from worker {uid} at {re.escape(addr)}: '
                rf'time=\d+\.\d\d ms\n', r.stdout), r.stdout

            r = await cli('ping', 'nobody', *arbiter_opts(arb_addr))
            assert r.returncode == ExitCode.NOT_FOUND
            assert "no actor named 'nobody'" in r.stderr

            # registered, but nothing (or nothing that talks) is there
            await root.register_actor(
                ('gone', 'x'), f'tcp://127.0.0.1:{free_port()}')
            host, port = silent_addr
            await root.register_actor(('hung', 'y'), f'tcp://{host}:{port}')
            try:
                r = await cli('ping', 'gone', *arbiter_opts(arb_addr))
                assert r.returncode == ExitCode.UNREACHABLE
                assert "actor 'gone' at tcp://127.0.0.1:" in r.stderr
                r = await cli('ping', 'hung', *arbiter_opts(arb_addr),
                              '--timeout', '0.5')
                assert r.returncode == ExitCode.TIMEOUT
                assert 'did not answer within 0.5 s' in r.stderr
            finally:
                await root.unregister_actor(('gone', 'x'))
                await root.unregister_actor(('hung', 'y'))

            r = await cli('ping', 'worker', *arbiter_opts(arb_addr),
                          env=python_env(TRACTOR_SECRET='not the secret'))
            assert r.returncode == ExitCode.DENIED
            assert "does not know this cluster's secret" in r.stderr

            # an actor that is not an arbiter cannot list a registry
            r = await cli('ls', '--arbiter', addr)
            assert r.returncode == ExitCode.FAILED
            assert 'is it an arbiter?' in r.stderr

            # none of that left the command line in the registry
            assert sorted(await root.get_registry()) == sorted(
                [f'root.{root.uid[1]}', f'worker.{uid}'])
            await n.cancel()


# -- arbiter -----------------------------------------------------------------
async def start_arbiter(*args: str) -> tuple[trio.Process, str]:
    """Start ``tractor arbiter ARGS``; return it and the address it printed
    once ready."""
    proc = await trio.lowlevel.open_process(
        [*MODULE, 'arbiter', *args], env=python_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    out = b''
    with trio.move_on_after(DEADLINE):
        while True:
            m = re.search(rb'arbiter ready at (\S+)', out)
            if m:
                return proc, m.group(1).decode()
            chunk = await proc.stdout.receive_some()
            if not chunk:
                break
            out += chunk
    proc.kill()
    await proc.wait()
    pytest.fail(f'tractor arbiter {" ".join(args)} printed no ready line; '
                f'its output:\n{out.decode(errors="replace")}',
                pytrace=False)


async def stop(proc: trio.Process, sig: int) -> int:
    """Send ``sig`` and wait for the exit (killing it past the deadline)."""
    try:
        proc.send_signal(sig)
        with trio.fail_after(DEADLINE):
            return await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_arbiter_command(transport, arb_addr):
    """``tractor arbiter`` serves a tree started elsewhere and ``ls``; the
    tree's actors leave the registry when they exit; SIGTERM ends it
    cleanly (status 0, an ipc socket file removed)."""
    host, port = arb_addr
    proc, addr = await start_arbiter(f'{host}:{port}', '-t', transport)
    try:
        # a secured variant (tcp+tls) listens on its transport's address
        plain = split_transport(transport, None)[0]
        assert addr == str(Addr.parse(arb_addr, plain))
        async with tractor.open_root_actor(
                name='root', arbiter_addr=arb_addr,
                transport=transport) as root:
            assert not root.is_arbiter
            async with tractor.open_nursery() as n:
                portal = await n.start_actor('worker', rpc_module_paths=[])
                async with tractor.wait_for_actor('worker'):
                    pass
                r = await cli('ls', *arbiter_opts(arb_addr, transport))
                assert r.returncode == ExitCode.OK, r.stderr
                listed = rows(r.stdout)
                assert [row[0] for row in listed] == [
                    'arbiter', 'root', 'worker']
                assert listed[0][2] == addr
                assert listed[1:] == sorted([own_row(root),
                                             await info_row(portal)])
                await n.cancel()
        r = await cli('ls', *arbiter_opts(arb_addr, transport))
        assert [row[0] for row in rows(r.stdout)] == ['arbiter']
    finally:
        status = await stop(proc, signal.SIGTERM)
    assert status == 0, (await proc.stdout.receive_some()).decode()
    a = Addr.parse(addr)
    if not a.is_inet:
        assert not os.path.exists(a.path)


async def test_arbiter_stops_on_ctrl_c_and_keeps_its_address(arb_addr):
    """A second arbiter on a taken address says so and fails; Ctrl-C
    (SIGINT) stops the first one with status 0."""
    host, port = arb_addr
    proc, addr = await start_arbiter(f'{host}:{port}')
    try:
        r = await cli('arbiter', f'{host}:{port}')
        assert r.returncode == ExitCode.FAILED
        assert f'an arbiter is already running at {addr}' in r.stderr
        r = await cli('ls', *arbiter_opts(arb_addr))
        assert [row[0] for row in rows(r.stdout)] == ['arbiter']
    finally:
        status = await stop(proc, signal.SIGINT)
    assert status == 0
    r = await cli('ls', *arbiter_opts(arb_addr))
    assert r.returncode == ExitCode.UNREACHABLE


# -- secret ------------------------------------------------------------------
def test_secret(tmp_path):
    """``secret`` prints the file's path, creating it 0600 (in a 0700
    directory) the first time, and reading it after; it respects
    ``$TRACTOR_SECRET_FILE`` and ``$TRACTOR_SECRET``."""
    env = python_env(XDG_CONFIG_HOME=str(tmp_path), TRACTOR_SECRET=None,
                  TRACTOR_SECRET_FILE=None)
    path = tmp_path / 'tractor' / 'secret'
    r = run_cli('secret', env=env)
    assert r.returncode == ExitCode.OK, r.stderr
    assert r.stdout == f'{path}\n'
    assert 'created a new secret' in r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    token = path.read_bytes()
    assert len(token) == 64

    r = run_cli('secret', env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, f'{path}\n', '')
    assert path.read_bytes() == token

    other = tmp_path / 'elsewhere' / 'cluster.secret'
    r = run_cli('secret', env={**env, 'TRACTOR_SECRET_FILE': str(other)})
    assert r.stdout == f'{other}\n'
    assert stat.S_IMODE(other.stat().st_mode) == 0o600

    # a file others can read works, with a warning
    path.chmod(0o644)
    r = run_cli('secret', env=env)
    assert r.returncode == ExitCode.OK
    assert f'chmod 600 {path}' in r.stderr

    # the environment wins: no file is made
    path.unlink()
    r = run_cli('secret', env={**env, 'TRACTOR_SECRET': 'shared'})
    assert r.returncode == ExitCode.OK
    assert '$TRACTOR_SECRET' in r.stdout
    assert not path.exists()


def test_secret_file_cannot_be_made(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    r = run_cli('secret', env=python_env(
        TRACTOR_SECRET=None, TRACTOR_SECRET_FILE=str(blocker / 'secret')))
    assert r.returncode == ExitCode.FAILED
    assert '$TRACTOR_SECRET_FILE' in r.stderr


# -- errors ------------------------------------------------------------------
def test_nothing_answers(transport):
    """Nobody at the arbiter address, on every transport: one line saying
    so, and the status for it."""
    r = run_cli('ls', *arbiter_opts(('127.0.0.1', free_port()), transport))
    assert r.returncode == ExitCode.UNREACHABLE
    assert r.stdout == ''
    assert re.fullmatch(r'tractor: error: the arbiter at \S+ does not '
                        r'answer \(.*\): is it running.*\n', r.stderr)


def test_hung_arbiter_times_out(silent_addr):
    host, port = silent_addr
    r = run_cli('ls', '--arbiter', f'{host}:{port}', '--timeout', '0.5')
    assert r.returncode == ExitCode.TIMEOUT
    assert 'did not answer within 0.5 s' in r.stderr


@pytest.mark.parametrize('args, env, code, said', [
    (['ls', '-t', 'carrier-pigeon'], {}, ExitCode.UNKNOWN_NAME,
     "unknown transport 'carrier-pigeon'; available: tcp"),
    (['ping', 'x', '-c', 'yaml'], {}, ExitCode.UNKNOWN_NAME,
     "unknown codec 'yaml'"),
    (['arbiter', '127.0.0.1:1', '-t', 'carrier-pigeon'], {},
     ExitCode.UNKNOWN_NAME, "unknown transport 'carrier-pigeon'"),
    (['ls', '-a', 'nowhere'], {}, ExitCode.BAD_ADDRESS,
     "the address 'nowhere': expected host:port"),
    (['ls', '-a', 'nng+gopher://x:1'], {}, ExitCode.BAD_ADDRESS,
     "unknown scheme 'gopher'"),
    (['ls', '-a', 'gopher://x:1'], {}, ExitCode.UNKNOWN_NAME,
     "unknown transport 'gopher'"),
    (['arbiter', 'localhost:http'], {}, ExitCode.BAD_ADDRESS,
     "'localhost:http': expected host:port"),
    (['ls'], {'TRACTOR_ARBITER_ADDR': 'junk'}, ExitCode.BAD_ADDRESS,
     "$TRACTOR_ARBITER_ADDR='junk'"),
    (['ls', '--timeout', '0'], {}, ExitCode.USAGE,
     "'0' is not a positive number of seconds"),
    ([], {}, ExitCode.USAGE, 'usage: tractor'),
    (['frobnicate'], {}, ExitCode.USAGE, "invalid choice: 'frobnicate'"),
])
def test_bad_input(args, env, code, said):
    r = run_cli(*args, env=python_env(**env))
    assert r.returncode == code, r.stderr
    assert said in r.stderr
    assert 'Traceback' not in r.stderr


@pytest.mark.parametrize('command', [[], ['ls'], ['ping'], ['arbiter'],
                                     ['secret']])
def test_help(command):
    r = run_cli(*command, '--help', command=console_script())
    assert r.returncode == ExitCode.OK
    assert r.stdout.startswith(f'usage: {" ".join(["tractor", *command])}')


def test_import_tractor_does_not_load_the_command_line():
    r = subprocess.run(
        [sys.executable, '-c',
         'import sys, tractor; print("tractor._cli" in sys.modules)'],
        env=python_env(), capture_output=True, text=True, timeout=DEADLINE)
    assert r.stdout == 'False\n', r.stderr
