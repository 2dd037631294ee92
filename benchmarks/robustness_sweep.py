"""Cost of a 21-point robustness sweep against 21 clean evaluation passes.

The sweep is what ``test_robust.py`` runs: ``run_grid`` over blur, noise and JPEG (7 points
each, one of them clean), with the model loaded once and the dataset built once, writing
metrics.json / predictions.csv per point and robustness.csv. The reference is 21 calls of
``evaluate_datasets`` on clean images with the same model, loader and outputs. Both use timm
resnet18 at 32x32 on cifake-mini/test; they alternate ``--rounds`` times.

    python benchmarks/robustness_sweep.py --images 2000 --rounds 3
    python benchmarks/robustness_sweep.py --full_size --images 200 --rounds 2

Prints seconds of each and the ratio of medians. Targets (issue 9, with the one-pass sweep
that decodes each image once per sweep): <= 1.0 at 32 px. ``--full_size``: photos larger than
1000 px (cifake-mini images enlarged to 1280 x 1024 and saved as JPEG, as a camera would),
centre-cropped to 224 for a small timm model (mobilenetv3_small_050), where decoding
dominates a clean pass: target <= 0.6.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, summary, write_subset  # noqa: E402

GRID = {
    "blur": [0, 0.5, 1, 1.5, 2, 3, 4],  # includes the clean point
    "noise": [1, 2, 5, 8, 10, 15, 20],
    "jpeg": [95, 90, 80, 70, 60, 50, 30],
}


def enlarge(spec: Path, folder: Path) -> Path:
    """The images of a JSON list enlarged to 1280 x 1024 and saved as JPEG (quality 92)."""
    import json

    import cv2

    folder.mkdir()
    items = []
    for i, (path, label) in enumerate(json.loads(spec.read_text())):
        img = cv2.resize(cv2.imread(path), (1280, 1024), interpolation=cv2.INTER_CUBIC)
        out = folder / f"{i:05d}.jpg"
        cv2.imwrite(str(out), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        items.append([str(out), label])
    big = folder / "photos.json"
    big.write_text(json.dumps(items))
    return big


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--full_size", action="store_true", help="photos > 1000 px, centre-cropped to 224")
    ap.add_argument(
        "--stage",
        choices=["before_resize", "after_resize"],
        default="before_resize",
        help="where perturbations apply (test_robust.py --perturb_stage)",
    )
    args = ap.parse_args()

    import torch

    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.datasets.transforms import ImageTransform
    from aigbench.engine.build import use_channels_last
    from aigbench.engine.dist import DistContext
    from aigbench.evaluation.evaluate import evaluate_datasets
    from aigbench.model_zoo.timm_backbone import TimmDetector
    from aigbench.robustness.grid import run_grid

    n_points = sum(len(v) for v in GRID.values())
    ctx = DistContext(torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_subset(args.data, "test", args.images, Path(tmp) / "test.json")
        torch.manual_seed(0)
        if args.full_size:
            spec = enlarge(spec, Path(tmp) / "photos")
            transform = ImageTransform(224, False, resize_mode="crop")
            backbone = "mobilenetv3_small_050"
            model = TimmDetector(backbone, image_size=224).eval()
        else:
            transform = ImageTransform(32, False)
            backbone = "resnet18"
            model = TimmDetector(backbone, image_size=32).eval()
        flags = argparse.Namespace(
            model="TimmDetector", backbone=backbone, image_size=transform.image_size, resize_mode=None
        )
        if use_channels_last(flags, ctx):  # as test_robust.py's build_model: NHWC on the CPU from 128 px
            model.to(memory_format=torch.channels_last)
        ds = ImageDataset.from_path(str(spec), transform, name="cifake_test")
        loaders = {"cifake_test": build_loader(ds, args.batch_size, train=False)}
        sweep, clean = [], []
        for r in range(args.rounds):
            start = time.perf_counter()
            rows = run_grid(model, loaders, GRID, ctx, Path(tmp) / f"sweep{r}", stage=args.stage)
            sweep.append(time.perf_counter() - start)
            assert len(rows) == n_points
            start = time.perf_counter()
            for i in range(n_points):
                evaluate_datasets(model, loaders, ctx, Path(tmp) / f"clean{r}" / str(i), log_images=False)
            clean.append(time.perf_counter() - start)
            print(f"round {r + 1}: sweep {sweep[-1]:.1f} s, {n_points} clean passes {clean[-1]:.1f} s", flush=True)
    ratio = statistics.median(sweep) / statistics.median(clean)
    what = (
        "mobilenetv3_small_050, 1280x1024 JPEG photos centre-cropped to 224"
        if args.full_size
        else ("timm resnet18, 32x32 cifake-mini")
    )
    print(
        f"\n{what}, {args.images} test images, {n_points}-point grid (blur/noise/jpeg x 7), {args.rounds} "
        "alternating rounds"
    )
    print(f"sweep          seconds: {summary(sweep)}")
    print(f"clean passes   seconds: {summary(clean)}")
    target = 0.6 if args.full_size else 1.0
    print(f"ratio sweep / clean passes: {ratio:.3f}  (target <= {target})")


if __name__ == "__main__":
    main()
