"""Training throughput of a generated ``train.py`` against a bare PyTorch loop.

Both train timm resnet18 (single logit, AdamW, BCE) at 32x32 on the same cifake-mini images
with the same batch size and threads. The bare loop gets the images already decoded,
normalized and stacked in memory; ``train.py`` decodes JPEGs, runs the albumentations
pipeline and does its bookkeeping (validation, progress bar, TensorBoard, log.jsonl).
Each run trains 3 epochs; epochs 2 and 3 are timed (the first warms up). The two alternate
``--rounds`` times, since CPU timings on a shared machine are noisy and drift: the ratio
reported is the median of the per-round ratios (each pair ran back to back).

    python benchmarks/train_throughput.py --images 2000 --rounds 3

Prints images/s of each and the ratio of medians (target: >= 0.95; with ``--cache_decoded ram``,
which decodes each image once as the bare loop does: > 1.0).

The bare loop runs twice per round: with torch's defaults (the loop a researcher writes), and
with the two settings that ``train.py`` chooses (torch's fused AdamW, one kernel per step, and
``OMP_WAIT_POLICY=PASSIVE``, which ``benchmarks/threads.py`` measures: a few per cent slower on an
idle machine, twice as fast with a competing process). The second ratio is the framework's
overhead alone: decoding, augmentation and bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, summary, write_subset  # noqa: E402


def bare_loop(train_json: Path, batch_size: int, fused: bool = False, epochs: int = 3) -> float:
    """images/s of epochs 2.. of a plain loop over pre-decoded tensors."""
    import cv2
    import numpy as np
    import timm
    import torch

    items = json.loads(train_json.read_text())
    imgs = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p, _ in items]
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    x = torch.from_numpy(
        np.stack([(i.astype(np.float32) / 255 - mean) / std for i in imgs]).transpose(0, 3, 1, 2).copy()
    )
    y = torch.tensor([float(label) for _, label in items])
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused or None)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = (len(x) // batch_size) * batch_size
    rates = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        start = time.perf_counter()
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = loss_fn(model(x[idx]).squeeze(1), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rates.append(n / (time.perf_counter() - start))
    return statistics.mean(rates[1:])


def train_py(
    project: Path, train_json: Path, test_json: Path, batch_size: int, out: str, extra: tuple[str, ...] = ()
) -> float:
    """images/s of epochs 2.. of a real ``train.py`` run (read back from its log.jsonl)."""
    cmd = [
        sys.executable,
        "train.py",
        "--model",
        "TimmDetector",
        "--backbone",
        "resnet18",
        "--image_size",
        "32",
        "--data_path",
        str(train_json),
        "--test_data_path",
        str(test_json),
        "--batch_size",
        str(batch_size),
        "--epochs",
        "2",
        "--test_period",
        "1000",
        "--output_dir",
        out,
        "--lr",
        "1e-3",
        "--no-amp",
        *extra,
    ]
    subprocess.run(cmd, cwd=project, check=True, capture_output=True, text=True)
    log = [json.loads(line) for line in (project / out / "log.jsonl").read_text().splitlines()]
    return statistics.mean(float(e["train_images_per_s"]) for e in log[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch_size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--cache_decoded",
        choices=["none", "ram", "disk"],
        default="none",
        help="train.py --cache_decoded (the bare loop always holds decoded images in memory)",
    )
    ap.add_argument("--bare", type=Path, help=argparse.SUPPRESS)  # internal: run the bare loop only
    ap.add_argument("--fused", action="store_true", help=argparse.SUPPRESS)  # internal: its AdamW fused
    args = ap.parse_args()
    if args.bare:
        print(bare_loop(args.bare, args.batch_size, args.fused))
        return

    from aigbench.scaffold import render_template

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for path, text in render_template("base", project).items():
            path.write_text(text)
        train_json = write_subset(args.data, "train", args.images, project / "train.json")
        test_json = write_subset(args.data, "test", 64, project / "test.json")
        ours, bare, fused = [], [], []

        def run_bare(*extra: str, env: dict[str, str]) -> float:
            cmd = [sys.executable, __file__, "--bare", str(train_json), "--batch_size", str(args.batch_size), *extra]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            return float(proc.stdout.strip().splitlines()[-1])

        plain_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        for r in range(args.rounds):
            extra = ("--cache_decoded", args.cache_decoded)
            ours.append(train_py(project, train_json, test_json, args.batch_size, f"out{r}", extra))
            bare.append(run_bare(env=plain_env))
            fused.append(run_bare("--fused", env={**plain_env, "OMP_WAIT_POLICY": "PASSIVE"}))
            print(
                f"round {r + 1}: train.py {ours[-1]:.1f} img/s, bare loop {bare[-1]:.1f} img/s "
                f"(train.py's settings {fused[-1]:.1f}), ratios {ours[-1] / bare[-1]:.3f} ({ours[-1] / fused[-1]:.3f})",
                flush=True,
            )
    ratio = statistics.median(o / b for o, b in zip(ours, bare))
    ratio_fused = statistics.median(o / b for o, b in zip(ours, fused))
    print(
        f"\ntimm resnet18, 32x32, {args.images} cifake-mini images, batch {args.batch_size}, "
        f"{args.rounds} alternating rounds, train.py --cache_decoded {args.cache_decoded}"
    )
    print(f"train.py   images/s: {summary(ours)}")
    print(f"bare loop  images/s: {summary(bare)}")
    print(f"bare loop, train.py's settings: {summary(fused)}")
    print(f"ratio train.py / bare loop (median of per-round ratios): {ratio:.3f}  (target >= 0.95)")
    print(f"ratio train.py / bare loop with train.py's settings (the framework's overhead): {ratio_fused:.3f}")


if __name__ == "__main__":
    main()
