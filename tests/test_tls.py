"""TLS (``tls=True``): key material created and guarded, traffic
encrypted on the wire, and peers that do not belong refused loudly while
the listener goes on serving.

The conformance, chaos and runtime suites also run over the secured
variants (``tcp+tls``, ``nng+tls``...) of the transport matrix; this file
holds what only TLS has.
"""
from __future__ import annotations

import datetime
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading

import pytest
import trio

import tractor
from tractor import HandshakeError, KeyFileError, TLSConfig, _auth, _tls
from tractor.transports import get_transport
from tractor_testing import (
    SCRIPTS,
    free_port,
    python_env,
    read_line,
    run_python,
    spawn_python,
    xfail_if_nng_aborted,
    transport_names,
)

pytestmark = pytest.mark.timeout(90)

SECRET = 'tls-suite-secret'
PEER = os.path.join(SCRIPTS, 'tls_peer.py')
#: (plaintext variant, its secured variant) of every transport with TLS
PAIRS = [('tcp', 'tcp+tls'), ('nng', 'nng+tls'), ('zmq', 'zmq+curve')]


def _usable(pair):
    missing = [v for v in pair if v not in transport_names()]
    return pytest.param(*pair, marks=pytest.mark.skipif(
        bool(missing), reason=f'{", ".join(missing)} not available here'))


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    """A fresh ``$XDG_CONFIG_HOME``: the zero-config directory of this
    test alone."""
    home = tmp_path / 'config'
    home.mkdir(mode=0o700)
    monkeypatch.setenv('XDG_CONFIG_HOME', str(home))
    return home


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- zero configuration --------------------------------------------------
def test_zero_config_material_is_private(config_home):
    path = _tls.ensure_dir()
    assert path == str(config_home / 'tractor' / 'tls')
    assert _mode(path) == 0o700
    assert sorted(os.listdir(path)) == [
        'ca.pem', 'cert.pem', 'curve.key', 'key.pem']
    for name in os.listdir(path):
        assert _mode(os.path.join(path, name)) == 0o600
    keys = _tls.Keys(TLSConfig())
    assert keys.paths()[2] == os.path.join(path, 'key.pem')
    assert keys.ssl_context(server=True).minimum_version == \
        __import__('ssl').TLSVersion.TLSv1_3
    public, secret = keys.curve()
    assert len(public) == len(secret) == 32


def test_concurrent_first_use_agrees_on_one_ca(config_home):
    """Programs starting at the same moment all end up with the key
    material of the first that published it."""
    code = ('from tractor import _tls; d = _tls.ensure_dir(); '
            'print(open(d + "/ca.pem").read().split()[3])')
    env = python_env(XDG_CONFIG_HOME=str(config_home))
    procs = [subprocess.Popen([sys.executable, '-c', code], env=env,
                              stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1 and outs[0]
    # and no half-made directory is left behind
    assert os.listdir(config_home / 'tractor') == ['tls']


# -- permissions ---------------------------------------------------------
@pytest.mark.parametrize('name', ['key.pem', 'curve.key'])
@pytest.mark.parametrize('mode', [0o640, 0o604, 0o660])
def test_loose_key_file_refused(config_home, name, mode):
    path = os.path.join(_tls.ensure_dir(), name)
    os.chmod(path, mode)
    keys = _tls.Keys(TLSConfig())
    with pytest.raises(KeyFileError) as err:
        keys.curve() if name == 'curve.key' else keys.paths()
    assert path in str(err.value)
    assert f'chmod 600 {path}' in str(err.value)


def test_loose_key_directory_refused(config_home):
    path = _tls.ensure_dir()
    os.chmod(path, 0o755)
    with pytest.raises(KeyFileError) as err:
        _tls.Keys(TLSConfig()).paths()
    assert f'chmod 700 {path}' in str(err.value)


def test_loose_given_key_refused(tmp_path):
    """A key of your own is held to the same rule."""
    d = tmp_path / 'own'
    d.mkdir(mode=0o700)
    _tls.fill_dir(str(d))
    os.chmod(d / 'key.pem', 0o644)
    keys = _tls.Keys(TLSConfig(ca=str(d / 'ca.pem'), cert=str(d / 'cert.pem'),
                               key=str(d / 'key.pem')))
    with pytest.raises(KeyFileError, match=f'chmod 600 {d}/key.pem'):
        keys.paths()


def test_loose_secret_file_refused(tmp_path):
    """The shared secret's file, created 0600 on first use, is now
    checked when it already exists too."""
    d = tmp_path / 'conf'
    d.mkdir(mode=0o700)
    path = str(d / 'secret')
    assert _auth._read_or_create(path)  # created private
    assert _mode(path) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match=f'chmod 600 {path}'):
        _auth._read_or_create(path)


async def test_root_refuses_loose_key_before_binding(config_home, arb_addr,
                                                    monkeypatch):
    # from the environment: the secret file would be cached for the process
    monkeypatch.setenv('TRACTOR_SECRET', SECRET)
    path = os.path.join(_tls.ensure_dir(), 'key.pem')
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match=f'chmod 600 {path}'):
        async with tractor.open_root_actor(tls=True, arbiter_addr=arb_addr):
            pass
    # nothing was bound: the address is still free
    with socket.socket() as s:
        s.bind(arb_addr)


