"""Thread defaults: aigbench's choice against manual settings, idle and with a competing process.

Trains the demo (``MyModel`` on the embedded CIFAKE images, 32x32, batch 32) with:

* ``default``: what aigbench does with no flag (OMP_WAIT_POLICY=PASSIVE, intra-op threads =
  the CPUs this process may use);
* ``spin forever`` (OMP_WAIT_POLICY=ACTIVE), ``spin 300k`` (GOMP_SPINCOUNT=300000: libgomp's
  own default when no policy is set, i.e. torch's default) and ``spin 30k``, same threads;
* ``threads=1`` set by hand with ``--threads``.

Each configuration runs ``--rounds`` times, interleaved, on an idle machine and again with one
competing CPU-bound process (``while True: pass``). Images/s are read from ``log.jsonl``
(epochs after the first). Prints the median of each and, per case, the default's ratio to
the best manual setting (target: >= 0.90).

    python benchmarks/threads.py --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import summary  # noqa: E402


def train(project: Path, out: str, flags: list[str], env: dict[str, str], epochs: int) -> float:
    cmd = [
        sys.executable,
        "train.py",
        "--data_path",
        "aigbench:demo",
        "--test_data_path",
        "aigbench:demo",
        "--epochs",
        str(epochs),
        "--test_period",
        "1000",
        "--image_size",
        "32",
        "--batch_size",
        "32",
        "--width",
        "32",
        "--output_dir",
        out,
        "--no_progress",
        "--device",
        "cpu",
        *flags,
    ]
    subprocess.run(cmd, cwd=project, check=True, capture_output=True, text=True, env=env)
    log = [json.loads(x) for x in (project / out / "log.jsonl").read_text().splitlines()]
    return statistics.mean(float(e["train_images_per_s"]) for e in log[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4)
    args = ap.parse_args()

    from aigbench.engine.threads import available_cpus
    from aigbench.scaffold import render_template

    n, how = available_cpus()
    base_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    configs = {
        "default": ([], {}),
        "spin forever": ([], {"OMP_WAIT_POLICY": "ACTIVE"}),
        "spin 300k": ([], {"GOMP_SPINCOUNT": "300000"}),  # libgomp's own default (policy unset)
        "spin 30k": ([], {"GOMP_SPINCOUNT": "30000"}),
        "threads=1": (["--threads", "1"], {}),
    }
    print(f"usable CPUs: {n} ({how})", flush=True)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for path, text in render_template("base", project).items():
            path.write_text(text)
        for case in ("idle", "one competing process"):
            hog = None
            if case != "idle":
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                results[case] = {name: [] for name in configs}
                for r in range(args.rounds):
                    for name, (flags, env) in configs.items():
                        rate = train(project, f"{case[:4]}_{name}_{r}", flags, {**base_env, **env}, args.epochs)
                        results[case][name].append(rate)
                        print(f"{case:>22} round {r + 1} {name:>10}: {rate:7.1f} img/s", flush=True)
            finally:
                if hog is not None:
                    hog.kill()
    print()
    for case, by_config in results.items():
        print(f"{case}:")
        for name, rates in by_config.items():
            print(f"  {name:>10} images/s: {summary(rates)}")
        medians = {k: statistics.median(v) for k, v in by_config.items()}
        best_manual = max(v for k, v in medians.items() if k != "default")
        print(f"  default / best other setting: {medians['default'] / best_manual:.3f}  (target >= 0.90)")


if __name__ == "__main__":
    main()
