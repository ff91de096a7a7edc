"""The shared secret that admits a peer into an actor tree.

Like Erlang's cookie: with no setup, every actor of one user on one host
shares a random secret kept in a file only that user can read
(``~/.config/tractor/secret``, created mode 0600 on first use). For a
cluster of hosts set the same secret everywhere with
``tractor.run(..., secret=...)``, ``$TRACTOR_SECRET`` or
``$TRACTOR_SECRET_FILE``. The secret never crosses the wire: peers prove
they know it with an HMAC over each other's random nonces.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from . import _keyfiles

_ENV = 'TRACTOR_SECRET'
_ENV_FILE = 'TRACTOR_SECRET_FILE'
_cached: bytes | None = None
# the secret given to tractor.run(); children inherit it through the
# spawn arguments, never through the wire protocol
_override: bytes | None = None


def set_secret(secret: bytes | str | None) -> None:
    global _override
    _override = _as_bytes(secret) if secret is not None else None


def _as_bytes(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def default_secret_path() -> str:
    return os.path.join(_keyfiles.config_dir(), 'secret')


def secret_file() -> str:
    """The file the secret is kept in (unless ``$TRACTOR_SECRET`` or
    ``tractor.run(secret=)`` gives it): ``$TRACTOR_SECRET_FILE``, else
    :func:`default_secret_path`."""
    return os.environ.get(_ENV_FILE) or default_secret_path()


def _read_or_create(path: str) -> bytes:
    if not os.path.exists(path):
        _keyfiles.publish_file(path, secrets.token_hex(32).encode())
    # an existing file too: a secret others can read admits them
    _keyfiles.check_private(path)
    with open(path, 'rb') as f:
        data = f.read().strip()
    if not data:
        raise ValueError(
            f'the secret file {path} is empty: delete it (a new one is '
            f'created) or write the cluster secret into it')
    return data


def get_secret(secret: bytes | str | None = None) -> bytes:
    """The secret in force: the argument, else ``tractor.run(secret=)``,
    else ``$TRACTOR_SECRET``, else the file."""
    global _cached
    if secret is not None:
        return _as_bytes(secret)
    if _override is not None:
        return _override
    env = os.environ.get(_ENV)
    if env:
        return env.encode()
    if _cached is None:
        _cached = _read_or_create(secret_file())
    return _cached


def proof(key: bytes, role: str, verifier_nonce: bytes,
          prover_nonce: bytes) -> bytes:
    return hmac.new(
        key, b'tractor-v1|' + role.encode() + b'|' + verifier_nonce
        + prover_nonce, hashlib.sha256).digest()
