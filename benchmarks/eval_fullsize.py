"""Evaluation of full-size photos against a bare loop of the official algorithm (issue 23).

The photos: ``--images`` JPEGs (quality 92) from 1024 x 768 to 3072 x 2304 pixels, tiled from
cifake-mini photos enlarged to 128 px (smooth regions and edges, as a camera photo has), built
once in a temporary folder. The model: the one ``bench init`` generates (``MyModel``, width 32)
at 224 x 224 (``resize``: the whole photo to the square, bilinear, antialiased).

* **bare**: the official algorithm in a plain loop: PIL decode, torchvision ``Resize((224, 224))``
  + ``ToTensor`` + ``Normalize`` on PIL images, batches of ``--batch``, the unfused model under
  ``torch.inference_mode``;
* **aigbench**: ``ImageDataset`` + ``build_loader`` + ``engine.loop.predict`` at default settings
  (OpenCV decode, torchvision-exact resize, fused BatchNorm, micro-batches of 16);
* **aigbench --fast_decode**: the same with JPEGs decoded at a reduced DCT scale.

Each mode runs in its own process (so that its peak RSS is its own), ``--rounds`` times,
interleaved; the time is that of the evaluation loop alone (imports and model building excluded).
Prints the median seconds of each, the ratios against bare (goals: default <= 0.75, fast
decode <= 0.5) and each mode's peak RSS (goal: default <= 1.5 GB).

    python benchmarks/eval_fullsize.py --images 160 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA  # noqa: E402

SIZES = ((768, 1024), (1536, 2048), (2304, 3072), (1200, 1600), (1080, 1920))


def build_photos(data: Path, out: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    root = data / "train" / "REAL"
    if not root.is_dir():
        root = Path(__file__).resolve().parent.parent / "tests" / "data" / "cifake" / "train" / "REAL"
    files = sorted(os.listdir(root))[:200]
    tiles = [np.asarray(Image.open(root / f).convert("RGB").resize((128, 128), Image.BICUBIC)) for f in files]
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n):
        h, w = SIZES[k % len(SIZES)]
        rows = [np.concatenate([tiles[i] for i in rng.integers(0, len(tiles), w // 128 + 1)], axis=1)[:, :w]
                for _ in range(h // 128 + 1)]  # fmt: skip
        p = out / f"photo_{k:04d}.jpg"
        Image.fromarray(np.ascontiguousarray(np.concatenate(rows)[:h])).save(p, quality=92)
        paths.append(p)
    return paths


def load_model(size: int):
    import importlib

    import torch

    from aigbench.scaffold import render_template

    folder = Path(tempfile.mkdtemp(prefix="model_"))
    for path, text in render_template("base", folder).items():
        if path.name == "mymodel.py":
            path.write_text(text)
    sys.path.insert(0, str(folder))
    torch.manual_seed(0)
    model = importlib.import_module("mymodel").MyModel(width=32).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():  # BatchNorm statistics as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model


def worker(mode: str, photos: Path, batch: int, size: int) -> dict:
    import torch

    torch.set_num_threads(2)
    paths = sorted(photos.glob("*.jpg"))
    model = load_model(size)
    if mode == "bare":
        from PIL import Image
        from torchvision import transforms as T

        tf = T.Compose(
            [T.Resize((size, size)), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
        )
        start = time.perf_counter()
        scores = []
        with torch.inference_mode():
            for i in range(0, len(paths), batch):
                x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[i : i + batch]])
                n = x.shape[0]
                out = model(x, torch.zeros(n), path=[""] * n, generator=[""] * n, index=torch.arange(n))
                scores.append(out["pred_label"])
        seconds = time.perf_counter() - start
    else:
        from aigbench.datasets.dataset import ImageDataset, build_loader
        from aigbench.datasets.layouts import Sample
        from aigbench.datasets.transforms import ImageTransform
        from aigbench.engine.dist import DistContext
        from aigbench.engine.loop import predict

        transform = ImageTransform(size, False, "resize")
        ds = ImageDataset([Sample(str(p), 0, "") for p in paths], transform, "photos", fast_decode=mode == "fast")
        loader = build_loader(ds, batch, False, 0)
        start = time.perf_counter()
        predict(model, loader, DistContext(torch.device("cpu")), show_progress=False)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=160)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    ap.add_argument("--photos", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.photos, args.batch, args.size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp)
        build_photos(args.data, photos, args.images)
        results: dict[str, list[dict]] = {"bare": [], "default": [], "fast": []}
        for r in range(args.rounds):
            for mode in results:
                cmd = [sys.executable, __file__, "--worker", mode, "--photos", str(photos), "--batch", str(args.batch),
                       "--size", str(args.size)]  # fmt: skip
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                results[mode].append(json.loads(out))
                print(f"round {r + 1} {mode:<8} {results[mode][-1]['seconds']:7.2f} s", flush=True)
    med = {m: statistics.median(x["seconds"] for x in v) for m, v in results.items()}
    rss = {m: max(x["peak_rss_mb"] for x in v) for m, v in results.items()}
    print(f"\n{args.images} full-size JPEGs, batch {args.batch}, {args.size} px, {args.rounds} interleaved rounds")
    for m in results:
        print(f"  {m:<8} median {med[m]:7.2f} s  ratio to bare {med[m] / med['bare']:.3f}  peak RSS {rss[m]:7.0f} MB")
    print("goals: default <= 0.75, fast <= 0.5 of bare; default peak RSS <= 1536 MB")


if __name__ == "__main__":
    main()