def test_tls_options_match_between_run_and_open_root_actor():
    import inspect
    run = inspect.signature(tractor.run).parameters
    root = inspect.signature(tractor.open_root_actor).parameters
    assert run['tls'].default is None and root['tls'].default is None


def test_bad_tls_options_say_what_is_wrong(monkeypatch):
    with pytest.raises(TypeError, match='ca, cert and key together'):
        TLSConfig(ca='x.pem')
    with pytest.raises(TypeError, match='tls= takes True, False'):
        _tls.from_option('yes')
    monkeypatch.setenv('TRACTOR_TLS', 'maybe')
    with pytest.raises(ValueError, match=r'\$TRACTOR_TLS'):
        _tls.from_option(None)
    monkeypatch.setenv('TRACTOR_TLS', '1')
    assert _tls.from_option(None) == TLSConfig()
    with pytest.raises(ValueError, match='CURVE is zmq'):
        _tls.split_transport('tcp+curve', None)
    with pytest.raises(ValueError, match='tls=False'):
        _tls.split_transport('tcp+tls', False)


# -- on the wire ---------------------------------------------------------
class LoopbackCapture:
    """Every packet on the loopback interface, from a raw ``AF_PACKET``
    socket read by a thread (needs root: CAP_NET_RAW)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.htons(0x0003))  # ETH_P_ALL
        self.sock.bind(('lo', 0))
        self.sock.settimeout(0.1)
        self.data = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.data += self.sock.recv(65536)
            except socket.timeout:
                continue

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def _capture_or_skip() -> None:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
    except PermissionError:
        pytest.skip('a raw packet socket needs root (CAP_NET_RAW)')


@pytest.mark.parametrize('plain,secured', [_usable(p) for p in PAIRS])
def test_token_visible_in_clear_and_hidden_by_tls(plain, secured):
    """A random token sent to a child and back shows up in a capture of
    the loopback interface over the plaintext transport (so the capture
    works) and nowhere over its secured variant."""
    _capture_or_skip()
    seen = {}
    for variant in (plain, secured):
        token = 'tok-' + secrets.token_hex(16)
        with LoopbackCapture() as cap:
            done = run_python(
                [PEER, 'token', variant, str(free_port()), token],
                timeout=60, env=python_env(TRACTOR_SECRET=SECRET))
        if variant == 'nng+tls':
            xfail_if_nng_aborted(done)  # seen once in ~400 loaded runs
        assert done.returncode == 0 and 'ok' in done.stdout, done.stderr
        seen[variant] = token.encode() in cap.data
        assert len(cap.data) > 1000, 'the capture saw no traffic at all'
    assert seen == {plain: True, secured: False}


# -- refusals ------------------------------------------------------------
@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """A CA with a good, an expired and a code-signing-only certificate,
    and a certificate of another CA: ``{name: TLSConfig}``; each with a
    CURVE key, the good ones' shared, the other CA's of its own."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID
    root = tmp_path_factory.mktemp('pki')
    os.chmod(root, 0o700)
    ca, ca_key = _tls.make_ca('test CA')
    other, other_key = _tls.make_ca('another CA')
    now = datetime.datetime.now(datetime.timezone.utc)
    made = {
        'good': (ca, _tls.issue(ca, ca_key)),
        'expired': (ca, _tls.issue(
            ca, ca_key, not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1))),
        'wrong-purpose': (ca, _tls.issue(
            ca, ca_key, purposes=[ExtendedKeyUsageOID.CODE_SIGNING])),
        'other-ca': (other, _tls.issue(other, other_key)),
    }
    curve = _tls._curve_secret()
    out = {}
    for name, (ca_cert, (cert, key)) in made.items():
        d = root / name
        d.mkdir(mode=0o700)
        for fname, data in (('ca.pem', ca_cert.public_bytes(Encoding.PEM)),
                            ('cert.pem', cert), ('key.pem', key),
                            ('curve.key', _tls._curve_secret()
                             if name == 'other-ca' else curve)):
            (d / fname).write_bytes(data)
            os.chmod(d / fname, 0o600)
        out[name] = TLSConfig(ca=str(d / 'ca.pem'), cert=str(d / 'cert.pem'),
                              key=str(d / 'key.pem'),
                              curve=str(d / 'curve.key'))
    return out


