"""Plugging the free blocks of the fork server's object pools.

Why: CPython allocates small objects (up to 512 bytes) from pools, one
size class per pool, and fills the pools it has already started before it
opens a new one. The fork server's pools have free blocks scattered all
through them: whatever its imports made and dropped. So the first objects
every actor allocates after the fork land in those holes, one here, one
there, and each write copies the whole page around it out of the memory
the actor shares with the server: measured here, about 130 pages
(0.5 MiB) of every actor's private memory, for objects that fill a few
KiB.

What: just before the server freezes its heap, :func:`plug` fills every
free block of every started pool with a small object that lives as long
as the server. An actor's new objects then go to fresh pools, on pages
that are its own from the start. The plugs cost the server what the
holes held (a few hundred KiB), once, shared by all its actors.

How many blocks are free comes from ``sys._debugmallocstats()``, the one
place CPython reports it. Where that is missing or says something else
(another allocator, e.g. ``PYTHONMALLOC=malloc``, or another format),
nothing is plugged: the actors work the same, they only copy more.
"""
from __future__ import annotations

import os
import sys
import tempfile

#: the plugs, alive as long as the process
_plugs: list = []


def free_blocks() -> dict[int, int]:
    """``{size class in bytes: free blocks in its started pools}``, or
    ``{}`` when CPython does not say."""
    stats = getattr(sys, '_debugmallocstats', None)
    if stats is None:
        return {}
    # it writes to the C stderr: catch that in a file for a moment
    with tempfile.TemporaryFile() as f:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(f.fileno(), 2)
            stats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode('ascii', 'replace')
    out: dict[int, int] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith('class') and 'avail blocks' in line:
            next(lines, None)  # the ----- rule
            break
    else:
        return {}
    for line in lines:
        # class  size  num pools  blocks in use  avail blocks
        parts = line.split()
        if len(parts) != 5 or not all(p.isdigit() for p in parts):
            break
        out[int(parts[1])] = int(parts[4])
    return out


def _plug_of(size: int, i: int) -> object:
    """A new object that takes one block of ``size`` bytes."""
    if size <= 16:
        return object()  # 16 bytes
    if size <= 32:
        return (1 << 20) + i  # a one-digit int: 28 bytes
    return bytes(size - 33)  # 33 bytes of header, then the contents


def plug() -> int:
    """Fill every free block of the started pools (see the module's
    docstring); returns how many were filled."""
    holes = free_blocks()
    total = sum(holes.values())
    if not total:
        return 0
    plugs: list = [None] * total  # made first: it takes no block itself
    i = 0
    for size, n in holes.items():
        for _ in range(n):
            plugs[i] = _plug_of(size, i)
            i += 1
    _plugs.append(plugs)
    return total
