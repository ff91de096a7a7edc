"""The multi-process debugger, driven as a user at a keyboard would: the
programs of ``examples/debugging/`` run in a pseudo-terminal (pexpect),
and each test reads the prompts and types the commands.

Every wait has a deadline (``TIMEOUT``); a program still running when its
test ends is killed, and the leak check of ``conftest.py`` fails a test
that left an actor behind.
"""
from __future__ import annotations

import os
import re
import signal
import sys

import pexpect
import pytest

from tractor_testing import (
    EXAMPLES,
    SCRIPTS,
    free_port,
    python_env,
    run_python,
)

pytestmark = pytest.mark.timeout(120)

DEBUGGING = os.path.join(EXAMPLES, 'debugging')
#: seconds any expected output may take (spawning over a loaded machine)
TIMEOUT = 30


def prompt(name: str) -> str:
    """The pdb prompt of actor ``name`` (stdlib pdb, or pdbp's ``Pdb+``)."""
    return rf"\(Pdb\+?\) \[actor '{name}'\] "


@pytest.fixture
def spawn(request):
    """``spawn(script, **env)``: start ``examples/debugging/<script>`` in
    a pseudo-terminal; killed (with its process group) at the end of the
    test if it is still running."""
    started = []

    def start(script: str, transport: str | None = None, **env):
        # ``script``: its name, and its arguments after a space
        # plain tracebacks (3.13 colours them on a terminal)
        extra = {'TRACTOR_ARBITER_ADDR': f'127.0.0.1:{free_port()}',
                 'PYTHON_COLORS': '0', **env}
        if transport:
            extra['TRACTOR_TRANSPORT'] = transport
        child = pexpect.spawn(
            sys.executable, script.split(),
            cwd=DEBUGGING, env=python_env(**extra), encoding='utf-8',
            timeout=TIMEOUT, dimensions=(40, 200))
        started.append(child)
        return child

    yield start
    for child in started:
        if child.isalive():
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child.close(force=True)


#: ``type_at`` keys: an interrupt from the keyboard
CTRL_C = object()


def type_at(child, actor: str, *steps) -> None:
    """At ``actor``'s prompt, for each ``(keys, expected)``: type ``keys``
    (a line, or ``CTRL_C``), then wait for output matching ``expected``
    (a regex; None: nothing to wait for)."""
    for keys, expected in steps:
        child.expect(prompt(actor))
        if keys is CTRL_C:
            child.sendintr()
        else:
            child.sendline(keys)
        if expected is not None:
            child.expect(expected)


#: what a child at its breakpoint of subactor_breakpoint.py shows for
#: ``p x``, and what the program prints once it continues
P_X = ('p x', r'\r\n42\r\n')
GO_ON = ('c', 'breaker returned 43')


def quiet_for(child, seconds: float, trouble: str) -> None:
    """Nothing matching ``trouble`` is printed for ``seconds``: the time
    is the point (longer than a timeout the runtime must not apply)."""
    idx = child.expect([trouble, pexpect.TIMEOUT], timeout=seconds)
    assert idx == 1, child.before + child.after


def ended(child, status: int = 0) -> str:
    """Wait for the program to exit with ``status``; its last output."""
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert child.exitstatus == status, out
    return out


# -- breakpoints ---------------------------------------------------------
def test_breakpoint_in_a_child(spawn, transport):
    child = spawn('subactor_breakpoint.py', transport)
    child.expect(r'subactor_breakpoint\.py\(\d+\)breaker\(\)')
    type_at(child, 'breaker', P_X, GO_ON)
    ended(child)


def test_next_steps_over_the_breakpoint(spawn):
    """``n`` at the prompt steps to the next line of the actor's function,
    still holding the terminal; ``c`` then ends the session."""
    child = spawn('subactor_breakpoint.py')
    child.expect(r'-> await tractor\.breakpoint\(\)')
    type_at(child, 'breaker',
            ('n', r'subactor_breakpoint\.py\(\d+\)breaker\(\)\r\n'
                  r'-> return x \+ 1'),
            P_X, GO_ON)
    ended(child)


def test_breakpoint_in_a_grandchild(spawn, transport):
    child = spawn('subsubactor.py', transport)
    type_at(child, 'deep', ('p depth * 21', r'\r\n42\r\n'),
            ('c', 'deep returned 2'))
    ended(child)


def test_sync_breakpoint_in_a_child(spawn, transport):
    """A plain ``breakpoint()`` in sync code: the actor's loop is held,
    so the terminal is asked for from a thread of its own."""
    child = spawn('sync_breakpoint.py', transport)
    type_at(child, 'syncer', ('p total', r'\r\n45\r\n'),
            ('c', 'syncer returned 45'))
    ended(child)


