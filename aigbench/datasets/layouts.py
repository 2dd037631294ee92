"""Dataset layouts used in the field, each a registered class in ``LAYOUTS``.

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
* ``CsvList``     a ``.csv`` (or ``.tsv``) file with a header: ``path,label`` plus optional
  ``generator``, ``split``, ``category`` (the SPAI and B-Free lists; see ``CSV_COLUMNS`` for the
  column names accepted).

Add your own: a class with ``detect(root, labels)`` and ``samples(root, labels)`` (and a
``priority``: lower is tried first by ``--layout auto``), registered with
``@LAYOUTS.register_module()``. ``--label_map real:0,fake:1`` overrides the label names.

**Splits.** A split is a folder at the level that the layout declares, never any folder that
happens to be named like one (ForenSynths has an object class named ``train`` in its train, val
and ProGAN test sets):

* ``split_position = "top"`` (ForenSynths, CIFAKE, the one-class folders): the split folders are
  the children of one folder, ``ROOT/{train,val,test}``. A folder's children are split folders
  when they name two or more different splits, or, for the children of the path itself, when
  at least half of them name a split (``ROOT/{test}`` downloaded alone). A lone ``train``
  among other folders (``test/progan/{airplane,...,train}``) is a class, not a split.
* ``split_position = "label_parent"`` (GenImage): the folder just above the label folder,
  ``<gen>/<sub>/{train,val}/{ai,nature}``.

A path that *is* a split folder (``--data_path ROOT/train``, ``--val_data_path ROOT/val``,
``--test_data_path ROOT/test``), or that lies inside one (``ROOT/test/progan``; the path and
its three nearest parents are looked at, and a parent counts when its own parent's folders are
split folders: ``~/test/mydata`` is not in a split), reads the whole split, with every class.
``load_samples(path, "train")`` keeps that split only; when the tree has no split folders
the whole tree is the requested split; when it has splits but not the requested one, it is
an error that lists those it has (except that a test request falls back to ``val``, the
split that GenImage and ForenSynths' validation sets are evaluated on, with a note).
Without a requested split, a tree with several splits is an error that lists them; a path inside
a ``val``/``test`` split has no ``train`` split, so training on it is an error.

**Generator and category.** The generator is the first folder between the root and the
label folder that is not a split folder (``progan`` in ``train/progan/car/1_fake``). In the
ForenSynths layout, the folders between the generator and the label folder are the
object ``category`` (``car``); GenImage's ``<subfolder>`` is not a category.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Sequence, Union

from aigbench.errors import AigbenchError
from aigbench.registry import LAYOUTS

log = logging.getLogger("aigbench")

# Formats OpenCV decodes, plus those decoded through Pillow (GIF).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif", ".ppm", ".pgm")
SPLITS = ("train", "val", "test")
# Folder, column and shard names of splits, as the benchmarks spell them.
SPLIT_WORDS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# A row of a table source (``datasets/sources.py``): ``<file.parquet|.arrow>#<row>``.
ROW_PATH = re.compile(r"^(?P<file>.+\.(?:parquet|arrow|tar))#(?P<row>\d+)$", re.IGNORECASE)
# A requested split that the tree does not have, and the one used instead (with a note).
SPLIT_FALLBACK = {"test": "val"}
# --max_skip_ratio: the largest fraction of undecodable images a dataset may have before a run stops.
DEFAULT_MAX_SKIP_RATIO = 0.05
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


def _split_word(name: str) -> str:
    return SPLIT_WORDS.get(name.lower(), "")


def context_split(root: Path) -> tuple[str, tuple[str, ...]]:
    """The split that ``root`` lies in: its own name or that of one of its three nearest parents
    (``ROOT/test/progan`` is in ``test``), and the folders between that split folder and ``root``
    (``("progan",)``); ``("", ())`` when none."""
    p = Path(os.path.abspath(root))
    for depth, q in enumerate([p, *list(p.parents)[:3]]):
        if _split_word(q.name) and _is_split_folder(q):
            return _split_word(q.name), p.parts[len(p.parts) - depth :]
    return "", ()


def _is_split_folder(folder: Path) -> bool:
    """Whether ``folder`` (named like a split) is a split folder of its parent's children, by
    the rule of :func:`_children_are_splits` (``~/test/mydata`` is not: ``~`` holds other folders)."""
    try:
        siblings = [d.name for d in folder.parent.iterdir() if d.is_dir()]
    except OSError:
        return False
    return _children_are_splits(siblings, at_root=True, inherited=False)


def _children_are_splits(names: Sequence[str], at_root: bool, inherited: bool) -> bool:
    """Whether folders named ``names`` (the children of one folder) are split folders: two or
    more different split names; or, among the children of the path itself when it is not inside
    a split, split names for at least half of them (``ROOT/{train,val,test}``, ``ROOT/{test}``,
    but not the class ``train`` among ForenSynths' 20 classes)."""
    words = [_split_word(n) for n in names if not n.startswith(".")]
    found = {w for w in words if w}
    if len(found) >= 2:
        return True
    return bool(found) and at_root and not inherited and 2 * sum(map(bool, words)) >= len(words)


class SplitWalk(NamedTuple):
    dirpath: str
    rel: tuple[str, ...]
    filenames: list[str]
    split: str  # the split of the images in this folder ("" when none)
    split_index: int  # index in ``rel`` of the split folder; -1 when the split comes from the path itself
    prefix: tuple[str, ...] = ()  # folders between that split folder and the path (split_index -1)

    def named(self, end: int) -> list[str]:
        """The folders of ``rel[:end]`` that are not the split folder, after ``prefix``: the
        generator first, then the category (``test/progan/train/0_real``: progan, train)."""
        own = [p for j, p in enumerate(self.rel[:end]) if j != self.split_index]
        return [*self.prefix, *own] if self.split_index < 0 else own


def walk_splits(root: Path, position: str = "top", labels: Sequence[str] = ()) -> Iterator[SplitWalk]:
    """``os.walk`` of ``root`` (sorted, following links) with the split of each folder's images,
    found at the layout's level (``position``, see the module docstring). ``labels``: the layout's
    label folder names (lower case): nothing below a label folder is a split folder."""
    inherited, prefix = context_split(root)
    state: dict[str, tuple[str, int]] = {str(root): (inherited, -1)}
    labels = {n.lower() for n in labels}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).parts
        split, index = state.pop(dirpath, (inherited, -1))
        in_label = any(p.lower() in labels for p in rel)
        pos = [i for i, p in enumerate(rel) if p.lower() in labels] if position == "label_parent" else []
        if pos and pos[-1] >= 1 and _split_word(rel[pos[-1] - 1]):  # GenImage: <gen>/<sub>/{train,val}/ai
            split, index = _split_word(rel[pos[-1] - 1]), pos[-1] - 1
        elif index < 0 and not in_label and _children_are_splits(dirnames, not rel, bool(inherited)):
            for d in dirnames:
                state[os.path.join(dirpath, d)] = (_split_word(d), len(rel))
            yield SplitWalk(dirpath, rel, filenames, split, index, prefix)
            continue
        for d in dirnames:
            state[os.path.join(dirpath, d)] = (split, index)
        yield SplitWalk(dirpath, rel, filenames, split, index, prefix)


