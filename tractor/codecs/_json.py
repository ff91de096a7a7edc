"""JSON: human readable and universal; cannot carry bytes."""
from __future__ import annotations

import json

from ._base import DecodeError, unencodable


class JSONCodec:
    name = 'json'

    def __init__(self) -> None:
        self._dumps = json.JSONEncoder(
            separators=(',', ':'), ensure_ascii=False, allow_nan=True,
        ).encode
        self._loads = json.JSONDecoder().decode

    def encode(self, obj) -> bytes:
        try:
            return self._dumps(obj).encode()
        except (TypeError, ValueError, RecursionError) as err:
            raise unencodable(self.name, obj, err) from None

    def decode(self, data: bytes):
        try:
            return self._loads(bytes(data).decode())
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise DecodeError(
                f'codec {self.name!r} cannot decode {len(data)} bytes '
                f'({bytes(data[:16])!r}...): {err}') from None
