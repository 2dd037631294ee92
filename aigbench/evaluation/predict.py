"""``bench predict``: score unlabelled images with a trained run, one row per input file.

The run's ``config.json`` rebuilds the model (its name, its flags, its preprocessing and
evaluation crop) after importing the module that defines it (``model_module``, looked up in
the current folder, the project folder recorded in the config and the folders above the run).
The threshold is the one calibrated on validation for that checkpoint when the run has one,
else 0.5, unless ``--threshold`` is given; the CSV says which in every row.

Every input file gets a row, whose ``status`` says what became of it: ``ok`` (scored),
``truncated`` (cut short, yet it decodes: scored on what decodes, and flagged; see
:mod:`aigbench.imageops.integrity`) or ``unreadable`` (no score; ``reason`` says why, in the
words of ``bench data check``). Folders are searched for images by name (every extension that
Pillow or the dataset loaders know, ``.jpe`` and ``.avif`` included) and by content (a JPEG
named ``.bin``); the other files are left out and named.
"""

from __future__ import annotations

import csv
import functools
import importlib
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

from aigbench.datasets.layouts import IMAGE_EXTENSIONS, DatasetError, Sample
from aigbench.errors import ConfigError
from aigbench.fileio import atomic_open
from aigbench.imageops.integrity import HEAD_BYTES, file_missing_end, sniff_format
from aigbench.metrics.binary import is_fake

log = logging.getLogger("aigbench")

CSV_COLUMNS = ("path", "score", "label_pred", "threshold", "status", "reason")
STATUSES = ("ok", "truncated", "unreadable")
LIST_SUFFIXES = (".txt", ".lst")


@dataclass
class PredictResult:
    """One entry per input file, in input order: ``scores`` is NaN where ``status`` is
    ``unreadable``. ``left_out``: files in the input folders that are not images."""

    paths: list[str]
    scores: np.ndarray
    threshold: float
    threshold_source: str
    checkpoint: Path
    status: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    out: Optional[Path] = None

    @property
    def skipped(self) -> list[str]:
        """The unreadable files (no score)."""
        return [p for p, st in zip(self.paths, self.status) if st == "unreadable"]

    def count(self, status: str) -> int:
        return sum(st == status for st in self.status)


class Inputs(NamedTuple):
    """The files to score, in order, and the files of the input folders that are not images."""

    paths: list[str]
    left_out: list[str]


@functools.lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case extensions that name an image: the dataset loaders' and those of every format
    that Pillow opens (``.jpe``, ``.jfif``, ``.avif``, ``.qoi``, ...)."""
    from PIL import Image

    Image.init()
    pillow = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN or fmt == "MPO"}
    return frozenset(pillow | set(IMAGE_EXTENSIONS))


def is_image_content(path: str) -> bool:
    """Whether the file's first bytes are those of an image format that the loaders or Pillow know."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            if sniff_format(f.read(HEAD_BYTES)):
                return True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path):
                return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return False


def collect_images(inputs: Sequence[Union[str, os.PathLike]]) -> Inputs:
    """Image files from single images, folders (searched recursively, in sorted order) and
    ``.txt`` lists (one path per line, relative to the list's folder). In a folder a file is an
    image by its extension (:func:`image_extensions`) or by its content (:func:`is_image_content`);
    the others are ``left_out``. A named file or a list entry is always kept (its row says if it
    cannot be read). A path that does not exist, or inputs with no image at all, are errors that
    name them."""
    out: list[str] = []
    left_out: list[str] = []
    extensions = image_extensions()
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            for dirpath, dirnames, files in os.walk(p, followlinks=True):
                dirnames.sort()
                for f in sorted(files):
                    path = os.path.join(dirpath, f)
                    if os.path.splitext(f)[1].lower() in extensions or is_image_content(path):
                        out.append(path)
                    else:
                        left_out.append(path)
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            for line in p.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line).expanduser()
                    out.append(str(q if q.is_absolute() else p.parent / q))
        elif p.is_file():
            out.append(str(p))
        else:
            raise DatasetError(f"{item}: no such file or folder; give images, folders or a .txt list of paths")
    if not out:
        shown = ", ".join(left_out[:5]) + (f" and {len(left_out) - 5} more" if len(left_out) > 5 else "")
        raise DatasetError(
            f"no image files in {', '.join(map(str, inputs))}"
            + (f" (left out as neither named nor made like an image: {shown})" if left_out else "")
            + "; give image files, folders of images or a .txt list of paths"
        )
    return Inputs(out, left_out)


def file_status(path: str, decoded: bool) -> tuple[str, str]:
    """``(status, reason)`` of one input file (:data:`STATUSES`), given whether the loader decoded it."""
    from aigbench.datasets.sources import is_row_path

    if decoded:
        cut = None if is_row_path(path) else file_missing_end(path)
        if cut:
            return "truncated", f"{cut}: cut short, yet it decodes; scored on what decodes"
        return "ok", ""
    from aigbench.audit import inspect_file

    info = inspect_file(path)
    if info.problem:
        return "unreadable", f"{info.problem}: {info.detail}"
    return "unreadable", f"{info.format or 'the file'} that neither OpenCV nor Pillow decodes to RGB"


def check_threshold(threshold: Optional[float]) -> None:
    """A ``--threshold`` must be a score in [0, 1]; the error names the flag."""
    if threshold is None or 0.0 <= threshold <= 1.0:
        return
    hint = f" (for {threshold:g} %, give --threshold {threshold / 100:g})" if 1.0 < threshold <= 100.0 else ""
    raise ConfigError(
        f"--threshold must be a score in [0, 1], the probability of fake from which label_pred is 1; got "
        f"{threshold:g}{hint}"
    )


