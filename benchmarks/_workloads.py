"""What the child actors run, and the payloads every benchmark sends.

This module is exposed to the benchmark's child actors through
``rpc_module_paths``; it is also imported by the raw floors so that both
sides of every comparison build exactly the same messages.
"""
from __future__ import annotations

#: the module path child actors are asked to expose
MODULE = __name__

#: one MiB, the stream_large message size
LARGE = 1024 * 1024

_LARGE_BYTES = b'x' * LARGE
_LARGE_STR = 'x' * LARGE


def small_msg(seq: int) -> dict:
    """The ~50-byte message (45 bytes as msgpack) of the small workloads."""
    return {'seq': seq, 'sym': 'BTCUSD', 'px': 101.25, 'qty': 7,
            'side': 'buy'}


def large_payload(codec: str):
    """1 MiB: bytes, or a str under codecs that cannot carry bytes (json)."""
    return _LARGE_STR if codec == 'json' else _LARGE_BYTES


# -- remotely called ----------------------------------------------------
async def noop() -> None:
    """The rpc workload's target, and the spawn workload's first reply."""
    return None


async def stream_small(n: int):
    """``n`` small messages, child to parent."""
    for i in range(n):
        yield small_msg(i)


async def stream_large(n: int, codec: str = 'msgpack'):
    """``n`` messages of 1 MiB each, child to parent."""
    payload = large_payload(codec)
    for _ in range(n):
        yield payload
