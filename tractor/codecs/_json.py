"""JSON: human readable and universal; cannot carry bytes."""
from __future__ import annotations

import json

from ._base import unbatched, undecodable, unencodable


#: a batch frame is a JSON array whose first element is this object,
#: followed by the messages (see encode_batch)
_BATCH_MARK = {'\x00tractor': 'batch'}
_BATCH_HEAD = b'[{"\\u0000tractor":"batch"}'


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
            obj = self._loads(bytes(data).decode())
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise undecodable(self.name, data, err) from None
        return unbatched(obj, _BATCH_MARK)

    def encode_batch(self, frames: list) -> bytes:
        """One frame holding the messages ``frames`` (each made by
        ``encode``): a JSON array of the batch mark and the messages."""
        return b','.join([_BATCH_HEAD, *frames]) + b']'
