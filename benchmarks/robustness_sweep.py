"""Cost of a 21-point robustness sweep against 21 clean evaluation passes.

The sweep is what ``test_robust.py`` runs: ``run_grid`` over blur, noise and JPEG (7 points
each, one of them clean), with the model loaded once and the dataset built once, writing
metrics.json / predictions.csv per point and robustness.csv. The reference is 21 calls of
``evaluate_datasets`` on clean images with the same model, loader and outputs. Both use timm
resnet18 at 32x32 on cifake-mini/test; they alternate ``--rounds`` times.

    python benchmarks/robustness_sweep.py --images 2000 --rounds 3

Prints seconds of each and the ratio of medians (target: <= 1.15).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import torch

    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.datasets.transforms import ImageTransform
    from aigbench.engine.dist import DistContext
    from aigbench.engine.evaluate import evaluate_datasets
    from aigbench.model_zoo.timm_backbone import TimmDetector
    from aigbench.robustness.grid import run_grid

    n_points = sum(len(v) for v in GRID.values())
    ctx = DistContext(torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_subset(args.data, "test", args.images, Path(tmp) / "test.json")
        ds = ImageDataset.from_path(str(spec), ImageTransform(32, False), name="cifake_test")
        loaders = {"cifake_test": build_loader(ds, args.batch_size, train=False)}
        torch.manual_seed(0)
        model = TimmDetector("resnet18", image_size=32).eval()
        sweep, clean = [], []
        for r in range(args.rounds):
            start = time.perf_counter()
            rows = run_grid(model, loaders, GRID, ctx, Path(tmp) / f"sweep{r}")
            sweep.append(time.perf_counter() - start)
            assert len(rows) == n_points
            start = time.perf_counter()
            for i in range(n_points):
                evaluate_datasets(model, loaders, ctx, Path(tmp) / f"clean{r}" / str(i), log_images=False)
            clean.append(time.perf_counter() - start)
            print(f"round {r + 1}: sweep {sweep[-1]:.1f} s, {n_points} clean passes {clean[-1]:.1f} s", flush=True)
    ratio = statistics.median(sweep) / statistics.median(clean)
    print(
        f"\ntimm resnet18, 32x32, {args.images} cifake-mini test images, {n_points}-point grid "
        f"(blur/noise/jpeg x 7), {args.rounds} alternating rounds"
    )
    print(f"sweep          seconds: {summary(sweep)}")
    print(f"clean passes   seconds: {summary(clean)}")
    print(f"ratio sweep / clean passes: {ratio:.3f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
