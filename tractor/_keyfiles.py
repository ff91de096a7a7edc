"""Where tractor keeps its key material, and how it guards it.

The shared secret (:mod:`tractor._auth`) and the TLS/CURVE keys
(:mod:`tractor._tls`) live in one per-user directory,
``$XDG_CONFIG_HOME/tractor`` (else ``~/.config/tractor``), created on first
use with files mode 0600 in directories mode 0700.

Like ssh with ``~/.ssh/id_*``, a private file that another user could read
or write is not used: a key anyone may have copied authenticates nobody.
The error names the file and the ``chmod`` that fixes it, rather than
quietly tightening the mode (the key may already be compromised; the user
has to know). Public files (certificates) are not checked.

Creation is race-safe: two programs starting at the same moment both
generate, and the first to *publish* (``os.link`` of a file, ``rename`` of
a whole directory; both atomic and failing if the name exists) wins;
everyone then reads the winner's copy.
"""
from __future__ import annotations

import os
import shutil
import stat


class KeyFileError(PermissionError):
    """Key material that other users can read or write, or that belongs to
    another user: it is refused, and the message says how to fix it."""


def config_dir() -> str:
    """``$XDG_CONFIG_HOME/tractor``, else ``~/.config/tractor``."""
    base = os.environ.get('XDG_CONFIG_HOME') or os.path.join(
        os.path.expanduser('~'), '.config')
    return os.path.join(base, 'tractor')


def _refuse(path: str, st: os.stat_result, what: str, mode: int) -> None:
    if st.st_uid not in (os.getuid(), 0):
        raise KeyFileError(
            f'{what} {path} belongs to uid {st.st_uid}, not to this user '
            f'(uid {os.getuid()}): refusing to use it; use a copy of your '
            f'own (and chmod {mode:o} it)')
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose:
        who = ('group and others' if loose & 0o070 and loose & 0o007
               else 'its group' if loose & 0o070 else 'other users')
        raise KeyFileError(
            f'{what} {path} is accessible by {who} (mode '
            f'{stat.S_IMODE(st.st_mode):04o}): refusing to use it, as ssh '
            f'refuses a readable private key. Fix it with: chmod {mode:o} '
            f'{path}')


def check_private(path: str) -> None:
    """Refuse (:class:`KeyFileError`) a private file ``path`` that other
    users can read or write, or whose directory they can; or that belongs
    to someone else."""
    _refuse(path, os.stat(path), 'private key file', 0o600)
    folder = os.path.dirname(os.path.abspath(path))
    _refuse(folder, os.stat(folder), 'directory of private key file', 0o700)


def private_dir(path: str) -> str:
    """``path`` created mode 0700 (and its parents) if missing."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def write_private(path: str, data: bytes) -> None:
    """Create ``path`` with ``data``, mode 0600; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)


def publish_file(path: str, data: bytes) -> None:
    """Create ``path`` (mode 0600) holding ``data`` unless some other
    process already did: first writer wins."""
    private_dir(os.path.dirname(path))
    tmp = f'{path}.{os.getpid()}.tmp'
    write_private(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def publish_dir(path: str, fill) -> None:
    """Create directory ``path`` (mode 0700) filled by ``fill(tmpdir)``
    unless some other process already did: first writer wins, and nobody
    ever sees a half-filled directory."""
    if os.path.isdir(path):
        return
    parent = private_dir(os.path.dirname(path))
    tmp = os.path.join(parent, f'.{os.path.basename(path)}.{os.getpid()}.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp, 0o700)
    try:
        fill(tmp)
        os.rename(tmp, path)
    except OSError:
        if not os.path.isdir(path):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
