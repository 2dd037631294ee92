"""Turn a model's ``__init__`` signature into command-line flags, and back into kwargs.

Rules (documented in docs/contract.md):

* every parameter becomes ``--name`` with its annotated type and default;
* a parameter with no default is a required flag;
* ``bool`` becomes ``--name/--no-name`` (never ``type=bool``, for which ``--x False`` is True);
* ``int``, ``float`` and ``str`` take one value of that type; ``Optional[T]`` (or ``T | None``) parses
  as ``T``; ``Literal[...]`` gives choices (all of one type: ``Literal["a", "b"]``, ``Literal[1, 2]``);
* ``list[T]`` and ``tuple[T, ...]`` take one or more values, ``tuple[T, T]`` exactly two; a tuple
  parameter receives a tuple (``T`` is one of the types above, or a ``Literal``); a bare ``list`` or
  ``tuple`` takes ``T`` from the items of its default;
* each annotation is resolved on its own, so one bad annotation does not affect the others: a string
  annotation (``from __future__ import annotations``) is evaluated in the module of ``__init__``, with
  ``typing``'s names available; when that fails (``int | None`` on Python 3.9, an undefined name) the
  flag takes the type of the default (a list or tuple default gives its items' type);
* a parameter without annotation takes the type of its default, and is a ``str`` flag when its default
  is ``None`` or when it has none;
* any other type (``dict``, a class, a callable, ``Any``, a ``Union`` of two types, or an annotation
  that cannot be evaluated on a parameter whose default is ``None`` or missing) raises ``ConfigError``
  naming the model, the parameter and the type; a flag never silently becomes ``str``;
* ``self``, ``*args`` and ``**kwargs`` are skipped;
* a parameter named like a framework flag (``image_size``) receives that flag's value (and default);
  when the two types differ (``seed: str`` against the int ``--seed``, ``amp: int`` against the on/off
  ``--amp``, a ``Literal`` without all of the flag's choices), when the flag is not a plain value flag
  (``-h/--help``, a counter), or when argparse rejects the flag (``--name`` taken by another flag),
  ``ConfigError`` asks to rename the parameter.

``signature_table`` (``bench models NAME``) shows the same resolved types; a parameter that cannot be
a flag is listed with ``(not a flag)`` after its type.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

from aigbench.errors import ConfigError

_SCALARS = (int, float, str, bool)
_SUPPORTED = "int, float, str, bool, Literal[...], Optional[T], list[T] or tuple[T, ...] (T: int, float, str or bool)"
_UNION_TYPE = getattr(types, "UnionType", None)  # ``int | None`` on Python >= 3.10


class _NotAFlag(Exception):
    """Internal: a type that cannot be a flag; the message is the type's name."""


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or (_UNION_TYPE is not None and origin is _UNION_TYPE):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _type_name(tp: Any) -> str:
    if isinstance(tp, str):
        return repr(tp)
    if typing.get_origin(tp) is None and isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def parse_bool(text: str) -> bool:
    """Parse true/false words; anything else is an error (argparse shows it with the flag)."""
    low = str(text).strip().lower()
    if low in {"1", "true", "yes", "y", "on"}:
        return True
    if low in {"0", "false", "no", "n", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


@dataclass(frozen=True)
class _Flag:
    """How one ``__init__`` parameter is parsed.

    ``elem`` is the type of each value, ``choices`` the allowed values (``Literal``), ``nargs`` is
    None for one value, ``"+"`` or a count for several, and ``container`` (list or tuple) what the
    parameter receives then. ``error`` is set when the parameter cannot be a flag.
    """

    param: inspect.Parameter
    label: str
    elem: Any = None
    choices: Optional[tuple] = None
    nargs: Union[None, str, int] = None
    container: Optional[type] = None
    error: Optional[str] = None

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def is_switch(self) -> bool:
        return self.elem is bool and self.nargs is None and self.choices is None


def _elem_spec(tp: Any) -> tuple[Any, Optional[tuple], str]:
    """(value type, choices, label) of a single value; raises _NotAFlag."""
    tp = _unwrap_optional(tp)
    if tp in _SCALARS:
        return tp, None, tp.__name__
    if typing.get_origin(tp) is typing.Literal:
        choices = typing.get_args(tp)
        kinds = {type(c) for c in choices}
        if len(kinds) == 1 and next(iter(kinds)) in _SCALARS:
            return next(iter(kinds)), tuple(choices), "{" + ",".join(str(c) for c in choices) + "}"
    raise _NotAFlag(_type_name(tp))


def _default_items_type(default: Any) -> Any:
    """The item type shared by a list or tuple default, or None."""
    kinds = {type(v) for v in default}
    if kinds == {int, float}:
        return float
    if len(kinds) == 1 and next(iter(kinds)) in _SCALARS:
        return next(iter(kinds))
    return None


def _spec(param: inspect.Parameter, tp: Any) -> _Flag:
    """The flag for a resolved type; raises _NotAFlag."""
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    container = origin if origin in (list, tuple) else tp if tp in (list, tuple) else None
    if container is None:
        elem, choices, label = _elem_spec(tp)
        return _Flag(param, label, elem, choices)
    args = typing.get_args(tp)
    default = param.default
    if container is tuple and len(args) == 2 and args[1] is Ellipsis:
        items, nargs = args[0], "+"
    elif container is list and len(args) == 1:
        items, nargs = args[0], "+"
    elif container is tuple and args and Ellipsis not in args and all(a == args[0] for a in args):
        items, nargs = args[0], len(args)
    elif not args and isinstance(default, (list, tuple)) and default:  # bare list/tuple: items of the default
        items, nargs = _default_items_type(default), "+"
        if items is None:
            raise _NotAFlag(_type_name(tp))
    else:
        raise _NotAFlag(_type_name(tp))
    try:
        elem, choices, item_label = _elem_spec(items)
    except _NotAFlag:
        raise _NotAFlag(_type_name(tp)) from None
    if nargs == "+":
        label = f"list[{item_label}]" if container is list else f"tuple[{item_label}, ...]"
    else:
        label = f"tuple[{', '.join([item_label] * nargs)}]"
    return _Flag(param, label, elem, choices, nargs, container)


def _type_of_default(default: Any) -> Any:
    """``type(default)``, with a list or tuple default giving ``list[T]``/``tuple[T, ...]``; None if unknown."""
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, (list, tuple)):
        items = _default_items_type(default) if default else None
        if items is None:
            return type(default)  # rejected by _spec with its name
        return list[items] if isinstance(default, list) else tuple[items, ...]
    return type(default)


