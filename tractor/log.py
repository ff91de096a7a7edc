"""Logging for tractor: stdlib ``logging`` with a ``trace`` level below
debug and a coloured console handler.

Nothing here formats a message that will not be written: call sites use
``log.debug('%s', x)`` style arguments, and hot paths test
``log.isEnabledFor(...)`` first.
"""
from __future__ import annotations

import logging
from typing import cast
import sys

TRACE = 5
logging.addLevelName(TRACE, 'TRACE')
_ROOT = 'tractor'
LEVELS = {
    'trace': TRACE, 'debug': logging.DEBUG, 'info': logging.INFO,
    'warning': logging.WARNING, 'error': logging.ERROR,
    'critical': logging.CRITICAL,
}
_COLOURS = {
    TRACE: '\x1b[2m', logging.DEBUG: '\x1b[36m', logging.INFO: '\x1b[32m',
    logging.WARNING: '\x1b[33m', logging.ERROR: '\x1b[31m',
    logging.CRITICAL: '\x1b[1;31m',
}
_FMT = '%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s'


class _Logger(logging.Logger):
    def trace(self, msg, *args, **kwargs):
        if self.isEnabledFor(TRACE):
            self._log(TRACE, msg, args, **kwargs)


class _ColourFormatter(logging.Formatter):
    def format(self, record):
        text = super().format(record)
        colour = _COLOURS.get(record.levelno)
        return f'{colour}{text}\x1b[0m' if colour else text


def get_logger(name: str = _ROOT) -> _Logger:
    """A logger under the ``tractor`` hierarchy, with ``.trace()``."""
    if name != _ROOT and not name.startswith(_ROOT + '.'):
        name = f'{_ROOT}.{name}'
    cls = logging.getLoggerClass()
    logging.setLoggerClass(_Logger)
    try:
        logger = logging.getLogger(name)
    finally:
        logging.setLoggerClass(cls)
    if not isinstance(logger, _Logger):
        logger.__class__ = _Logger
    return cast(_Logger, logger)


_handler: logging.Handler | None = None


def get_console_log(level: str | int | None = None,
                    name: str = _ROOT) -> _Logger:
    """Log ``tractor`` messages at ``level`` (``'trace'``, ``'debug'``,
    ``'info'``...) to stderr, coloured on a terminal, and return the
    logger."""
    global _handler
    logger = get_logger(name)
    if level is None:
        return logger
    lvl = LEVELS.get(level.lower(), None) if isinstance(level, str) else level
    if lvl is None:
        raise ValueError(f'unknown log level {level!r}; use one of '
                         f'{", ".join(LEVELS)}')
    root = get_logger(_ROOT)
    root.setLevel(lvl)
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        fmt = (_ColourFormatter if sys.stderr.isatty()
               else logging.Formatter)(_FMT, '%H:%M:%S')
        _handler.setFormatter(fmt)
        root.addHandler(_handler)
    return logger