class FolderLayout:
    """Images below folders whose names give the label; see the module docstring."""

    label_dirs: dict[str, int] = {}
    category_levels: bool = False  # folders between generator and label folder are a category
    split_position: str = "top"  # where split folders sit: "top" (ROOT/{train,val,test}) or "label_parent"

    priority = 50  # detection order among registered layouts: lower is tried first

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        if not root.is_dir():
            return False
        names = {n.lower() for n in (labels or cls.label_dirs)}
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            if any(d.lower() in names for d in dirnames):
                return True
            if len(Path(dirpath).relative_to(root).parts) >= 5:
                dirnames[:] = []
        return False

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        lookup = {k.lower(): v for k, v in (labels or cls.label_dirs).items()}
        out: list[Sample] = []
        ignored: list[str] = []
        unlabelled: list[str] = []
        for walk in walk_splits(root, cls.split_position, tuple(lookup)):
            dirpath, rel, filenames, split = walk.dirpath, walk.rel, walk.filenames, walk.split
            label_pos = [i for i, part in enumerate(rel) if part.lower() in lookup]
            if not label_pos:
                unlabelled += [os.path.join(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_EXTENSIONS)]
                continue
            i = label_pos[-1]
            label = lookup[rel[i].lower()]
            named = walk.named(i)
            generator = named[0] if named else ""
            category = "/".join(named[1:]) if cls.category_levels else ""
            for f in sorted(filenames):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    out.append(Sample(os.path.join(dirpath, f), label, generator, category, split))
                elif not f.startswith("."):
                    ignored.append(os.path.join(dirpath, f))
        if unlabelled:
            log.warning(
                "%s: %d image(s) lie outside the %s label folders (%s) and are not used, e.g. %s; a misspelt "
                "folder? name it with --label_map",
                root,
                len(unlabelled),
                cls.__name__,
                "/".join(lookup),
                ", ".join(unlabelled[:3]),
            )
        if ignored:
            log.warning(
                "%s: ignored %d file(s) that are not images by their extension, e.g. %s (images: %s)",
                root,
                len(ignored),
                ", ".join(ignored[:3]),
                " ".join(IMAGE_EXTENSIONS),
            )
        return out


