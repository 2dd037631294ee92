"""Imports run one way (issue 20, point 3): every import of every module of aigbench, lazy ones
inside functions included, goes to its own layer or a lower one. Bottom up:

base (errors, fileio, envinfo, registry, imageops, metrics, flags) -> datasets -> engine, audit,
reports -> evaluation, model_zoo, robustness -> protocols, scaffold, suites -> cli

A module listed in ``COMPAT`` re-exports what moved lower, for scripts generated earlier; it
may only import downward too.
"""

from __future__ import annotations

import ast
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
    "scaffold": 4,
    "suites": 4,
    "cli": 5,
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
    return out


def test_no_import_climbs_to_a_higher_layer():
    climbs = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        own = layer_of(module)
        for line, target in imports_of(path):
            if layer_of(target) > own:
                climbs.append(f"{path.relative_to(REPO)}:{line} imports {target} (layer {layer_of(target)} > {own})")
    assert not climbs, "imports that climb:\n  " + "\n  ".join(climbs)


def test_the_layer_map_knows_every_package():
    for p in PACKAGE.iterdir():
        if p.name.startswith(("_", ".")) and p.name != "__init__.py" or p.name in ("templates",):
            continue
        if p.is_dir() and (p / "__init__.py").is_file() or p.suffix == ".py":
            assert p.stem in LAYERS, f"aigbench/{p.name} has no layer"
