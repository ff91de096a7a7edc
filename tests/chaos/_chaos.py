"""Helpers of the chaos suite: scenario processes and ``/proc`` checks
(imported by ``conftest.py`` and the tests; a unique module name, so that
it never shadows another suite's ``conftest``)."""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid

from tractor.testing._plugin import kill_survivors, marked_processes
from tractor_testing import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCENARIO = os.path.join(HERE, '_scenario.py')
TOKEN_ENV = 'TRACTOR_CHAOS_TOKEN'
FULL = os.environ.get('TRACTOR_CHAOS_FULL', '') not in ('', '0')
#: seconds the processes of a finished scenario get to exit
ORPHAN_GRACE = 10.0


# -- processes, found through /proc ---------------------------------------
def token_procs(token: str) -> dict[int, dict]:
    """Every live (non-zombie) process carrying ``token``: pid -> ppid and
    command line."""
    return {pid: {'ppid': ppid, 'cmd': cmd[:160]}
            for pid, (ppid, cmd) in marked_processes(TOKEN_ENV,
                                                     token).items()}


def describe_tree(procs: dict[int, dict]) -> str:
    return '; '.join(f'pid {pid} (parent {p["ppid"]}): {p["cmd"]}'
                     for pid, p in sorted(procs.items()))


class Scenario:
    """One scenario process tree."""

    def __init__(self, cfg: dict, env: dict, tmp_path) -> None:
        self.cfg = cfg
        self.token = env[TOKEN_ENV]
        self.stderr_path = str(tmp_path / f'scenario-{uuid.uuid4().hex}.err')
        self._err = open(self.stderr_path, 'w+b')
        self.proc = subprocess.Popen(
            [sys.executable, '-u', SCENARIO, json.dumps(cfg)],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._err, bufsize=0)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b''
        self.events: list[dict] = []
        self.output: list[str] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self._err.flush()
        with open(self.stderr_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def _readline(self, deadline: float) -> str | None:
        """The next line of stdout; None on timeout, '' at EOF. Reads the
        pipe unbuffered (a buffered reader could hold a second line where
        select() no longer sees it)."""
        while b'\n' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                line, self._buf = self._buf, b''
                return line.decode(errors='replace')
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b'\n')
        return line.decode(errors='replace') + '\n'

    def next_event(self, timeout: float, want: str | None = None) -> dict:
        """The next ``CHAOS`` line (with ``event == want``, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line is None:
                raise AssertionError(
                    f'scenario {self.cfg["mode"]} said nothing '
                    f'{want or ""} within {timeout}s; stderr:\n'
                    f'{self.stderr()[-4000:]}')
            if line == '':
                raise AssertionError(
                    f'scenario {self.cfg["mode"]} exited '
                    f'({self.proc.wait()}) before {want}; stdout:\n'
                    f'{"".join(self.output)[-2000:]}\nstderr:\n'
                    f'{self.stderr()[-4000:]}')
            self.output.append(line)
            if not line.startswith('CHAOS '):
                continue
            ev = json.loads(line[6:])
            self.events.append(ev)
            if want is None or ev.get('event') == want:
                return ev

    def result(self, timeout: float) -> dict:
        """The scenario's result; fails if it hangs past ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                ev = self.next_event(max(left, 0.01))
            except AssertionError:
                if self.proc.poll() is None:
                    self.proc.kill()
                raise
            if 'result' in ev:
                break
        try:
            rc = self.proc.wait(max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(
                f'scenario {self.cfg["mode"]} printed its result but did '
                f'not exit within {timeout}s; stderr:\n'
                f'{self.stderr()[-4000:]}')
        assert rc == 0, f'scenario exited {rc}; stderr:\n{self.stderr()}'
        return ev['result']

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._sel.close()
        self.proc.stdout.close()
        self._err.close()


class Chaos:
    """Starts scenarios, and checks none of their processes survive."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.token = uuid.uuid4().hex
        self.secret = uuid.uuid4().hex
        self.scenarios: list[Scenario] = []

    def env(self, **extra) -> dict:
        env = dict(os.environ)
        path = env.get('PYTHONPATH')
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO, HERE] + ([path] if path else []))
        env[TOKEN_ENV] = self.token
        env['TRACTOR_SECRET'] = self.secret
        env.pop('TRACTOR_SECRET_FILE', None)
        env.pop('TRACTOR_TRANSPORT', None)
        env.pop('TRACTOR_CODEC', None)
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def start(self, mode: str, transport: str, *, env: dict | None = None,
              **cfg) -> Scenario:
        cfg = dict(cfg, mode=mode, transport=transport,
                   port=cfg.get('port') or free_port(),
                   seed=cfg.get('seed', 0))
        sc = Scenario(cfg, env or self.env(), self.tmp_path)
        self.scenarios.append(sc)
        return sc

    def run(self, mode: str, transport: str, *, timeout: float,
            **cfg) -> dict:
        """Run a scenario to its end and return its result."""
        return self.start(mode, transport, **cfg).result(timeout)

    def assert_all_gone(self, timeout: float = ORPHAN_GRACE) -> None:
        """Every process of this test's scenarios exits within
        ``timeout``; survivors are killed and reported."""
        left = kill_survivors(lambda: token_procs(self.token), timeout)
        if left:
            raise AssertionError(
                f'{len(left)} process(es) outlived the scenario by '
                f'{timeout}s (now SIGKILLed): {describe_tree(left)}')
