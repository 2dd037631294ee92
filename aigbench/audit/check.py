"""``bench data check``: what a dataset holds, and what is wrong with it, before training.

:func:`check_dataset` lists every sample of every split of one dataset, or of several checked
together (``bench data check TRAIN TEST``), with each dataset's layout, reads each file once
(content hash and image header from the same bytes) and returns a plain dict, the report;
:func:`format_report` renders it for the terminal and :func:`write_report` writes it as JSON.
The report holds:

* counts per split, class (real = 0, fake = 1), generator and category (and per PATH);
* problem files: ``missing``, ``unreadable``, ``empty``, ``not an image``, ``truncated``,
  ``undecodable``. Only headers are parsed where the format allows a cheap integrity check
  (:mod:`aigbench.imageops.integrity`: a JPEG reaches its EOI marker, a PNG its IEND chunk, whose
  chunk CRCs are verified, a GIF its trailer, a WebP has all the bytes its RIFF header
  announces); a file that fails the check, and a file in any other format, is decoded fully;
* exact duplicates (BLAKE2b of the bytes) within and across splits, each split's own listed;
  identical content in test/ and train/ (or val/), or in two of the PATHs checked together,
  is a *leak*, an error (exit status 1);
* an error for a PATH (or a split of it) whose readable images are of one class only;
* per class, histograms of file format, JPEG quality (estimated from the quantisation tables,
  :func:`estimate_jpeg_quality`), width x height, colour mode and file size;
* a shortcut audit: the cross-validated AUROC of a classifier that sees metadata only
  (format, JPEG quality, width, height, aspect ratio, file size, mode), after Grommelt et al.
  2024, "Fake or JPEG? Revealing Common Biases in Generated Image Detection Datasets", and
  advice ranked by what each group of features measured.

Each concern has its module in :mod:`aigbench.audit`: files, counts, duplicates and leaks,
the shortcut audit, the report. Nothing here imports torch, and nothing is written except by :func:`write_report`.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from aigbench import __version__
from aigbench.audit.counts import CLASS_NAMES, NONE, class_counts, counts_of, metadata_of, split_order
from aigbench.audit.duplicates import find_duplicates, within_split
from aigbench.audit.files import PROBLEM_KINDS, FileInfo, extension_mismatches, inspect_all
from aigbench.audit.shortcuts import CV_SEED, shortcut_audit
from aigbench.datasets.layouts import DatasetError, Sample, detect_layout, layout_class, resolve_path, split_layout


def _missing_path_error(path: str) -> DatasetError:
    return DatasetError(
        f"PATH {path!r} does not exist; give the dataset's root folder, a .json or .csv list, parquet data "
        "or aigbench:demo"
    )


def preload_audit() -> None:
    """Import scikit-learn's pieces that the shortcut audit uses (seconds of imports), so that a
    thread can do it while the files are read; a failure is left to the audit to report."""
    try:
        import sklearn.ensemble  # noqa: F401
        import sklearn.metrics  # noqa: F401
        import sklearn.model_selection  # noqa: F401
    except ImportError:
        pass


def load_path(path: str, layout: str, labels: Optional[dict[str, int]]) -> tuple[list[Sample], list[str], Path]:
    """The samples of one PATH (``a,b`` or ``path@Layout`` sources, as --data_path), the layouts
    used and the root of its last source."""
    samples: list[Sample] = []
    names = []
    root = Path(path)
    for source in (p.strip() for p in path.split(",") if p.strip()):
        src, src_layout = split_layout(source, layout)
        try:
            root = resolve_path(src)
        except DatasetError:
            raise _missing_path_error(src) from None
        name = detect_layout(root, labels) if src_layout == "auto" else src_layout
        part = list(layout_class(name).samples(root, labels))
        if not part:
            raise DatasetError(f"{src} ({name} layout): found no images; check PATH and --layout")
        samples += part
        names.append(name)
    return samples, names, root


def _common_root(roots: Sequence[Path]) -> str:
    """The folder that holds every root (shorter paths in the terminal), or "" when none does."""
    if len(roots) == 1:
        return str(roots[0])
    try:
        return os.path.commonpath([os.path.abspath(r if r.is_dir() else r.parent) for r in roots])
    except ValueError:
        return ""


def check_dataset(
    path: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    layout: str = "auto",
    label_map: Optional[Mapping[str, int]] = None,
    progress: bool = False,
    workers: Optional[int] = None,
    seed: int = CV_SEED,
) -> dict[str, Any]:
    """Check every sample of every split of the dataset at ``path``, or of several datasets
    checked together (a list of PATHs, e.g. the training and the test data); returns the report
    (a JSON-ready dict, described in docs/data_check.md). ``label_map`` is ``--label_map``'s
    ``{name: 0 or 1}`` (:func:`~aigbench.datasets.layouts.parse_label_map`). ``exit_status`` is 1
    when it holds an error, else 0. Errors: test content also in train/ or val/ of one PATH, the
    same content in two PATHs, a PATH (or a split of it) whose readable images are of one class.

    Raises :class:`DatasetError` when a path does not exist, no layout fits it, it holds no
    images, a PATH is given twice, or two PATHs list the same file.
    """
    start = time.perf_counter()
    labels = dict(label_map) if label_map else None
    given = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if not given:
        raise DatasetError("no PATH given; give a dataset root, a .json or .csv list, parquet data or aigbench:demo")
    twice = [p for p, n in Counter(given).items() if n > 1]
    if twice:
        raise DatasetError(f"PATH {twice[0]!r} is given twice; give each dataset once")
    samples: list[Sample] = []
    owner: list[int] = []
    names: list[str] = []
    roots: list[Path] = []
    first_of: dict[str, int] = {}
    for k, one in enumerate(given):
        part, part_names, root = load_path(one, layout, labels)
        for s in part if len(given) > 1 else ():
            real = os.path.realpath(s.path)
            if first_of.setdefault(real, k) != k:
                raise DatasetError(
                    f"PATH {given[first_of[real]]!r} and PATH {one!r} overlap: both list {s.path}; give datasets "
                    "that do not contain each other (e.g. data/train data/test, not data data/test)"
                )
        samples += part
        owner += [k] * len(part)
        names += part_names
        roots.append(root)
    name = "+".join(dict.fromkeys(names))
    preload = threading.Thread(target=preload_audit, daemon=True)
    preload.start()  # the shortcut audit's libraries load while the files are read
    infos = inspect_all([s.path for s in samples], progress, workers)
    preload.join()

    problems = [
        {"path": s.path, "problem": i.problem, "detail": i.detail, "split": s.split or NONE, "label": s.label}
        for s, i in zip(samples, infos)
        if i.problem
    ]
    several = len(given) > 1
    if several:
        for p, k in zip(problems, (k for k, i in zip(owner, infos) if i.problem)):
            p["source"] = given[k]
    groups, leaks, conflicts = find_duplicates(samples, infos, owner, given)
    good = [k for k, i in enumerate(infos) if not i.problem]
    good_infos = [infos[k] for k in good]
    good_labels = [samples[k].label for k in good]
    metadata = {
        CLASS_NAMES[c]: metadata_of([i for i, y in zip(good_infos, good_labels) if y == c])
        for c in (0, 1)
        if c in good_labels
    }
    audit = shortcut_audit(
        good_infos,
        good_labels,
        [samples[k].split or NONE for k in good],
        seed,
        [given[owner[k]] for k in good] if several else None,
    )

    within = within_split(groups)
    kinds = Counter(p["problem"] for p in problems)
    errors, warns = _messages(leaks, within, conflicts, problems, several)
    errors = _one_class_errors(samples, infos, owner, given) + errors
    if audit["warning"]:
        warns.append(audit["warning"])
    counts = counts_of(samples)
    if several:
        counts["by_path"] = {
            p: class_counts(s.label for s, k in zip(samples, owner) if k == j) for j, p in enumerate(given)
        }
    return {
        "tool": "aigbench data check",
        "aigbench_version": __version__,
        "path": " ".join(given),
        "paths": given,
        "root": _common_root(roots),
        "layout": name,
        "seconds": round(time.perf_counter() - start, 2),
        "n_files": len(samples),
        "counts": counts,
        "problems": problems,
        "problem_counts": {k: kinds[k] for k in PROBLEM_KINDS if kinds[k]},
        "extension_mismatches": extension_mismatches(samples, infos),
        "duplicates": {
            "groups": groups,
            "n_groups": len(groups),
            "n_redundant_files": sum(len(g["paths"]) - 1 for g in groups),
            "within_split": within,
        },
        "leaks": leaks,
        "label_conflicts": conflicts,
        "metadata": metadata,
        "shortcut_auroc": audit["auroc"],
        "shortcut": audit,
        "errors": errors,
        "warnings": warns,
        "exit_status": 1 if errors else 0,
    }


def _messages(
    leaks: Sequence[Mapping[str, Any]],
    within: Mapping[str, Mapping[str, Any]],
    conflicts: Sequence[Mapping[str, Any]],
    problems: Sequence[Mapping[str, Any]],
    several: bool,
) -> tuple[list[str], list[str]]:
    """The report's errors and warnings about content, one sentence each (the sections list the
    paths). ``several``: several PATHs were checked together."""
    errors: list[str] = []
    warns: list[str] = []
    pairs: dict[tuple[str, str, str], list[Any]] = {}
    for g in leaks:  # sorted: PATH leaks first, then test/train, test/val, train/val
        a, b = g["splits"] if g["kind"] == "split" else g["sources"]
        pairs.setdefault((g["kind"], a, b), [g["severity"], 0])[1] += g["counts"][0]
    for (kind, a, b), (level, n) in pairs.items():
        if kind == "path":
            errors.append(
                f"leak: {n} file(s) in PATH {a} are byte-identical to file(s) in PATH {b}; scores on them measure "
                "memory, not detection: remove them from one side"
            )
            continue
        text = f"leak: {n} file(s) in {a}/ are byte-identical to file(s) in {b}/; "
        if level == "error":
            errors.append(text + "test scores on them measure memory, not detection: remove them from one side")
        else:
            warns.append(text + "validation scores on them are optimistic: remove them from one side")
    for place, v in within.items():
        warns.append(
            f"{v['redundant_files']} duplicate file(s) within {place if several else place + '/'} ({v['groups']} "
            "content(s) stored more than once, listed under DUPLICATES and in --json duplicates.within_split): they "
            "weigh double in training and in metrics; keep one copy of each"
        )
    if conflicts:
        warns.append(f"{len(conflicts)} content(s) are labelled both real and fake: fix their labels")
    if problems:
        kinds = Counter(p["problem"] for p in problems)
        listing = ", ".join(f"{kinds[k]} {k}" for k in PROBLEM_KINDS if kinds[k])
        warns.append(
            f"{len(problems)} problem file(s) ({listing}): training and testing skip or refuse them; fix or remove them"
        )
    return errors, warns


def _one_class_errors(
    samples: Sequence[Sample], infos: Sequence[FileInfo], owner: Sequence[int], given: Sequence[str]
) -> list[str]:
    """An error for each PATH, else for each split of a PATH with several, whose readable images
    are of one class only (or none): no AUROC, AP or balanced accuracy can be computed on it, and
    a detector trained on it learns nothing of the other class."""
    errors = []
    for k, name in enumerate(given):
        members = [i for i in range(len(samples)) if owner[i] == k]
        text = _one_class(f"PATH {name}", [samples[i] for i in members], [infos[i] for i in members])
        if text:
            errors.append(text)
            continue
        splits = sorted({samples[i].split or NONE for i in members}, key=split_order)
        for sp in splits if len(splits) > 1 else ():
            idx = [i for i in members if (samples[i].split or NONE) == sp]
            text = _one_class(f"PATH {name}, split {sp}/", [samples[i] for i in idx], [infos[i] for i in idx])
            if text:
                errors.append(text)
    return errors


def _one_class(where: str, samples: Sequence[Sample], infos: Sequence[FileInfo]) -> Optional[str]:
    readable = Counter(s.label for s, i in zip(samples, infos) if not i.problem)
    if not readable:
        return f"{where} holds no readable image ({len(samples)} problem file(s)): fix or replace its files"
    if readable[0] and readable[1]:
        return None
    missing = 0 if readable[1] else 1
    have, gone = CLASS_NAMES[1 - missing], CLASS_NAMES[missing]
    listed = sum(s.label == missing for s in samples)
    broken = f" (its {listed} {gone} file(s) are all problem files)" if listed else ""
    return (
        f"one class only: {where} holds {readable[1 - missing]} readable {have} image(s) and no {gone} image "
        f"(label {missing}){broken}; AUROC, AP and accuracy need both classes: add {gone} images, or check that "
        "the folder names or --label_map give your labels (real:0, fake:1) and that --layout fits; a set of one "
        "class that pairs with another is one PATH, joined by a comma (fakes/@FakesOnly,reals/@RealsOnly)"
    )