def test_breakpoint_in_the_root(spawn):
    child = spawn('root_breakpoint.py')
    type_at(child, r'\w+', ('p here', "'root'"),
            ('c', 'root went on from root'))
    ended(child)


def test_two_children_take_turns(spawn):
    """Both stop at once: one prompt, then the other after ``c``; nothing
    of the second shows while the first holds the terminal."""
    child = spawn('multi_subactors.py')
    names = {'first': '10', 'second': '20'}
    child.expect([prompt('first'), prompt('second')])
    got = re.search(r"\[actor '(\w+)'\]", child.after).group(1)
    other = 'second' if got == 'first' else 'first'
    seen = child.before
    child.sendline('p mine')
    child.expect(rf'\r\n{names[got]}\r\n')
    seen += child.before
    type_at(child, got, ('c', prompt(other)))
    seen += child.before
    assert f"[actor '{other}']" not in seen
    child.sendline('p mine')
    child.expect(rf'\r\n{names[other]}\r\n')
    type_at(child, other, ('c', 'results 10 20'))
    ended(child)


def test_quit_raises_in_the_child(spawn):
    """``q`` raises ``bdb.BdbQuit`` in that actor; it reaches the root as
    a RemoteActorError, and opens no post-mortem."""
    child = spawn('subactor_breakpoint.py')
    type_at(child, 'breaker', ('q', None))
    out = ended(child, 1)
    assert 'RemoteActorError: BdbQuit' in out
    assert "raised in actor ('breaker'" in out
    assert '(Pdb)' not in out


@pytest.mark.parametrize('method', ['forkserver', 'spawn', 'trio'])
def test_env_turns_debug_mode_on(spawn, method):
    """``$TRACTOR_DEBUG=1`` turns it on for a program that does not ask;
    the child reaches the terminal whatever fd 0 its start method gave it
    (``/dev/null`` under multiprocessing, a pipe under ``trio``)."""
    child = spawn(os.path.join(SCRIPTS, 'debug_env.py'), TRACTOR_DEBUG='1',
                  DEBUG_START_METHOD=method)
    type_at(child, 'envy', ('c', 'envy done'))
    ended(child)


async def test_breakpoint_without_debug_mode_warns(caplog, arb_addr):
    """Debug mode off: ``tractor.breakpoint()`` says how to turn it on and
    goes on."""
    import tractor
    async with tractor.open_root_actor(arbiter_addr=arb_addr):
        await tractor.breakpoint()
    assert re.search(r"tractor\.breakpoint\(\) in actor '\w+' at \S+"
                     r"test_debugger\.py:\d+ .*skipped: debug mode is off; "
                     r"start the tree with debug_mode=True", caplog.text)


# -- post-mortem ---------------------------------------------------------
def test_post_mortem_in_a_child(spawn, transport):
    """The error opens pdb at the raise point, in the child's frame; after
    ``c`` it reaches the root."""
    child = spawn('subactor_error.py', transport)
    child.expect(r"\[actor 'divider'\] ZeroDivisionError: division by zero")
    child.expect(r'subactor_error\.py\(\d+\)divide\(\)\r\n-> ratio = a / b')
    type_at(child, 'divider', ('p a, b', r'\(1, 0\)'), ('c', None))
    out = ended(child, 1)
    assert 'RemoteActorError: ZeroDivisionError: division by zero' in out
    assert "raised in actor ('divider'" in out


def test_post_mortem_only_where_raised(spawn):
    """An error relayed by a middle actor opens pdb once: in the actor
    that raised it."""
    child = spawn('subsubactor.py error')
    type_at(child, 'deep', ('p items', r"\{'a': 1\}"), ('c', None))
    out = ended(child, 1)
    assert '(Pdb)' not in out
    assert re.search(r"KeyError: 'b'\r\n--- raised in actor \('deep', "
                     r"'[\w-]+'\), relayed by \('middle'", out), out


def test_post_mortem_in_the_root(spawn):
    child = spawn('root_error.py')
    child.expect(r"AttributeError: 'NoneType' object has no attribute "
                 r"'upper'")
    child.expect(r'root_error\.py\(\d+\)main\(\)\r\n-> return answer')
    type_at(child, r'\w+', ('p answer is None', r'\r\nTrue\r\n'),
            ('c', None))
    out = ended(child, 1)
    assert 'AttributeError' in out and '(Pdb)' not in out


