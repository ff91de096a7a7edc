"""Many hosts: actors bind to and advertise addresses other hosts can reach.

The hosts are built here, per test, out of Linux network namespaces: a
``switch`` namespace holding a bridge, and hosts ``A`` (the arbiter,
10.77.0.1), ``B`` (a standalone client, 10.77.0.2) and ``C`` (a service,
10.77.0.3), each joined to the bridge by a veth pair. The 10.77.0.0/24
addresses exist only inside those namespaces; nothing is sent anywhere
else. Programs run on a host with ``ip netns exec``. Namespace names carry
this process's pid, so concurrent runs never collide, and everything
(processes, then namespaces) is torn down after each test, even on failure.

These tests need root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and ``ip``; they
are skipped with the reason otherwise. The loopback tests at the top run
everywhere.

Synchronisation is by reading what the programs print (``arbiter ready``,
``service ... ready``, ``got N``) and by polling link state, never by
sleeping.
"""
from __future__ import annotations

import itertools
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tractor.transports import Addr, available_transports, get_transport
from tractor.transports._addr import (
    advertised_addr,
    default_bind_toward,
    parse_advertise,
)

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(HERE), 'examples', 'multihost')
LINK_CLIENT = os.path.join(HERE, 'multihost', 'link_client.py')
BIND_SERVICE = os.path.join(HERE, 'multihost', 'bind_service.py')
WHERE_CLIENT = os.path.join(HERE, 'multihost', 'where_client.py')

#: seconds between heartbeats and of silence before a peer is declared
#: dead, for every program of the link test
HEARTBEAT = (0.5, 3.0)
ARBITER_PORT = 1616
SUBNET = '10.77.0'


def inet_transports() -> list[str]:
    """Every usable transport that speaks tcp (ipc-only ones like 'uds'
    cannot span hosts). ``$TRACTOR_TEST_TRANSPORTS`` restricts the list."""
    only = {s.strip() for s in
            os.environ.get('TRACTOR_TEST_TRANSPORTS', '').split(',')
            if s.strip()}
    out = []
    for name in available_transports():
        if 'tcp' not in getattr(get_transport(name), 'schemes', ('tcp',)):
            continue
        if only and name not in only:
            continue
        out.append(name)
    return out


TRANSPORTS = inet_transports()


def _prefix(transport: str) -> str:
    """How an address of ``transport`` starts: tcp://, nng+tcp://..."""
    return str(Addr.parse(('h', 1), transport)).partition('h:')[0]


# -- advertised addresses, no network needed -----------------------------
def test_wildcard_is_never_advertised(monkeypatch):
    monkeypatch.delenv('TRACTOR_ADVERTISE_HOST', raising=False)
    bound = Addr.parse('tcp://0.0.0.0:4000')
    # toward a loopback arbiter: loopback
    adv = advertised_addr(bound, toward=Addr.parse('tcp://127.0.0.1:1616'))
    assert str(adv) == 'tcp://127.0.0.1:4000'
    # knowing no arbiter: some host address, never the wildcard
    assert advertised_addr(bound).host not in ('0.0.0.0', '')
    v6 = advertised_addr(Addr.parse('tcp://[::]:4000'))
    assert v6.host != '::' and v6.port == 4000
    # the environment, then the argument, win
    monkeypatch.setenv('TRACTOR_ADVERTISE_HOST', '192.0.2.7')
    assert str(advertised_addr(bound)) == 'tcp://192.0.2.7:4000'
    assert str(advertised_addr(bound, '192.0.2.8')) == 'tcp://192.0.2.8:4000'
    # a specific bind is advertised as is, whatever the environment says
    lo = Addr.parse('nng+tcp://127.0.0.1:5')
    assert advertised_addr(lo) == lo
    # ipc addresses are what they are
    ipc = Addr.parse('ipc:///tmp/x.sock')
    assert advertised_addr(ipc, '192.0.2.8') == ipc