def _evaluate(annotation: Any, namespace: dict[str, Any]) -> Any:
    """One annotation, strings and nested forward references included, evaluated in ``namespace``."""

    def holder() -> None:
        pass

    holder.__annotations__ = {"x": annotation}
    return typing.get_type_hints(holder, globalns=namespace, localns=namespace)["x"]


def _namespace(target: Callable) -> dict[str, Any]:
    """Where the annotations of ``target`` are evaluated: ``typing``'s names, then its module's globals."""
    fn = inspect.unwrap(target)
    module_globals = getattr(fn, "__globals__", None)
    if module_globals is None:
        module = sys.modules.get(getattr(fn, "__module__", None) or "")
        module_globals = vars(module) if module is not None else {}
    namespace = {name: getattr(typing, name) for name in typing.__all__ if hasattr(typing, name)}
    namespace.update(module_globals)
    return namespace


def _model_name(cls: Callable) -> str:
    return getattr(cls, "__name__", None) or repr(cls)


def _resolve(cls: Callable, param: inspect.Parameter, namespace: dict[str, Any]) -> _Flag:
    """The flag of one parameter; ``error`` is set when it cannot be one."""
    model = _model_name(cls)
    prefix = f"model {model}: parameter {param.name!r}"
    advice = f"annotate it as one of {_SUPPORTED}"
    annotation = param.annotation
    default = param.default
    if annotation is inspect.Parameter.empty:
        tp = _type_of_default(default) or str
        try:
            return _spec(param, tp)
        except _NotAFlag as e:
            return _Flag(
                param,
                str(e),
                error=f"{prefix} has no annotation and a default of type {e}, which cannot be a command-line "
                f"flag; {advice}",
            )
    try:
        tp = _evaluate(annotation, namespace)
    except Exception as e:  # an undefined name, ``int | None`` on Python 3.9, ...
        why = f"{type(e).__name__}: {e}"
        fallback = _type_of_default(default)
        raw = annotation if isinstance(annotation, str) else _type_name(annotation)
        if fallback is None:
            given = "it has no default" if default is inspect.Parameter.empty else "its default is None"
            return _Flag(
                param,
                _type_name(raw),
                error=f"{prefix} is annotated {raw!r}, which cannot be evaluated ({why}), and {given}, so the "
                f"flag has no type; {advice}, using names from typing or from the module of {model}.__init__",
            )
        try:
            return _spec(param, fallback)
        except _NotAFlag as e2:
            return _Flag(
                param,
                str(e2),
                error=f"{prefix} is annotated {raw!r}, which cannot be evaluated ({why}), and its default has "
                f"type {e2}, which cannot be a command-line flag; {advice}",
            )
    try:
        return _spec(param, tp)
    except _NotAFlag as e:
        return _Flag(
            param,
            str(e),
            error=f"{prefix} has type {e}, which cannot be a command-line flag; {advice}, "
            "and build anything else inside __init__ from such parameters",
        )


def _flags(cls: Callable) -> list[_Flag]:
    target = cls.__init__ if inspect.isclass(cls) else cls
    namespace = _namespace(target)
    out = []
    for p in inspect.signature(target).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(_resolve(cls, p, namespace))
    return out


def _checked_flags(cls: Callable) -> list[_Flag]:
    flags = _flags(cls)
    for flag in flags:
        if flag.error:
            raise ConfigError(flag.error)
    return flags