class Listener:
    """``tls_peer.py listen``: a root actor serving on a port."""

    def __init__(self, transport: str, tls: TLSConfig | None) -> None:
        self.port = free_port()
        files = [tls.ca, tls.cert, tls.key, tls.curve] if tls else ['plain']
        self.proc = spawn_python(
            [PEER, 'listen', transport, str(self.port), *files],
            env=python_env(TRACTOR_SECRET=SECRET))
        line = read_line(self.proc, 30)
        assert line.strip() == 'ready', self.stop()

    def stop(self) -> str:
        """Stop it (SIGINT, as Ctrl-C) and return what it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


async def _dial(transport: str, port: int, tls: TLSConfig | None):
    """Channel.connect from this process with ``tls`` on the transport."""
    tr = get_transport(transport)
    before = _tls.install(tr, tls)
    try:
        with trio.fail_after(20):
            chan = await tractor.Channel.connect(
                ('127.0.0.1', port), transport=transport, secret=SECRET,
                uid=('dialer', '1'))
        await chan.aclose()
    finally:
        tr.tls = before


#: transport -> case -> (the dialer's keys, what its HandshakeError says)
REFUSALS = {
    'tcp': {
        'other-ca': ('other-ca', 'certificate was refused'),
        'expired': ('expired', 'certificate expired'),
        'wrong-purpose': ('wrong-purpose', 'unsupported certificate'),
        'plaintext-dialer': (None, 'speaks TLS and this side does not'),
    },
    # nng's TLS layer only tells that the handshake failed: the message
    # lists the causes
    'nng': {
        'other-ca': ('other-ca', 'another CA'),
        'expired': ('expired', 'expired'),
        'wrong-purpose': ('wrong-purpose', 'not for TLS client/server'),
        'plaintext-dialer': (None, 'speaks TLS and this side does not'),
    },
    # CURVE has keys, no certificates: no dates or purposes to check
    'zmq': {
        'other-cluster': ('other-ca', "another cluster's keys"),
        'plaintext-dialer': (None, 'CURVE'),
    },
}
#: what the listener of each transport logs at WARNING, per refusal
#: (nng's TLS runs inside nng, which reports nothing to the listener; a
#: zmq peer that cannot even start CURVE never reaches the ZAP handler)
LISTENER_LOGS = {'tcp': 'refused connection', 'nng': None, 'zmq': None}


def _secured(t):
    v = dict(PAIRS)[t]
    return pytest.param(t, marks=pytest.mark.skipif(
        v not in transport_names(), reason=f'no {v} here'))


@pytest.mark.parametrize('transport', [_secured(t) for t in REFUSALS])
async def test_refused_peers_told_why_listener_serves_on(pki, transport):
    """Each peer that does not belong gets a HandshakeError saying why;
    the tcp listener logs each refusal at WARNING; and a good peer is
    served after all of them."""
    srv = Listener(transport, pki['good'])
    cases = REFUSALS[transport]
    try:
        for case, (keys, says) in cases.items():
            with pytest.raises(HandshakeError) as err:
                await _dial(transport, srv.port, keys and pki[keys])
            assert says in str(err.value), f'{case}: {err.value}'
        await _dial(transport, srv.port, pki['good'])
    finally:
        log = srv.stop()
    if LISTENER_LOGS[transport]:
        refusals = [line for line in log.splitlines()
                    if 'WARNING' in line and LISTENER_LOGS[transport] in line]
        assert len(refusals) == len(cases), log


async def test_zmq_client_key_not_of_the_cluster_refused_by_zap(pki):
    """A zmq peer that knows the cluster's public key but holds another
    secret key gets through CURVE's first steps and is refused by the ZAP
    handler, which logs it at WARNING."""
    if 'zmq+curve' not in transport_names():
        pytest.skip('no zmq+curve here')
    from tractor.transports import _tls_zmq
    srv = Listener('zmq', pki['good'])
    tr = get_transport('zmq')
    before = _tls.install(tr, pki['good'])
    real = _tls_zmq.secure

    def impostor(sock, keys, server):
        real(sock, keys, server)
        if not server:  # our own keypair, the server's key is right
            import zmq
            pub, sec = zmq.curve_keypair()
            sock.setsockopt(zmq.CURVE_PUBLICKEY, pub)
            sock.setsockopt(zmq.CURVE_SECRETKEY, sec)
    _tls_zmq.secure = impostor
    try:
        with pytest.raises(HandshakeError, match='refused our CURVE key'):
            with trio.fail_after(20):
                await tractor.Channel.connect(
                    ('127.0.0.1', srv.port), transport='zmq', secret=SECRET)
    finally:
        _tls_zmq.secure = real
        tr.tls = before
        log = srv.stop()
    assert 'WARNING' in log and "key is not this cluster's" in log, log


@pytest.mark.parametrize('transport', [_secured(t) for t in REFUSALS])
async def test_secured_dialer_refused_by_plaintext_listener(pki, transport):
    srv = Listener(transport, None)
    try:
        with pytest.raises(HandshakeError) as err:
            await _dial(transport, srv.port, pki['good'])
        assert 'TLS' in str(err.value) or 'CURVE' in str(err.value)
        await _dial(transport, srv.port, None)
    finally:
        log = srv.stop()
    if transport == 'tcp':
        assert 'speaks TLS and this side does not' in log, log


NNG_TLS_CONTRACT = '''
import trio
from tractor import _tls
from tractor.testing import check_transport
from tractor.transports import get_transport

tr = get_transport('nng')
_tls.install(tr, _tls.TLSConfig())
report = trio.run(check_transport, tr, 'nng+tcp://127.0.0.1:0')
print('contract kept:', report)
'''


@pytest.mark.alone  # (nng's abort comes more often on a busy machine)
@pytest.mark.timeout(300)
def test_nng_tls_keeps_the_transport_contract_in_a_process_of_its_own():
    """The transport contract (tractor.testing.check_transport) over
    nng+tls, in a process of its own: nng can abort the process that
    closes a TLS connection still moving data (nanomsg/nng#2238), so this
    variant stays out of the in-process transport suite (see
    tests/transports/conftest.py). Such an abort is reported as an
    expected failure naming the bug, as in the chaos suite. With two busy
    loops beside it, 3 runs of 29 aborted (the one placed was in
    many-peers' 100 TLS connections at once; nng's trace ends in its TLS
    connect callback); 5 runs of each rule alone did not. Any other
    failure fails."""
    if 'nng+tls' not in transport_names():
        pytest.skip('no nng+tls here')
    proc = run_python(['-c', NNG_TLS_CONTRACT], timeout=280)
    xfail_if_nng_aborted(proc)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'contract kept' in proc.stdout



NNG_TLS_OVERLAP = '''
import os
import trio
from tractor import _tls
from tractor.transports import get_transport

async def main():
    tr = get_transport('nng')
    _tls.install(tr, _tls.TLSConfig())
    listener = await tr.listen('nng+tcp://127.0.0.1:0')
    port = listener.addr.port
    failed, streams = [], []

    async def serve(nursery):
        while True:
            stream = await listener.accept()
            streams.append(stream)
            nursery.start_soon(echo, stream)

    async def echo(stream):
        while True:
            await stream.send(await stream.recv())

    async def intruder():
        # speaks no TLS: turned away while the honest dials run
        sock = await trio.open_tcp_stream('127.0.0.1', port)
        try:
            await sock.send_all(b'not tls ' * 512)
            await sock.receive_some(100)
        except (trio.BrokenResourceError, OSError):
            pass
        finally:
            await sock.aclose()

    async def dial():
        try:
            stream = await tr.connect(listener.addr)
        except Exception as err:
            failed.append(repr(err))
            return
        streams.append(stream)
        await stream.send(b'ping')
        assert await stream.recv() == b'ping'

    async with trio.open_nursery() as n:
        n.start_soon(serve, n)
        for _ in range(20):
            async with trio.open_nursery() as burst:
                for _ in range(10):
                    burst.start_soon(dial)
                for _ in range(4):
                    burst.start_soon(intruder)
        n.cancel_scope.cancel()
    print('failed dials:', len(failed), failed[:3], flush=True)
    # every stream stays open to the end, and the process then exits
    # without closing them: closing nng TLS connections while nng still
    # moves their data can abort the process (nanomsg/nng#2238, seen here
    # about once in ten loaded runs), which is not what this test is about
    os._exit(0)

trio.run(main)
'''


@pytest.mark.timeout(300)
def test_nng_tls_overlapping_dials_all_connect():
    """200 nng+tls dials, ten at a time, while peers that speak no TLS are
    turned away: every dial connects and answers. nng's TLS layer fails
    some overlapping handshakes (the dialer sees "Connection shutdown", now
    and then "Cryptographic error"; a few dials in 200 here); the
    transport tries those again. In a process of its own, like the
    contract test above."""
    if 'nng+tls' not in transport_names():
        pytest.skip('no nng+tls here')
    proc = run_python(['-c', NNG_TLS_OVERLAP], timeout=280)
    assert 'failed dials: 0 ' in proc.stdout, (
        proc.stdout[-3000:] + proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