@pytest.mark.parametrize('given, want', [
    ('192.0.2.1', 'zmq+tcp://192.0.2.1:4000'),
    ('192.0.2.1:99', 'zmq+tcp://192.0.2.1:99'),
    (('192.0.2.1', 0), 'zmq+tcp://192.0.2.1:4000'),
    (('192.0.2.1', 98), 'zmq+tcp://192.0.2.1:98'),
    ('tcp://192.0.2.1:97', 'zmq+tcp://192.0.2.1:97'),
    ('2001:db8::1', 'zmq+tcp://[2001:db8::1]:4000'),
    ('[2001:db8::1]:96', 'zmq+tcp://[2001:db8::1]:96'),
    ('my.host.example', 'zmq+tcp://my.host.example:4000'),
])
def test_advertise_forms(given, want):
    bound = Addr.parse('zmq+tcp://0.0.0.0:4000')
    assert str(parse_advertise(given, bound)) == want


@pytest.mark.parametrize('bad', ['0.0.0.0', '', ('::', 1), 5])
def test_advertise_refuses_wildcards_and_junk(bad):
    with pytest.raises(ValueError):
        parse_advertise(bad, Addr.parse('tcp://0.0.0.0:4000'))


def test_default_bind_of_a_joining_root():
    # a local arbiter: its host, any port
    assert str(default_bind_toward(Addr.parse('tcp://127.0.0.1:1616'))) \
        == 'tcp://127.0.0.1:0'
    assert str(default_bind_toward(Addr.parse('nng+tcp://0.0.0.0:1616'))) \
        == 'nng+tcp://0.0.0.0:0'
    # ipc: a fresh socket file
    assert default_bind_toward(Addr.parse('ipc:///tmp/arb.sock')).path \
        != '/tmp/arb.sock'


