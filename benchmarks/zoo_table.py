"""Train every zoo model from scratch on cifake-mini/train and test on cifake-mini/test.

Each model runs through the scripts that ``bench init model_zoo`` writes, with the same data
budget: the same images, ``--epochs``, batch size and 32x32 input, on the CPU. Prints a
Markdown table of accuracy, AUROC and AP (from each run's metrics.json of the last epoch),
training images/s (log.jsonl) and wall time.

    python benchmarks/zoo_table.py --epochs 2 [--train_images 10000] [--only npr,dct]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, write_subset  # noqa: E402

# key in zoo.json → flags that bring the paper's settings down to 32x32 CPU scale
OVERRIDES = {
    "timm_tune": ["--backbone", "resnet18", "--lr", "1e-3"],
    "timm_probe": ["--backbone", "resnet18"],
    "cnnspot": ["--lr", "1e-3"],  # from scratch (no ImageNet weights): a larger lr than the paper's 1e-4
    "univfd": ["--clip_model", "ViT-B/32", "--lr", "1e-3"],  # ViT-L/14 is far beyond a 2-core budget
    "npr": ["--lr", "1e-3"],
    "dct": [],
    "pca_lr": ["--epochs", "1"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--train_images", type=int, default=10000)
    ap.add_argument("--test_images", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--only", default="", help="comma-separated zoo keys")
    ap.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = ap.parse_args()

    from aigbench.scaffold import render_template

    work = Path(args.keep or tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    for path, text in render_template("model_zoo", work).items():
        path.write_text(text)
    train = write_subset(args.data, "train", args.train_images, work / "train.json")
    test = write_subset(args.data, "test", args.test_images, work / "cifake_test.json")
    (work / "test_datasets.json").write_text(json.dumps({"cifake_test": str(test)}))
    keys = [k for k in OVERRIDES if not args.only or k in args.only.split(",")]
    rows = []
    env = {**os.environ, "PYTHON": sys.executable}
    for key in keys:
        flags = [
            "--data_path",
            str(train),
            "--image_size",
            "32",
            "--resize_mode",
            "resize",
            "--batch_size",
            str(args.batch_size),
            "--epochs",
            str(args.epochs),
            "--test_period",
            "1000",
            "--warmup_epochs",
            "0",
            *OVERRIDES[key],
        ]
        start = time.time()
        proc = subprocess.run(["sh", f"train_{key}.sh", *flags], cwd=work, env=env, capture_output=True, text=True)
        wall = time.time() - start
        if proc.returncode != 0:
            print(f"{key} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        log = [json.loads(x) for x in (work / "output_dir" / key / "log.jsonl").read_text().splitlines()]
        m = log[-1]
        rows.append(
            (
                key,
                m["test_cifake_test_accuracy"],
                m["test_cifake_test_auroc"],
                m["test_cifake_test_ap"],
                sum(x["train_images_per_s"] for x in log) / len(log),
                wall,
            )
        )
        print(f"{key}: done in {wall:.0f} s", flush=True)
    print(
        f"\n{args.train_images} train / {args.test_images} test cifake-mini images, 32x32, {args.epochs} epoch(s), "
        f"batch {args.batch_size}, CPU, from scratch\n"
    )
    print("| model | accuracy | AUROC | AP | train images/s | wall s |")
    print("|---|---|---|---|---|---|")
    for key, acc, auroc, ap_, ips, wall in rows:
        print(f"| {key} | {acc:.4f} | {auroc:.4f} | {ap_:.4f} | {ips:.0f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
