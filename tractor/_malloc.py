"""Allocator settings for processes that move large messages.

Why: a stream of 1 MiB messages allocates a fresh 1 MiB buffer for every
message received (and, over byte-stream transports, for every message
encoded). glibc's default heuristics return the top of the heap to the
kernel as soon as about two such buffers lie free there, so the next
buffer is built on pages that must be faulted in and zeroed again: ~250
page faults per MiB, measured here as 2-4x lower throughput for 1 MiB
stream items over every transport (tcp 1.1 GB/s -> 4.4 GB/s, zmq 2.2 ->
4.5-5 GB/s, 2 cores).

What: on glibc only, buffers of up to ``MMAP_THRESHOLD`` come from the
heap rather than from their own ``mmap``, and up to ``TRIM_THRESHOLD`` of
free memory at the top of the heap is kept for reuse instead of being
handed back. The cost is that a process may keep up to that much freed
memory resident after a burst of large messages.

Every actor process applies this at start (:func:`tune`); set
``TRACTOR_MALLOC_TUNE=0`` to leave the allocator alone. It is also left
alone when the environment already configures glibc's malloc
(``MALLOC_*_`` variables or ``GLIBC_TUNABLES``): the user's settings win.
"""
from __future__ import annotations

import ctypes
import os
import platform

#: allocations up to this size come from the heap (glibc's default starts
#: at 128 KiB and only rises after a large block is freed)
MMAP_THRESHOLD = 4 * 1024 * 1024
#: free memory at the heap top kept instead of trimmed (default 128 KiB,
#: rising to twice the mmap threshold)
TRIM_THRESHOLD = 16 * 1024 * 1024

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_USER_VARS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_',
              'MALLOC_TOP_PAD_', 'MALLOC_MMAP_MAX_', 'GLIBC_TUNABLES')

_done = False


def tune() -> bool:
    """Apply the settings above once per process; returns whether they
    are in force (False: not glibc, opted out, or configured by the
    user)."""
    global _done
    if _done:
        return True
    if os.environ.get('TRACTOR_MALLOC_TUNE', '1').lower() in ('0', 'no',
                                                              'false'):
        return False
    if any(v in os.environ for v in _USER_VARS):
        return False
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _done


# -- plugging the fork server's heap -------------------------------------
class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks',
        'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


#: the heap's plugs (addresses), never freed
_heap_plugs: list = []

#: the largest plug tried; holes are filled with plugs of this size, then
#: half of it, and so on down to 32 bytes
_PLUG_MAX = 64 * 1024


def plug_heap() -> int:
    """Fill the free chunks inside the heap, as ``_pymalloc.plug`` fills
    the object pools' free blocks, and for the same reason: an actor forked
    from the fork server would otherwise put its first allocations in those
    holes, copying every page it writes to out of the memory it shares
    with the server (measured here: about 50 pages, 0.2 MiB, per actor).
    Chunks are taken until one comes from the heap's top or grows the heap
    (no hole of that size is left), then half that size, and so on; the
    chunks glibc keeps per size for quick reuse (its tcache) go first.
    glibc only (2.33 and later: ``mallinfo2``); returns the bytes
    plugged."""
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return 0
    try:
        libc = ctypes.CDLL(None)
        info, malloc, free = libc.mallinfo2, libc.malloc, libc.free
    except (OSError, AttributeError):
        return 0
    info.restype = _MallInfo2
    info.argtypes = ()
    malloc.restype = ctypes.c_void_p
    malloc.argtypes = (ctypes.c_size_t,)
    free.argtypes = (ctypes.c_void_p,)

    def take(size: int) -> bool:
        """One chunk of ``size`` from a hole (True), else nothing."""
        m0 = info()
        p = malloc(size)
        if not p:
            return False
        m1 = info()
        if m1.arena > m0.arena or m1.keepcost + size <= m0.keepcost:
            free(p)  # from the top, or the heap grew: no hole that size
            return False
        _heap_plugs.append(p)
        return True

    plugged = 0
    for size in range(24, 1033, 16):  # the tcache's sizes, 7 of each
        for _ in range(7):
            if not take(size):
                break
            plugged += size
    size = _PLUG_MAX
    while size >= 32:
        while take(size):
            plugged += size
        size //= 2
    return plugged
