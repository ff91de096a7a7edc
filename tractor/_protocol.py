"""The actor protocol: every message actors exchange over a Channel.

A message is a dict with string keys, so it reads the same under every
codec. Every call is a *dialog* named by the call id ``cid`` that the
caller chose (unique within the calling process). Both actors of a channel
may call each other over it, so the two directions are told apart by one
rule: **a message from caller to callee carries** ``'cmd'``; **a message
from callee to caller does not.** The reader routes the first kind to the
actor's running calls (by channel and ``cid``), the second to the calls it
is waiting on (by ``cid``).

caller -> callee
================  ==========================================================
message           meaning
================  ==========================================================
``run``           ``{'cmd': 'run', 'cid', 'ns', 'func', 'kw'}``: call
                  ``ns.func(**kw)`` (``ns`` is a module, or ``'self'`` for
                  the actor's runtime methods)
``cancel``        ``{'cmd': 'cancel', 'cid'[, 'error']}``: stop serving the
                  call. With ``error`` (a packed error, see
                  :mod:`tractor._exceptions`), the caller failed: the
                  callee's stream calls raise it as a ``RemoteActorError``
``yield``         ``{'cmd': 'yield', 'cid', 'yield': item}``: an item of a
                  two-way stream; ``{'cmd': 'yield', 'cid', 'yields':
                  [item, ...]}``: a run of them (see below)
``stop``          ``{'cmd': 'stop', 'cid', 'stop': 1}``: the caller closed
                  its sending half of a two-way stream
``credit``        ``{'cmd': 'credit', 'cid', 'credit': n}``: the caller's
                  code consumed ``n`` more of the callee's items
``ackreq``        ``{'cmd': 'ackreq', 'cid', 'ackreq': 1}``: the caller is
                  stalled on its window: credit what you consumed
``lock``          ``{'cmd': 'lock', 'cid', 'lock': [name, uuid]}``: debug
                  mode only: the actor ``uid`` (the caller, or an actor
                  below it whose request the caller relays) wants the
                  root's terminal for a pdb session. The callee, unless it
                  is the root, relays it to its own parent; the root grants
                  it first come, first served. The caller releases it with
                  ``cancel`` of the same ``cid``, which the callee answers
                  with ``cancelled`` once it is released (closing the
                  channel releases it too). See :mod:`tractor._debug`
================  ==========================================================

callee -> caller
================  ==========================================================
message           meaning
================  ==========================================================
``return``        ``{'cid', 'return': value}``: the call's result (final)
``error``         ``{'cid', 'error': {...}}``: the call raised (final)
``cancelled``     ``{'cid', 'cancelled': reason}``: the call was cancelled
                  and its ``finally`` blocks have run (final; sent for
                  streams and contexts, and for any call the caller asked
                  to cancel)
``stream``        ``{'cid', 'stream': 1}``: the call is a one-way stream
                  (async generator or ``@tractor.stream``); items follow
``started``       ``{'cid', 'started': value}``: a ``@tractor.context``
                  function called ``ctx.started(value)``
``yield``         ``{'cid', 'yield': item}``: a stream item;
                  ``{'cid', 'yields': [item, ...]}``: a run of them
``stop``          ``{'cid', 'stop': 1}``: the callee's stream ended (for a
                  one-way stream also the end of the call)
``credit``        ``{'cid', 'credit': n}``: the callee consumed ``n`` more
                  of the caller's items (two-way streams)
``ackreq``        ``{'cid', 'ackreq': 1}``: the callee is stalled on its
                  window
``locked``        ``{'cid', 'locked': 1}``: the terminal is the caller's
                  (answers ``lock``; the call stays open until the caller
                  releases it). A ``lock`` that cannot be served (debug
                  mode off) is answered with ``error``
================  ==========================================================

made locally
    ``{'cid', 'closed': reason}`` is never sent: the reader hands it to
    every call waiting on a channel that ended (final).

A *run* is what one task sent on one stream before it yielded to the
scheduler (at most ``RUN_MAX`` items), carried as one message: one
envelope to encode, route and queue instead of one per item. Each item of
a run counts as one against the window. Flow control (``credit``,
``ackreq``) and runs are explained in :mod:`tractor._flow`.
A message that breaks these rules is logged and answered with an error
for its ``cid`` where it has one; the channel keeps serving.
"""
from __future__ import annotations

import itertools
from typing import Any

from ._exceptions import unpack_error

_cids = itertools.count(1)


def next_cid() -> int:
    """A call id, unique within this process."""
    return next(_cids)


def run_msg(cid: int, ns: str, func: str, kw: dict) -> dict:
    return {'cmd': 'run', 'cid': cid, 'ns': ns, 'func': func, 'kw': kw}


def cancel_msg(cid: int, error: dict | None = None) -> dict:
    msg = {'cmd': 'cancel', 'cid': cid}
    if error is not None:
        msg['error'] = error
    return msg


def lock_msg(cid: int, uid) -> dict:
    """Ask for the root's terminal on behalf of the actor ``uid`` (see
    :mod:`tractor._debug`)."""
    return {'cmd': 'lock', 'cid': cid, 'lock': list(uid)}


def _spelt(caller: bool, cmd: str, cid: int, key: str, value) -> dict:
    """A message that exists in both directions: the caller's carries
    ``cmd`` (see the rule above)."""
    if caller:
        return {'cmd': cmd, 'cid': cid, key: value}
    return {'cid': cid, key: value}


def item_msg(caller: bool, cid: int, item: Any) -> dict:
    return _spelt(caller, 'yield', cid, 'yield', item)


def run_msg_of(caller: bool, cid: int, items: list) -> dict:
    """Several items of one stream as one message (a run)."""
    return _spelt(caller, 'yield', cid, 'yields', items)


def stop_msg(caller: bool, cid: int) -> dict:
    return _spelt(caller, 'stop', cid, 'stop', 1)


def credit_msg(caller: bool, cid: int, n: int) -> dict:
    return _spelt(caller, 'credit', cid, 'credit', n)


def ackreq_msg(caller: bool, cid: int) -> dict:
    return _spelt(caller, 'ackreq', cid, 'ackreq', 1)


async def request(chan, ns: str, func: str, **kw) -> Any:
    """Call ``ns.func(**kw)`` over ``chan``, a channel that nobody else
    reads (no actor serves it): send the request, skip anything else the
    peer sends, return the result or raise its error. For calls made
    where no message loop runs: registering with the arbiter from a
    keeper task, or while the actor is tearing down."""
    cid = next_cid()
    await chan.send(run_msg(cid, ns, func, kw))
    while True:
        msg = await chan.recv()
        if isinstance(msg, dict) and msg.get('cid') == cid \
                and 'cmd' not in msg:
            break
    if 'error' in msg:
        raise unpack_error(msg['error'], chan)
    return msg.get('return')
