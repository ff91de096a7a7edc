"""msgpack: compact, fast, carries bytes. The default codec."""
from __future__ import annotations

import msgpack

from ._base import DecodeError, unencodable


class MsgpackCodec:
    name = 'msgpack'

    def __init__(self) -> None:
        # one Packer reused: building one per message costs more than
        # packing a small message
        self._pack = msgpack.Packer(use_bin_type=True).pack

    def encode(self, obj) -> bytes:
        try:
            return self._pack(obj)
        except (TypeError, ValueError, OverflowError) as err:
            raise unencodable(self.name, obj, err) from None

    def decode(self, data: bytes):
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as err:  # msgpack raises several unrelated types
            raise DecodeError(
                f'codec {self.name!r} cannot decode {len(data)} bytes '
                f'({data[:16]!r}...): {err}') from None
