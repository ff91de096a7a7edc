"""Fixtures of the chaos suite (``tests/chaos``).

Each chaos test runs a scenario of ``_scenario.py`` as its own process
tree (a root actor, its arbiter, children, grandchildren), kills parts of
it, and checks what the survivors saw. This conftest is self-sufficient:

* ``chaos_transport``: every usable transport and scheme (``tcp``, ``uds``,
  ``nng``, ``nng+ipc``, ``zmq``, ``zmq+ipc``...), built from
  ``tractor.transports.available_transports()``; ``$TRACTOR_TEST_TRANSPORTS``
  restricts it.
* ``chaos``: starts scenarios. Every process of a scenario carries a token
  of its own in ``$TRACTOR_CHAOS_TOKEN`` (inherited by the forkserver and
  every actor), so after the test any survivor -- even one reparented to
  init -- is found through ``/proc/*/environ``, reported with its place in
  the process tree, killed, and the test fails.
* the ``slow`` marker: heavy tests, skipped unless ``TRACTOR_CHAOS_FULL=1``.
  ``TRACTOR_CHAOS_FULL=1 python -m pytest tests/chaos`` runs everything.
"""
from __future__ import annotations

import os
import sys

import pytest


HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _chaos import FULL, Chaos  # noqa: E402


def transport_variants() -> list[str]:
    # the runtime suite's list: every transport variant, $-restrictable
    from tractor_testing import transport_names
    return transport_names()


TRANSPORTS = transport_variants()


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: a heavy chaos test; runs only with '
        'TRACTOR_CHAOS_FULL=1')


#: the chaos scenarios the secured variants run: kills and bad input are
#: where a transport's own failure paths differ; arbiter restarts, load and
#: the secret exercise the runtime above the Channel, the same over TLS
SECURED_SCENARIOS = ('test_chaos_kill.py', 'test_chaos_bad_input.py')


def pytest_collection_modifyitems(config, items):
    from tractor_testing import SECURED, deselect
    secured = set(SECURED.values())
    deselect(config, items, lambda item, params: (
        params.get('chaos_transport') in secured and not FULL
        and os.path.basename(str(item.fspath)) not in SECURED_SCENARIOS))
    if FULL:
        return
    skip = pytest.mark.skip(
        reason='slow chaos test: run with TRACTOR_CHAOS_FULL=1')
    for item in items:
        if (str(item.fspath).startswith(HERE + os.sep)
                and item.get_closest_marker('slow')):
            item.add_marker(skip)


@pytest.fixture(params=TRANSPORTS)
def chaos_transport(request):
    return request.param


@pytest.fixture
def chaos(tmp_path):
    c = Chaos(tmp_path)
    try:
        yield c
    finally:
        for sc in c.scenarios:
            sc.close()
    c.assert_all_gone()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A chaos test over nng+tls that failed because nng aborted one of
    the tree's processes is reported as an expected failure naming the
    upstream bug (the hostile churn of these scenarios is where it shows);
    any other failure, on any variant, fails."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != 'call' or not rep.failed:
        return
    spec = getattr(item, 'callspec', None)
    if spec is None or spec.params.get('chaos_transport') != 'nng+tls':
        return
    from tractor_testing import NNG_PANIC, NNG_PANIC_XFAIL
    if NNG_PANIC in str(rep.longrepr):
        rep.outcome = 'skipped'
        rep.wasxfail = NNG_PANIC_XFAIL
