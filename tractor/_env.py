"""Numbers from ``$TRACTOR_*`` environment variables, read at import.

A bad value must fail with an error that names the variable and says what
it expects (not a bare ``float()`` error from deep inside an import), and
an empty one means the default, like an unset one."""
from __future__ import annotations

import os
from typing import Callable, TypeVar

N = TypeVar('N', int, float)


def env_number(name: str, default: N, parse: Callable[[str], N], *,
               ok: Callable[[N], bool], expected: str,
               default_text: str = '') -> N:
    """``$name`` parsed by ``parse`` (``int`` or ``float``), if ``ok``
    accepts it; ``default`` when unset or empty. ``expected`` says what a
    good value is, for the error."""
    raw = os.environ.get(name, '').strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise ValueError(
            f'${name}={raw!r}: expected {expected}; unset it for the '
            f'default' + (f' ({default_text})' if default_text else ''))
    return value
