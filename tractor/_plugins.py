"""Named plugins (transports, codecs): one registry type serves both.

Built-ins are named as ``"module:attr"`` strings and imported on first use,
so an optional backend (pynng, pyzmq) is only needed by the programs that
pick it. Third-party packages add plugins through an entry-point group,
without touching this repository, or at run time with ``register()``.
"""
from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:  # pragma: no cover
    from importlib.metadata import EntryPoint

#: a plugin: "module:attr", a callable making it, or a (not yet loaded)
#: entry point
Factory = Union[str, Callable[[], Any], 'EntryPoint']


class PluginRegistry:
    def __init__(self, kind: str, group: str, builtin: dict[str, str],
                 unknown: type[Exception],
                 extras: dict[str, str] | None = None) -> None:
        self.kind = kind              # 'transport', 'codec': for messages
        self.group = group            # the entry-point group
        self._builtin = dict(builtin)
        self._unknown = unknown       # the error raised for a bad name
        # name -> the package extra that installs its backend (setup.cfg)
        self._extras = dict(extras or {})
        self._factories: dict[str, Factory] = {}
        self._instances: dict[str, Any] = {}
        self._entry_points_loaded = False

    def register(self, name: str, factory: Factory) -> None:
        """Make ``factory()`` (a class or callable, or a ``"module:attr"``
        string) available as ``name``."""
        self._factories[name] = factory
        self._instances.pop(name, None)

    def _all(self) -> dict[str, Factory]:
        if not self._entry_points_loaded:
            self._entry_points_loaded = True
            # imported here, not at the top: importlib.metadata brings
            # email, zipfile, csv... (3.8 MiB of heap), which every
            # process of the tree (the fork server's heap is each actor's)
            # would otherwise carry to look up built-in names only
            from importlib.metadata import entry_points
            for ep in entry_points(group=self.group):
                # loaded (ep.load()) only when asked for by name; never
                # in place of a built-in (see get())
                if ep.name not in self._builtin:
                    self._factories.setdefault(ep.name, ep)
        return {**self._builtin, **self._factories}

    @staticmethod
    def _load(spec) -> Callable[[], Any]:
        if isinstance(spec, str):
            mod, _, attr = spec.partition(':')
            return getattr(importlib.import_module(mod), attr)
        metadata = sys.modules.get('importlib.metadata')
        if metadata is not None and isinstance(spec, metadata.EntryPoint):
            return spec.load()  # (none exists before it is imported)
        return spec

    def available(self) -> list[str]:
        """Names whose backend imports here."""
        names = []
        for name, spec in self._all().items():
            try:
                self._load(spec)
            except ImportError:
                continue
            names.append(name)
        return names

    def get(self, name: str) -> Any:
        """The shared instance registered as ``name``; the error names the
        bad name and lists the available ones.

        A name registered with :meth:`register` or built in is found
        without reading the installed packages' entry points: that scan
        (every distribution's metadata) took 18 ms, half of an actor's
        start-up, and a built-in name is not the entry points' to take
        (an entry point of the same name is ignored)."""
        try:
            return self._instances[name]
        except KeyError:
            pass
        spec = self._factories.get(name) or self._builtin.get(name)
        if spec is None:
            spec = self._all().get(name)
        if spec is None:
            raise self._unknown(
                f'unknown {self.kind} {name!r}; available: '
                f'{", ".join(self.available())}')
        try:
            factory = self._load(spec)
        except ImportError as err:
            extra = self._extras.get(name)
            how = (f'`pip install tractor[{extra}]`' if extra else
                   f'install the package that provides it ({err.name})')
            raise self._unknown(
                f'{self.kind} {name!r} is registered but its backend is not '
                f'installed ({err}); {how}, or pick one of: '
                f'{", ".join(self.available())}') from err
        inst = self._instances[name] = factory()
        return inst
