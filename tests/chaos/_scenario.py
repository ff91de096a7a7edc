"""Chaos scenarios, each run as its own process tree by the chaos tests.

``python _scenario.py '<json config>'`` runs the scenario named by
``config['mode']`` and prints ``CHAOS <json>`` lines on stdout: progress
events (``{"event": ..., ...}``) and, at the end, ``{"result": {...}}``.
The tests in this directory parse those lines, SIGKILL what they are told
to, and check the result; the scenario itself never decides pass or fail
beyond recording what it saw.

Every actor process imports this file (as ``__mp_main__``), so the RPC
functions below are module-level and the ``__main__`` block does nothing
in them.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import trio

import tractor
from tractor import _tls
from tractor._exceptions import BaseExceptionGroup
from tractor.transports import TransportClosed, get_transport

HERE = os.path.dirname(os.path.abspath(__file__))
ME = __name__
#: errors a caller may legitimately see when a peer dies
CLEAR_ERRORS = (tractor.RemoteActorError, TransportClosed)


def emit(**kw) -> None:
    print('CHAOS ' + json.dumps(kw), flush=True)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 once it is gone)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def describe(err: BaseException) -> dict:
    return {'type': type(err).__name__, 'msg': str(err)[:2000],
            'remote_type': getattr(err, 'type_name', None)}


# -- functions the actors serve -------------------------------------------
async def getpid() -> int:
    return os.getpid()


async def echo(x):
    """A non-trivial, checkable answer."""
    await trio.sleep(0)
    return [x, x * x]


async def slow_echo(x, delay: float = 0.05):
    await trio.sleep(delay)
    return [x, x * x]


async def counter(n: int, start: int = 0):
    for i in range(start, start + n):
        yield i


async def big_counter(n: int):
    """``n`` small messages, as fast as credits allow."""
    for i in range(n):
        yield i


@tractor.stream
async def relay(ctx, phase: str, n: int):
    """Spawn a grandchild and relay its answers: its pid first, then
    ``n`` echo results (``phase='rpc'``) or stream items (``'stream'``).
    A ``@tractor.stream`` function, not an async generator: trio forbids
    yielding from inside a nursery."""
    async with tractor.open_nursery() as an:
        gc = await an.start_actor('grandchild', rpc_module_paths=[ME])
        await ctx.send_yield({'gpid': await gc.run(ME, 'getpid')})
        if phase == 'rpc':
            for i in range(n):
                await ctx.send_yield(await gc.run(ME, 'echo', x=i))
        else:
            async for v in await gc.run(ME, 'counter', n=n):
                await ctx.send_yield(v)
        await gc.cancel_actor()


async def spawn_subtree_bg(depth: int):
    """Start a chain below this actor in the background (so the call
    returns while the chain lives on); return every pid in it."""
    actor = tractor.current_actor()
    if depth <= 0:
        return [os.getpid()]
    result = {}
    done = trio.Event()

    async def hold(task_status=trio.TASK_STATUS_IGNORED):
        async with tractor.open_nursery() as an:
            p = await an.start_actor(f'sub{depth}', rpc_module_paths=[ME])
            result['pids'] = await p.run(ME, 'spawn_subtree_bg',
                                         depth=depth - 1)
            done.set()
            await trio.sleep_forever()

    actor._service_n.start_soon(hold)
    await done.wait()
    return [os.getpid()] + result['pids']


async def touch(path: str) -> bool:
    """Leave a mark on disk: proves a call ran."""
    with open(path, 'w') as f:
        f.write('ran')
    return True


# -- scenarios -------------------------------------------------------------
def run_kwargs(cfg: dict) -> dict:
    return dict(
        transport=cfg['transport'],
        codec=cfg.get('codec', 'msgpack'),
        arbiter_addr=('127.0.0.1', cfg['port']),
        heartbeat=(0.5, 3.0),
        name=cfg.get('name'),
        loglevel=cfg.get('loglevel'),
    )


async def _kill_round(rnd: dict, rng: random.Random) -> dict:
    """One round: spawn, work, SIGKILL ``rnd['target']`` at a seeded
    point, and record what every caller saw."""
    target, phase = rnd['target'], rnd['phase']
    n = rnd.get('n', 200)
    kill_at = rng.randrange(1, n // 2)
    out = {'target': target, 'phase': phase, 'kill_at': kill_at,
           'good': 0, 'wrong': [], 'call_errors': [], 'pids': []}
    killed_at = None
    t0 = time.monotonic()
    try:
        async with tractor.open_nursery() as an:
            child = await an.start_actor('child', rpc_module_paths=[ME])
            cpid = await child.run(ME, 'getpid')
            out['pids'].append(cpid)
            if target == 'child' and phase == 'rpc':
                # 10 tasks hammering the child; kill it after kill_at
                # answers, with calls in flight
                answers = 0

                async def caller(k):
                    nonlocal answers, killed_at
                    for i in range(k, n, 10):
                        try:
                            got = await child.run(ME, 'echo', x=i)
                        except CLEAR_ERRORS as err:
                            if len(out['call_errors']) < 3:
                                out['call_errors'].append(describe(err))
                            return
                        if got != [i, i * i]:
                            out['wrong'].append([i, got])
                        else:
                            out['good'] += 1
                        answers += 1
                        if answers == kill_at and killed_at is None:
                            os.kill(cpid, signal.SIGKILL)
                            killed_at = time.monotonic()
                async with trio.open_nursery() as tn:
                    for k in range(10):
                        tn.start_soon(caller, k)
            elif target == 'child':
                expect = 0
                try:
                    async for v in await child.run(ME, 'counter', n=10**9):
                        if v != expect:
                            out['wrong'].append([expect, v])
                        expect += 1
                        out['good'] += 1
                        if expect == kill_at + 1:
                            os.kill(cpid, signal.SIGKILL)
                            killed_at = time.monotonic()
                except CLEAR_ERRORS as err:
                    out['call_errors'].append(describe(err))
            else:
                # the grandchild is killed; the child (its parent) must
                # tell us, through the relay we are reading
                expect = 0
                gpid = None
                try:
                    async for v in await child.run(ME, 'relay', phase=phase,
                                                   n=10**9):
                        if gpid is None:
                            gpid = v['gpid']
                            out['pids'].append(gpid)
                            if kill_at == 0:
                                os.kill(gpid, signal.SIGKILL)
                                killed_at = time.monotonic()
                            continue
                        want = [expect, expect * expect] if phase == 'rpc' \
                            else expect
                        if v != want:
                            out['wrong'].append([want, v])
                        else:
                            out['good'] += 1
                        expect += 1
                        if expect == kill_at:
                            os.kill(gpid, signal.SIGKILL)
                            killed_at = time.monotonic()
                except CLEAR_ERRORS as err:
                    out['call_errors'].append(describe(err))
                    out['error_after'] = time.monotonic() - killed_at
                    # the child survives its child's death: prove it
                    out['child_answers'] = await child.run(ME, 'echo', x=7)
                    await child.cancel_actor()
    except BaseException as err:  # noqa: B902 - recorded, not swallowed
        if isinstance(err, (KeyboardInterrupt, trio.Cancelled)):
            raise
        out['nursery_error'] = describe(err)
        if isinstance(err, BaseExceptionGroup):
            out['nursery_error']['subs'] = [describe(e)
                                            for e in err.exceptions]
    if killed_at is not None:
        out['elapsed_after_kill'] = time.monotonic() - killed_at
    out['killed'] = killed_at is not None
    out['total_time'] = time.monotonic() - t0
    return out


async def scenario_kill(cfg: dict) -> dict:
    rng = random.Random(cfg['seed'])
    rounds = []
    for rnd in cfg['rounds']:
        rounds.append(await _kill_round(rnd, rng))
        emit(event='round', **rounds[-1])
    return {'rounds': rounds}


async def scenario_kill_root(cfg: dict) -> dict:
    """Build root -> child -> grandchild -> ..., report every pid, then
    stream from the child until the test SIGKILLs this process."""
    async with tractor.open_nursery() as an:
        child = await an.start_actor('child', rpc_module_paths=[ME])
        pids = await child.run(ME, 'spawn_subtree_bg',
                               depth=cfg.get('depth', 2))
        emit(event='tree', root=os.getpid(), pids=pids,
             root_is_arbiter=tractor.current_actor().is_arbiter)
        n = 0
        while True:
            async for v in await child.run(ME, 'counter', n=1000):
                n += 1
                if n == cfg.get('ready_after', 500):
                    emit(event='streaming', n=n)
            # and calls in between
            await child.run(ME, 'echo', x=n)


def _start_arbiter(cfg: dict) -> subprocess.Popen:
    acfg = dict(cfg, mode='arbiter', own_arbiter=False)
    proc = subprocess.Popen(
        [sys.executable, '-u', os.path.abspath(__file__), json.dumps(acfg)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    return proc


async def _wait_line(proc: subprocess.Popen, timeout: float) -> str:
    with trio.fail_after(timeout):
        line = await trio.to_thread.run_sync(proc.stdout.readline)
    return line.decode()


async def scenario_arbiter(cfg: dict):
    actor = tractor.current_actor()
    emit(event='arbiter', pid=os.getpid(), is_arbiter=actor.is_arbiter)
    await trio.sleep_forever()


async def _find(name: str):
    """What the arbiter says about ``name``: None, or its address and (if
    it serves this module) its answer to a call through a fresh portal."""
    async with tractor.get_arbiter() as arb:
        addr = await arb.run('self', 'find_actor', name=name)
    if addr is None:
        return None
    if name == tractor.current_actor().name:
        return addr
    async with tractor.find_actor(name) as portal:
        return await portal.run(ME, 'echo', x=3)


async def scenario_rereg(cfg: dict, arb: subprocess.Popen) -> dict:
    """A non-arbiter root with a daemon child. The arbiter is SIGKILLed
    during a stream, a new one starts on the same address, and both
    actors must be findable again in bounded time while their own channel
    keeps working throughout."""
    rng = random.Random(cfg['seed'])
    out = {'wrong': [], 'events': []}
    me = tractor.current_actor()
    out['root_is_arbiter'] = me.is_arbiter
    out['root_addr'] = str(me.accept_addr)
    async with tractor.open_nursery() as an:
        svc = await an.start_actor('svc', rpc_module_paths=[ME])
        with trio.fail_after(10):
            while await _find('svc') is None:
                await trio.sleep(0.05)
        out['found_before'] = True
        kill_at = rng.randrange(10, 500)
        n = cfg.get('stream_n', 2000)
        expect = 0
        t_kill = None
        async for v in await svc.run(ME, 'counter', n=n):
            if v != expect:
                out['wrong'].append([expect, v])
            expect += 1
            if expect == kill_at:
                arb.kill()
                await trio.to_thread.run_sync(arb.wait)
                t_kill = time.monotonic()
        out['stream_items'] = expect
        # calls over the existing channel still work with no arbiter
        out['calls_ok'] = all([
            await svc.run(ME, 'echo', x=i) == [i, i * i] for i in range(20)])
        # discovery fails clearly (not hangs) while there is no arbiter
        try:
            with trio.fail_after(10):
                await _find('svc')
            out['find_while_down'] = 'found?!'
        except (OSError, TransportClosed, tractor.RemoteActorError) as err:
            out['find_while_down'] = describe(err)
        except trio.TooSlowError:
            out['find_while_down'] = 'hung'
        # a new arbiter on the same address
        arb2 = _start_arbiter(cfg)
        try:
            line = await _wait_line(arb2, 15)
            out['arbiter2'] = json.loads(line.split(' ', 1)[1])
            t_up = time.monotonic()
            found = {}
            with trio.move_on_after(cfg.get('find_bound', 10)):
                for name in ('svc', me.name):
                    while True:
                        try:
                            got = await _find(name)
                        except (OSError, TransportClosed,
                                tractor.RemoteActorError):
                            got = None
                        if got is not None:
                            found[name] = [got, time.monotonic() - t_up]
                            break
                        await trio.sleep(0.05)
            out['found_after'] = found
            out['down_for'] = t_up - t_kill
            # and the old channel still works after all that
            out['calls_ok_after'] = all([
                await svc.run(ME, 'echo', x=i) == [i, i * i]
                for i in range(20)])
            await svc.cancel_actor()
        finally:
            arb2.send_signal(signal.SIGINT)
            try:
                await trio.to_thread.run_sync(arb2.wait, 5)
            except subprocess.TimeoutExpired:
                arb2.kill()
                arb2.wait()
    return out


async def scenario_load_calls(cfg: dict) -> dict:
    ntasks, per = cfg.get('tasks', 20), cfg.get('per_task', 50)
    out = {'wrong': [], 'errors': []}
    async with tractor.open_nursery() as an:
        p = await an.start_actor('worker', rpc_module_paths=[ME])
        t0 = time.monotonic()
        good = 0

        async def call(x):
            nonlocal good
            try:
                got = await p.run(ME, 'echo', x=x)
            except CLEAR_ERRORS as err:
                out['errors'].append(describe(err))
                return
            if got != [x, x * x]:
                out['wrong'].append([x, got])
            else:
                good += 1

        async def task(k):
            # each task keeps `per` calls in flight at once
            async with trio.open_nursery() as tn:
                for j in range(per):
                    tn.start_soon(call, k * per + j)

        async with trio.open_nursery() as tn:
            for k in range(ntasks):
                tn.start_soon(task, k)
        out['good'] = good
        out['seconds'] = time.monotonic() - t0
        await p.cancel_actor()
    return out


async def scenario_load_spawn(cfg: dict) -> dict:
    count = cfg.get('count', 50)
    out = {}
    t0 = time.monotonic()
    async with tractor.open_nursery() as an:
        portals = []

        async def spawn(i):
            portals.append(await an.start_actor(f'a{i}',
                                                rpc_module_paths=[ME]))

        async with trio.open_nursery() as tn:
            for i in range(count):
                tn.start_soon(spawn, i)
        out['spawn_seconds'] = time.monotonic() - t0
        pids = []

        async def ask(p):
            pids.append(await p.run(ME, 'getpid'))

        async with trio.open_nursery() as tn:
            for p in portals:
                tn.start_soon(ask, p)
        out['pids'] = pids
        emit(event='spawned', pids=pids)
        await an.cancel()
    out['total_seconds'] = time.monotonic() - t0
    return out


async def scenario_load_stream(cfg: dict) -> dict:
    """A producer far faster than its consumer: memory on both sides must
    stay bounded by the stream window, not grow with the message count."""
    n = cfg['n']
    out = {'wrong': 0}
    me = os.getpid()
    async with tractor.open_nursery() as an:
        p = await an.start_actor('producer', rpc_module_paths=[ME])
        ppid = await p.run(ME, 'getpid')
        base = {'consumer': rss_kib(me), 'producer': rss_kib(ppid)}
        peak = dict(base)
        sample_every = max(1, n // 200)
        expect = 0
        t0 = time.monotonic()
        async for v in await p.run(ME, 'big_counter', n=n):
            if v != expect:
                out['wrong'] += 1
            expect += 1
            if expect % 64 == 0:
                # the slow consumer: each batch of items costs it real time
                # (more than the producer needs to make them)
                time.sleep(cfg.get('slow', 0.0005))
                await trio.sleep(0)
            if expect % sample_every == 0:
                for k, pid in (('consumer', me), ('producer', ppid)):
                    peak[k] = max(peak[k], rss_kib(pid))
        out.update(received=expect, seconds=time.monotonic() - t0,
                   base_kib=base, peak_kib=peak)
        await p.cancel_actor()
    return out


async def scenario_badinput(cfg: dict) -> dict:
    """Attack every listener of a small tree (the root/arbiter and a
    child) with raw garbage and with authenticated malformed messages, then
    prove both still serve honest peers."""
    import _attacks
    out = {}
    me = tractor.current_actor()
    async with tractor.open_nursery() as an:
        svc = await an.start_actor('svc', rpc_module_paths=[ME])
        svc_addr = (await svc.run('self', 'info'))['addr']
        svc_pid = await svc.run(ME, 'getpid')
        targets = {'root': str(me.accept_addr), 'svc': svc_addr}
        async def attack(name, addr):
            out[name] = await _attacks.attack_all(
                addr, cfg, honest=svc, seed=cfg['seed'])

        async with trio.open_nursery() as n:
            for name, addr in targets.items():
                n.start_soon(attack, name, addr)
        # honest peers are still served: the existing portal, and a fresh
        # discovery through the arbiter
        out['honest_after'] = [await svc.run(ME, 'echo', x=i)
                               for i in range(5)]
        async with tractor.find_actor('svc') as p:
            out['found_after'] = await p.run(ME, 'echo', x=9)
        out['svc_alive'] = os.path.exists(f'/proc/{svc_pid}')
        await svc.cancel_actor()
    return out


async def scenario_auth(cfg: dict) -> dict:
    """A tree with one secret; an intruder process with another tries to
    get in through every listener of the tree."""
    out = {}
    me = tractor.current_actor()
    async with tractor.open_nursery() as an:
        svc = await an.start_actor('svc', rpc_module_paths=[ME])
        svc_addr = (await svc.run('self', 'info'))['addr']
        marker = cfg['marker']
        icfg = dict(cfg, mode='intruder',
                    targets={'root': str(me.accept_addr), 'svc': svc_addr})
        env = dict(os.environ, TRACTOR_SECRET=cfg['wrong_secret'])
        proc = await trio.run_process(
            [sys.executable, '-u', os.path.abspath(__file__),
             json.dumps(icfg)], env=env, capture_stdout=True,
            capture_stderr=True, check=False)
        lines = [json.loads(ln.split(' ', 1)[1]) for ln in
                 proc.stdout.decode().splitlines() if ln.startswith('CHAOS ')]
        out['intruder'] = lines[-1]['result'] if lines else None
        out['intruder_rc'] = proc.returncode
        out['intruder_stderr'] = proc.stderr.decode()[-3000:]
        out['marker_exists'] = os.path.exists(marker)
        out['honest_after'] = await svc.run(ME, 'echo', x=4)
        # the right secret (ours, from the environment) gets in
        chan = await tractor.Channel.connect(
            svc_addr, transport=cfg['transport'], uid=('friend', 'x'))
        try:
            await chan.send({'cmd': 'run', 'cid': 1, 'ns': ME,
                             'func': 'echo', 'kw': {'x': 5}})
            with trio.fail_after(10):
                out['friend'] = await chan.recv()
        finally:
            await chan.aclose()
        await svc.cancel_actor()
    return out


def intruder(cfg: dict) -> dict:
    """Runs with the wrong secret (``$TRACTOR_SECRET``), outside any tree."""
    import _attacks
    return trio.run(_attacks.intrude, cfg)


async def scenario_default_secret(cfg: dict) -> dict:
    """No secret configured anywhere: the tree uses the per-user secret
    file. Another process of the same user (same file) gets in; one with
    another home (so another secret file) does not."""
    out = {}
    async with tractor.open_nursery() as an:
        p = await an.start_actor('svc', rpc_module_paths=[ME])
        out['echo'] = await p.run(ME, 'echo', x=6)
        svc_addr = (await p.run('self', 'info'))['addr']
        for who, home in (('same_user', cfg['home']),
                          ('other_home', cfg['other_home'])):
            env = dict(os.environ, HOME=home,
                       XDG_CONFIG_HOME=os.path.join(home, '.config'))
            icfg = dict(cfg, mode='friend', target=svc_addr)
            proc = await trio.run_process(
                [sys.executable, '-u', os.path.abspath(__file__),
                 json.dumps(icfg)], env=env, capture_stdout=True,
                capture_stderr=True, check=False)
            lines = [json.loads(ln.split(' ', 1)[1]) for ln in
                     proc.stdout.decode().splitlines()
                     if ln.startswith('CHAOS ')]
            out[who] = lines[-1]['result'] if lines else \
                proc.stderr.decode()[-2000:]
        await p.cancel_actor()
    return out


async def friend(cfg: dict) -> dict:
    """Outside any tree, with whatever secret this process finds: call the
    target's echo."""
    try:
        chan = await tractor.Channel.connect(
            cfg['target'], transport=cfg['transport'], uid=('friend', 'x'))
    except tractor.HandshakeError as err:
        return {'refused': str(err)}
    try:
        await chan.send({'cmd': 'run', 'cid': 1, 'ns': ME, 'func': 'echo',
                         'kw': {'x': 8}})
        with trio.fail_after(10):
            return {'reply': await chan.recv()}
    finally:
        await chan.aclose()


