"""Registries: one decorator to register, one ``get`` to build, one ``list`` to search.

Modelled on timm's ``register_model`` / ``list_models`` and mmengine's registry::

    from aigbench.registry import MODELS

    @MODELS.register_module()
    class MyModel(torch.nn.Module):
        ...

    MODELS.get("MyModel")            # the class
    MODELS.get("MyModle")            # KeyError: ... Did you mean 'MyModel'?
    MODELS.list("*spot*")            # names matching a wildcard

A family of names too large to list (AI-GenBench's ``<timm name>_tune``) is served by a
*resolver*: ``MODELS.add_resolver(fn)``, where ``fn(name)`` returns the entry for a name it
builds, None for a name that is not its own, or raises ``KeyError`` with the reason when the
name has its shape but cannot be built (``vit_b_16_tune``: torchvision's name, not timm's).
Registered names win over resolvers; ``list`` shows registered names only.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from typing import Any, Callable, Iterable, Optional, Sequence, Union


class Registry:
    """A name → class map with wildcard listing and close-match suggestions.

    ``locations`` are modules imported the first time the registry is read, so that the
    built-in entries register themselves without importing them at package import time.
    """

    def __init__(self, name: str, locations: Sequence[str] = ()) -> None:
        self.name = name
        self._entries: dict[str, Any] = {}
        self._locations = list(locations)
        self._imported = False
        self._resolvers: list[Callable[[str], Any]] = []
        self._resolved: dict[str, Any] = {}

    # -- registration -------------------------------------------------------------------
    def register_module(
        self, name: Optional[str] = None, force: bool = False, module: Any = None
    ) -> Union[Callable[[Any], Any], Any]:
        """Register a class (or function) under its ``__name__`` or ``name``.

        Use as ``@REG.register_module()``, ``@REG.register_module("alias")`` or
        ``REG.register_module(module=cls)``. Registering a different object under a
        taken name raises unless ``force=True``.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"{self.name}.register_module() takes a name string, got {type(name).__name__}; "
                "write @register_module() with parentheses"
            )

        def _register(obj: Any) -> Any:
            key = name or obj.__name__
            old = self._entries.get(key)
            if old is not None and old is not obj and not force and not _same_definition(old, obj):
                raise KeyError(
                    f"{key!r} is already registered in {self.name} by {old.__module__}; "
                    "pick another name or pass force=True"
                )
            self._entries[key] = obj
            return obj

        if module is not None:
            return _register(module)
        return _register

    def add_resolver(self, resolver: Callable[[str], Any]) -> Callable[[str], Any]:
        """Serve a family of names from ``resolver(name)``: the entry, None (not one of its
        names), or ``KeyError(reason)`` (one of its names that cannot be built). Each name is
        resolved once; ``get`` then returns the same entry. Usable as a decorator."""
        if resolver not in self._resolvers:
            self._resolvers.append(resolver)
        return resolver

    def _resolve(self, name: str) -> tuple[Any, str]:
        """(entry, "") from a resolver, or (None, the first resolver's reason or "")."""
        if not isinstance(name, str):  # ``None in MODELS`` (a config without a model) is simply False
            return None, ""
        if name in self._resolved:
            return self._resolved[name], ""
        reason = ""
        for resolver in self._resolvers:
            try:
                obj = resolver(name)
            except KeyError as e:
                reason = reason or str(e.args[0] if e.args else e)
                continue
            if obj is not None:
                self._resolved[name] = obj
                return obj, ""
        return None, reason

    # -- lookup -------------------------------------------------------------------------
    def _ensure_imported(self) -> None:
        if not self._imported:
            self._imported = True
            for loc in self._locations:
                importlib.import_module(loc)

    def get(self, name: str) -> Any:
        """Return the entry called ``name`` (registered, else from a resolver); an unknown name
        lists the closest registered ones, after a resolver's reason when one gave it."""
        self._ensure_imported()
        if name in self._entries:
            return self._entries[name]
        lowered = {k.lower(): k for k in self._entries}
        if name.lower() in lowered:
            return self._entries[lowered[name.lower()]]
        obj, reason = self._resolve(name)
        if obj is not None:
            return obj
        close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
        quoted = " or ".join(repr(lowered[c]) for c in close)
        if reason:  # the name has a resolver's shape: its reason first, registered names after
            hint = reason + (f" Registered names close to it: {quoted}." if close else "")
        elif close:
            hint = f"Did you mean {quoted}?"
        else:
            hint = f"Registered: {', '.join(sorted(self._entries)) or '(none)'}."
        raise KeyError(f"{name!r} is not registered in {self.name}. {hint}")

    def list(self, include: Union[str, Iterable[str]] = "", exclude: Union[str, Iterable[str]] = "") -> list[str]:
        """Sorted names matching any ``include`` wildcard and no ``exclude`` wildcard."""
        self._ensure_imported()
        inc = [include] if isinstance(include, str) else list(include)
        exc = [exclude] if isinstance(exclude, str) else list(exclude)
        inc = [p for p in inc if p]
        exc = [p for p in exc if p]
        names = sorted(self._entries)
        if inc:
            names = [n for n in names if any(fnmatch.fnmatch(n.lower(), p.lower()) for p in inc)]
        if exc:
            names = [n for n in names if not any(fnmatch.fnmatch(n.lower(), p.lower()) for p in exc)]
        return names

    def __contains__(self, name: str) -> bool:
        """True for a registered name and for a name a resolver builds."""
        self._ensure_imported()
        return name in self._entries or self._resolve(name)[0] is not None

    def __len__(self) -> int:
        self._ensure_imported()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {len(self._entries)} entries)"


def _same_definition(old: Any, new: Any) -> bool:
    """True when a module re-executes (e.g. imported twice under two names)."""
    return (
        getattr(old, "__qualname__", None) == getattr(new, "__qualname__", None)
        and getattr(old, "__module__", "").rsplit(".", 1)[-1] == getattr(new, "__module__", "").rsplit(".", 1)[-1]
    )


def describe(obj: Any) -> str:
    """First line of an entry's docstring."""
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


MODELS = Registry("MODELS", locations=["aigbench.model_zoo"])
LAYOUTS = Registry("LAYOUTS", locations=["aigbench.datasets.layouts", "aigbench.datasets.sources"])
DATASETS = LAYOUTS  # the name used by aigbench 0.1
PERTURBATIONS = Registry("PERTURBATIONS", locations=["aigbench.imageops.perturbations"])