@LAYOUTS.register_module()
class CIFAKE(FolderLayout):
    """CIFAKE (Bird & Lotfi 2024) and Community Forensics folders: root/[source/]{REAL,FAKE}/*."""

    label_dirs = {"REAL": 0, "FAKE": 1}
    priority = 30


@LAYOUTS.register_module()
class ForenSynths(FolderLayout):
    """ForenSynths (Wang et al. CVPR 2020): root/[split/][generator/][category/]{0_real,1_fake}/*."""

    label_dirs = {"0_real": 0, "1_fake": 1}
    category_levels = True
    priority = 10


@LAYOUTS.register_module()
class GenImage(FolderLayout):
    """GenImage (Zhu et al. NeurIPS 2023): root/<generator>/<subfolder>/{train,val}/{ai,nature}/*."""

    label_dirs = {"nature": 0, "ai": 1}
    split_position = "label_parent"
    priority = 20


# DiffusionForensics' generator folders (DIRE README L32-55; NPR README L106-114; DIRE compute_dire.sh L7)
DIFFUSION_FORENSICS_GENERATORS = frozenset(
    {"adm", "ddpm", "iddpm", "ldm", "pndm", "sdv1", "sdv1_new", "sdv1_new1", "sdv1_new2", "sdv2", "vqdiffusion",
     "if", "dalle2", "midjourney"}
)  # fmt: skip


@LAYOUTS.register_module()
class DiffusionForensics(FolderLayout):
    """DiffusionForensics (DIRE, ICCV 2023) as shipped: ``images/{train,val,test}/<subset>/{real,
    adm, ddpm, ...}``: ``real/`` holds the subset's reals, each sibling folder a generator's fakes.
    Read as CIFAKE, ``real/`` would be the only label folder and every fake would be dropped.
    Generators are named ``<subset>/<generator>`` (``lsun_bedroom/adm``) and the reals form the
    real pools ``<subset>/real``: per-generator metrics score each generator's fakes against the
    pooled reals of every subset; ``bench eval --suite diffusionforensics`` pairs each generator
    with its own subset's reals, as the paper does."""

    priority = 25  # before CIFAKE, whose REAL/FAKE words would claim real/

    @classmethod
    def _subset(cls, names: Sequence[str]) -> bool:
        lower = {n.lower() for n in names}
        return "real" in lower and bool(lower & DIFFUSION_FORENSICS_GENERATORS) and not lower & {"fake", "1_fake"}

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        if labels or not root.is_dir():
            return False
        for dirpath, dirnames, _ in os.walk(root, followlinks=True):
            if cls._subset(dirnames):
                return True
            if len(Path(dirpath).relative_to(root).parts) >= 4:
                dirnames[:] = []
        return False

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        out: list[Sample] = []
        subsets: dict[str, str] = {}  # subset folder -> its split
        for walk in walk_splits(root):
            dirnames = sorted(d for d in os.listdir(walk.dirpath) if os.path.isdir(os.path.join(walk.dirpath, d)))
            if cls._subset(dirnames):
                subsets[walk.dirpath] = walk.split
        for folder, split in sorted(subsets.items()):
            subset = os.path.basename(folder)
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if not os.path.isdir(path):
                    continue
                real = name.lower() == "real"
                for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
                    dirnames.sort()
                    for f in sorted(filenames):
                        if f.lower().endswith(IMAGE_EXTENSIONS):
                            gen = f"{subset}/real" if real else f"{subset}/{name}"
                            out.append(Sample(os.path.join(dirpath, f), 0 if real else 1, gen, subset, split))
        return out


