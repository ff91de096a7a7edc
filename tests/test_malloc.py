"""Allocator settings (``tractor/_malloc.py``): every actor process keeps
freed large buffers for reuse instead of faulting fresh pages in for each
large message, unless told not to."""
import os
import platform
import subprocess
import sys

import pytest

import tractor

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
        reason='the allocator settings apply to glibc only'),
]

#: two 1 MiB buffers alive at once, then both freed, 100 times: the
#: allocation pattern of a stream of large messages
_PROBE = r'''
import resource, sys
from tractor import _malloc
print(_malloc.tune())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    a = b'x' * (1 << 20); b = b'y' * (1 << 20); del a, b
f0 = faults()
for _ in range(100):
    a = b'x' * (1 << 20); b = b'y' * (1 << 20); del a, b
print((faults() - f0) / 100)
'''


def _probe(**env):
    """Run the probe in a fresh interpreter whose malloc settings are
    only those in ``env``: (tuned?, page faults per iteration)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith('MALLOC_')
            and k not in ('GLIBC_TUNABLES', 'TRACTOR_MALLOC_TUNE')}
    out = subprocess.run(
        [sys.executable, '-c', _PROBE], capture_output=True, text=True,
        timeout=30, check=True,
        env={**base, 'PYTHONPATH': os.path.dirname(os.path.dirname(tractor.__file__)), **env})
    tuned, faults = out.stdout.split()
    return tuned == 'True', float(faults)


def test_large_buffers_reuse_memory():
    tuned, with_tuning = _probe()
    off, without = _probe(TRACTOR_MALLOC_TUNE='0')
    assert tuned and not off
    # each MiB is 256 pages: untuned, most of them are faulted in again
    # for every buffer; tuned, freed buffers are reused
    assert with_tuning * 4 < without, (with_tuning, without)
    assert with_tuning < 32


def test_users_malloc_settings_win():
    tuned, _ = _probe(MALLOC_TRIM_THRESHOLD_=str(1 << 20))
    assert not tuned
    tuned, _ = _probe(GLIBC_TUNABLES='glibc.malloc.trim_threshold=1048576')
    assert not tuned


def _is_tuned():
    from tractor import _malloc
    return _malloc._done


def test_every_actor_is_tuned(arb_addr):
    async def main():
        assert _is_tuned()
        async with tractor.open_nursery() as an:
            portal = await an.start_actor('child',
                                          rpc_module_paths=[__name__])
            got = await portal.run(__name__, '_is_tuned')
            await an.cancel()
        return got

    assert tractor.run(main, arbiter_addr=arb_addr) is True
