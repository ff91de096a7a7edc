"""Testing your own actors: ``tractor_test``, and a pytest plugin.

``pip install tractor`` registers :mod:`tractor.testing._plugin` with
pytest (the ``pytest11`` entry point), which provides the fixtures
``arb_addr`` (a free arbiter address for the test session),
``start_method``, ``loglevel``, ``tractor_transport`` and ``tractor_codec``,
and the options ``--tractor-transport``, ``--tractor-codec``,
``--spawn-method`` and ``--tractor-loglevel`` to run a suite over another
transport, codec or start method. A conftest of your own that defines
fixtures of the same names wins, as pytest always lets it. The option
``--tractor-leak-check`` fails a test that leaves a child process behind.

:func:`check_transport` is the conformance kit for a transport's author:
it runs the transport contract over real sockets and raises
``AssertionError`` naming the rule broken.

Importing this module stays cheap: pytest is imported only by the plugin,
and ``check_transport`` is loaded on first use.
"""
from __future__ import annotations

import functools
import inspect

__all__ = ['RULES', 'TransportReport', 'check_transport', 'tractor_test']

_LAZY = {'check_transport', 'RULES', 'TransportReport'}


def __getattr__(name: str):
    # check_transport pulls in trio.testing (and with it pytest): only
    # when asked for
    if name in _LAZY:
        from . import _check_transport
        return getattr(_check_transport, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

#: fixtures tractor_test hands the root actor (and the test, if it asks)
_ROOT_FIXTURES = ('arb_addr', 'start_method', 'loglevel')


def tractor_test(fn):
    """Run an async test function as the root actor's main, as the
    original tractor's decorator did::

        @tractor_test
        async def test_spawn(arb_addr):
            async with tractor.open_nursery() as n:
                ...

    The root uses the ``arb_addr``, ``start_method`` and ``loglevel``
    fixtures (see the plugin); the test receives those it names in its
    signature, and any other fixture it asks for, as usual.
    """
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f'@tractor_test needs an async test function, {fn!r} is not one')
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    asked = {p.name for p in params}
    for name in _ROOT_FIXTURES:
        if name not in asked:
            params.append(inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import tractor
        root = {name: kwargs.get(name) for name in _ROOT_FIXTURES}
        for name in _ROOT_FIXTURES:
            if name not in asked:
                kwargs.pop(name, None)
        return tractor.run(
            functools.partial(fn, *args, **kwargs),
            arbiter_addr=root['arb_addr'],
            start_method=root['start_method'],
            loglevel=root['loglevel'],
        )

    wrapper.__signature__ = sig.replace(parameters=params)
    return wrapper
