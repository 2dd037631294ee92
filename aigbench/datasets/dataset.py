"""A torch Dataset over :class:`~aigbench.datasets.layouts.Sample` lists, and its loaders."""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from aigbench.datasets.cache import DecodedCache
from aigbench.datasets.layouts import DatasetError, Sample, load_samples
from aigbench.datasets.shards import ShardBatchSampler, shard_ids
from aigbench.datasets.sources import is_row_path, load_image
from aigbench.datasets.table import SampleTable
from aigbench.datasets.transforms import ImageTransform, Normalizer
from aigbench.imageops.io import decode_image_reduced

# A training batch replaces an undecodable file by the next decodable one, up to this many tries.
MAX_SUBSTITUTE_TRIES = 16


class ImageDataset(Dataset):
    """Yields ``{"image", "label", "path", "generator", "index"}``.

    An undecodable file yields ``{"skipped": path, "index"}`` so that the loop can warn once
    with its name and count it. With ``substitute=True`` (training) it yields the next
    decodable sample instead, still marked ``"skipped"``: every batch keeps its size, so
    no process of a distributed run skips a step that the others take (which would hang DDP).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: ImageTransform,
        name: str = "",
        substitute: bool = False,
        cache: Optional[DecodedCache] = None,
        provenance: Optional[dict[str, Any]] = None,
        fast_decode: bool = False,
    ) -> None:
        self.samples = SampleTable.of(samples)  # flat arrays: forked workers do not copy them
        self.transform = transform
        self.name = name
        self.substitute = substitute
        self.cache = cache  # --cache_decoded: pixels decoded once, shared by every worker
        self.provenance = provenance  # where the samples came from (datasets.provenance), for results
        self.fast_decode = fast_decode  # --fast_decode: JPEGs decoded at a reduced DCT scale (imageops.io)

    def view(self, transform: ImageTransform) -> ImageDataset:
        """The same samples through another transform (a robustness point); ``self`` is unchanged."""
        return ImageDataset(
            self.samples, transform, self.name, self.substitute, self.cache, self.provenance, self.fast_decode
        )

    def decode(self, index: int) -> Optional[np.ndarray]:
        """The RGB uint8 pixels of sample ``index`` (from the decoded cache when there is one),
        or None when its file cannot be decoded."""
        if self.cache is not None:
            return self.cache[index]
        path = self.samples.path(index)
        floor = self.reduced_decode_floor
        if floor and not is_row_path(path):
            return decode_image_reduced(path, floor)[0]
        return load_image(path)

    @property
    def reduced_decode_floor(self) -> Optional[int]:
        """``--fast_decode`` in effect: the fewest pixels a reduced JPEG decode keeps on each side
        (:meth:`ImageTransform.decode_floor`); None when every file is decoded fully."""
        return self.transform.decode_floor() if self.fast_decode else None

    @classmethod
    def from_path(
        cls, path: str, transform: ImageTransform, split: Optional[str] = None, layout: str = "auto", name: str = ""
    ) -> ImageDataset:
        return cls(load_samples(path, split, layout), transform, name or os.path.basename(str(path).rstrip("/")))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        img = self.decode(index)
        if img is not None:
            return self._item(index, img)
        if self.substitute:
            for k in range(1, min(MAX_SUBSTITUTE_TRIES, len(self.samples))):
                j = (index + k) % len(self.samples)
                other = self.decode(j)
                if other is not None:
                    return {**self._item(j, other), "skipped": s.path}
            raise DatasetError(
                f"{self.name or 'training data'}: {s.path} and the {MAX_SUBSTITUTE_TRIES - 1} files after it "
                "are all undecodable; check the training data's files"
            )
        return {"skipped": s.path, "index": index}

    def _item(self, index: int, img: np.ndarray) -> dict[str, Any]:
        s = self.samples[index]
        return {
            "image": self.transform.prepare(img),  # uint8 HxWx3; normalized per batch by Collate
            "label": float(s.label),
            "path": s.path,
            "generator": s.generator,
            "index": index,
        }


class MultiViewDataset(Dataset):
    """Each image decoded once and prepared by several views of one evaluation transform (the
    points of a robustness grid): yields ``image`` ``[V, H, W, 3]`` (``[V, N, H, W, 3]`` with
    crops), view ``v`` equal to what ``dataset.view(views[v])`` yields. The views must give
    one size (not ``--eval_crop full``)."""

    def __init__(self, dataset: ImageDataset, views: Sequence[ImageTransform]) -> None:
        self.dataset = dataset
        self.samples = dataset.samples
        self.name = dataset.name
        self.views = list(views)
        self.transform = self.views[0]  # its normalizer and seeding serve every view

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        img = self.dataset.decode(index)
        if img is None:
            return {"skipped": s.path, "index": index}
        base = self.transform.start(img)  # format alignment once; views differ only after it
        return {
            "image": np.stack([v.finish(base) for v in self.views]),
            "label": float(s.label),
            "path": s.path,
            "generator": s.generator,
            "index": index,
        }


class FeatureDataset(Dataset):
    """Precomputed features of a frozen backbone (``--cache_features``), one row per decodable
    training image: yields ``{"features", "label", "path", "generator", "index"}``."""

    def __init__(self, features: torch.Tensor, index: np.ndarray, samples: SampleTable) -> None:
        self.features, self.index, self.samples = features, np.asarray(index), samples
        self.transform = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = self.samples[int(self.index[i])]
        return {
            "features": self.features[i],
            "label": float(s.label),
            "path": s.path,
            "generator": s.generator,
            "index": int(self.index[i]),
        }


def collate_features(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "skipped": [],
        "features": torch.stack([it["features"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.float32),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "path": [it["path"] for it in items],
        "generator": [it["generator"] for it in items],
    }


class Collate:
    """Stack the good items as one uint8 tensor (``[B, H, W, 3]``, or ``[B, N, H, W, 3]`` with
    several crops per image) and list the paths of undecodable files under ``"skipped"``.
    The batch carries its ``normalizer``: :func:`model_input` normalizes it on the model's
    device, so that a quarter of the bytes cross to a GPU."""

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        good = [it for it in items if "image" in it]
        batch: dict[str, Any] = {"skipped": [it["skipped"] for it in items if "skipped" in it]}
        if good:
            shapes = {it["image"].shape for it in good}
            if len(shapes) > 1:
                raise DatasetError(
                    f"images of one batch differ in size {sorted(shapes)}; use --resize_mode resize or crop "
                    "(--eval_crop full evaluates one image per batch)"
                )
            batch["image"] = torch.from_numpy(np.stack([it["image"] for it in good]))
            batch["normalizer"] = self.normalizer
            batch["label"] = torch.tensor([it["label"] for it in good], dtype=torch.float32)
            batch["index"] = torch.tensor([it["index"] for it in good], dtype=torch.long)
            batch["path"] = [it["path"] for it in good]
            batch["generator"] = [it["generator"] for it in good]
        return batch


def model_input(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """The batch's uint8 images moved to ``device`` (asynchronously from pinned memory) and
    normalized there: the float ``[B, 3, H, W]`` input of ``model.forward``."""
    images = batch["image"].to(device, non_blocking=True)
    if images.is_floating_point():  # a batch made by hand, already normalized
        return images.contiguous(memory_format=torch.channels_last) if channels_last else images
    return batch["normalizer"].on_device(images, channels_last)


def check_skipped(name: str, n_skipped: int, n_total: int, max_ratio: float) -> None:
    """Stop when more than ``max_ratio`` of a dataset is undecodable, or when nothing is left."""
    if n_total and n_skipped >= n_total:
        raise DatasetError(f"{name}: none of its {n_total} image(s) could be decoded; check its files and its path")
    if n_total and n_skipped > max_ratio * n_total:
        raise DatasetError(
            f"{name}: {n_skipped} of {n_total} image(s) ({100 * n_skipped / n_total:.1f} %) are undecodable, "
            f"more than --max_skip_ratio {max_ratio:g}; fix or remove them (their names are in the warnings above), "
            "or raise --max_skip_ratio"
        )


class _SeedWorker:
    """Seeds each worker's augmentation RNG from torch's per-worker seed (reproducible runs)."""

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset

    def __call__(self, worker_id: int) -> None:
        seed = torch.initial_seed() % 2**31
        self.dataset.transform.set_random_seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    num_workers: int = 0,
    distributed: bool = False,
    seed: int = 0,
    drop_last: Optional[bool] = None,
    weights: Optional[np.ndarray] = None,
    stream_shards: bool = False,
) -> DataLoader:
    """A DataLoader with a (distributed) sampler; shuffling uses ``seed`` (+ epoch via ``set_epoch``).

    With ``weights`` (training on mixed sources or ``--balance``) images are drawn with
    replacement by a :class:`~aigbench.datasets.sampling.WeightedDistributedSampler`.

    Evaluation under several processes uses a padded ``DistributedSampler``: each batch carries
    the dataset ``index`` of its images so that gathering can count every image exactly once.

    Rows of several table files (parquet, WebDataset tar, Arrow) are read shard by shard, each
    process and worker its own (:class:`~aigbench.datasets.shards.ShardBatchSampler`): always for
    evaluation, and for training with ``stream_shards`` (``--stream_shards``; the shards must have
    been shuffled when written, since a batch then comes from one shard).
    """
    # OpenCV's own thread pool competes with torch's threads for the same cores; the loader
    # parallelises across images (num_workers) instead.
    cv2.setNumThreads(1)
    collate = collate_features if isinstance(dataset, FeatureDataset) else Collate(dataset.transform.normalizer)
    workers = dict(
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_SeedWorker(dataset) if num_workers > 0 and getattr(dataset, "transform", None) else None,
        # Evaluation workers live as long as their loader (every validation, test and sweep of a
        # run); training workers start each epoch, seeded from --seed and the epoch, so that a
        # resumed run draws exactly the augmentations of an uninterrupted one.
        persistent_workers=num_workers > 0 and not train,
    )
    sharded = weights is None and not isinstance(dataset, FeatureDataset) and (stream_shards or not train)
    shards = shard_ids(dataset) if sharded else None
    if shards is not None:  # rows of several table files: each process and worker reads its own shards
        world = torch.distributed.get_world_size() if distributed else 1
        rank = torch.distributed.get_rank() if distributed else 0
        batches = ShardBatchSampler(shards, batch_size, train, num_workers, rank, world, seed, distributed)
        return DataLoader(dataset, batch_sampler=batches, **workers)
    if weights is not None:
        from aigbench.datasets.sampling import WeightedDistributedSampler

        world = torch.distributed.get_world_size() if distributed else 1
        rank = torch.distributed.get_rank() if distributed else 0
        sampler: Any = WeightedDistributedSampler(weights, math.ceil(len(dataset) / world), rank, world, seed)
    elif distributed:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=False)
    elif train:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=train if drop_last is None else drop_last, **workers
    )


def is_distributed(loader: DataLoader) -> bool:
    """Whether ``loader`` shards its dataset across processes."""
    return isinstance(loader.sampler, DistributedSampler) or getattr(loader.batch_sampler, "distributed", False)


def multi_view_loader(loader: DataLoader, views: Sequence[ImageTransform]) -> DataLoader:
    """A loader like the evaluation ``loader`` whose items hold every view of each image
    (:class:`MultiViewDataset`), decoded once."""
    return build_loader(
        MultiViewDataset(loader.dataset, views),
        loader_batch_size(loader),
        False,
        loader.num_workers,
        is_distributed(loader),
    )


def evaluation_view(loader: DataLoader, transform: ImageTransform) -> DataLoader:
    """A loader like the evaluation ``loader`` (batch size, workers, process sharding) over the
    same samples through ``transform``; ``loader`` and its dataset are unchanged."""
    return build_loader(
        loader.dataset.view(transform), loader_batch_size(loader), False, loader.num_workers, is_distributed(loader)
    )


def loader_batch_size(loader: DataLoader) -> int:
    """The batch size of ``loader`` (its batch sampler's when it has one of its own)."""
    return loader.batch_size if loader.batch_size is not None else loader.batch_sampler.batch_size


def set_loader_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Make epoch ``epoch``'s order and augmentation depend only on ``seed`` and ``epoch``."""
    sampler = loader.batch_sampler if hasattr(loader.batch_sampler, "set_epoch") else loader.sampler
    if hasattr(sampler, "set_epoch"):  # DistributedSampler, WeightedDistributedSampler, ShardBatchSampler
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler) and sampler.generator is not None:
        sampler.generator.manual_seed(seed + epoch)
    if loader.num_workers == 0 and getattr(loader.dataset, "transform", None) is not None:
        loader.dataset.transform.set_random_seed(seed + epoch)
