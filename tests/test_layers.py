"""Imports run one way (issue 20, point 3): every import of every module of aigbench, lazy ones
inside functions included, goes to its own layer or a lower one. Bottom up:

base (errors, fileio, envinfo, registry, imageops, metrics, flags) -> datasets -> engine, audit,
reports -> evaluation, model_zoo, robustness -> protocols, scaffold, suites -> cli

A module that moved up keeps its old name for scripts generated earlier (``COMPAT_ALIASES``:
``aigbench.engine.evaluate`` is ``aigbench.evaluation.evaluate``). Such a module is nothing but
the alias, and nothing in aigbench, its templates or its docs' code uses the old name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "aigbench"
LAYERS = {
    "errors": 0,
    "fileio": 0,
    "envinfo": 0,
    "registry": 0,
    "imageops": 0,
    "metrics": 0,
    "flags": 0,
    "__init__": 0,
    "datasets": 1,
    "engine": 2,
    "audit": 2,
    "reports": 2,
    "evaluation": 3,
    "model_zoo": 3,
    "robustness": 3,
    "protocols": 4,
    "training": 4,
    "explain": 4,
    "scaffold": 4,
    "suites": 4,
    "cli": 5,
}


# old name -> the module it is now (issue 20): each old file holds only the alias
COMPAT_ALIASES = {
    "aigbench.engine.evaluate": "aigbench.evaluation.evaluate",
    "aigbench.engine.selection": "aigbench.evaluation.selection",
    "aigbench.engine.predict": "aigbench.evaluation.predict",
    "aigbench.engine.ensemble": "aigbench.evaluation.ensemble",
    "aigbench.engine.policy": "aigbench.training.policy",
    "aigbench.datasets.check": "aigbench.audit",
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    assert parts[0] == "aigbench", module
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in LAYERS, f"{module}: package {top!r} has no layer; add it to LAYERS (and docs/architecture.md)"
    return LAYERS[top]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``import aigbench...`` / ``from aigbench... import`` in the file."""
    rel = path.relative_to(REPO).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("aigbench")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.startswith("aigbench"):
                for a in node.names:  # "from aigbench import suites" imports the package aigbench.suites
                    full = f"{name}.{a.name}"
                    out.append(
                        (
                            node.lineno,
                            full
                            if (PACKAGE / full.split(".", 1)[1].replace(".", "/")).exists()
                            or (PACKAGE / (full.split(".", 1)[1].replace(".", "/") + ".py")).exists()
                            else name,
                        )
                    )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).startswith("aigbench")
        ):  # importlib.import_module("aigbench.x"): an import too
            out.append((node.lineno, node.args[0].value))
    return out


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def test_no_import_climbs_to_a_higher_layer():
    climbs = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        own = layer_of(module)
        for line, target in imports_of(path):
            if COMPAT_ALIASES.get(module_name(path)) == target:
                continue  # the old name of a module that moved up (test_compat_aliases)
            if layer_of(target) > own:
                climbs.append(f"{path.relative_to(REPO)}:{line} imports {target} (layer {layer_of(target)} > {own})")
    assert not climbs, "imports that climb:\n  " + "\n  ".join(climbs)


def test_the_layer_map_knows_every_package():
    for p in PACKAGE.iterdir():
        if p.name.startswith(("_", ".")) and p.name != "__init__.py" or p.name in ("templates",):
            continue
        if p.is_dir() and (p / "__init__.py").is_file() or p.suffix == ".py":
            assert p.stem in LAYERS, f"aigbench/{p.name} has no layer"


def test_compat_aliases_are_only_aliases_and_unused():
    """Each old name is the moved module itself (same object, so scripts generated before the move
    and code that patches a function see one module); its file holds nothing else; nothing in
    aigbench, the templates or the tests' own imports of aigbench code use the old names."""
    import importlib

    for old, new in COMPAT_ALIASES.items():
        path = PACKAGE / (old.split(".", 1)[1].replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        assert len(body) == 3, f"{path}: holds more than the alias"
        assert imports_of(path) == [(body[-1].lineno, new)], path
        assert importlib.import_module(old) is importlib.import_module(new), old
    users = []
    sources = [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.j2"), *(REPO / "tests").glob("*.py")]
    for path in sources:
        if path.suffix == ".py" and module_name(path) in COMPAT_ALIASES or path.name == "test_layers.py":
            continue
        text = path.read_text(encoding="utf-8")
        for old in COMPAT_ALIASES:
            package, name = old.rsplit(".", 1)
            if old in text or re.search(rf"from {re.escape(package)} import [^\n]*\b{name}\b", text):
                users.append(f"{path.relative_to(REPO)} uses {old}")
    assert not users, "old module names in use (import the new one):\n  " + "\n  ".join(users)
