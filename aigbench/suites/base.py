"""A benchmark suite, declared once: its trees, test sets, pairing, geometry, metrics and the
numbers its papers publish.

A suite is a JSON file (``aigbench/suites/data/<name>.json``, or any file given as
``--suite path/to/my_suite.json=PATH``), read into a :class:`Suite`::

    {
      "name": "forensynths",
      "title": "ForenSynths / CNNDetection test set (13 generators)",
      "citation": "Wang et al., CNN-generated images are surprisingly easy to spot... for now, CVPR 2020",
      "official_code": ["PeterWang512/CNNDetection eval_config.py L1-12", ...],
      "trees": [{"name": "as shipped", "labels": {"0_real": 0, "1_fake": 1},
                 "sets": [{"name": "progan", "path": "progan", "n_real": 4000, "n_fake": 4000}, ...],
                 "pools": {}}],
      "geometry": {"default": {"input_size": 224, "resize_mode": "crop"}, "NPR": {...}},
      "sampling": null,
      "references": [{"detector": "CNNSpot Blur+JPEG(0.5)", "source": "...", "mean": {"acc": 67.1, "ap": 86.9},
                      "per_set": {"progan": {"acc": 100.0, "ap": 100.0}}}]
    }

* A **set** is a folder below the root (``path``) holding its images with the tree's label
  folders (``0_real``/``1_fake`` at any depth, categories in between), or, with
  ``"fakes_only": true``, fakes only (DiffusionForensics' ``adm/``, Synthbuster's ``dalle3/``).
  ``"reals": "<pool>"`` pairs its fakes with a named pool of reals (``"pools": {"imagenet":
  "imagenet/0_real"}``) instead of its own; ``"reals": "<path>"`` with the reals of another folder.
* **Geometry** is the official test-time preprocessing (``default``), with overrides for the
  detectors whose papers used their own (keyed by model name).
* **Metrics** are those of the papers: accuracy at ``score > 0.5``, AP (scikit-learn's
  ``average_precision_score``), real and fake accuracy per set, and the plain mean over sets as
  the headline.
* **References** are published numbers, each with the table or README section it comes from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from aigbench.errors import ConfigError

DATA = Path(__file__).parent / "data"
TABLE_METRICS = ("acc", "ap", "real_acc", "fake_acc")


@dataclass(frozen=True)
class TestSet:
    name: str  # as the papers' tables name it
    path: str  # folder below the root
    reals: str = ""  # "": its own label folders; else a pool name or a folder below the root
    fakes_only: bool = False  # the folder holds fakes only (no label folders)
    n_real: Optional[int] = None  # official counts, where published
    n_fake: Optional[int] = None


@dataclass(frozen=True)
class Tree:
    name: str  # "as shipped", "NPR repackaged", ...
    sets: tuple[TestSet, ...]
    labels: dict[str, int] = field(default_factory=lambda: {"0_real": 0, "1_fake": 1})
    pools: dict[str, Any] = field(default_factory=dict)  # pool name -> folder (or candidate folders) of reals
    prefixes: tuple[str, ...] = ("",)  # where the sets may sit below the path given ("", "test/")


@dataclass(frozen=True)
class Reference:
    detector: str
    source: str  # the paper table or README section
    mean: dict[str, float]  # percent: {"acc": 67.1, "ap": 86.9}; {} when the source publishes no mean
    per_set: dict[str, dict[str, float]] = field(default_factory=dict)
    setting: str = ""  # e.g. "trained on ProGAN (4 classes)"


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    citation: str
    official_code: tuple[str, ...]
    trees: tuple[Tree, ...]
    geometry: dict[str, dict[str, Any]]
    references: tuple[Reference, ...] = ()
    sampling: Optional[dict[str, Any]] = None  # the official subsampling (opt-in): per_class, fallback, seed
    notes: tuple[str, ...] = ()
    source_file: str = ""

    def geometry_for(self, model: str) -> dict[str, Any]:
        """The test-time preprocessing for ``model``: its paper's own where the suite names it."""
        return dict(self.geometry.get(model) or self.geometry["default"])

    @property
    def set_names(self) -> list[str]:
        return [s.name for s in self.trees[0].sets]


