"""GPU training throughput: train.py against two bare loops (needs CUDA; exits with a message otherwise).

timm resnet50 at 224 with AMP (bfloat16 where supported), AdamW, BCE on one logit, batch 128:

* ``bare/gpu``: a loop over images already decoded, resized and stored on the GPU (uint8),
  normalized on the GPU: the ceiling;
* ``bare/torchvision``: a loop over a standard torchvision ``ImageFolder`` DataLoader (PIL
  decode, ``Resize(224)``, ``ToTensor``, ``Normalize``; 8 workers, pinned memory);
* ``train.py``: the generated script (``--num_workers auto``, channels_last, TF32, AMP).

Images: ``--images`` cifake-mini images enlarged to 256 px and written as JPEG (decoding
costs what it costs on real data). Prints images/s of each, train.py's ratio to each
(targets: >= 0.9 of ``bare/gpu`` where the CPUs keep up) and the GPU busy fraction during
train.py (``torch.cuda.utilization``, sampled every 0.5 s; target >= 90 %).

    python benchmarks/gpu_train.py --images 8000 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, write_subset  # noqa: E402


def make_images(data: Path, n: int, root: Path) -> Path:
    """An ImageFolder tree (0_real, 1_fake) of JPEGs enlarged to 256 px, and its JSON list."""
    import cv2

    spec = write_subset(data, "train", n, root / "src.json")
    items = []
    for i, (path, label) in enumerate(json.loads(spec.read_text())):
        folder = root / "tree" / ("1_fake" if label else "0_real")
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{i:06d}.jpg"
        cv2.imwrite(
            str(out),
            cv2.resize(cv2.imread(path), (256, 256), interpolation=cv2.INTER_CUBIC),
            [cv2.IMWRITE_JPEG_QUALITY, 92],
        )
        items.append([str(out), label])
    listing = root / "train.json"
    listing.write_text(json.dumps(items))
    return listing


def _model_and_opt():
    import timm
    import torch

    model = timm.create_model("resnet50", num_classes=1).cuda().to(memory_format=torch.channels_last)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-4), torch.nn.BCEWithLogitsLoss()


def _dtype():
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def bare_gpu(listing: Path, batch: int, epochs: int) -> float:
    import cv2
    import numpy as np
    import torch

    items = json.loads(listing.read_text())
    imgs = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB), (224, 224)) for p, _ in items])
    x = torch.from_numpy(imgs).cuda()
    y = torch.tensor([float(lbl) for _, lbl in items], device="cuda")
    mean = torch.tensor([0.485, 0.456, 0.406], device="cuda").view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225], device="cuda").view(1, 3, 1, 1) * 255
    model, opt, loss_fn = _model_and_opt()
    scaler = torch.amp.GradScaler(enabled=_dtype() == torch.float16)
    rates = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        perm = torch.randperm(len(x), device="cuda")
        n = len(x) // batch * batch
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            inp = ((x[idx].permute(0, 3, 1, 2).float() - mean) / std).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=_dtype()):
                loss = loss_fn(model(inp).squeeze(1).float(), y[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - start))
    return statistics.mean(rates[1:])


def bare_torchvision(tree: Path, batch: int, epochs: int) -> float:
    import torch
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.Resize(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(str(tree), tf),
        batch_size=batch,
        shuffle=True,
        num_workers=8,
        pin_memory=True,
        drop_last=True,
        persistent_workers=True,
    )
    model, opt, loss_fn = _model_and_opt()
    scaler = torch.amp.GradScaler(enabled=_dtype() == torch.float16)
    rates = []
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for x, y in loader:
            x = x.cuda(non_blocking=True).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=_dtype()):
                loss = loss_fn(model(x).squeeze(1).float(), y.cuda().float())
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            n += len(y)
        torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - start))
    return statistics.mean(rates[1:])


def train_py(project: Path, listing: Path, batch: int, epochs: int) -> tuple[float, float]:
    import torch

    busy: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                busy.append(float(torch.cuda.utilization()))
            except Exception:
                return
            time.sleep(0.5)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    cmd = [
        sys.executable,
        "train.py",
        "--model",
        "TimmDetector",
        "--backbone",
        "resnet50",
        "--image_size",
        "224",
        "--resize_mode",
        "resize",
        "--data_path",
        str(listing),
        "--test_data_path",
        str(listing),
        "--epochs",
        str(epochs),
        "--test_period",
        "1000",
        "--batch_size",
        str(batch),
        "--output_dir",
        "gpu",
        "--no_progress",
        "--device",
        "cuda",
        "--lr",
        "1e-4",
    ]
    subprocess.run(cmd, cwd=project, check=True, capture_output=True, text=True)
    done.set()
    log = [json.loads(x) for x in (project / "gpu" / "log.jsonl").read_text().splitlines()]
    return statistics.mean(e["train_images_per_s"] for e in log[1:]), statistics.mean(busy) if busy else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=8000)
    ap.add_argument("--batch_size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu_train.py needs a CUDA GPU; none is available here")
    from aigbench.scaffold import render_template

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path, text in render_template("base", root).items():
            path.write_text(text)
        listing = make_images(args.data, args.images, root)
        ours, busy = train_py(root, listing, args.batch_size, args.epochs)
        gpu = bare_gpu(listing, args.batch_size, args.epochs)
        tv = bare_torchvision(root / "tree", args.batch_size, args.epochs)
    print(
        f"{torch.cuda.get_device_name()}: resnet50 224 px, AMP {_dtype()}, batch {args.batch_size}, "
        f"{args.images} JPEGs of 256 px"
    )
    print(f"train.py           {ours:8.1f} img/s  (GPU busy {busy:.0f} %, target >= 90 %)")
    print(f"bare/gpu           {gpu:8.1f} img/s  ratio train.py / bare {ours / gpu:.3f}  (target >= 0.9)")
    print(f"bare/torchvision   {tv:8.1f} img/s  ratio train.py / torchvision {ours / tv:.3f}")


if __name__ == "__main__":
    main()