def import_model_module(run_dir: Path, config: dict) -> None:
    """Import the module that registers the run's model (``config["model_module"]``)."""
    from aigbench.registry import MODELS

    name = config.get("model_module")
    if config.get("model") in MODELS or not name:
        return
    candidates = [Path.cwd()]
    if config.get("model_module_file"):
        candidates.append(Path(config["model_module_file"]).parent)
    candidates += list(run_dir.resolve().parents)[:4]
    for folder in candidates:
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            importlib.import_module(name)
            return
    try:
        importlib.import_module(name)
    except ImportError:
        raise ConfigError(
            f"{run_dir / 'config.json'}: the model {config.get('model')!r} is defined in module {name!r}, which was "
            f"not found in {', '.join(str(c) for c in candidates[:3])}; run bench predict from your project folder"
        ) from None


def load_run(
    run: Path,
    checkpoint: str = "",
    device: str = "auto",
    batch_size: Optional[int] = None,
    num_workers: int = 0,
    flags_given: Sequence[str] = (),
) -> tuple:
    """A trained run rebuilt from its ``config.json`` (model, flags, preprocessing) with the
    weights of ``checkpoint`` (best, else last): ``(args, ctx, model, checkpoint path, epoch)``.
    ``flags_given`` (e.g. a suite's geometry) win over the run's, as on test.py's command line.
    ``--eval_perturb`` is off: the files are scored as they are."""
    from aigbench.engine import args as flags
    from aigbench.engine import build
    from aigbench.engine import checkpoint as ckpts
    from aigbench.engine.dist import DistContext, pick_device

    config = flags.read_run_config(str(run))
    if not config:
        raise ConfigError(f"{run / 'config.json'} not found: --run must be the --output_dir of a train.py run")
    import_model_module(run, config)
    argv = ["--output_dir", str(run), "--device", device, "--num_workers", str(num_workers), *flags_given]
    if batch_size:
        argv += ["--batch_size", str(batch_size)]
    args = flags.parse_args(flags.test_parser(), argv)
    args.eval_perturb = ""
    ctx = DistContext(pick_device(args.device), fuse_eval=not args.no_fuse, micro_batch=args.micro_batch)
    ckpt = ckpts.pick_checkpoint(run, checkpoint)
    model = build.build_model(args, ctx, ddp=False)
    epoch = ckpts.load_weights_into(model, ckpt)
    return args, ctx, model, ckpt, epoch


def predict_images(
    run_dir: Union[str, os.PathLike],
    inputs: Sequence[Union[str, os.PathLike]],
    out: Optional[Union[str, os.PathLike]] = None,
    checkpoint: str = "",
    device: str = "auto",
    batch_size: Optional[int] = None,
    num_workers: int = 0,
    threshold: Optional[float] = None,
    show_progress: bool = True,
) -> PredictResult:
    """Score ``inputs`` with the run in ``run_dir`` and write the CSV ``out`` (default:
    ``<run_dir>/predict/predictions.csv``): ``path, score, label_pred, threshold, status, reason``,
    one row per input file in input order (see the module docstring). Raises
    :class:`~aigbench.datasets.layouts.DatasetError` after writing the CSV when no file could be
    scored, and :class:`~aigbench.errors.ConfigError` for a ``threshold`` outside [0, 1]."""
    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.engine import build
    from aigbench.engine.amp import amp_policy
    from aigbench.engine.loop import predict
    from aigbench.evaluation import selection

    check_threshold(threshold)
    run = Path(run_dir)
    paths, left_out = collect_images(inputs)  # the left-out files are named by the caller (the CLI prints them)
    args, ctx, model, ckpt, epoch = load_run(run, checkpoint, device, batch_size, num_workers)
    if threshold is not None:
        t, source = float(threshold), "given (--threshold)"
    else:
        calib = selection.val_threshold_for(ckpt.parent, epoch)
        t, source = (float(calib["threshold"]), "calibrated on validation") if calib else (0.5, "default 0.5")
    transform = build.build_transform(args, False)
    dataset = ImageDataset([Sample(p, 0, "") for p in paths], transform, "predict")
    loader = build_loader(dataset, build.eval_batch_size(args), False, args.num_workers)
    log.info(
        "%s: %d file(s), checkpoint %s, evaluation crop %s, threshold %.6g (%s)",
        run,
        len(paths),
        ckpt.name,
        transform.crop_name,
        t,
        source,
    )
    preds = predict(model, loader, ctx, amp_policy(ctx.device, args.amp), desc="predict", show_progress=show_progress)
    scores = np.full(len(paths), np.nan, dtype=np.float32)
    scores[np.asarray(preds.index, dtype=np.int64)] = preds.score
    decoded = ~np.isnan(scores)
    rows = [file_status(p, bool(d)) for p, d in zip(paths, decoded)]
    result = PredictResult(paths, scores, t, source, ckpt, [r[0] for r in rows], [r[1] for r in rows], left_out, None)
    result.out = Path(out) if out else run / "predict" / "predictions.csv"
    write_predict_csv(result.out, result)
    if not decoded.any():
        raise DatasetError(
            f"none of the {len(paths)} input file(s) could be decoded; {result.out} gives each one's reason"
        )
    return result


def write_predict_csv(path: Union[str, os.PathLike], result: PredictResult) -> None:
    """The predictions CSV (:data:`CSV_COLUMNS`): one row per input file; ``score`` and
    ``label_pred`` are empty for an unreadable file."""
    from aigbench.evaluation.evaluate import format_score

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for p, s, status, reason in zip(result.paths, result.scores, result.status, result.reasons):
            scored = not np.isnan(s)
            w.writerow(
                [
                    p,
                    format_score(s) if scored else "",
                    int(is_fake(s, result.threshold)) if scored else "",
                    f"{result.threshold:.9g}",
                    status,
                    reason,
                ]
            )
