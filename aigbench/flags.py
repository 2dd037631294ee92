"""Turn a model's ``__init__`` signature into command-line flags, and back into kwargs.

Rules (documented in docs/contract.md):

* every parameter becomes ``--name`` with its annotated type and default;
* a parameter with no default is a required flag;
* ``bool`` becomes ``--name/--no-name`` (never ``type=bool``, for which ``--x False`` is True);
* ``Optional[T]`` parses as ``T``, ``Literal[...]`` gives choices, ``list[T]``/``tuple[T, ...]``
  takes several values;
* ``self``, ``*args`` and ``**kwargs`` are skipped;
* a parameter named like a framework flag (``image_size``) receives that flag's value.
"""

from __future__ import annotations

import argparse
import inspect
import typing
from typing import Any, Callable, Optional


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def parse_bool(text: str) -> bool:
    """Parse true/false words; anything else is an error (argparse shows it with the flag)."""
    low = str(text).strip().lower()
    if low in {"1", "true", "yes", "y", "on"}:
        return True
    if low in {"0", "false", "no", "n", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _signature_params(cls: Callable) -> list[inspect.Parameter]:
    target = cls.__init__ if inspect.isclass(cls) else cls
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    params = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name in hints:
            p = p.replace(annotation=hints[p.name])
        params.append(p)
    return params


def add_signature_flags(parser: argparse.ArgumentParser, cls: Callable, title: Optional[str] = None) -> list[str]:
    """Add one flag per ``__init__`` parameter of ``cls``; returns the parameter names."""
    group = parser.add_argument_group(title or f"{getattr(cls, '__name__', cls)} parameters")
    existing = {a.dest for a in parser._actions}
    names = []
    for p in _signature_params(cls):
        names.append(p.name)
        if p.name in existing:  # shares the framework flag of that name (e.g. --image_size)
            continue
        kwargs: dict[str, Any] = {"dest": p.name}
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        tp = p.annotation
        if tp is inspect.Parameter.empty:
            tp = type(default) if default is not None else str
        tp = _unwrap_optional(tp)
        origin = typing.get_origin(tp)
        help_default = "required" if required else f"default: {default!r}"
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is typing.Literal:
            choices = list(typing.get_args(tp))
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
        elif origin in (list, tuple, typing.List, typing.Tuple):
            inner = [a for a in typing.get_args(tp) if a is not Ellipsis]
            inner_tp = _unwrap_optional(inner[0]) if inner else str
            kwargs["nargs"] = "+"
            kwargs["type"] = parse_bool if inner_tp is bool else inner_tp
        elif tp in (int, float, str):
            kwargs["type"] = tp
        else:
            kwargs["type"] = str
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        group.add_argument(f"--{p.name}", help=f"({getattr(tp, '__name__', tp)}, {help_default})", **kwargs)
    return names


def kwargs_from_args(cls: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """Pick the ``__init__`` keyword arguments of ``cls`` out of parsed ``args``."""
    out = {}
    for p in _signature_params(cls):
        if hasattr(args, p.name):
            value = getattr(args, p.name)
            if isinstance(value, list) and typing.get_origin(_unwrap_optional(p.annotation)) is tuple:
                value = tuple(value)
            out[p.name] = value
    return out


def signature_table(cls: Callable) -> list[tuple[str, str, str]]:
    """(flag, type, default) rows for ``bench models NAME``."""
    rows = []
    for p in _signature_params(cls):
        tp = p.annotation
        tp_name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
        if typing.get_origin(_unwrap_optional(tp)) is typing.Literal:
            tp_name = "{" + ",".join(str(a) for a in typing.get_args(_unwrap_optional(tp))) + "}"
        if tp is inspect.Parameter.empty:
            tp_name = "any"
        default = "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
        flag = f"--{p.name}/--no-{p.name}" if _unwrap_optional(tp) is bool else f"--{p.name}"
        rows.append((flag, tp_name, default))
    return rows