def _action_value(action: argparse.Action) -> Optional[tuple[Any, Optional[tuple], Union[None, str, int], str]]:
    """(value type, choices, nargs, label) of a framework flag, or None when it is not a plain value flag."""
    if isinstance(action, (argparse.BooleanOptionalAction, argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return bool, None, None, "on/off"
    if type(action) is not argparse._StoreAction:
        return None
    elem = bool if action.type is parse_bool else (action.type or str)
    nargs = None if action.nargs in (None, "?") else action.nargs
    choices = tuple(action.choices) if action.choices is not None else None
    label = "{" + ",".join(str(c) for c in choices) + "}" if choices else getattr(elem, "__name__", str(elem))
    if nargs is not None:
        label = f"{nargs} x {label}" if isinstance(nargs, int) else f"list[{label}]"
    return elem, choices, nargs, label


def _check_shared(cls: Callable, flag: _Flag, action: argparse.Action) -> None:
    """A parameter named like a framework flag may share it only when the values have the parameter's type."""
    option = "/".join(action.option_strings) or action.dest
    prefix = f"model {_model_name(cls)}: parameter {flag.name!r}"
    rename = f"rename the parameter (for example to 'model_{flag.name}')"
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        raise ConfigError(f"{prefix} clashes with the framework flag {option}; {rename}")
    value = _action_value(action)
    model_label = "on/off" if flag.is_switch else flag.label
    if value is None:
        raise ConfigError(
            f"{prefix} ({model_label}) has the name of the framework flag {option}, which is not a plain value "
            f"flag the model can share; {rename}"
        )
    elem, choices, nargs, fw_label = value
    same = elem is flag.elem
    if flag.nargs is None:
        same = same and nargs is None
    elif flag.nargs == "+":
        same = same and nargs is not None
    else:
        same = same and nargs == flag.nargs
    if flag.choices is not None:
        same = same and choices is not None and set(choices) <= set(flag.choices)
    if not same:
        raise ConfigError(
            f"{prefix} ({model_label}) has the name of the framework flag {option} ({fw_label}), whose value it "
            f"would receive, and the types differ; {rename}, or give it the flag's type to share the flag"
        )


def add_signature_flags(
    parser: argparse.ArgumentParser,
    cls: Callable,
    title: Optional[str] = None,
    shareable: Optional[Sequence[str]] = None,
) -> list[str]:
    """Add one flag per ``__init__`` parameter of ``cls``; returns the parameter names.

    A parameter named like an existing flag shares it when the types agree and, if
    ``shareable`` is given, when the flag is one of those (the scripts allow ``image_size``
    and ``pretrained_path``: a model parameter ``lr`` or ``device`` would otherwise silently
    receive the framework's value). Raises ``ConfigError`` when a parameter cannot be a flag
    or clashes with a framework flag.
    """
    flags = _checked_flags(cls)
    group = parser.add_argument_group(title or f"{_model_name(cls)} parameters")
    existing = {a.dest: a for a in parser._actions}
    names = []
    for flag in flags:
        names.append(flag.name)
        if flag.name in existing:  # shares the framework flag of that name (e.g. --image_size)
            if (
                shareable is not None
                and flag.name not in shareable
                and not isinstance(existing[flag.name], (argparse._HelpAction, argparse._VersionAction))
            ):
                option = "/".join(existing[flag.name].option_strings) or flag.name
                raise ConfigError(
                    f"model {_model_name(cls)}: parameter {flag.name!r} has the name of the framework flag {option}, "
                    f"whose value it would silently receive; rename the parameter (for example to "
                    f"'model_{flag.name}'). Parameters that share a framework flag: {', '.join(shareable)}"
                )
            _check_shared(cls, flag, existing[flag.name])
            continue
        p = flag.param
        kwargs: dict[str, Any] = {"dest": flag.name}
        required = p.default is inspect.Parameter.empty
        if flag.is_switch:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = parse_bool if flag.elem is bool else flag.elem
            if flag.choices is not None:
                kwargs["choices"] = list(flag.choices)
            if flag.nargs is not None:
                kwargs["nargs"] = flag.nargs
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = p.default
        help_default = "required" if required else f"default: {p.default!r}"
        try:
            group.add_argument(f"--{flag.name}", help=f"({flag.label}, {help_default})", **kwargs)
        except argparse.ArgumentError as e:
            raise ConfigError(
                f"model {_model_name(cls)}: parameter {flag.name!r} cannot become the flag --{flag.name} "
                f"({e}); rename the parameter"
            ) from None
    return names


def kwargs_from_args(cls: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """Pick the ``__init__`` keyword arguments of ``cls`` out of parsed ``args``."""
    out = {}
    for flag in _checked_flags(cls):
        if hasattr(args, flag.name):
            value = getattr(args, flag.name)
            if isinstance(value, list) and flag.container is tuple:
                value = tuple(value)
            out[flag.name] = value
    return out


def signature_table(cls: Callable) -> list[tuple[str, str, str]]:
    """(flag, type, default) rows for ``bench models NAME``, with the types the flags parse."""
    rows = []
    for flag in _flags(cls):
        p = flag.param
        default = "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
        name = f"--{flag.name}/--no-{flag.name}" if flag.is_switch else f"--{flag.name}"
        rows.append((name, f"{flag.label} (not a flag)" if flag.error else flag.label, default))
    return rows
