"""Frozen backbones: epochs that train the head on cached features against epochs that run the
backbone on every image.

A timm probe (``TimmDetector --mode probe``, ``--backbone``, weights from a local file) trains
``--epochs`` on cifake-mini with and without ``--cache_features`` (no augmentation in either, so
they train the same head on the same features). Prints the mean epoch time of each (epochs
after the first; with the cache, the one-off feature pass is reported apart) and their ratio
(target: epochs 2+ >= 10x faster), with the final validation AUROC of both.

    python benchmarks/frozen_features.py --images 1000 --backbone resnet50 --image_size 96
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, write_subset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--backbone", default="resnet50")
    ap.add_argument("--image_size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    import timm
    import torch

    from aigbench.scaffold import render_template

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for path, text in render_template("base", project).items():
            path.write_text(text)
        weights = project / "backbone.pth"
        torch.manual_seed(0)
        torch.save(timm.create_model(args.backbone, num_classes=0).state_dict(), weights)
        train = write_subset(args.data, "train", args.images, project / "train.json")
        test = write_subset(args.data, "test", 64, project / "test.json")
        common = [
            "--model",
            "TimmDetector",
            "--backbone",
            args.backbone,
            "--mode",
            "probe",
            "--pretrained_path",
            str(weights),
            "--image_size",
            str(args.image_size),
            "--resize_mode",
            "resize",
            "--data_path",
            str(train),
            "--test_data_path",
            str(test),
            "--epochs",
            str(args.epochs),
            "--no-hflip",
            "--val_split",
            "0.1",
            "--test_period",
            "1000",
            "--no_progress",
            "--batch_size",
            "64",
        ]
        result = {}
        for cached in (False, True):
            out = f"run_{cached}"
            proc = subprocess.run(
                [sys.executable, "train.py", *common, "--output_dir", out, *(["--cache_features"] if cached else [])],
                cwd=project,
                check=True,
                capture_output=True,
                text=True,
            )
            log = [json.loads(x) for x in (project / out / "log.jsonl").read_text().splitlines()]
            m = re.search(r"computed once in ([0-9.]+) s", proc.stdout)
            result[cached] = {
                "epochs": [e["train_epoch_time_s"] for e in log],
                "auroc": log[-1]["val_auroc"],
                "features_s": float(m.group(1)) if m else None,
            }
    full = statistics.mean(result[False]["epochs"][1:])
    head = statistics.mean(result[True]["epochs"][1:])
    print(f"{args.backbone} probe at {args.image_size}px, {args.images} cifake-mini images, {args.epochs} epochs")
    print(
        f"backbone every epoch:  epochs {', '.join(f'{e:.2f}' for e in result[False]['epochs'])} s, "
        f"final val AUROC {result[False]['auroc']:.4f}"
    )
    print(
        f"--cache_features:      feature pass {result[True]['features_s']:.2f} s, epochs "
        f"{', '.join(f'{e:.3f}' for e in result[True]['epochs'])} s, final val AUROC {result[True]['auroc']:.4f}"
    )
    print(f"epoch 2+ speed-up: {full / head:.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