# -- processes and their output ------------------------------------------
class Proc:
    """A program whose output lines are read by a thread, so the test can
    wait for a line with a timeout."""

    def __init__(self, argv, env, name):
        self.name = name
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, text=True, bufsize=1,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.popen.stdout:
            self._q.put(line.rstrip('\n'))
        self._q.put(None)

    def output(self) -> str:
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return '\n'.join(self.lines)

    def expect(self, pattern: str, timeout: float) -> re.Match:
        """Wait for a line matching ``pattern``; fail with the output."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._q.get(timeout=max(left, 0))
            except queue.Empty:
                line = False
            if line is None or line is False:
                if line is None:
                    self._q.put(None)  # stays at end of output
                why = ('exited' if line is None
                       else f'printed nothing like it within {timeout}s')
                pytest.fail(
                    f'{self.name} {why} (waiting for {pattern!r}); its '
                    f'output:\n{self.output()}', pytrace=False)
            self.lines.append(line)
            m = rx.search(line)
            if m:
                return m

    def send(self, text: str) -> None:
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f'{self.name} did not exit within {timeout}s; '
                        f'output:\n{self.output()}', pytrace=False)

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.popen.wait()


def _env(transport: str, **extra) -> dict:
    env = dict(os.environ)
    env.update(TRACTOR_TRANSPORT=transport, PYTHONUNBUFFERED='1',
               TRACTOR_HEARTBEAT_INTERVAL=str(HEARTBEAT[0]),
               TRACTOR_LIVENESS_TIMEOUT=str(HEARTBEAT[1]))
    env.pop('TRACTOR_ADVERTISE_HOST', None)
    env.update(extra)
    return env


# -- loopback: the example programs, no namespaces needed -----------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.timeout(90)
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_examples_on_loopback(transport):
    """The three example programs on one host: the wildcard-bound service
    registers its loopback address (the route to the arbiter)."""
    port = str(_free_port())
    env = _env(transport)
    py = [sys.executable, '-u']
    procs = []
    try:
        arb = Proc(py + [os.path.join(EXAMPLES, 'arbiter.py'), '127.0.0.1',
                         port], env, 'arbiter')
        procs.append(arb)
        arb.expect(r'arbiter ready at ', 30)
        svc = Proc(py + [os.path.join(EXAMPLES, 'service.py'), '127.0.0.1',
                         port], env, 'service')
        procs.append(svc)
        m = svc.expect(r'listening on (\S+), registered as (\S+)', 30)
        pre = _prefix(transport)
        assert m[1].startswith(pre + '0.0.0.0:')
        assert m[2].startswith(pre + '127.0.0.1:')
        cli = Proc(py + [os.path.join(EXAMPLES, 'client.py'), '127.0.0.1',
                         port, '3'], env, 'client')
        procs.append(cli)
        cli.expect('found counter at ' + re.escape(m[2]), 30)
        cli.expect('got 2', 30)
        cli.expect('^done$', 30)
        assert cli.wait(30) == 0, cli.output()
    finally:
        for p in reversed(procs):
            p.kill()


# -- network namespaces --------------------------------------------------
_run_ids = itertools.count()


def _ip(*args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(['ip', *args], capture_output=True, text=True,
                          check=check, timeout=20)


class Hosts:
    """Three hosts on one switch, built from network namespaces."""

    def __init__(self):
        tag = f'tmh{os.getpid()}x{next(_run_ids)}'
        self.switch = f'{tag}sw'
        self.ns = {h: f'{tag}{h}' for h in 'ABC'}
        self.ip = {h: f'{SUBNET}.{i}' for i, h in enumerate('ABC', 1)}
        self.alias = {h: f'{SUBNET}.{i}' for i, h in enumerate('ABC', 11)}
        self.created: list[str] = []
        self.procs: list[Proc] = []

    def build(self) -> None:
        sw = self.switch
        self._add(sw)
        _ip('-n', sw, 'link', 'set', 'lo', 'up')
        _ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge')
        _ip('-n', sw, 'link', 'set', 'br0', 'up')
        for h, ns in self.ns.items():
            self._add(ns)
            _ip('-n', ns, 'link', 'set', 'lo', 'up')
            # veth: port{h} on the switch, eth0 on the host
            _ip('-n', sw, 'link', 'add', f'port{h}', 'type', 'veth',
                'peer', 'name', 'eth0', 'netns', ns)
            _ip('-n', sw, 'link', 'set', f'port{h}', 'master', 'br0')
            _ip('-n', sw, 'link', 'set', f'port{h}', 'up')
            _ip('-n', ns, 'addr', 'add', f'{self.ip[h]}/24', 'dev', 'eth0')
            # a second address, to advertise something else than the
            # route's default source address
            _ip('-n', ns, 'addr', 'add', f'{self.alias[h]}/24', 'dev', 'eth0')
            _ip('-n', ns, 'link', 'set', 'eth0', 'up')
        for h in self.ns:
            self.wait_link(h, up=True)

    def _add(self, ns: str) -> None:
        _ip('netns', 'add', ns)
        self.created.append(ns)

    def run(self, host: str, argv: list, env: dict, name: str) -> Proc:
        p = Proc(['ip', 'netns', 'exec', self.ns[host], sys.executable,
                  '-u', *argv], env, f'{name} (host {host})')
        self.procs.append(p)
        return p

    def set_link(self, host: str, up: bool) -> None:
        """Plug or pull host's cable: its port on the switch."""
        _ip('-n', self.switch, 'link', 'set', f'port{host}',
            'up' if up else 'down')

    def wait_link(self, host: str, up: bool, timeout: float = 10) -> None:
        """Poll until host's eth0 has carrier (or lost it) and its switch
        port forwards."""
        deadline = time.monotonic() + timeout
        while True:
            eth = _ip('-n', self.ns[host], '-o', 'link', 'show', 'eth0').stdout
            port = subprocess.run(
                ['bridge', '-n', self.switch, 'link', 'show', 'dev',
                 f'port{host}'], capture_output=True, text=True).stdout
            ready = ('LOWER_UP' in eth and 'NO-CARRIER' not in eth
                     and 'state forwarding' in port)
            if ready == up:
                return
            if time.monotonic() > deadline:
                pytest.fail(f'link of host {host} not {"up" if up else "down"}'
                            f' after {timeout}s:\n{eth}\n{port}')
            time.sleep(0.05)  # polling link state, not waiting on a peer

    def teardown(self) -> None:
        for p in self.procs:
            p.kill()
        # anything else still running in our namespaces (actors, forkservers)
        for ns in self.created:
            for _ in range(50):
                pids = _ip('netns', 'pids', ns, check=False).stdout.split()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                time.sleep(0.02)
        for ns in reversed(self.created):
            _ip('netns', 'del', ns, check=False)
        self.created.clear()


