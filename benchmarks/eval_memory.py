"""Memory at scale: evaluation keeps only scores, and loader workers do not copy the sample list.

1. Evaluates ``--images`` (100 000) tiny images stored in parquet (cifake-mini's JPEG bytes,
   repeated, in row groups of 1 000) with a small model, and prints how much the process's
   RSS grew during that evaluation, after a warm-up evaluation of 1 000 images has loaded
   the model's kernels (target: < 50 MB).
2. Builds a dataset of ``--entries`` (1 000 000) samples and reads every one of them through a
   loader with 4 workers (an epoch). Prints what the workers add: their proportional set size
   (PSS, pages shared with the parent counted once), less that of the same 4 workers over
   1 000 entries (target: < 200 MB). The same with the list kept as Python ``Sample`` tuples
   is printed beside it.

    python benchmarks/eval_memory.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA  # noqa: E402


def rss_mb(pid: str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def write_parquet(data: Path, n: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = []
    for cls, label in (("REAL", 0), ("FAKE", 1)):
        folder = data / "test" / cls
        files += [(folder / f, label) for f in sorted(os.listdir(folder))]
    blobs = [(p.read_bytes(), y) for p, y in files]
    rows = [blobs[i % len(blobs)] for i in range(n)]
    table = pa.table({"image": [b for b, _ in rows], "label": [y for _, y in rows]})
    pq.write_table(table, path, row_group_size=1000)


def tiny_model():
    """A one-convolution detector: the benchmark measures memory, not the model."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 3)

        def forward(self, image, label, *args, **kwargs):
            p = torch.sigmoid(self.conv(image).mean(dim=(1, 2, 3)))
            return {"backward_loss": p.sum(), "pred_label": p, "visual_loss": {}, "visual_image": {}}

    return Tiny().eval()


def evaluation_growth(data: Path, n: int, tmp: Path) -> float:
    import torch

    from aigbench.datasets.dataset import ImageDataset, build_loader
    from aigbench.datasets.transforms import ImageTransform
    from aigbench.engine.dist import DistContext
    from aigbench.evaluation.evaluate import evaluate_datasets

    pq_path = tmp / "tiny.parquet"
    write_parquet(data, n, pq_path)
    ds = ImageDataset.from_path(str(pq_path), ImageTransform(32, False), name="tiny")
    model = tiny_model()
    ctx = DistContext(torch.device("cpu"))
    warm = ImageDataset(ds.samples[:1000], ds.transform, "warm")  # loads the model's kernels first
    evaluate_datasets(
        model, {"warm": build_loader(warm, 256, train=False)}, ctx, tmp / "warm", log_images=False, show_progress=False
    )
    before = rss_mb()
    evaluate_datasets(
        model, {"tiny": build_loader(ds, 256, train=False)}, ctx, tmp / "out", log_images=False, show_progress=False
    )
    return rss_mb() - before


def worker_cost(n: int, table: bool) -> float:
    """PSS of 4 workers after each read its share of ``n`` entries (one epoch)."""
    from torch.utils.data import DataLoader, Dataset

    from aigbench.datasets.layouts import Sample
    from aigbench.datasets.table import SampleTable

    samples = [
        Sample(f"/data/some/long/folder/name/generator_{i % 7}/{i:08d}.png", i % 2, f"gen{i % 7}") for i in range(n)
    ]
    held = SampleTable(samples) if table else samples
    del samples

    class Reader(Dataset):
        def __len__(self):
            return len(held)

        def __getitem__(self, i):
            s = held[i]
            return len(s.path) + s.label

    loader = DataLoader(Reader(), batch_size=1024, num_workers=4, persistent_workers=True)
    it = iter(loader)
    for _ in it:
        pass
    cost = sum(pss_mb(w.pid) for w in it._workers)
    it._shutdown_workers()
    return cost


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", message="This DataLoader will create")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--entries", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        growth = evaluation_growth(args.data, args.images, Path(tmp))
    print(f"evaluating {args.images} images from parquet: RSS grew {growth:.1f} MB  (target < 50 MB)", flush=True)
    for table in (True, False):
        cost = worker_cost(args.entries, table) - worker_cost(1000, table)
        kind = "SampleTable (numpy arrays)" if table else "Python list of Sample tuples"
        target = "  (target < 200 MB)" if table else ""
        print(f"4 workers reading {args.entries} entries, {kind}: they add {cost:.1f} MB{target}", flush=True)


if __name__ == "__main__":
    main()
