"""Trust: every channel starts with the challenge-response handshake of
``tractor/_channel.py`` (HMAC-SHA256 over both sides' nonces, keyed by the
shared secret), on every transport.

* A process with the wrong secret cannot call into a tree: neither through
  ``Channel.connect`` (refused with ``HandshakeError``), nor by forging the
  handshake and sending call frames anyway (the connection is dropped
  before anything runs: the called function would leave a file behind),
  nor by joining the tree's arbiter as a root. The tree logs why it refused.
* With no secret configured anywhere, a tree works for one user through
  the secret file ``$XDG_CONFIG_HOME/tractor/secret``, created mode 0600
  in a 0700 directory; a process of the same user gets in, a process with
  another secret file does not.
"""
from __future__ import annotations

import os
import stat

import pytest

from tractor_testing import SECURED


@pytest.mark.timeout(90)
def test_wrong_secret_cannot_call_in(chaos, chaos_transport, tmp_path):
    marker = str(tmp_path / 'intruder-was-here')
    sc = chaos.start('auth', chaos_transport, marker=marker,
                     wrong_secret='not-the-secret-' + chaos.secret[:8])
    res = sc.result(80)
    intr = res['intruder']
    assert intr, res
    for name in ('root', 'svc'):
        r = intr[name]
        assert r['connect'].startswith('HandshakeError'), (name, r)
        assert "does not know this cluster's secret" in r['connect'], r
        assert r['forged']['end'] == 'dropped', (name, r)
        # the listener's own proof is all it ever sends a forger
        hs = b'TRACTOR\x02'.hex()
        assert all(g.startswith(hs) for g in r.get('got', [])), (
            f'the tree answered a forger: {r}')
    join = intr['join']
    assert 'joined' not in join, f'an intruder root joined the tree: {join}'
    assert join['type'] == 'HandshakeError', join
    assert "does not know this cluster's secret" in join['msg'], join
    # nothing ran
    assert not res['marker_exists'] and not os.path.exists(marker)
    # the tree is unharmed, and the right secret still gets in
    assert res['honest_after'] == [4, 16]
    assert res['friend'] == {'cid': 1, 'return': [5, 25]}
    # and it said why it refused, in its log
    err = sc.stderr()
    assert 'refused connection' in err, err[-3000:]
    assert "does not know this cluster's secret" in err, err[-3000:]
    chaos.assert_all_gone(10)


@pytest.mark.timeout(90)
def test_default_secret_file(chaos, chaos_transport, tmp_path):
    home = tmp_path / 'home'
    other = tmp_path / 'other'
    home.mkdir()
    other.mkdir()
    cfg_home = home / '.config'
    env = chaos.env(HOME=str(home), XDG_CONFIG_HOME=str(cfg_home),
                    TRACTOR_SECRET=None, TRACTOR_SECRET_FILE=None)
    sc = chaos.start('default_secret', chaos_transport, env=env,
                     home=str(home), other_home=str(other))
    res = sc.result(80)
    assert res['echo'] == [6, 36]
    path = cfg_home / 'tractor' / 'secret'
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert st.st_uid == os.getuid()
    secret = path.read_bytes().strip()
    assert len(secret) >= 32
    # same user, same file: admitted; another home: another secret, refused
    assert res['same_user'] == {'reply': {'cid': 1, 'return': [8, 64]}}, res
    assert 'refused' in res['other_home'], res
    if chaos_transport in SECURED.values():
        # another home is another cluster CA (or CURVE key) too: refused
        # by TLS, before any secret is read
        assert 'TLS' in res['other_home']['refused'] or \
            'CURVE' in res['other_home']['refused'], res
    else:
        other_secret = (other / '.config' / 'tractor' /
                        'secret').read_bytes()
        assert other_secret.strip() != secret
    # a second run reuses the file rather than replacing it
    chaos.run('default_secret', chaos_transport, env=env, timeout=80,
              home=str(home), other_home=str(other))
    assert path.read_bytes().strip() == secret
    chaos.assert_all_gone(10)
