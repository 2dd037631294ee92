"""``bench explain``: class-activation maps of a trained run (or a zoo model's run) on images.

The run is rebuilt as ``bench predict`` rebuilds it (:func:`aigbench.evaluation.predict.load_run`),
each image goes through the run's own evaluation transform (format alignment, resize or crop,
several crops or tiles), and the map is computed on exactly the tensor that the model scores.
Each map is drawn over that view and over the full image: the view's place in the image is
found by sending pixel coordinates through the same geometry with nearest-neighbour sampling
(:func:`view_boxes`), so every resize, crop, padding and multi-crop mode maps back.

Written to ``--out`` (default ``<run>/explain/``):

* ``maps/<k>_<name>.png``: the view with its map beside the full image with its map;
* ``grids/<class>_<generator>.png``: up to 16 views with their maps per class and generator;
* ``explanations.csv``: path, score, label (when the inputs are a dataset whose layout gives
  it), generator, method, target layer, the randomisation check (Spearman correlation with the
  map of the randomised model, and whether the map explains the model) and ROAD (and whether it
  is faithful), status and the overlay's file;
* ``summary.json``: method, target layer and where it came from, checkpoint, preprocessing,
  thresholds of the checks, counts and means;
* ``tensorboard/``: the grids as images.
"""

from __future__ import annotations

import copy
import csv
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import cv2
import numpy as np
import torch

from aigbench.datasets.layouts import DatasetError, Sample, load_samples
from aigbench.datasets.transforms import ImageTransform
from aigbench.errors import ConfigError
from aigbench.explain import cam
from aigbench.fileio import atomic_open, file_stem, write_json
from aigbench.imageops import decode_image

log = logging.getLogger("aigbench")

CSV_COLUMNS = (
    "path",
    "score",
    "label",
    "generator",
    "method",
    "target_layer",
    "randomisation_spearman",
    "explains_model",
    "road",
    "faithful",
    "status",
    "overlay",
)
GRID_IMAGES = 16  # views per class-and-generator grid
DISPLAY_SIDE = 512  # the full image is drawn at most this large
CLASS_WORDS = {0: "real", 1: "fake", -1: "unlabelled"}


# ---- inputs ---------------------------------------------------------------------------------------


def labelled_inputs(inputs: Sequence[Union[str, os.PathLike]]) -> list[Sample]:
    """The images of ``inputs`` as samples: a folder whose layout aigbench reads keeps its labels
    and generators (its test split when it has several), other files and folders are unlabelled
    (label -1), found as ``bench predict`` finds them."""
    from aigbench.evaluation.predict import collect_images

    out: list[Sample] = []
    for item in inputs:
        path = str(item)
        samples: list[Sample] = []
        if os.path.isdir(path):
            for split in (None, "test"):
                try:
                    samples = list(load_samples(path, split))
                    break
                except DatasetError:
                    continue
        if not samples:
            found = collect_images([path])
            samples = [Sample(p, -1, "") for p in found.paths]
        out += samples
    if not out:
        raise DatasetError(f"no images found in {', '.join(map(str, inputs))}")
    return out


# ---- where a view lies in its image ---------------------------------------------------------------


def _coordinate_image(h: int, w: int, axis: int) -> np.ndarray:
    """An ``h x w`` image whose pixels hold their own row (``axis`` 0) or column (1), in two
    bytes, and 255 in the third channel (padding is 0 there)."""
    idx = np.arange(h if axis == 0 else w, dtype=np.int64)
    grid = np.broadcast_to(idx[:, None] if axis == 0 else idx[None, :], (h, w))
    return np.ascontiguousarray(np.stack([grid >> 8, grid & 255, np.full((h, w), 255)], axis=-1).astype(np.uint8))