SCENARIOS = {
    'kill': scenario_kill,
    'kill_root': scenario_kill_root,
    'arbiter': scenario_arbiter,
    'load_calls': scenario_load_calls,
    'load_spawn': scenario_load_spawn,
    'load_stream': scenario_load_stream,
    'badinput': scenario_badinput,
    'auth': scenario_auth,
    'default_secret': scenario_default_secret,
}


def main(cfg: dict) -> None:
    sys.path.insert(0, HERE)
    if cfg.get('loglevel'):
        tractor.log.get_console_log(cfg['loglevel'])
    mode = cfg['mode']
    kw = run_kwargs(cfg)
    if mode in ('intruder', 'friend'):
        # outside any tree, but speaking its transport as it does (tcp+tls:
        # TLS with this user's keys), so that what is tested is the secret
        name, tls = _tls.split_transport(cfg['transport'], None)
        if tls:
            _tls.install(get_transport(name), _tls.TLSConfig())
    if mode == 'intruder':
        result = intruder(cfg)
        # and as a root joining the tree's arbiter: refused, not admitted
        try:
            result['join'] = {'joined': tractor.run(getpid, **kw)}
        except Exception as err:  # noqa: B902 - recorded for the test
            result['join'] = describe(err)
    elif mode == 'friend':
        result = trio.run(friend, cfg)
    elif cfg.get('own_arbiter'):
        # a separate arbiter process, so this root is not the arbiter
        arb = _start_arbiter(cfg)
        emit(event='arbiter_started', pid=arb.pid,
             line=arb.stdout.readline().decode().strip())
        result = tractor.run(SCENARIOS[mode], cfg, **kw)
    elif mode == 'rereg':
        arb = _start_arbiter(cfg)
        try:
            line = arb.stdout.readline().decode()
            emit(event='arbiter_started', line=line.strip())
            result = tractor.run(scenario_rereg, cfg, arb, **kw)
        finally:
            if arb.poll() is None:
                arb.kill()
            arb.wait()
    else:
        result = tractor.run(SCENARIOS[mode], cfg, **kw)
    emit(result=result)


if __name__ == '__main__':
    main(json.loads(sys.argv[1]))