def _tree(d: dict[str, Any], where: str) -> Tree:
    try:
        sets = tuple(TestSet(**s) for s in d["sets"])
        return Tree(
            name=d["name"],
            sets=sets,
            labels=dict(d.get("labels") or {"0_real": 0, "1_fake": 1}),
            pools=dict(d.get("pools") or {}),
            prefixes=tuple(d.get("prefixes") or ("",)),
        )
    except (KeyError, TypeError) as e:
        raise ConfigError(f"{where}: a tree needs name and sets [{{name, path, ...}}]: {e}") from None


def suite_from_dict(d: dict[str, Any], where: str = "suite") -> Suite:
    """A :class:`Suite` from its JSON form; a missing or unknown key is an error naming it."""
    known = {"name", "title", "citation", "official_code", "trees", "geometry", "references", "sampling", "notes"}
    unknown = set(d) - known - {"_comment"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; the keys are {', '.join(sorted(known))}"
        )
    missing = [k for k in ("name", "title", "citation", "trees", "geometry") if k not in d]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    if "default" not in d["geometry"]:
        raise ConfigError(f"{where}: geometry needs a 'default' entry (input_size, resize_mode, ...)")
    refs = []
    for r in d.get("references") or []:
        try:
            refs.append(Reference(**r))
        except TypeError as e:
            raise ConfigError(f"{where}: a reference needs detector, source, mean: {e}") from None
    return Suite(
        name=d["name"],
        title=d["title"],
        citation=d["citation"],
        official_code=tuple(d.get("official_code") or ()),
        trees=tuple(_tree(t, where) for t in d["trees"]),
        geometry=dict(d["geometry"]),
        references=tuple(refs),
        sampling=d.get("sampling"),
        notes=tuple(d.get("notes") or ()),
        source_file=where,
    )


def builtin_suites() -> dict[str, Path]:
    """``{name: file}`` of the suites aigbench ships."""
    return {p.stem: p for p in sorted(DATA.glob("*.json"))}


def load_suite(name_or_file: Union[str, os.PathLike]) -> Suite:
    """A shipped suite by name (any case), or a suite file; an unknown name lists the suites."""
    text = str(name_or_file)
    shipped = builtin_suites()
    by_lower = {k.lower(): v for k, v in shipped.items()}
    path = by_lower.get(text.lower()) or (Path(text) if text.lower().endswith(".json") else None)
    if path is None or not path.is_file():
        import difflib

        close = difflib.get_close_matches(text.lower(), list(by_lower), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"--suite {text!r}: no such suite; the suites are {', '.join(shipped)} (or a .json file).{hint}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    return suite_from_dict(data, str(path))


def protocol_card(suite: Suite) -> str:
    """``bench suites NAME``: layout, sets, pairing, geometry, metrics and references."""
    lines = [f"{suite.name}: {suite.title}", f"  citation: {suite.citation}"]
    lines += [f"  official code: {c}" for c in suite.official_code]
    for tree in suite.trees:
        where = " or ".join(f"<root>/{p}" if p else "<root>" for p in tree.prefixes)
        lines.append(f"  tree '{tree.name}' (sets below {where}; label folders {', '.join(tree.labels)}):")
        for s in tree.sets:
            pairing = "fakes only, " if s.fakes_only else ""
            pool = tree.pools.get(s.reals, s.reals)
            pool = pool if isinstance(pool, str) else " or ".join(pool)
            pairing += f"reals from {pool}" if s.reals else "its own reals"
            counts = f", official {s.n_real} real / {s.n_fake} fake" if s.n_real is not None else ""
            lines.append(f"    {s.name:<22} {s.path}  ({pairing}{counts})")
    lines.append("  geometry (test time): " + ", ".join(f"{k}={v}" for k, v in suite.geometry["default"].items()))
    for model, g in suite.geometry.items():
        if model != "default":
            lines.append(f"    {model}: " + ", ".join(f"{k}={v}" for k, v in g.items()))
    lines.append(
        "  metrics: accuracy at score > 0.5, AP (scikit-learn), real acc, fake acc per set; headline: the plain "
        "mean over sets"
    )
    if suite.sampling:
        lines.append(f"  official sampling (--official_sampling): {suite.sampling}")
    for r in suite.references:
        means = ", ".join(f"{k} {v:.1f}" for k, v in r.mean.items()) or f"per set only ({len(r.per_set)} sets)"
        lines.append(f"  reference: {r.detector}{' (' + r.setting + ')' if r.setting else ''}: {means}  [{r.source}]")
    lines += [f"  note: {n}" for n in suite.notes]
    return "\n".join(lines)
