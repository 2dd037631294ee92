"""``bench predict``: score unlabelled images with a trained run.

The run's ``config.json`` rebuilds the model (its name, its flags, its preprocessing and
evaluation crop) after importing the module that defines it (``model_module``, looked up in
the current folder, the project folder recorded in the config and the folders above the run).
The threshold is the one calibrated on validation for that checkpoint when the run has one,
else 0.5, unless ``--threshold`` is given; the CSV says which in every row.
"""

from __future__ import annotations

import csv
import importlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from aigbench.datasets.layouts import IMAGE_EXTENSIONS, DatasetError, Sample
from aigbench.errors import ConfigError
from aigbench.fileio import atomic_open

log = logging.getLogger("aigbench")

CSV_COLUMNS = ("path", "score", "label_pred", "threshold")
LIST_SUFFIXES = (".txt", ".lst")


@dataclass
class PredictResult:
    paths: list[str]
    scores: np.ndarray
    threshold: float
    threshold_source: str
    checkpoint: Path
    skipped: list[str]
    out: Optional[Path] = None


def collect_images(inputs: Sequence[Union[str, os.PathLike]]) -> list[str]:
    """Image files from single images, folders (searched recursively, in sorted order) and
    ``.txt`` lists (one path per line, relative to the list's folder). A path that does not
    exist, or inputs with no image at all, are errors that name them."""
    out: list[str] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            for dirpath, dirnames, files in os.walk(p, followlinks=True):
                dirnames.sort()
                out += [os.path.join(dirpath, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
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
        raise DatasetError(f"no image files ({' '.join(IMAGE_EXTENSIONS)}) in {', '.join(map(str, inputs))}")
    return out


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
    ``<run_dir>/predict/predictions.csv``): ``path, score, label_pred, threshold``, one row
    per decodable image in input order. Undecodable files are named in warnings and skipped."""
    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.engine import args as flags
    from aigbench.engine import build, selection
    from aigbench.engine import checkpoint as ckpts
    from aigbench.engine.amp import amp_policy
    from aigbench.engine.dist import DistContext, pick_device
    from aigbench.engine.loop import predict

    run = Path(run_dir)
    config = flags.read_run_config(str(run))
    if not config:
        raise ConfigError(f"{run / 'config.json'} not found: --run must be the --output_dir of a train.py run")
    import_model_module(run, config)
    argv = ["--output_dir", str(run), "--device", device, "--num_workers", str(num_workers)]
    if batch_size:
        argv += ["--batch_size", str(batch_size)]
    args = flags.parse_args(flags.test_parser(), argv)
    args.eval_perturb = ""  # predictions score the files as they are, whatever the run evaluated on
    paths = collect_images(inputs)
    ctx = DistContext(pick_device(args.device))
    ckpt = ckpts.pick_checkpoint(run, checkpoint)
    model = build.build_model(args, ctx, ddp=False)
    epoch = ckpts.load_weights_into(model, ckpt)
    if threshold is not None:
        t, source = float(threshold), "given (--threshold)"
    else:
        calib = selection.val_threshold_for(ckpt.parent, epoch)
        t, source = (float(calib["threshold"]), "calibrated on validation") if calib else (0.5, "default 0.5")
    transform = build.build_transform(args, False)
    dataset = ImageDataset([Sample(p, 0, "") for p in paths], transform, "predict")
    loader = build_loader(dataset, build.eval_batch_size(args), False, args.num_workers)
    log.info(
        "%s: %d image(s), checkpoint %s, evaluation crop %s, threshold %.6g (%s)",
        run,
        len(paths),
        ckpt.name,
        transform.crop_name,
        t,
        source,
    )
    preds = predict(model, loader, ctx, amp_policy(ctx.device, args.amp), desc="predict", show_progress=show_progress)
    if len(preds.skipped) == len(paths):
        raise DatasetError(f"none of the {len(paths)} input image(s) could be decoded; check the files")
    result = PredictResult([paths[i] for i in preds.index], preds.score, t, source, ckpt, preds.skipped)
    result.out = Path(out) if out else run / "predict" / "predictions.csv"
    write_predict_csv(result.out, result)
    return result


def write_predict_csv(path: Union[str, os.PathLike], result: PredictResult) -> None:
    from aigbench.engine.evaluate import format_score

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for p, s in zip(result.paths, result.scores):
            w.writerow([p, format_score(s), int(s >= result.threshold), f"{result.threshold:.9g}"])
