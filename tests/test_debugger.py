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
        # plain tracebacks (3.13 colours them on a terminal)
        extra = {'TRACTOR_ARBITER_ADDR': f'127.0.0.1:{free_port()}',
                 'PYTHON_COLORS': '0', **env}
        if transport:
            extra['TRACTOR_TRANSPORT'] = transport
        child = pexpect.spawn(
            sys.executable, [script],
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
    child.expect(prompt('breaker'))
    child.sendline('p x')
    child.expect(r'\r\n42\r\n')
    child.expect(prompt('breaker'))
    child.sendline('c')
    child.expect('breaker returned 43')
    ended(child)


def test_next_steps_over_the_breakpoint(spawn):
    """``n`` at the prompt steps to the next line of the actor's function,
    still holding the terminal; ``c`` then ends the session."""
    child = spawn('subactor_breakpoint.py')
    child.expect(r'-> await tractor\.breakpoint\(\)')
    child.expect(prompt('breaker'))
    child.sendline('n')
    child.expect(r'subactor_breakpoint\.py\(\d+\)breaker\(\)\r\n'
                 r'-> return x \+ 1')
    child.expect(prompt('breaker'))
    child.sendline('c')
    child.expect('breaker returned 43')
    ended(child)


def test_breakpoint_in_a_grandchild(spawn, transport):
    child = spawn('subsubactor_breakpoint.py', transport)
    child.expect(prompt('deep'))
    child.sendline('p depth * 21')
    child.expect(r'\r\n42\r\n')
    child.expect(prompt('deep'))
    child.sendline('c')
    child.expect('deep returned 2')
    ended(child)


def test_sync_breakpoint_in_a_child(spawn, transport):
    """A plain ``breakpoint()`` in sync code: the actor's loop is held,
    so the terminal is asked for from a thread of its own."""
    child = spawn('sync_breakpoint.py', transport)
    child.expect(prompt('syncer'))
    child.sendline('p total')
    child.expect(r'\r\n45\r\n')
    child.sendline('c')
    child.expect('syncer returned 45')
    ended(child)


def test_breakpoint_in_the_root(spawn):
    child = spawn('root_breakpoint.py')
    child.expect(prompt(r'\w+'))
    child.sendline('p here')
    child.expect("'root'")
    child.sendline('c')
    child.expect('root went on from root')
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
    child.expect(prompt(got))
    seen += child.before
    assert f"[actor '{other}']" not in seen
    child.sendline('c')
    child.expect(prompt(other))
    child.sendline('p mine')
    child.expect(rf'\r\n{names[other]}\r\n')
    child.sendline('c')
    child.expect('results 10 20')
    ended(child)


def test_quit_raises_in_the_child(spawn):
    """``q`` raises ``bdb.BdbQuit`` in that actor; it reaches the root as
    a RemoteActorError, and opens no post-mortem."""
    child = spawn('subactor_breakpoint.py')
    child.expect(prompt('breaker'))
    child.sendline('q')
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
    child.expect(prompt('envy'))
    child.sendline('c')
    child.expect('envy done')
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
    child.expect(prompt('divider'))
    child.sendline('p a, b')
    child.expect(r'\(1, 0\)')
    child.expect(prompt('divider'))
    child.sendline('c')
    out = ended(child, 1)
    assert 'RemoteActorError: ZeroDivisionError: division by zero' in out
    assert "raised in actor ('divider'" in out


def test_post_mortem_only_where_raised(spawn):
    """An error relayed by a middle actor opens pdb once: in the actor
    that raised it."""
    child = spawn('subsubactor_error.py')
    child.expect(prompt('deep'))
    child.sendline('p items')
    child.expect(r"\{'a': 1\}")
    child.expect(prompt('deep'))
    child.sendline('c')
    out = ended(child, 1)
    assert '(Pdb)' not in out
    assert re.search(r"KeyError: 'b'\r\n--- raised in actor \('deep', "
                     r"'[\w-]+'\), relayed by \('middle'", out), out


def test_post_mortem_in_the_root(spawn):
    child = spawn('root_error.py')
    child.expect(r"AttributeError: 'NoneType' object has no attribute "
                 r"'upper'")
    child.expect(r'root_error\.py\(\d+\)main\(\)\r\n-> return answer')
    child.expect(prompt(r'\w+'))
    child.sendline('p answer is None')
    child.expect(r'\r\nTrue\r\n')
    child.expect(prompt(r'\w+'))
    child.sendline('c')
    out = ended(child, 1)
    assert 'AttributeError' in out and '(Pdb)' not in out


# -- Ctrl-C ----------------------------------------------------------------
def test_ctrl_c_at_the_prompt_is_pdbs(spawn):
    """Ctrl-C at a child's prompt reaches every process of the tree; it
    interrupts pdb's line, not the tree."""
    child = spawn('subactor_breakpoint.py')
    child.expect(prompt('breaker'))
    child.sendintr()
    child.expect('--KeyboardInterrupt--')
    child.expect(prompt('breaker'))
    child.sendline('p x')
    child.expect(r'\r\n42\r\n')
    child.sendline('c')
    child.expect('breaker returned 43')
    ended(child)


def test_ctrl_c_at_the_roots_prompt_is_pdbs(spawn):
    child = spawn('root_breakpoint.py')
    child.expect(prompt(r'\w+'))
    child.sendintr()
    child.expect('--KeyboardInterrupt--')
    child.expect(prompt(r'\w+'))
    child.sendline('c')
    child.expect('root went on from root')
    ended(child)


def test_ctrl_c_outside_a_prompt_tears_down(spawn):
    child = spawn('sleep_after_breakpoint.py')
    child.expect(prompt('sleeper'))
    child.sendline('c')
    child.expect('sleeper sleeps')
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
    # several liveness timeouts at the prompt: nothing may be printed
    # (a lost channel logs a warning) and the actor must still answer
    idx = child.expect([r'sent nothing for|lost its parent|died',
                        pexpect.TIMEOUT], timeout=4)
    assert idx == 1, child.before
    child.sendline('p x')
    child.expect(r'\r\n42\r\n')
    child.sendline('c')
    child.expect('breaker returned 43')
    ended(child)


def test_nursery_does_not_kill_a_child_in_the_debugger(spawn):
    """The root's nursery is cancelled while its child is at the prompt:
    past the kill grace period the child still answers; once it
    continues, it serves the cancel and the program ends."""
    child = spawn('cancel_while_debugging.py')
    child.expect(prompt('lingerer'))
    # the nursery is cancelled 2 s after the child is up, and would
    # SIGKILL it KILL_GRACE (3 s) later
    idx = child.expect([r'killing|died', pexpect.TIMEOUT], timeout=8)
    assert idx == 1, child.before
    child.sendline('p x')
    child.expect("'still here'")
    child.sendline('c')
    child.expect('the root went on')
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


def test_bad_env_value_is_refused():
    import tractor

    async def main():
        pass
    os.environ['TRACTOR_DEBUG'] = 'maybe'
    try:
        with pytest.raises(ValueError, match=r'\$TRACTOR_DEBUG'):
            tractor.run(main, arbiter_addr=('127.0.0.1', free_port()))
    finally:
        del os.environ['TRACTOR_DEBUG']