def _netns_unavailable() -> str | None:
    if not sys.platform.startswith('linux'):
        return 'network namespaces are Linux only'
    if os.geteuid() != 0:
        return 'building hosts from network namespaces needs root'
    if not shutil.which('ip') or not shutil.which('bridge'):
        return 'needs iproute2 (`ip`, `bridge`)'
    return None


@pytest.fixture
def hosts():
    why = _netns_unavailable()
    if why:
        pytest.skip(why)
    net = Hosts()
    try:
        try:
            net.build()
        except subprocess.CalledProcessError as err:
            pytest.skip(f'cannot build network namespaces here: '
                        f'`{" ".join(err.cmd)}`: {err.stderr.strip()}')
        yield net
    finally:
        net.teardown()


def _start_arbiter_and_service(hosts: Hosts, transport: str):
    env = _env(transport)
    arb_ip = hosts.ip['A']
    pre = _prefix(transport)
    arb = hosts.run('A', [os.path.join(EXAMPLES, 'arbiter.py'), arb_ip,
                          str(ARBITER_PORT)], env, 'arbiter')
    arb.expect('arbiter ready at ' + re.escape(
        f'{pre}{arb_ip}:{ARBITER_PORT}'), 30)
    svc = hosts.run('C', [os.path.join(EXAMPLES, 'service.py'), arb_ip,
                          str(ARBITER_PORT)], env, 'service')
    m = svc.expect(r'listening on (\S+), registered as (\S+)', 30)
    # bound to every interface, registered as host C's own address
    assert m[1].startswith(pre + '0.0.0.0:'), m[0]
    assert m[2].startswith(f'{pre}{hosts.ip["C"]}:'), m[0]
    return env, m[2]


@pytest.mark.timeout(120)
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_three_hosts(hosts, transport):
    """A program on host B joins the arbiter on host A, finds the actor
    that lives on host C and streams from it."""
    env, counter_addr = _start_arbiter_and_service(hosts, transport)
    cli = hosts.run('B', [os.path.join(EXAMPLES, 'client.py'), hosts.ip['A'],
                          str(ARBITER_PORT), '5'], env, 'client')
    cli.expect('found counter at ' + re.escape(counter_addr), 30)
    for n in range(5):
        cli.expect(f'^got {n}$', 30)
    cli.expect('^done$', 30)
    assert cli.wait(30) == 0, cli.output()


