"""Builders the generated scripts call: model, data loaders, test-set maps."""

from __future__ import annotations

import argparse
import inspect
import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import DataLoader

from aigbench.datasets.augment import BlurJPEG
from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.layouts import DEMO_ALIAS, DatasetError
from aigbench.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, ImageTransform, Normalizer
from aigbench.engine.checkpoint import load_checkpoint, load_model_weights
from aigbench.engine.dist import DistContext
from aigbench.flags import kwargs_from_args
from aigbench.registry import MODELS


def model_class(args: argparse.Namespace) -> type:
    return MODELS.get(args.model)


def build_model(args: argparse.Namespace, ctx: DistContext, ddp: bool = True) -> torch.nn.Module:
    """Instantiate ``--model`` with its flags, load ``--pretrained_path``, move it, wrap in DDP."""
    cls = model_class(args)
    model = cls(**kwargs_from_args(cls, args))
    pretrained = getattr(args, "pretrained_path", "")
    # A model whose __init__ takes pretrained_path loads its own (e.g. official) weights.
    if pretrained and "pretrained_path" not in inspect.signature(cls.__init__).parameters:
        state = load_checkpoint(pretrained)
        load_model_weights(model, state.get("model", state), f"--pretrained_path {pretrained}")
    model.to(ctx.device)
    if ddp and ctx.distributed:
        trainable = any(p.requires_grad for p in model.parameters())
        if trainable:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
    return model


def build_transform(args: argparse.Namespace, train: bool) -> ImageTransform:
    """The model's own mean/std (class attributes ``input_mean``/``input_std``) or ImageNet's."""
    cls = model_class(args)
    if hasattr(cls, "normalization"):  # depends on the flags (e.g. the timm backbone's own mean/std)
        mean, std = cls.normalization(kwargs_from_args(cls, args))
    else:
        mean, std = getattr(cls, "input_mean", IMAGENET_MEAN), getattr(cls, "input_std", IMAGENET_STD)
    normalizer = Normalizer(mean, std)
    augment = None
    if train and (args.aug_blur_prob > 0 or args.aug_jpeg_prob > 0):
        augment = BlurJPEG(args.aug_blur_prob, args.aug_jpeg_prob, args.aug_blur_sigma, args.aug_jpeg_quality)
    return ImageTransform(
        args.image_size, train, args.resize_mode, normalizer, augment, hflip=getattr(args, "hflip", True)
    )


def build_train_loader(args: argparse.Namespace, ctx: DistContext) -> DataLoader:
    dataset = ImageDataset.from_path(args.data_path, build_transform(args, True), split="train", layout=args.layout)
    if len(dataset) < args.batch_size * ctx.world_size:
        raise DatasetError(
            f"{args.data_path}: {len(dataset)} training images is fewer than one batch "
            f"(--batch_size {args.batch_size} x {ctx.world_size} process(es)); lower --batch_size"
        )
    return build_loader(dataset, args.batch_size, True, args.num_workers, ctx.distributed, args.seed)


def read_test_sets(spec: str) -> dict[str, str]:
    """``{name: path}`` from a JSON map file, or ``{basename: spec}`` for a single dataset path."""
    if spec == DEMO_ALIAS:
        return {"demo": spec}
    p = Path(spec).expanduser()
    if p.suffix.lower() == ".json" and p.is_file():
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DatasetError(f'{spec}: not valid JSON ({e}); expected {{"name": "path", ...}}') from None
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not k.startswith("_")}
            if not data:
                raise DatasetError(f'{spec}: no test datasets listed; add {{"name": "path"}} entries')
            bad = [k for k, v in data.items() if not isinstance(v, str)]
            if bad:
                raise DatasetError(f"{spec}: the path of {bad[0]!r} must be a string, got {data[bad[0]]!r}")
            base = p.parent
            return {
                k: v if v == DEMO_ALIAS or os.path.isabs(os.path.expanduser(v)) else str(base / v)
                for k, v in data.items()
            }
    if not p.exists():
        raise DatasetError(f"test dataset {spec!r} does not exist; fix the path (or the JSON map that names it)")
    return {p.stem if p.is_file() else p.name: spec}


def build_test_loaders(args: argparse.Namespace, ctx: DistContext, spec: Optional[str] = None) -> dict[str, DataLoader]:
    """One evaluation loader per test set; every path is checked before any work starts."""
    sets = read_test_sets(spec or args.test_data_path)
    transform = build_transform(args, False)
    datasets = {
        name: ImageDataset.from_path(path, transform, split="test", layout=args.layout, name=name)
        for name, path in sets.items()
    }
    return {
        name: build_loader(ds, args.batch_size, False, args.num_workers, ctx.distributed, args.seed)
        for name, ds in datasets.items()
    }


def config_dict(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The run configuration as plain JSON-able data."""
    from aigbench import __version__

    cfg = {k: v for k, v in vars(args).items()}
    cfg.update(extra)
    cfg["aigbench_version"] = __version__
    return cfg
