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
    base = os.environ.get('XDG_CONFIG_HOME') or os.path.join(
        os.path.expanduser('~'), '.config')
    return os.path.join(base, 'tractor', 'secret')


def secret_file() -> str:
    """The file the secret is kept in (unless ``$TRACTOR_SECRET`` or
    ``tractor.run(secret=)`` gives it): ``$TRACTOR_SECRET_FILE``, else
    :func:`default_secret_path`."""
    return os.environ.get(_ENV_FILE) or default_secret_path()


def _read_or_create(path: str) -> bytes:
    try:
        with open(path, 'rb') as f:
            data = f.read().strip()
        if data:
            return data
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    token = secrets.token_hex(32).encode()
    tmp = f'{path}.{os.getpid()}.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(token)
    try:
        # first writer wins; everyone then reads the same file
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    with open(path, 'rb') as f:
        return f.read().strip()


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
