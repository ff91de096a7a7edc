"""Imported last by multiprocessing's fork server, after tractor, trio and
the codecs (see ``_spawn``), and by nothing else.

Every actor is a fork of the server and shares its heap page by page until
it writes to one. The garbage collector writes to every object it
traverses (its header's reference bookkeeping), so an actor's first full
collection would copy nearly the whole inherited heap into private memory.
Frozen objects are never traversed: what the server imported stays shared.
"""
import gc

gc.collect()
gc.freeze()
