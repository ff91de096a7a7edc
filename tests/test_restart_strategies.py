"""Erlang-like supervisors: ``open_nursery(supervisor=one_for_one(...))``.

A SIGKILLed (or failed) child is started again -- with its name, modules
and arguments -- and the Portal its user holds reaches the new process;
``rest_for_one`` and ``one_for_all`` restart the right siblings in start
order; past the restart intensity the nursery gives up and raises.
"""
import os
import signal

import pytest
import trio

import tractor
from tractor_testing import pid_alive

pytestmark = pytest.mark.timeout(120)


def getpid():
    return os.getpid()


def start_time(pid: int) -> int:
    """When ``pid`` started (clock ticks since boot): orders processes."""
    with open(f'/proc/{pid}/stat') as f:
        return int(f.read().rpartition(')')[2].split()[19])


async def back_up(portal, old_pid, bound=30):
    """The pid behind ``portal`` once it is a new process; calls made
    while the restart is under way must fail cleanly, never hang."""
    with trio.fail_after(bound):
        while True:
            try:
                pid = await portal.run(__name__, 'getpid')
            except tractor.TransportClosed:
                await trio.sleep(0.01)
                continue
            if pid != old_pid:
                return pid
            await trio.sleep(0.01)


def test_one_for_one_restarts_only_the_dead(transport, arb_addr):
    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_one(max_restarts=3)) as n:
            svc = await n.start_actor('svc', rpc_module_paths=[__name__])
            other = await n.start_actor('other',
                                        rpc_module_paths=[__name__])
            pid = await svc.run(__name__, 'getpid')
            other_pid = await other.run(__name__, 'getpid')
            os.kill(pid, signal.SIGKILL)
            t0 = trio.current_time()
            new = await back_up(svc, pid)
            took = trio.current_time() - t0
            # found by name: the new one, not the dead one
            async with tractor.find_actor('svc') as found:
                assert await found.run(__name__, 'getpid') == new
            assert await other.run(__name__, 'getpid') == other_pid
            restarts = dict(n.restarts)
            await n.cancel()
        return pid, new, took, restarts

    pid, new, took, restarts = tractor.run(
        main, arbiter_addr=arb_addr, transport=transport)
    assert new != pid and not pid_alive(pid)
    assert restarts == {'svc': 1}
    assert took < 10  # "did not hang"; typically well under a second


def test_rest_for_one_restarts_later_ones_in_order(arb_addr):
    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.rest_for_one(max_restarts=3)) as n:
            portals = [await n.start_actor(name, rpc_module_paths=[__name__])
                       for name in ('a', 'b', 'c')]
            pids = [await p.run(__name__, 'getpid') for p in portals]
            os.kill(pids[1], signal.SIGKILL)
            new_b = await back_up(portals[1], pids[1])
            new_c = await back_up(portals[2], pids[2])
            assert await portals[0].run(__name__, 'getpid') == pids[0]
            order = start_time(new_b) <= start_time(new_c)
            restarts = dict(n.restarts)
            await n.cancel()
        return order, restarts

    order, restarts = tractor.run(main, arbiter_addr=arb_addr)
    assert order
    assert restarts == {'b': 1}


def test_one_for_all_restarts_everyone(arb_addr):
    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_all(max_restarts=2)) as n:
            portals = [await n.start_actor(name, rpc_module_paths=[__name__])
                       for name in ('a', 'b')]
            pids = [await p.run(__name__, 'getpid') for p in portals]
            os.kill(pids[1], signal.SIGKILL)
            for p, pid in zip(portals, pids):
                await back_up(p, pid)
            await n.cancel()

    tractor.run(main, arbiter_addr=arb_addr)


def test_intensity_exceeded_gives_up(arb_addr):
    """Two restarts allowed within a minute: the third death raises
    ActorFailure out of the nursery, and nothing is left running."""
    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_one(max_restarts=2,
                                               within=60)) as n:
            svc = await n.start_actor('svc', rpc_module_paths=[__name__])
            await n.start_actor('bystander', rpc_module_paths=[__name__])
            pid = await svc.run(__name__, 'getpid')
            for _ in range(3):
                os.kill(pid, signal.SIGKILL)
                pid = await back_up(svc, pid)

    with pytest.raises(tractor.ActorFailure, match='died unexpectedly'):
        tractor.run(main, arbiter_addr=arb_addr)


def flaky(path):
    """Fails the first time it runs (the file counts the attempts)."""
    with open(path, 'a+') as f:
        f.write('x')
        f.seek(0)
        attempts = len(f.read())
    if attempts == 1:
        raise ValueError('first attempt fails')
    return attempts


def test_transient_main_is_run_again_after_failing(arb_addr, tmp_path):
    path = str(tmp_path / 'attempts')

    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_one(max_restarts=3)) as n:
            portal = await n.run_in_actor('flaky', flaky, path=path)
            result = await portal.result()
        return result, dict(n.restarts)

    assert tractor.run(main, arbiter_addr=arb_addr) == (2, {'flaky': 1})


def test_cancelled_on_purpose_is_not_restarted(arb_addr):
    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_one(max_restarts=3)) as n:
            svc = await n.start_actor('svc', rpc_module_paths=[__name__])
            await svc.cancel_actor()
            await n.wait()
            return dict(n.restarts)

    assert tractor.run(main, arbiter_addr=arb_addr) == {}


def test_temporary_child_is_not_restarted(arb_addr):
    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_one(max_restarts=3)) as n:
            svc = await n.start_actor('svc', rpc_module_paths=[__name__],
                                      restart='temporary')
            os.kill(await svc.run(__name__, 'getpid'), signal.SIGKILL)

    with pytest.raises(tractor.ActorFailure):
        tractor.run(main, arbiter_addr=arb_addr)


def test_bad_restart_type_is_refused(arb_addr):
    async def main():
        async with tractor.open_nursery() as n:
            with pytest.raises(ValueError, match='restart='):
                await n.start_actor('x', restart='sometimes')

    tractor.run(main, arbiter_addr=arb_addr)


def test_client_sees_answers_or_clean_errors_while_killed_20_times(
        arb_addr):
    """A client calls a supervised service in a loop while it is killed
    20 times: every call returns the right answer or raises
    TransportClosed at once; none hangs."""
    kills = 20

    async def main():
        async with tractor.open_nursery(
                supervisor=tractor.one_for_one(max_restarts=kills + 1,
                                               within=300)) as n:
            svc = await n.start_actor('svc', rpc_module_paths=[__name__])
            answers = errors = 0
            killed = 0
            pid = await svc.run(__name__, 'getpid')
            while killed < kills:
                with trio.fail_after(10):  # a hang fails the test
                    try:
                        got = await svc.run(__name__, 'getpid')
                    except tractor.TransportClosed:
                        errors += 1
                        await trio.sleep(0.005)
                        continue
                assert pid_alive(got)
                answers += 1
                if answers % 5 == 0:
                    os.kill(got, signal.SIGKILL)
                    killed += 1
                    pid = got
            await back_up(svc, pid)  # the last restart, too
            restarts = n.restarts['svc']
            await n.cancel()
        return answers, errors, restarts

    answers, errors, restarts = tractor.run(main, arbiter_addr=arb_addr)
    assert restarts == kills
    assert answers >= kills * 5
