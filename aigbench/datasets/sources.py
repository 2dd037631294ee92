"""Images stored inside tables: parquet files and Hugging Face ``save_to_disk`` Arrow folders.

A row is a :class:`~aigbench.datasets.layouts.Sample` whose path reads ``<file>#<row>``
(``train-00000-of-00004.parquet#1532``). Listing reads only the small columns (label,
generator, split); the image bytes are read when a worker loads that row, never the whole
file at once:

* parquet: the row group holding the row is read (its image column only) and kept while
  the following rows of the same group are loaded (evaluation and sharded reading are
  sequential; shuffled training re-reads groups: write parquet with small row groups);
* Arrow (``save_to_disk``): the file is memory-mapped, as ``datasets.load_from_disk`` does.

Labels follow the table's own names where it has them (Hugging Face ``ClassLabel`` names
stored with the table, e.g. ``["fake", "real"]``: never the integer order), else 0/1 and
real/fake words, else ``--label_map``. AI-GenBench's convention, generator ``""`` = real,
is read when there is no label column.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Optional

import numpy as np

from aigbench.datasets.layouts import (
    FAKE_FLAG_COLUMNS,
    LABEL_COLUMNS,
    ROW_PATH,
    SPLIT_WORDS,
    DatasetError,
    Sample,
    find_column,
    parse_label,
)
from aigbench.registry import LAYOUTS

IMAGE_COLUMNS = ("image", "image_data", "img", "image_bytes", "jpg", "png", "bytes")
GENERATOR_COLUMNS = ("generator", "model_name", "model", "source", "generator_name")
SPLIT_COLUMNS = ("split",)
CATEGORY_COLUMNS = ("category", "content", "object_class")


def row_path(file: str, row: int) -> str:
    return f"{file}#{row}"


def _class_names(features: dict[str, Any], column: Optional[str]) -> Optional[list[str]]:
    """The ``ClassLabel`` names of ``column`` in Hugging Face feature metadata, if any."""
    feat = features.get(column or "", {}) if isinstance(features, dict) else {}
    names = feat.get("names") if isinstance(feat, dict) else None
    return list(names) if isinstance(names, list) else None


def _split_from_name(path: Path, root: Path) -> str:
    """``train-00000-of-00004.parquet`` or ``<root>/validation/x.parquet`` → the split, else "";
    only names below ``root`` count (never the folders that hold the dataset)."""
    stem = path.name.split("-")[0].split(".")[0].lower()
    if stem in SPLIT_WORDS:
        return SPLIT_WORDS[stem]
    inner = path.parent.relative_to(root).parts if root.is_dir() else ()
    for part in reversed(inner):
        if part.lower() in SPLIT_WORDS:
            return SPLIT_WORDS[part.lower()]
    return ""


def table_samples(
    file: Path,
    table: Any,
    features: dict[str, Any],
    labels: Optional[dict[str, int]],
    default_split: str = "",
) -> list[Sample]:
    """Samples of the rows of one table (label, generator, split and category columns only)."""
    cols = table.column_names
    lab, gen = find_column(cols, LABEL_COLUMNS), find_column(cols, GENERATOR_COLUMNS)
    spl, cat = find_column(cols, SPLIT_COLUMNS), find_column(cols, CATEGORY_COLUMNS)
    if lab is None and gen is None:
        raise DatasetError(
            f"{file}: no label column ({', '.join(LABEL_COLUMNS)}) and no generator column to read labels from "
            f"(generator '' = real); its columns are {cols}"
        )
    names = _class_names(features, lab)
    gens = table.column(gen).to_pylist() if gen else [""] * table.num_rows
    if lab is None:  # AI-GenBench: the generator of a real image is "" (or a word that means real)
        real_words = {"", "real", *(k.lower() for k, v in (labels or {}).items() if v == 0)}
        values = [0 if str(g or "").strip().lower() in real_words else 1 for g in gens]
    else:
        values = table.column(lab).to_pylist()
    flag = (lab or "").lower() in FAKE_FLAG_COLUMNS
    splits = table.column(spl).to_pylist() if spl else [default_split] * table.num_rows
    cats = table.column(cat).to_pylist() if cat else [""] * table.num_rows
    out = []
    for i, (v, g, s, c) in enumerate(zip(values, gens, splits, cats)):
        if names is not None and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(names):
            v = names[v]  # ClassLabel: the name says real or fake, the index does not
        label = parse_label(v, labels, f"{file}: row {i}", fake_flag=flag)
        split = SPLIT_WORDS.get(str(s or "").lower(), str(s or "").lower())
        out.append(Sample(row_path(str(file), i), label, str(g or ""), str(c or ""), split))
    return out


def _hf_features(metadata: Optional[dict[bytes, bytes]]) -> dict[str, Any]:
    """Hugging Face feature descriptions stored in a parquet schema's metadata."""
    raw = (metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        info = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return info.get("info", {}).get("features", {}) or {}


def parquet_samples(root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
    """Every row of a parquet file, or of every ``*.parquet`` below a folder (sorted)."""
    import pyarrow.parquet as pq

    files = (
        [root]
        if root.is_file()
        else sorted(p for g in ("*.parquet", "*/*.parquet", "*/*/*.parquet") for p in root.glob(g))
    )
    out: list[Sample] = []
    for f in files:
        try:
            pf = pq.ParquetFile(f)
        except Exception as e:
            raise DatasetError(f"{f}: not a readable parquet file ({e})") from None
        cols = pf.schema_arrow.names
        if find_column(cols, IMAGE_COLUMNS) is None:
            raise DatasetError(f"{f}: no image column ({', '.join(IMAGE_COLUMNS)}); its columns are {cols}")
        small = [
            c
            for c in (find_column(cols, n) for n in (LABEL_COLUMNS, GENERATOR_COLUMNS, SPLIT_COLUMNS, CATEGORY_COLUMNS))
            if c
        ]
        table = pf.read(columns=small)
        out += table_samples(f, table, _hf_features(pf.schema_arrow.metadata), labels, _split_from_name(f, root))
    return out


def arrow_dir_samples(root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
    """A ``save_to_disk`` folder: a ``DatasetDict`` (``dataset_dict.json`` + one folder per
    split) or one ``Dataset`` (``state.json`` + ``*.arrow``)."""
    dict_file = root / "dataset_dict.json"
    if dict_file.is_file():
        splits = json.loads(dict_file.read_text(encoding="utf-8")).get("splits", [])
        folders = [(root / s, SPLIT_WORDS.get(s.lower(), s.lower())) for s in splits]
    else:
        folders = [(root, "")]
    out: list[Sample] = []
    for folder, split in folders:
        if not (folder / "state.json").is_file():
            raise DatasetError(
                f"{folder / 'state.json'} is missing: {root} is not a complete save_to_disk folder (copy it whole)"
            )
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        info_file = folder / "dataset_info.json"
        info = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else {}
        for entry in state.get("_data_files", []):
            f = folder / entry["filename"]
            if not f.is_file():
                raise DatasetError(f"{f} is listed in {folder / 'state.json'} but missing; copy the whole folder")
            table = _arrow_table(str(f))
            if find_column(table.column_names, IMAGE_COLUMNS) is None:
                raise DatasetError(f"{f}: no image column ({', '.join(IMAGE_COLUMNS)}); columns {table.column_names}")
            out += table_samples(f, table, info.get("features", {}), labels, split)
    return out


# ---- reading one row's image (in each DataLoader worker) --------------------------------------

_ARROW: OrderedDict[str, Any] = OrderedDict()
_PARQUET: OrderedDict[str, Any] = OrderedDict()
_GROUPS: OrderedDict[tuple[str, int], Any] = OrderedDict()
_CACHE_FILES = 8


def _remember(cache: OrderedDict, key: Any, value: Any, size: int = _CACHE_FILES) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def _arrow_table(file: str) -> Any:
    """A memory-mapped Arrow stream file (as written by ``datasets``), opened once per process."""
    import pyarrow as pa

    if file in _ARROW:
        return _ARROW[file]
    return _remember(_ARROW, file, pa.ipc.open_stream(pa.memory_map(file)).read_all())


def _image_value(value: Any) -> Optional[bytes]:
    if isinstance(value, dict):  # Hugging Face Image feature: {"bytes": ..., "path": ...}
        if value.get("bytes"):
            return value["bytes"]
        return Path(value["path"]).read_bytes() if value.get("path") and os.path.isfile(value["path"]) else None
    return value if isinstance(value, (bytes, bytearray)) else None


def _parquet_row(file: str, row: int) -> Optional[bytes]:
    import pyarrow.parquet as pq

    opened = _PARQUET.get(file)
    if opened is None:  # the file and its row-group starts, once per process (not once per row)
        pf = pq.ParquetFile(file)
        starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
        opened = _remember(_PARQUET, file, (pf, starts))
    pf, starts = opened
    group = int(np.searchsorted(starts, row, side="right") - 1)
    key = (file, group)
    values = _GROUPS.get(key)
    if values is None:
        column = find_column(pf.schema_arrow.names, IMAGE_COLUMNS)
        values = _remember(_GROUPS, key, pf.read_row_group(group, columns=[column]).column(0), size=2)
    return _image_value(values[row - int(starts[group])].as_py())


# WebDataset shards: a sample is the tar members that share a key (the member name up to the first
# dot of its base name): the image (jpg, png, webp, ...), and its label as ``cls`` (a number or
# word) or in ``json`` (label / generator / category keys, as the other tables' columns).
TAR_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "ppm")
_TARS: OrderedDict[str, Any] = OrderedDict()


def _tar_key(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def tar_index(file: str) -> list[dict[str, Any]]:
    """The samples of one WebDataset shard in member order: ``{"key", "image": (offset, size),
    "cls", "json"}`` (the small label members read, the images only located)."""
    import tarfile

    groups: dict[str, dict[str, Any]] = {}
    with tarfile.open(file, "r:") as tf:  # uncompressed, as WebDataset writes: members are seekable
        for m in tf:
            if not m.isfile():
                continue
            key, ext = _tar_key(m.name)
            g = groups.setdefault(key, {"key": key})
            if ext in TAR_IMAGE_EXTS and "image" not in g:
                g["image"] = (m.offset_data, m.size)
            elif ext in ("cls", "label", "json", "txt") and m.size < 1 << 20:
                data = tf.extractfile(m)
                g[ext] = data.read().decode("utf-8", "replace").strip() if data is not None else ""
    return [g for g in groups.values() if "image" in g]


def tar_samples(root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
    """Every sample of a WebDataset ``.tar`` shard, or of every shard below a folder (sorted)."""
    files = [root] if root.is_file() else sorted(p for g in ("*.tar", "*/*.tar") for p in root.glob(g))
    out: list[Sample] = []
    for f in files:
        try:
            index = tar_index(str(f))
        except (OSError, EOFError) as e:
            raise DatasetError(f"{f}: not a readable (uncompressed) tar shard ({e})") from None
        split = _split_from_name(f, root)
        for i, g in enumerate(index):
            meta: dict[str, Any] = {}
            if "json" in g:
                try:
                    meta = json.loads(g["json"])
                except json.JSONDecodeError:
                    raise DatasetError(f"{f}: {g['key']}.json is not valid JSON") from None
            lab = find_column(list(meta), LABEL_COLUMNS)
            value = g.get("cls", g.get("label", meta.get(lab) if lab else None))
            if value is None:
                raise DatasetError(
                    f"{f}: sample {g['key']!r} has no label: add a {g['key']}.cls member (0 = real, 1 = fake) "
                    f"or a label key in {g['key']}.json"
                )
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
            gen = meta.get(find_column(list(meta), GENERATOR_COLUMNS) or "", "")
            cat = meta.get(find_column(list(meta), CATEGORY_COLUMNS) or "", "")
            spl = str(meta.get("split", split) or "").lower()
            label = parse_label(value, labels, f"{f}: {g['key']}", fake_flag=(lab or "").lower() in FAKE_FLAG_COLUMNS)
            out.append(Sample(row_path(str(f), i), label, str(gen or ""), str(cat or ""), SPLIT_WORDS.get(spl, spl)))
    return out


def _tar_row(file: str, row: int) -> Optional[bytes]:
    opened = _TARS.get(file)
    if opened is None:  # the shard's image locations and an open handle, once per process
        opened = _remember(_TARS, file, ([g["image"] for g in tar_index(file)], open(file, "rb")))
    spans, handle = opened
    offset, size = spans[row]
    return os.pread(handle.fileno(), size, offset)  # no shared file position: safe in forked workers


def read_row_bytes(path: str) -> Optional[bytes]:
    """The encoded image of a ``<file>#<row>`` sample, or None when it cannot be read."""
    m = ROW_PATH.match(path)
    if m is None:
        return None
    file, row = m.group("file"), int(m.group("row"))
    try:
        with _ROW_LOCK:  # the readers and row-group caches are shared and not thread-safe
            return _read_row(file, row)
    except (OSError, IndexError, ValueError, KeyError):
        return None


_ROW_LOCK = threading.RLock()


def _read_row(file: str, row: int) -> Optional[bytes]:
    if file.lower().endswith(".arrow"):
        table = _arrow_table(file)
        column = find_column(table.column_names, IMAGE_COLUMNS)
        return _image_value(table.column(column)[row].as_py())
    if file.lower().endswith(".tar"):
        return _tar_row(file, row)
    return _parquet_row(file, row)


def is_row_path(path: str) -> bool:
    return ROW_PATH.match(path) is not None


def load_image(path: str) -> Optional[np.ndarray]:
    """RGB uint8 array of a sample: a file, or a ``<file>#<row>`` table row; None if undecodable."""
    from aigbench.imageops import decode_bytes, decode_image

    if is_row_path(path):
        data = read_row_bytes(path)
        return None if data is None else decode_bytes(data)
    return decode_image(path)


@LAYOUTS.register_module()
class Parquet:
    """Parquet with image bytes: a file or a folder of shards (aiornot: ``image`` struct + ``label``;
    Community Forensics: ``image_data``, ``label``, ``model_name``, ``split``; hub caches)."""

    priority = 0

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        if root.is_file():
            return root.suffix.lower() == ".parquet"
        # shards at most three folders down (root/*.parquet, root/data/*.parquet, hub snapshots)
        return root.is_dir() and any(next(root.glob(p), None) for p in ("*.parquet", "*/*.parquet", "*/*/*.parquet"))

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        return parquet_samples(root, labels)


@LAYOUTS.register_module()
class WebDataset:
    """WebDataset ``.tar`` shards (a file or a folder of them): ``<key>.jpg|png|webp`` with
    ``<key>.cls`` or ``<key>.json`` (label, generator); read by seeking to each member."""

    priority = 0

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        if root.is_file():
            return root.suffix.lower() == ".tar"
        return root.is_dir() and any(next(root.glob(p), None) for p in ("*.tar", "*/*.tar"))

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        return tar_samples(root, labels)


@LAYOUTS.register_module()
class HFDisk:
    """A Hugging Face ``save_to_disk`` folder (``DatasetDict`` or ``Dataset``), e.g. AI-GenBench's
    ``image, label, generator`` with ``""`` for reals; read with pyarrow, no network."""

    priority = 0

    @classmethod
    def detect(cls, root: Path, labels: Optional[dict[str, int]] = None) -> bool:
        return root.is_dir() and ((root / "dataset_dict.json").is_file() or (root / "state.json").is_file())

    @classmethod
    def samples(cls, root: Path, labels: Optional[dict[str, int]] = None) -> list[Sample]:
        return arrow_dir_samples(root, labels)