# -- Ctrl-C ----------------------------------------------------------------
def test_ctrl_c_at_the_prompt_is_pdbs(spawn):
    """Ctrl-C at a child's prompt reaches every process of the tree; it
    interrupts pdb's line, not the tree."""
    child = spawn('subactor_breakpoint.py')
    type_at(child, 'breaker', (CTRL_C, '--KeyboardInterrupt--'), P_X,
            GO_ON)
    ended(child)


def test_ctrl_c_at_the_roots_prompt_is_pdbs(spawn):
    child = spawn('root_breakpoint.py')
    type_at(child, r'\w+', (CTRL_C, '--KeyboardInterrupt--'),
            ('c', 'root went on from root'))
    ended(child)


def test_ctrl_c_outside_a_prompt_tears_down(spawn):
    """Right after ``c`` (the child prints as soon as it goes on) Ctrl-C
    is no longer pdb's: the tree is torn down."""
    child = spawn('sleep_after_breakpoint.py')
    type_at(child, 'sleeper', ('c', 'sleeper sleeps'))
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0 or child.signalstatus is not None
    assert '(Pdb)' not in child.before


# -- what the debugger must not break ----------------------------------
def test_silent_at_the_prompt_is_not_dead(spawn):
    """A child at the prompt sends no heartbeat for longer than the
    liveness timeout: its responder says its loop is busy, so its parent
    keeps it."""
    child = spawn('subactor_breakpoint.py', TRACTOR_HEARTBEAT_INTERVAL='0.2',
                  TRACTOR_LIVENESS_TIMEOUT='1')
    child.expect(prompt('breaker'))
    # several liveness timeouts at the prompt: nothing may be printed (a
    # lost channel logs a warning), and the actor must still answer
    quiet_for(child, 4, r'sent nothing for|lost its parent|died')
    child.sendline('p x')
    child.expect(r'\r\n42\r\n')
    type_at(child, 'breaker', GO_ON)
    ended(child)


def test_nursery_does_not_kill_a_child_in_the_debugger(spawn):
    """The root's nursery is cancelled while its child is at the prompt:
    past the kill grace period the child still answers; once it
    continues, it serves the cancel and the program ends."""
    child = spawn('cancel_while_debugging.py')
    child.expect(prompt('lingerer'))
    # the nursery is cancelled 2 s after the child is up, and would
    # SIGKILL it KILL_GRACE (3 s) later
    quiet_for(child, 8, r'killing|died')
    child.sendline('p x')
    child.expect("'still here'")
    type_at(child, 'lingerer', ('c', 'the root went on'))
    ended(child)


# -- no terminal ---------------------------------------------------------
def test_no_terminal_warns_and_goes_on():
    """stdin not a tty (CI, a pipe): each breakpoint logs a warning naming
    the actor and the place, and the program finishes."""
    env = python_env(TRACTOR_ARBITER_ADDR=f'127.0.0.1:{free_port()}')
    proc = run_python(['multi_subactors.py'], cwd=DEBUGGING, env=env,
                      timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'results 10 20'
    for name in ('first', 'second'):
        assert re.search(
            rf"breakpoint in actor '{name}' at \S*multi_subactors\.py:\d+ "
            r"in stopper\(\) skipped: the program has no terminal",
            proc.stderr), proc.stderr


def test_no_terminal_post_mortem_goes_on():
    env = python_env(TRACTOR_ARBITER_ADDR=f'127.0.0.1:{free_port()}')
    proc = run_python(['subactor_error.py'], cwd=DEBUGGING, env=env,
                      timeout=60)
    assert proc.returncode == 1
    assert re.search(r"post-mortem of ZeroDivisionError in actor 'divider' "
                     r"at \S*subactor_error\.py:\d+", proc.stderr)
    assert 'RemoteActorError: ZeroDivisionError' in proc.stderr


def test_pdbp_is_used_when_installed(monkeypatch):
    """A pdb++-style ``pdbp`` is preferred when it can be imported; the
    standard library's pdb otherwise."""
    import pdb
    import types

    from tractor import _debug
    fake = types.ModuleType('pdbp')

    class Pdb(pdb.Pdb):
        pass
    fake.Pdb = Pdb
    monkeypatch.setitem(sys.modules, 'pdbp', fake)
    assert _debug._pdb_base() is Pdb
    monkeypatch.setitem(sys.modules, 'pdbp', None)  # not installed
    assert _debug._pdb_base() is pdb.Pdb


def test_bad_env_value_is_refused(monkeypatch, arb_addr):
    import tractor

    async def main():
        pass
    monkeypatch.setenv('TRACTOR_DEBUG', 'maybe')
    with pytest.raises(ValueError, match=r'\$TRACTOR_DEBUG'):
        tractor.run(main, arbiter_addr=arb_addr)