@pytest.mark.timeout(150)
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_link_down_mid_stream(hosts, transport):
    """Host C's cable is pulled while B streams from it: B gets a clear
    error within the liveness bound; once the cable is back, a new call
    works."""
    env, counter_addr = _start_arbiter_and_service(hosts, transport)
    cli = hosts.run('B', [LINK_CLIENT, hosts.ip['A'], str(ARBITER_PORT)],
                    env, 'client')
    # every actor registered a reachable address: no wildcard, right hosts
    reg = cli.expect(r'^registry (.*)$', 30)[1].split()
    pre = _prefix(transport)
    assert f'{pre}{hosts.ip["A"]}:{ARBITER_PORT}' in reg
    assert counter_addr in reg
    assert any(a.startswith(f'{pre}{hosts.ip["B"]}:') for a in reg), reg
    assert all(re.match(re.escape(pre) + re.escape(SUBNET) + r'\.[123]:\d+$',
                        a) for a in reg), reg
    cli.expect('found counter at ' + re.escape(counter_addr), 30)
    cli.expect('^got 20$', 30)   # the stream flows

    hosts.set_link('C', up=False)
    t_down = time.monotonic()
    m = cli.expect(r'^error at ([\d.]+) (\w+): (.*)$', 30)
    took = float(m[1]) - t_down
    assert m[2] in ('TransportClosed', 'RemoteActorError', 'ActorFailure'), \
        m[0]
    assert 'counter' in m[3], m[0]   # it says which actor was lost
    bound = HEARTBEAT[1] + 2 * HEARTBEAT[0] + 1.0  # liveness + slack
    assert took <= bound, f'noticed after {took:.1f}s, bound {bound}s'
    print(f'{transport}: noticed after {took:.2f}s: {m[0]}')

    hosts.set_link('C', up=True)
    hosts.wait_link('C', up=True)
    cli.send('link is back\n')
    cli.expect(r'^again \[1000, 1001, 1002, 1003, 1004\]$', 60)
    cli.expect('^recovered$', 30)
    assert cli.wait(30) == 0, cli.output()


@pytest.mark.timeout(120)
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_bind_and_advertise_choices(hosts, transport):
    """Every way of choosing addresses gives one host B can reach:
    ``bind_addr`` on tractor.run/start_actor/run_in_actor, wildcard binds
    with ``advertise_addr`` or inheriting the parent's host, and
    ``$TRACTOR_ADVERTISE_HOST``."""
    pre = _prefix(transport)
    c_ip, c_alias = hosts.ip['C'], hosts.alias['C']
    env = _env(transport, PYTHONPATH=os.pathsep.join(
        [EXAMPLES, os.environ.get('PYTHONPATH', '')]))
    arb = hosts.run('A', [os.path.join(EXAMPLES, 'arbiter.py'), hosts.ip['A'],
                          str(ARBITER_PORT)], env, 'arbiter')
    arb.expect('arbiter ready at ', 30)
    svc = hosts.run('C', [BIND_SERVICE, hosts.ip['A'], str(ARBITER_PORT),
                          c_ip], env, 'bind_service')
    svc.expect('^actors ready$', 30)
    # the example service, told by the environment what to advertise
    alias_svc = hosts.run(
        'C', [os.path.join(EXAMPLES, 'service.py'), hosts.ip['A'],
              str(ARBITER_PORT)],
        dict(env, TRACTOR_ADVERTISE_HOST=c_alias), 'service')
    alias_svc.expect(r'registered as ' + re.escape(f'{pre}{c_alias}:'), 30)

    names = ['bind_service', 'pinned', 'wild_advertised', 'wild_inherited',
             'runner', 'counter']
    cli = hosts.run('B', [WHERE_CLIENT, hosts.ip['A'], str(ARBITER_PORT),
                          *names], env, 'client')
    seen = {}
    for name in names:
        m = cli.expect(rf'^{name} bind=(\S+) advertised=(\S+) '
                       rf'reached=(\S+)$', 30)
        seen[name] = m.groups()
    cli.expect('^done$', 30)
    assert cli.wait(30) == 0, cli.output()

    def host_of(addr):
        return Addr.parse(addr).host

    want = {  # name: (bound host, advertised host)
        'bind_service': (c_ip, c_ip),
        'pinned': (c_ip, c_ip),
        'wild_advertised': ('0.0.0.0', c_ip),
        'wild_inherited': ('0.0.0.0', c_ip),
        'runner': ('0.0.0.0', c_ip),
        'counter': ('0.0.0.0', c_alias),  # a child: inherits the env's
    }
    for name, (bind, adv, reached) in seen.items():
        assert bind.startswith(pre) and adv.startswith(pre), seen[name]
        assert (host_of(bind), host_of(adv)) == want[name], (name, seen[name])
        assert reached == adv, (name, seen[name])
