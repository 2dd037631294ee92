"""Checking the tree a suite is given, before any work: which declared tree it is, which sets
are there, which are missing, which folders are unexpected, and whether the counts are the
official ones. A partial tree gives a result marked partial, never one that passes for the
whole benchmark."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from aigbench.datasets.layouts import IMAGE_EXTENSIONS, DatasetError, Sample
from aigbench.suites.base import Suite, TestSet, Tree


@dataclass
class ResolvedSet:
    spec: TestSet
    folder: Optional[Path]
    reals_folder: Optional[Path] = None
    samples: list[Sample] = field(default_factory=list)

    @property
    def n_real(self) -> int:
        return sum(1 for s in self.samples if s.label == 0)

    @property
    def n_fake(self) -> int:
        return sum(1 for s in self.samples if s.label == 1)


@dataclass
class TreeCheck:
    suite: Suite
    tree: Tree
    root: Path
    prefix: str
    sets: dict[str, ResolvedSet]
    missing: list[str]
    unexpected: list[str]
    counts: list[dict]  # {"set", "class", "official", "found"} where they differ

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def messages(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"missing set(s): {', '.join(self.missing)} (the result is marked partial)")
        if self.unexpected:
            out.append(f"folder(s) the {self.tree.name} tree does not declare, not read: {', '.join(self.unexpected)}")
        for c in self.counts:
            out.append(f"{c['set']}: {c['found']} {c['class']} image(s), the official count is {c['official']}")
        return out

    def as_dict(self) -> dict:
        return {
            "root": str(self.root),
            "tree": self.tree.name,
            "prefix": self.prefix,
            "partial": self.partial,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "counts_differ": self.counts,
            "sets": {
                n: {"folder": str(r.folder), "reals": str(r.reals_folder or r.folder)} for n, r in self.sets.items()
            },
        }


def _images(folder: Path) -> list[str]:
    out = []
    for dirpath, dirnames, files in os.walk(folder, followlinks=True):
        dirnames.sort()
        out += [os.path.join(dirpath, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return out


def _labelled(folder: Path, labels: dict[str, int], generator: str) -> list[Sample]:
    """Images below ``folder`` labelled by the nearest label folder above them; the folders in
    between are the category (``progan/airplane/0_real``: airplane)."""
    lookup = {k.lower(): v for k, v in labels.items()}
    out = []
    for p in _images(folder):
        parts = Path(os.path.relpath(p, folder)).parts[:-1]
        pos = [i for i, q in enumerate(parts) if q.lower() in lookup]
        if pos:
            i = pos[-1]
            out.append(Sample(p, lookup[parts[i].lower()], generator, "/".join(parts[:i]), "test"))
    return out


def _one_class(folder: Path, label: int, generator: str) -> list[Sample]:
    return [Sample(p, label, generator, "", "test") for p in _images(folder)]


def check_tree(suite: Suite, root: os.PathLike) -> TreeCheck:
    """Find which declared tree (and prefix) ``root`` is, list its sets' images with the suite's
    pairing, and what is missing, unexpected or miscounted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"--suite {suite.name}={root}: not a folder; give the benchmark's root as it ships")
    best: Optional[tuple[int, Tree, str]] = None
    for tree in suite.trees:
        for prefix in tree.prefixes:
            found = sum((root / prefix / s.path).is_dir() for s in tree.sets)
            if best is None or found > best[0]:
                best = (found, tree, prefix)
    assert best is not None
    found, tree, prefix = best
    if found == 0:
        expected = ", ".join(s.path for s in tree.sets[:5])
        raise DatasetError(
            f"--suite {suite.name}={root}: none of its test sets is there (expected folders such as {expected} "
            f"below the root{' or ' + ', '.join(p for p in tree.prefixes if p) if len(tree.prefixes) > 1 else ''}); "
            "give the benchmark's root folder as it ships"
        )
    base = root / prefix
    sets: dict[str, ResolvedSet] = {}
    missing, counts = [], []
    for spec in tree.sets:
        folder = base / spec.path
        if not folder.is_dir():
            missing.append(spec.name)
            continue
        r = ResolvedSet(spec, folder)
        if spec.fakes_only:
            r.samples = _one_class(folder, 1, spec.name)
        else:
            r.samples = _labelled(folder, tree.labels, spec.name)
            if spec.reals:
                r.samples = [s for s in r.samples if s.label == 1]
        if spec.reals:
            candidates = tree.pools.get(spec.reals, spec.reals)
            options = [candidates] if isinstance(candidates, str) else list(candidates)
            reals = next((base / c for c in options if (base / c).is_dir()), base / options[0])
            if not reals.is_dir():
                missing.append(f"{spec.name} (its reals, {reals})")
                continue
            r.reals_folder = reals
            pool = _labelled(reals, tree.labels, "")
            r.samples += pool if pool else _one_class(reals, 0, "")
        for cls, official, got in (("real", spec.n_real, r.n_real), ("fake", spec.n_fake, r.n_fake)):
            if official is not None and official != got:
                counts.append({"set": spec.name, "class": cls, "official": official, "found": got})
        if not r.n_fake or not r.n_real:
            raise DatasetError(
                f"--suite {suite.name}: set {spec.name} at {folder} has {r.n_real} real and {r.n_fake} fake image(s); "
                f"each set needs both (label folders {', '.join(tree.labels)}"
                f"{'; reals from ' + str(r.reals_folder) if r.reals_folder else ''})"
            )
        sets[spec.name] = r
    pool_paths = {p for v in tree.pools.values() for p in ([v] if isinstance(v, str) else v)}
    known = {s.path for s in tree.sets} | pool_paths
    known |= {s.reals for s in tree.sets if s.reals and s.reals not in tree.pools}
    prefixes = {str(Path(*Path(k).parts[: i + 1])) for k in known for i in range(len(Path(k).parts))}
    parents = {(base / s.path).parent for s in tree.sets if s.path not in ("", ".")}
    unexpected = sorted(
        str(d.relative_to(base))
        for parent in parents
        if parent.is_dir()
        for d in parent.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and str(d.relative_to(base)) not in prefixes
        and d.name.lower() not in ("train", "val", "test", "training", "validation")  # GenImage's train/ beside val/
    )
    return TreeCheck(suite, tree, root, prefix, sets, missing, unexpected, counts)