class OneClassFolders:
    """Base of the one-class layouts: every image below ``root`` has ``label``; the generator is
    the first folder below ``root`` (Synthbuster: ``root/<generator>/*.png``). Never detected
    automatically: name it per source, e.g. ``--data_path synthbuster@FakesOnly,raise@RealsOnly``."""

    label = 1
    priority = 100

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        return False

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        if not root.is_dir():
            raise DatasetError(f"{root}: the {cls.__name__} layout needs a folder of images")
        out = []
        for walk in walk_splits(root):
            named = walk.named(len(walk.rel))
            for f in sorted(walk.filenames):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    out.append(
                        Sample(os.path.join(walk.dirpath, f), cls.label, named[0] if named else "", "", walk.split)
                    )
        return out


@LAYOUTS.register_module()
class FakesOnly(OneClassFolders):
    """Every image is fake; generator = first folder (Synthbuster: root/<generator>/*.png)."""

    label = 1


@LAYOUTS.register_module()
class RealsOnly(OneClassFolders):
    """Every image is real (RAISE, COCO, ImageNet folders given as a source of reals)."""

    label = 0


_LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}
# Label columns of lists and tables, in the order they are looked for (CSV and parquet alike).
LABEL_COLUMNS = ("label", "labels", "is_fake", "fake", "target", "class")
FAKE_FLAG_COLUMNS = ("is_fake", "fake")  # True / False means fake / real


def find_column(columns: Sequence[str], names: Sequence[str]) -> Optional[str]:
    """The first of ``names`` among ``columns`` (case and surrounding spaces ignored), as spelt there."""
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def parse_label(value: object, labels: Optional[dict[str, int]], where: str, fake_flag: bool = False) -> int:
    """0/1 or real/fake (or the words of ``--label_map``) → 0/1; anything else names ``where``.
    ``fake_flag``: the column says whether the image is fake (``is_fake``), so True/False count."""
    if fake_flag and (isinstance(value, bool) or str(value).strip().lower() in ("true", "false")):
        return int(value is True or str(value).strip().lower() == "true")
    if isinstance(value, bool):
        raise DatasetError(
            f"{where} has the label {value!r} in a column that does not say what True means; "
            "name it is_fake, or map it with --label_map"
        )
    words = {**_LABEL_WORDS, **{k.lower(): v for k, v in (labels or {}).items()}}
    text = str(value).strip().lower()
    if text.endswith(".0") and text[:-2] in words:  # 1.0 from a float column
        text = text[:-2]
    if text not in words:
        raise DatasetError(
            f'{where} has label {value!r}; use 0/1 or "real"/"fake", or map it with --label_map {text}:0 (or :1)'
        )
    return words[text]


def _list_path(root: Path, value: object) -> str:
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else root.parent / path)


@LAYOUTS.register_module()
class JsonList:
    """A JSON file [[path, label(, generator)], ...]; label 0/1 or real/fake."""

    lists_paths = True  # paths come from a file: each must be checked to exist
    priority = 0

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        return root.is_file() and root.suffix.lower() == ".json"

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
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
            label = parse_label(entry[1], labels, f"{root}: entry {i}")
            out.append(Sample(_list_path(root, entry[0]), label, str(entry[2]) if len(entry) == 3 else ""))
        return out


# Column names of the CSV lists that benchmarks ship (first match wins).
CSV_COLUMNS = {
    "path": ("path", "image_path", "filepath", "file_path", "filename", "file", "image", "img_path"),
    "label": LABEL_COLUMNS,
    "generator": ("generator", "model", "model_name", "source", "subset"),
    "split": ("split", "set", "subset_split"),
    "category": ("category", "object_class", "content"),
}


@LAYOUTS.register_module()
class CsvList:
    """A CSV file with a header: path,label plus optional generator, split, category (SPAI, B-Free)."""

    lists_paths = True
    priority = 0

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        return root.is_file() and root.suffix.lower() in (".csv", ".tsv")

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        import csv

        with open(root, newline="", encoding="utf-8-sig") as f:
            dialect = csv.excel_tab if root.suffix.lower() == ".tsv" else csv.excel
            reader = csv.DictReader(f, dialect=dialect)
            cols = {k: find_column(reader.fieldnames or [], names) for k, names in CSV_COLUMNS.items()}
            if cols["path"] is None or cols["label"] is None:
                raise DatasetError(
                    f"{root}: a CSV list needs a header with a path column ({'/'.join(CSV_COLUMNS['path'][:3])}) and "
                    f"a label column ({'/'.join(CSV_COLUMNS['label'][:3])}); its header is {reader.fieldnames}"
                )
            out = []
            for i, row in enumerate(reader, start=2):
                flag = cols["label"].strip().lower() in FAKE_FLAG_COLUMNS
                label = parse_label(row[cols["label"]], labels, f"{root}: line {i}", fake_flag=flag)

                def col(key: str, row: dict = row) -> str:
                    return (row.get(cols[key]) or "").strip() if cols[key] else ""

                split = SPLIT_WORDS.get(col("split").lower(), col("split").lower())
                out.append(Sample(_list_path(root, row[cols["path"]]), label, col("generator"), col("category"), split))
        return out


