"""Logging: ``tractor.log`` loggers with a ``trace`` level, the console
handler, and ``loglevel`` reaching child actors."""
import logging

import pytest

import tractor
from tractor.log import TRACE, get_console_log, get_logger
from tractor_testing import free_port, run_python

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def restore_logging():
    """Put the ``tractor`` logger back as it was: levels and handlers are
    process-global and would leak into later tests."""
    import tractor.log as tlog
    root = logging.getLogger('tractor')
    level, handlers = root.level, list(root.handlers)
    handler = tlog._handler
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    tlog._handler = handler


def test_get_logger_has_trace():
    log = get_logger('some.module')
    assert log.name == 'tractor.some.module'
    assert callable(log.trace)
    assert get_logger('tractor.x').name == 'tractor.x'
    assert logging.getLevelName(TRACE) == 'TRACE'


def test_console_log_levels(restore_logging, capfd):
    log = get_console_log('trace')
    assert log.getEffectiveLevel() == TRACE
    log.trace('a trace line')
    get_logger('sub').debug('a debug line')
    err = capfd.readouterr().err
    assert 'a trace line' in err and 'TRACE' in err
    assert 'a debug line' in err
    get_console_log('warning')
    get_logger('sub').info('hidden')
    assert 'hidden' not in capfd.readouterr().err
    with pytest.raises(ValueError, match='unknown log level'):
        get_console_log('loud')


def child_log_level():
    root = logging.getLogger('tractor')
    return root.getEffectiveLevel(), len(root.handlers)


def test_loglevel_reaches_children(arb_addr, restore_logging):
    async def main():
        async with tractor.open_nursery() as n:
            inherited = await n.run_in_actor('inherits', child_log_level)
            own = await n.run_in_actor('own', child_log_level,
                                       loglevel='trace')
        return await inherited.result(), await own.result()

    (lvl1, h1), (lvl2, h2) = tractor.run(main, arbiter_addr=arb_addr,
                                         loglevel='error')
    assert lvl1 == logging.ERROR and h1 >= 1
    assert lvl2 == TRACE and h2 >= 1


SCRIPT = '''
import sys, tractor

def speak():
    tractor.log.get_logger('script').debug('hello from the child')

async def main():
    async with tractor.open_nursery() as n:
        await n.run_in_actor('chatty', speak)

if __name__ == '__main__':
    tractor.run(main, loglevel='debug',
                arbiter_addr=('127.0.0.1', int(sys.argv[1])))
'''


def test_child_logs_reach_stderr(tmp_path):
    """With ``loglevel='debug'`` the children's own log lines show up."""
    script = tmp_path / 'chatty.py'
    script.write_text(SCRIPT)
    proc = run_python([str(script), str(free_port())], timeout=50)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines()
             if 'hello from the child' in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert 'DEBUG' in lines[0] and 'chatty' in lines[0]
