"""Duplicates and leaks: byte-identical files (BLAKE2b of the bytes) within and across splits,
and across the PATHs checked together. The same content in test/ and train/ (or val/), or in two
PATHs, is a *leak*; copies carrying both labels are label conflicts."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Mapping, Optional, Sequence

from aigbench.audit.counts import NONE, split_order
from aigbench.audit.files import FileInfo
from aigbench.datasets.layouts import Sample

# Split pairs that share content: an error when test data was seen in training or selection.
LEAK_SEVERITY = {("test", "train"): "error", ("test", "val"): "error", ("train", "val"): "warning"}


def _shared(
    digest: str,
    members: Sequence[int],
    side: Sequence[str],
    severity: Mapping[tuple[str, str], str],
    paths: Sequence[str],
) -> list[dict[str, Any]]:
    """The leaks of one content whose copies are ``members``: one per pair of ``severity`` whose
    two sides (``side[i]`` of each copy) both hold a copy, with the copies on those sides (the
    first side's first) and how many lie on each. One rule for the splits of a dataset and for
    the PATHs checked together."""
    present = {side[i] for i in members}
    out = []
    for pair, level in severity.items():
        if set(pair) <= present:
            out.append(
                {
                    "severity": level,
                    "hash": digest,
                    "paths": [paths[i] for s in pair for i in members if side[i] == s],
                    "counts": [sum(side[i] == pair[0] for i in members), sum(side[i] == pair[1] for i in members)],
                    "between": list(pair),
                }
            )
    return out


def find_duplicates(
    samples: Sequence[Sample], infos: Sequence[FileInfo], owner: Sequence[int], given: Sequence[str]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Groups of byte-identical files; the leaks among them: content in two splits of one PATH
    (:data:`LEAK_SEVERITY`), or in two of the ``given`` PATHs (``owner[i]`` is the PATH of sample
    ``i``), always an error; the groups whose copies carry both labels."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, info in enumerate(infos):
        if info.digest and info.problem != "empty":
            by_hash[info.digest].append(i)
    paths = [s.path for s in samples]
    splits = [s.split or NONE for s in samples]
    sources = [given[k] for k in owner]
    # a later PATH against an earlier one, as ("test", "train"): the copies in the later one are counted
    between_paths = {(b, a): "error" for j, a in enumerate(given) for b in given[j + 1 :]}
    groups, leaks, conflicts = [], [], []
    for digest, idx in by_hash.items():
        if len(idx) < 2:
            continue
        labels = sorted({samples[i].label for i in idx})
        group = {
            "hash": digest,
            "paths": [paths[i] for i in idx],
            "splits": [splits[i] for i in idx],
            "labels": [samples[i].label for i in idx],
        }
        if len(given) > 1:
            group["sources"] = [sources[i] for i in idx]
        groups.append(group)
        for k in sorted({owner[i] for i in idx}):
            for leak in _shared(digest, [i for i in idx if owner[i] == k], splits, LEAK_SEVERITY, paths):
                leaks.append({"kind": "split", "splits": leak.pop("between"), **leak})
        for leak in _shared(digest, idx, sources, between_paths, paths):
            leaks.append({"kind": "path", "sources": leak.pop("between"), **leak})
        if len(labels) > 1:
            conflicts.append(
                {"hash": digest, "paths": [paths[i] for i in idx], "labels": [samples[i].label for i in idx]}
            )
    groups.sort(key=lambda g: g["paths"][0])
    leaks.sort(key=lambda g: (g["kind"] == "split", g.get("splits", g.get("sources")), g["paths"][0]))
    conflicts.sort(key=lambda g: g["paths"][0])
    return groups, leaks, conflicts


def _place(split: str, source: Optional[str]) -> str:
    """Where a copy lies, in words: its split, or with several PATHs the PATH (and its split)."""
    if source is None:
        return split
    return source if split == NONE else f"{source} ({split}/)"


def within_split(groups: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per split (per PATH and split when several PATHs were given): the contents stored more
    than once in it (``groups``), the copies beyond the first (``redundant_files``) and each such
    content with its copies there (``contents``)."""
    out: dict[str, dict[str, Any]] = {}
    for g in groups:
        places = [_place(sp, src) for sp, src in zip(g["splits"], g.get("sources", [None] * len(g["splits"])))]
        for place, n in Counter(places).items():
            if n > 1:
                entry = out.setdefault(place, {"groups": 0, "redundant_files": 0, "contents": []})
                entry["groups"] += 1
                entry["redundant_files"] += n - 1
                entry["contents"].append(
                    {"hash": g["hash"], "paths": [p for p, q in zip(g["paths"], places) if q == place]}
                )
    return {k: out[k] for k in sorted(out, key=split_order)}