def view_boxes(transform: ImageTransform, h: int, w: int) -> list[dict[str, Any]]:
    """For each view that ``transform`` cuts from an ``h x w`` image: the rows and columns of the
    view that hold image pixels (``view``: y0, y1, x0, x1), the part of the image they show
    (``image``: y0, y1, x0, x1) and whether it is mirrored (``flip``). Found by sending pixel
    coordinates through the transform's geometry with nearest-neighbour sampling."""
    probe = copy.copy(transform)
    probe.align, probe.augment, probe.perturbation = None, None, None
    probe.geometric = ImageTransform(
        transform.image_size,
        False,
        transform.resize_mode,
        interpolation="nearest",
        crop_pct=transform.crop_pct,
        crops=transform.crops,
        pad_mode=transform.pad_mode,
    ).geometric
    ys, xs = (probe.finish(_coordinate_image(h, w, a)) for a in (0, 1))
    if ys.ndim == 3:
        ys, xs = ys[None], xs[None]
    boxes = []
    for yv, xv in zip(ys, xs):
        valid = (yv[..., 2] == 255) & (xv[..., 2] == 255)
        rows, cols = np.flatnonzero(valid.any(1)), np.flatnonzero(valid.any(0))
        if not len(rows) or not len(cols):
            boxes.append({"view": None, "image": None, "flip": False})
            continue
        y = yv[..., 0].astype(np.int64) * 256 + yv[..., 1]
        x = xv[..., 0].astype(np.int64) * 256 + xv[..., 1]
        yy, xx = y[valid], x[valid]
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        boxes.append(
            {
                "view": (int(r0), int(r1), int(c0), int(c1)),
                "image": (int(yy.min()), int(yy.max()) + 1, int(xx.min()), int(xx.max()) + 1),
                "flip": bool(x[(r0 + r1) // 2, c0] > x[(r0 + r1) // 2, c1 - 1]),
            }
        )
    return boxes


def full_image_map(maps: np.ndarray, boxes: Sequence[dict[str, Any]], h: int, w: int) -> np.ndarray:
    """The views' maps placed where their views lie in the ``h x w`` image, averaged where views
    overlap; NaN where no view looked."""
    total = np.zeros((h, w), dtype=np.float32)
    count = np.zeros((h, w), dtype=np.float32)
    for m, box in zip(maps, boxes):
        if box["view"] is None:
            continue
        r0, r1, c0, c1 = box["view"]
        y0, y1, x0, x1 = box["image"]
        part = m[r0:r1, c0:c1]
        if box["flip"]:
            part = part[:, ::-1]
        part = cv2.resize(np.ascontiguousarray(part), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        total[y0:y1, x0:x1] += part
        count[y0:y1, x0:x1] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


# ---- drawing ---------------------------------------------------------------------------------------


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB uint8 ``image`` with the map ``heat`` (values in [0, 1], NaN where there is none:
    drawn dimmed) in the jet colour map over it."""
    if heat.shape != image.shape[:2]:
        heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    known = ~np.isnan(heat)
    colour = cv2.applyColorMap(np.uint8(np.clip(np.nan_to_num(heat), 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
    out = image.astype(np.float32) * 0.4
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colour.astype(np.float32)
    out[known] = blend[known]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _fit(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def _panel(left: np.ndarray, right: np.ndarray, caption: str) -> np.ndarray:
    """Two images side by side at one height, with a caption bar above."""
    height = 256
    parts = [cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height)) for p in (left, right)]
    gap = np.full((height, 8, 3), 255, np.uint8)
    body = np.concatenate([parts[0], gap, parts[1]], axis=1)
    bar = np.full((24, body.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, caption[:120], (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, body], axis=0)


def tile(images: Sequence[np.ndarray], side: int = 160, columns: int = 4) -> np.ndarray:
    """Images in a grid of ``columns`` (each fitted in ``side`` x ``side`` on white)."""
    rows = (len(images) + columns - 1) // columns
    grid = np.full((rows * (side + 4), columns * (side + 4), 3), 255, np.uint8)
    for k, im in enumerate(images):
        im = cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)
        r, c = divmod(k, columns)
        grid[r * (side + 4) : r * (side + 4) + side, c * (side + 4) : c * (side + 4) + side] = im
    return grid


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise ConfigError(f"cannot write {path}; pick a writable --out")


# ---- the command ------------------------------------------------------------------------------------


def explain_images(
    run_dir: Union[str, os.PathLike],
    inputs: Sequence[Union[str, os.PathLike]],
    out: Optional[Union[str, os.PathLike]] = None,
    limit: int = 0,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Explain the run in ``run_dir`` on ``inputs`` (files, folders, .txt lists, or a dataset
    whose layout gives labels); returns the summary, also written to ``<out>/summary.json``
    beside the maps, grids, ``explanations.csv`` and TensorBoard images (see the module
    docstring). ``limit`` keeps a seeded sample of that many images per class; ``options`` are
    :func:`explain_samples`'s (method, target_layer, checkpoint, device, the checks)."""
    cam.cam_class(options.get("method", "gradcam"))  # the extra is installed and the method known, first
    samples = labelled_inputs(inputs)
    if limit:
        samples = sample_per_class(samples, limit, seed)
    return explain_samples(run_dir, samples, out, seed=seed, **options)


def explain_samples(
    run_dir: Union[str, os.PathLike],
    samples: Sequence[Sample],
    out: Optional[Union[str, os.PathLike]] = None,
    method: str = "gradcam",
    target_layer: str = "",
    checkpoint: str = "",
    device: str = "auto",
    seed: int = 0,
    randomisation: bool = True,
    road: bool = True,
    max_rank_correlation: float = cam.MAX_RANK_CORRELATION,
    min_road: float = cam.MIN_ROAD,
    flags_given: Sequence[str] = (),
) -> dict[str, Any]:
    """:func:`explain_images` of given samples (label -1: unknown)."""
    from aigbench.engine import build
    from aigbench.evaluation.predict import load_run

    cam.cam_class(method)
    run = Path(run_dir)
    args, ctx, model, ckpt, epoch = load_run(run, checkpoint, device, flags_given=flags_given)
    transform = build.build_transform(args, False)
    out_dir = Path(out) if out else run / "explain"
    model = cam.explainable(model).to(ctx.device)
    target: Optional[cam.Target] = None
    random_model: Optional[tuple[torch.nn.Module, cam.Target]] = None
    rows: list[dict[str, Any]] = []
    views_by_group: dict[tuple[int, str], list[np.ndarray]] = {}
    for k, s in enumerate(samples):
        row = {"path": s.path, "label": s.label if s.label >= 0 else "", "generator": s.generator, "method": method}
        image = decode_image(s.path)
        if image is None:
            rows.append({**row, "status": "unreadable"})
            continue
        prepared = transform.prepare(image)
        views = prepared if prepared.ndim == 4 else prepared[None]
        x = transform.normalizer.batch(views).to(ctx.device)
        if target is None:
            target = cam.resolve_target(model, x, target_layer)
            log.info("%s: %s maps at %s (%s)", run, method, target.name, target.source)
        maps = cam.compute_maps(model, x, target, method)
        with torch.no_grad():
            score = float(torch.sigmoid(cam.ScoreHead(model)(x)).mean())
        row.update(score=round(score, 6), target_layer=target.name, status="ok")
        if randomisation:
            if random_model is None:
                random_model = cam.randomised(model, x, target, seed)
            rm, rt = random_model
            rmaps = cam.compute_maps(rm, x, rt, method)
            rho = float(np.mean([cam.rank_correlation(a, b) for a, b in zip(maps, rmaps)]))
            row.update(randomisation_spearman=round(rho, 4), explains_model=rho <= max_rank_correlation)
        if road:
            value = float(np.mean(cam.road_scores(model, x, maps)))
            row.update(road=round(value, 6), faithful=abs(value) >= min_road)
        full = full_image_map(maps, view_boxes(transform, *image.shape[:2]), *image.shape[:2])
        view_overlay = overlay(views[-1] if transform.crops else views[0], maps[-1] if transform.crops else maps[0])
        caption = f"score {score:.3f}  {CLASS_WORDS.get(s.label, '')} {s.generator}  {method} @ {target.name}"
        name = f"maps/{k:05d}_{file_stem(Path(s.path).stem, 'image')}.png"
        write_png(out_dir / name, _panel(view_overlay, overlay(_fit(image, DISPLAY_SIDE), full), caption))
        row["overlay"] = name
        views_by_group.setdefault((s.label, s.generator), []).append(view_overlay)
        rows.append(row)
    if target is None:
        raise DatasetError(f"none of the {len(samples)} image(s) could be decoded; nothing to explain")
    grids = write_grids(out_dir, views_by_group, method)
    write_explanations_csv(out_dir / "explanations.csv", rows)
    summary = summarise(rows, method, target, ckpt, transform, seed, max_rank_correlation, min_road)
    summary["grids"] = grids
    write_json(out_dir / "summary.json", summary)
    return summary


def sample_per_class(samples: Sequence[Sample], n: int, seed: int) -> list[Sample]:
    """A seeded sample of at most ``n`` images of each label, in input order."""
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for label in sorted({s.label for s in samples}):
        idx = [i for i, s in enumerate(samples) if s.label == label]
        keep |= {idx[j] for j in rng.choice(len(idx), size=min(n, len(idx)), replace=False)}
    return [s for i, s in enumerate(samples) if i in keep]


def write_grids(out_dir: Path, groups: dict[tuple[int, str], list[np.ndarray]], method: str) -> list[str]:
    """One grid per class and generator (PNG and TensorBoard image); returns the PNGs' names."""
    from torch.utils.tensorboard import SummaryWriter

    names = []
    writer = SummaryWriter(str(out_dir / "tensorboard"))
    try:
        for (label, generator), views in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            grid = tile(views[:GRID_IMAGES])
            tag = CLASS_WORDS.get(label, str(label)) + (f"_{generator}" if generator else "")
            name = f"grids/{file_stem(tag, 'image')}.png"
            write_png(out_dir / name, grid)
            writer.add_image(f"explain/{method}/{tag}", grid, dataformats="HWC")
            names.append(name)
    finally:
        writer.close()
    return names


def write_explanations_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with atomic_open(path) as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})


def summarise(
    rows: Sequence[dict[str, Any]],
    method: str,
    target: cam.Target,
    ckpt: Path,
    transform: ImageTransform,
    seed: int,
    max_rank_correlation: float,
    min_road: float,
) -> dict[str, Any]:
    ok = [r for r in rows if r.get("status") == "ok"]
    rho = [r["randomisation_spearman"] for r in ok if "randomisation_spearman" in r]
    road = [r["road"] for r in ok if "road" in r]
    return {
        "tool": "aigbench explain",
        "method": method,
        "target_layer": target.name,
        "target_layer_source": target.source,
        "checkpoint": str(ckpt),
        "evaluation_crop": transform.crop_name,
        "seed": seed,
        "n_images": len(rows),
        "n_explained": len(ok),
        "n_unreadable": len(rows) - len(ok),
        "randomisation": {
            "test": "Adebayo et al. 2018: target layer and every later layer re-initialised as at construction "
            "(seeded); Spearman correlation above the threshold: the map does not explain the trained model",
            "max_rank_correlation": max_rank_correlation,
            "mean_spearman": round(float(np.mean(rho)), 4) if rho else None,
            "n_not_explaining": sum(not r["explains_model"] for r in ok if "explains_model" in r),
        },
        "road": {
            "test": "ROADCombined of pytorch-grad-cam (Rong et al. 2022), fake probability, percentiles "
            + ", ".join(map(str, cam.ROAD_PERCENTILES)),
            "min_road": min_road,
            "mean": round(float(np.mean(road)), 6) if road else None,
            "n_unfaithful": sum(not r["faithful"] for r in ok if "faithful" in r),
        },
    }


def report_selections(
    labels: Sequence[float],
    scores: Sequence[float],
    paths: Sequence[str],
    generators: Sequence[str],
    threshold: float,
    n: int,
    seed: int,
) -> dict[str, list[Sample]]:
    """What ``bench report --explain N`` explains of one test set (its ``predictions.csv``, as
    the report reads it): the ``n`` most confident mistakes at ``threshold`` (each file once),
    and a seeded random sample of ``n`` images per class."""
    from aigbench.metrics.binary import mistakes_by_confidence

    every = [Sample(p, int(y), g) for p, y, g in zip(paths, labels, generators)]
    mistakes: list[Sample] = []
    seen: set[str] = set()
    for i in mistakes_by_confidence(labels, scores, threshold):
        if every[i].path not in seen:
            seen.add(every[i].path)
            mistakes.append(every[i])
        if len(mistakes) == n:
            break
    return {"mistakes": mistakes, "sample": sample_per_class(every, n, seed)}
