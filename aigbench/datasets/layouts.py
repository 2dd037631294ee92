"""Dataset layouts used in the field, each a registered class in ``DATASETS``.

A layout turns a path into a list of :class:`Sample` ``(path, label, generator, category, split)``.
Labels come from an explicit folder-name map (real = 0, fake = 1), never from
alphabetical order.

* ``CIFAKE``      ``root/[source/]{REAL,FAKE}/*`` (also ``real/fake``: Community Forensics folders
  such as ``ImageNet/real`` and ``dalle/fake``)
* ``ForenSynths`` ``root/[split/][generator/][category/]{0_real,1_fake}/*`` (CNNSpot, NPR, UnivFD,
  AIGCDetectBenchmark, Chameleon, WildRF; UnivFD's ``diffusion_datasets`` real pools
  ``imagenet/0_real`` beside fake-only ``guided/1_fake``)
* ``GenImage``    ``root/<generator>/<subfolder>/{train,val}/{ai,nature}/*``
* ``JsonList``    a ``.json`` file ``[[path, label], ...]`` or ``[[path, label, generator], ...]``;
  label 0/1 or "real"/"fake"; relative paths are relative to the JSON file.

**Splits.** A folder named ``train``, ``val`` or ``test`` at any depth marks the split of
every image below it (``root/train/progan/...`` and ``root/sdv4/sub/val/ai/...`` alike).
``load_samples(path, "train")`` keeps that split only; when the tree has no split folders
the whole tree is the requested split; when it has splits but not the requested one, it is
an error that lists those it has (except that a test request falls back to ``val``, the
split that GenImage and ForenSynths' validation sets are evaluated on, with a note).
Without a requested split, a tree with several splits is an error that lists them.

**Generator and category.** The generator is the first folder between the root and the
label folder that is not a split folder (``progan`` in ``train/progan/car/1_fake``). In the
ForenSynths layout, the folders between the generator and the label folder are the
object ``category`` (``car``); GenImage's ``<subfolder>`` is not a category.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple, Optional, Union

from aigbench.errors import AigbenchError
from aigbench.registry import DATASETS

log = logging.getLogger("aigbench")

# Formats OpenCV decodes, plus those decoded through Pillow (GIF).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif", ".ppm", ".pgm")
SPLITS = ("train", "val", "test")
# A requested split that the tree does not have, and the one used instead (with a note).
SPLIT_FALLBACK = {"test": "val"}
DEMO_ALIAS = "aigbench:demo"
DEMO_ROOT = Path(__file__).parent / "demo"


class Sample(NamedTuple):
    path: str
    label: int
    generator: str
    category: str = ""
    split: str = ""


class DatasetError(AigbenchError, ValueError):
    """A dataset path, file or layout is unusable."""


def resolve_path(path: Union[str, os.PathLike]) -> Path:
    """Expand ``aigbench:demo``; a missing path is an error naming it."""
    text = str(path)
    p = DEMO_ROOT if text == DEMO_ALIAS else Path(text).expanduser()
    if not p.exists():
        raise DatasetError(
            f"dataset path {text!r} does not exist; fix --data_path / --val_data_path / --test_data_path "
            "or test_datasets.json"
        )
    return p


def _split_of(parts: tuple[str, ...]) -> str:
    found = [p.lower() for p in parts if p.lower() in SPLITS]
    return found[-1] if found else ""


class FolderLayout:
    """Images below folders whose names give the label; see the module docstring."""

    label_dirs: dict[str, int] = {}
    category_levels: bool = False  # folders between generator and label folder are a category

    @classmethod
    def detect(cls, root: Path) -> bool:
        if not root.is_dir():
            return False
        names = {n.lower() for n in cls.label_dirs}
        for dirpath, dirnames, _ in os.walk(root):
            if any(d.lower() in names for d in dirnames):
                return True
            if len(Path(dirpath).relative_to(root).parts) >= 5:
                dirnames[:] = []
        return False

    @classmethod
    def samples(cls, root: Path) -> list[Sample]:
        lookup = {k.lower(): v for k, v in cls.label_dirs.items()}
        out: list[Sample] = []
        ignored: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            rel = Path(dirpath).relative_to(root).parts
            label_pos = [i for i, part in enumerate(rel) if part.lower() in lookup]
            if not label_pos:
                continue
            i = label_pos[-1]
            label = lookup[rel[i].lower()]
            split = _split_of(rel[:i])
            named = [p for p in rel[:i] if p.lower() not in SPLITS]
            generator = named[0] if named else ""
            category = "/".join(named[1:]) if cls.category_levels else ""
            for f in sorted(filenames):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    out.append(Sample(os.path.join(dirpath, f), label, generator, category, split))
                elif not f.startswith("."):
                    ignored.append(os.path.join(dirpath, f))
        if ignored:
            log.warning(
                "%s: ignored %d file(s) that are not images by their extension, e.g. %s (images: %s)",
                root,
                len(ignored),
                ", ".join(ignored[:3]),
                " ".join(IMAGE_EXTENSIONS),
            )
        return out


@DATASETS.register_module()
class CIFAKE(FolderLayout):
    """CIFAKE (Bird & Lotfi 2024) and Community Forensics folders: root/[source/]{REAL,FAKE}/*."""

    label_dirs = {"REAL": 0, "FAKE": 1}


@DATASETS.register_module()
class ForenSynths(FolderLayout):
    """ForenSynths (Wang et al. CVPR 2020): root/[split/][generator/][category/]{0_real,1_fake}/*."""

    label_dirs = {"0_real": 0, "1_fake": 1}
    category_levels = True


@DATASETS.register_module()
class GenImage(FolderLayout):
    """GenImage (Zhu et al. NeurIPS 2023): root/<generator>/<subfolder>/{train,val}/{ai,nature}/*."""

    label_dirs = {"nature": 0, "ai": 1}


_LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}


@DATASETS.register_module()
class JsonList:
    """A JSON file [[path, label(, generator)], ...]; label 0/1 or real/fake."""

    lists_paths = True  # paths come from a file: each must be checked to exist

    @classmethod
    def detect(cls, root: Path) -> bool:
        return root.is_file() and root.suffix.lower() == ".json"

    @classmethod
    def samples(cls, root: Path) -> list[Sample]:
        try:
            entries = json.loads(root.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{root}: not valid JSON ({e})") from None
        if not isinstance(entries, list):
            raise DatasetError(f"{root}: expected a JSON list [[path, label], ...], got {type(entries).__name__}")
        out = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
                raise DatasetError(
                    f"{root}: entry {i} must be [path, label] or [path, label, generator], got {entry!r}"
                )
            label = _LABEL_WORDS.get(str(entry[1]).strip().lower())
            if label is None:
                raise DatasetError(f'{root}: entry {i} has label {entry[1]!r}; use 0/1 or "real"/"fake"')
            path = Path(str(entry[0])).expanduser()
            if not path.is_absolute():
                path = root.parent / path
            out.append(Sample(str(path), label, str(entry[2]) if len(entry) == 3 else ""))
        return out


def layout_class(name: str) -> type:
    """The registered layout ``name``; an unknown name is a :class:`DatasetError` with suggestions."""
    try:
        return DATASETS.get(name)
    except KeyError as e:
        raise DatasetError(f"--layout: {e.args[0]} (or use --layout auto)") from None


def detect_layout(root: Path) -> str:
    """Name of the first layout that recognises ``root``."""
    for name in ("JsonList", "ForenSynths", "GenImage", "CIFAKE"):
        if DATASETS.get(name).detect(root):
            return name
    raise DatasetError(
        f"{root}: no known layout found. Expected {{REAL,FAKE}}/ (CIFAKE), [generator/]{{0_real,1_fake}}/ "
        "(ForenSynths), {nature,ai}/ (GenImage) or a .json list [[path, label], ...]"
    )


def select_split(samples: list[Sample], split: Optional[str], where: str) -> list[Sample]:
    """Keep the samples of ``split`` (see the module docstring for the rules)."""
    present = sorted({s.split for s in samples if s.split})
    counts = Counter(s.split or "(none)" for s in samples)
    listing = ", ".join(f"{k}/ ({v} images)" for k, v in sorted(counts.items()))
    if not present:
        return samples
    if split is None:
        if len(present) > 1:
            raise DatasetError(
                f"{where} holds several splits: {listing}. Point the flag at one of them, "
                "e.g. <path>/train, or use a flag that picks a split"
            )
        return samples
    if split not in present:
        fallback = SPLIT_FALLBACK.get(split)
        if fallback in present:
            log.info(
                "%s has no %s/ split; using its %s/ split (%d images) as %s data",
                where,
                split,
                fallback,
                counts[fallback],
                split,
            )
            split = fallback
        else:
            raise DatasetError(f"{where} has no {split}/ split; it holds {listing}. Point the flag at the right folder")
    return [s for s in samples if s.split == split]


def check_labels(samples: list[Sample], where: str) -> None:
    """The same file listed with two different labels is an error that names it."""
    by_path: dict[str, set[int]] = defaultdict(set)
    for s in samples:
        by_path[os.path.normpath(s.path)].add(s.label)
    clash = [p for p, labels in by_path.items() if len(labels) > 1]
    if clash:
        raise DatasetError(
            f"{where}: {len(clash)} file(s) are listed both as real and as fake, e.g. {clash[0]}; "
            "fix their labels so that each file has one"
        )


def check_paths_exist(samples: list[Sample], where: str) -> None:
    """Every listed path must exist; the error names the first few missing ones."""
    missing = [s.path for s in samples if not os.path.isfile(s.path)]
    if missing:
        shown = "\n  ".join(missing[:5])
        raise DatasetError(
            f"{where}: {len(missing)} of {len(samples)} listed image(s) do not exist, e.g.\n  {shown}\n"
            "fix the paths (relative paths are relative to the list file)"
        )


def load_samples(path: Union[str, os.PathLike], split: Optional[str] = None, layout: str = "auto") -> list[Sample]:
    """Resolve ``path``, detect or use ``layout``, list its samples and keep ``split``.

    Raises :class:`DatasetError` before any work starts for: a missing path, an unknown
    layout, listed files that do not exist, contradictory labels, several splits when none
    was asked for, and an empty result.
    """
    root = resolve_path(path)
    name = detect_layout(root) if layout == "auto" else layout
    cls = layout_class(name)
    where = f"{path} ({name} layout)"
    samples = cls.samples(root)
    if getattr(cls, "lists_paths", False):
        check_paths_exist(samples, where)
    samples = select_split(samples, split, where)
    if not samples:
        raise DatasetError(f"{where}: found no images ({', '.join(IMAGE_EXTENSIONS)})")
    check_labels(samples, where)
    return samples
