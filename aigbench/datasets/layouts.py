"""Dataset layouts used in the field, each a registered class in ``DATASETS``.

A layout turns a path into a list of :class:`Sample` ``(path, label, generator)``.
Labels come from an explicit folder-name map (real = 0, fake = 1), never from
alphabetical order.

* ``CIFAKE``      ``root/{REAL,FAKE}/*`` (also ``real/fake``)
* ``ForenSynths`` ``root/[generator/][class/]{0_real,1_fake}/*`` (CNNSpot, NPR, UnivFD test sets)
* ``GenImage``    ``root/[generator/][split/]{nature,ai}/*``
* ``JsonList``    a ``.json`` file ``[[path, label], ...]`` or ``[[path, label, generator], ...]``;
  label 0/1 or "real"/"fake"; relative paths are relative to the JSON file.

In the folder layouts the generator is the first folder between the root and the label
folder (``stylegan`` in ``root/stylegan/bedroom/1_fake``), or empty when there is none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple, Optional, Union

from aigbench.errors import AigbenchError
from aigbench.registry import DATASETS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEMO_ALIAS = "aigbench:demo"
DEMO_ROOT = Path(__file__).parent / "demo"


class Sample(NamedTuple):
    path: str
    label: int
    generator: str


class DatasetError(AigbenchError, ValueError):
    """A dataset path, file or layout is unusable."""


def resolve_path(path: Union[str, os.PathLike], split: Optional[str] = None) -> Path:
    """Expand ``aigbench:demo`` and step into ``path/split`` when that folder exists."""
    text = str(path)
    p = DEMO_ROOT if text == DEMO_ALIAS else Path(text).expanduser()
    if not p.exists():
        raise DatasetError(
            f"dataset path {text!r} does not exist; fix --data_path / --test_data_path or test_datasets.json"
        )
    if split and (p / split).is_dir():
        p = p / split
    return p


class FolderLayout:
    """Images below folders whose names give the label; generator = first folder above it."""

    label_dirs: dict[str, int] = {}

    @classmethod
    def detect(cls, root: Path) -> bool:
        if not root.is_dir():
            return False
        names = {n.lower() for n in cls.label_dirs}
        for dirpath, dirnames, _ in os.walk(root):
            if any(d.lower() in names for d in dirnames):
                return True
            if len(Path(dirpath).relative_to(root).parts) >= 3:
                dirnames[:] = []
        return False

    @classmethod
    def samples(cls, root: Path) -> list[Sample]:
        lookup = {k.lower(): v for k, v in cls.label_dirs.items()}
        out: list[Sample] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            rel = Path(dirpath).relative_to(root).parts
            label_pos = [i for i, part in enumerate(rel) if part.lower() in lookup]
            if not label_pos:
                continue
            i = label_pos[-1]
            label = lookup[rel[i].lower()]
            generator = rel[0] if i > 0 else ""
            for f in sorted(filenames):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    out.append(Sample(os.path.join(dirpath, f), label, generator))
        return out


@DATASETS.register_module()
class CIFAKE(FolderLayout):
    """CIFAKE (Bird & Lotfi 2024): root/{REAL,FAKE}/*."""

    label_dirs = {"REAL": 0, "FAKE": 1}


@DATASETS.register_module()
class ForenSynths(FolderLayout):
    """ForenSynths (Wang et al. CVPR 2020): root/[generator/][class/]{0_real,1_fake}/*."""

    label_dirs = {"0_real": 0, "1_fake": 1}


@DATASETS.register_module()
class GenImage(FolderLayout):
    """GenImage (Zhu et al. NeurIPS 2023): root/[generator/][split/]{nature,ai}/*."""

    label_dirs = {"nature": 0, "ai": 1}


_LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}


@DATASETS.register_module()
class JsonList:
    """A JSON file [[path, label(, generator)], ...]; label 0/1 or real/fake."""

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


def detect_layout(root: Path) -> str:
    """Name of the first layout that recognises ``root``."""
    for name in ("JsonList", "ForenSynths", "GenImage", "CIFAKE"):
        if DATASETS.get(name).detect(root):
            return name
    raise DatasetError(
        f"{root}: no known layout found. Expected {{REAL,FAKE}}/ (CIFAKE), [generator/]{{0_real,1_fake}}/ "
        "(ForenSynths), {nature,ai}/ (GenImage) or a .json list [[path, label], ...]"
    )


def load_samples(path: Union[str, os.PathLike], split: Optional[str] = None, layout: str = "auto") -> list[Sample]:
    """Resolve ``path`` (and ``split``), detect or use ``layout``, and list its samples.

    Raises :class:`DatasetError` for a missing path or an empty dataset, before any work starts.
    """
    root = resolve_path(path, split)
    name = detect_layout(root) if layout == "auto" else layout
    samples = DATASETS.get(name).samples(root)
    if not samples:
        raise DatasetError(f"{root}: the {name} layout found no images ({', '.join(IMAGE_EXTENSIONS)})")
    return samples