@LAYOUTS.register_module()
class TxtList:
    """Annotation lines (ImagiNet and ImageNet-style ``train.txt``): ``path label [generator [category]]``,
    separated by spaces, tabs or commas; ``#`` starts a comment."""

    lists_paths = True
    priority = 0

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        return root.is_file() and root.suffix.lower() in (".txt", ".lst")

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        out = []
        for i, line in enumerate(root.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [f.strip() for f in (line.split(",") if "," in line else line.split())]
            if len(fields) < 2:
                raise DatasetError(f"{root}: line {i} must read 'path label [generator [category]]', got {line!r}")
            label = parse_label(fields[1], labels, f"{root}: line {i}")
            extra = fields[2:4] + ["", ""]
            out.append(Sample(_list_path(root, fields[0]), label, extra[0], extra[1]))
        return out


def layout_class(name: str) -> type:
    """The registered layout ``name``; an unknown name is a :class:`DatasetError` with suggestions."""
    try:
        return LAYOUTS.get(name)
    except KeyError as e:
        raise DatasetError(f"--layout: {e.args[0]} (or use --layout auto)") from None


def detect_layout(root: Path, labels: Optional[dict[str, int]] = None) -> str:
    """Name of the first registered layout (by ``priority``) that recognises ``root``."""
    names = sorted(LAYOUTS.list(), key=lambda n: (getattr(LAYOUTS.get(n), "priority", 50), n))
    for name in names:
        if LAYOUTS.get(name).detect(root, labels):
            return name
    hint = f" with the folder names of --label_map {', '.join(labels)}" if labels else ""
    raise DatasetError(
        f"{root}: no known layout found{hint}. Expected {{REAL,FAKE}}/ (CIFAKE), [generator/]{{0_real,1_fake}}/ "
        "(ForenSynths), {nature,ai}/ (GenImage), a .json list [[path, label], ...] or a .csv list with a "
        "path,label header; other folder names: --label_map NAME:0,NAME:1"
    )


def split_layout(source: str, default: str = "auto") -> tuple[str, str]:
    """``"path@FakesOnly"`` → ``("path", "FakesOnly")`` when the suffix names a registered layout
    (any case); an unknown suffix on a path that does not exist is a --layout error."""
    base, sep, name = source.rpartition("@")
    if sep and base:
        known = {n.lower(): n for n in LAYOUTS.list()}
        if name.lower() in known:
            return base, known[name.lower()]
        if not os.path.exists(source) and os.path.exists(base):
            layout_class(name)  # raises with suggestions
    return source, default


# Folders of segmentation masks in manipulation-localisation sets (IMDL-BenCo, CASIA: Tp/ images,
# Gt/ masks): never a class of images to detect.
MASK_FOLDERS = ("gt", "groundtruth", "ground_truth", "mask", "masks", "gt_masks")


def parse_label_map(spec: str) -> Optional[dict[str, int]]:
    """``"real:0,fake:1"`` → ``{"real": 0, "fake": 1}``; empty → None. Errors name --label_map."""
    if not spec:
        return None
    out: dict[str, int] = {}
    for part in spec.split(","):
        name, sep, value = part.strip().rpartition(":")
        if not sep or not name or value.strip() not in ("0", "1"):
            raise DatasetError(f"--label_map {spec!r}: each entry must be NAME:0 (real) or NAME:1 (fake), got {part!r}")
        out[name.strip()] = int(value)
    masks = [n for n in out if n.lower() in MASK_FOLDERS]
    if masks:
        raise DatasetError(
            f"--label_map {spec!r}: {masks[0]!r} is a folder of segmentation masks (IMDL-BenCo / CASIA ground truth), "
            "not images to tell real from fake; map the image folders (e.g. Au:0,Tp:1) and leave the masks out"
        )
    if set(out.values()) != {0, 1}:
        raise DatasetError(f"--label_map {spec!r} must name at least one real (:0) and one fake (:1) label")
    return out


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
    unsplit = counts.get("(none)", 0)
    if unsplit:
        log.warning(
            "%s: %d image(s) belong to no train/val/test split while the others do; they are not used as %s data",
            where,
            unsplit,
            split,
        )
    return [s for s in samples if s.split == split]


def check_label_folders(samples: Sequence[Sample], roots: Sequence[Path], labels: dict[str, int]) -> None:
    """Each folder name of an explicit ``--label_map`` must hold images below ``roots``: a name the
    data does not have (a typo, another tool's folder names) is an error that lists the folders."""
    seen: set[str] = set()
    for s in samples:
        seen.update(p.lower() for p in Path(s.path).parts[:-1])
    missing = [n for n in labels if n.lower() not in seen]
    if missing:
        found: set[str] = set()
        for root in roots:
            for _, dirnames, _ in os.walk(root):
                found.update(dirnames)
                if len(found) > 50:
                    break
        raise DatasetError(
            f"--label_map names {', '.join(map(repr, missing))}, but no image of {', '.join(map(str, roots))} lies in "
            f"a folder of that name; its folders include: {', '.join(sorted(found)[:20]) or '(none)'}"
        )


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

    def stored(path: str) -> str:  # the file that holds a table row
        m = ROW_PATH.match(path)
        return m.group("file") if m else path

    missing = [s.path for s in samples if not os.path.isfile(stored(s.path))]
    if missing:
        shown = "\n  ".join(missing[:5])
        raise DatasetError(
            f"{where}: {len(missing)} of {len(samples)} listed image(s) do not exist, e.g.\n  {shown}\n"
            "fix the paths (relative paths are relative to the list file)"
        )


def load_samples(
    path: Union[str, os.PathLike],
    split: Optional[str] = None,
    layout: str = "auto",
    label_map: Optional[dict[str, int]] = None,
) -> list[Sample]:
    """Resolve ``path``, detect or use ``layout``, list its samples and keep ``split``.

    ``label_map`` (``--label_map real:0,fake:1``) replaces a folder layout's label folder
    names, and adds label words for the list layouts. Raises :class:`DatasetError` before any
    work starts for: a missing path, an unknown layout, listed files that do not exist,
    contradictory labels, several splits when none was asked for, and an empty result.
    """
    root = resolve_path(path)
    name = detect_layout(root, label_map) if layout == "auto" else layout
    cls = layout_class(name)
    where = f"{path} ({name} layout)"
    samples = cls.samples(root, label_map)
    if getattr(cls, "lists_paths", False):
        check_paths_exist(samples, where)
    samples = select_split(samples, split, where)
    if not samples:
        raise DatasetError(f"{where}: found no images ({', '.join(IMAGE_EXTENSIONS)})")
    check_labels(samples, where)
    return samples


def available_splits(
    path: Union[str, os.PathLike], layout: str = "auto", label_map: Optional[dict[str, int]] = None
) -> set[str]:
    """The splits (``train``, ``val``, ``test``) that a dataset holds, at its layout's level."""
    root = resolve_path(path)
    cls = layout_class(detect_layout(root, label_map) if layout == "auto" else layout)
    return {s.split for s in cls.samples(root, label_map) if s.split}


def parse_generators(spec: str) -> list[str]:
    """``"g1,g2"`` -> ``["g1", "g2"]`` (blank entries dropped)."""
    return [g.strip() for g in (spec or "").split(",") if g.strip()]


def filter_generators(
    samples: Sequence[Sample], include: Sequence[str] = (), exclude: Sequence[str] = (), where: str = "data"
) -> list[Sample]:
    """Keep the fakes of the ``include`` generators (all when empty) minus those of ``exclude``.

    Reals stay, except where a generator owns its reals (ForenSynths' ``progan/0_real``, GenImage's
    ``sdv4/train/nature``): those go with their generator. Reals of a pool (``imagenet/0_real``,
    reals tagged ``""``) serve every generator and stay. A name that the data does not hold is
    an error that lists the generators it has.
    """
    if not include and not exclude:
        return list(samples)
    owners = {s.generator for s in samples if s.label == 1 and s.generator}
    unknown = [g for g in (*include, *exclude) if g not in owners]
    if unknown:
        raise DatasetError(
            f"{where}: no fake images of generator(s) {', '.join(map(repr, unknown))}; its generators are: "
            f"{', '.join(sorted(owners)) or '(none: the data names no generators)'}"
        )
    keep = (set(include) or owners) - set(exclude)
    return [s for s in samples if s.generator in keep or (s.label == 0 and s.generator not in owners)]
