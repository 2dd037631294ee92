"""Builders the generated scripts call: model, data loaders (train / validation / test), config."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from aigbench.datasets.augment import AugmentChain, BlurJPEG
from aigbench.datasets.dataset import ImageDataset, build_loader
from aigbench.datasets.layouts import (
    DEMO_ALIAS,
    DatasetError,
    FolderLayout,
    Sample,
    available_splits,
    check_label_folders,
    detect_layout,
    filter_generators,
    load_samples,
    parse_generators,
    parse_label_map,
    resolve_path,
    split_layout,
)
from aigbench.datasets.preprocess import Preprocess, preprocess_from_args
from aigbench.datasets.provenance import data_provenance
from aigbench.datasets.rsa import RandomStateAugmentation, parse_rsa_ops
from aigbench.datasets.sampling import describe_mix, parse_sources, sample_weights
from aigbench.datasets.splits import check_overlaps as check_sample_overlaps
from aigbench.datasets.splits import (  # noqa: F401  (split_indices and write_split_csv: their old home)
    check_two_classes,
    shared_files,
    split_indices,
    split_three,
    split_train_val,
    warn_overlap,
    write_split_csv,
)
from aigbench.datasets.transforms import ImageTransform
from aigbench.engine.checkpoint import load_checkpoint, load_model_weights, with_frozen_weights
from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import safe_name
from aigbench.errors import ConfigError
from aigbench.flags import kwargs_from_args
from aigbench.imageops import FormatAlign
from aigbench.registry import LAYOUTS, MODELS

log = logging.getLogger("aigbench")


def model_class(args: argparse.Namespace) -> type:
    return MODELS.get(args.model)


def build_model(args: argparse.Namespace, ctx: DistContext, ddp: bool = True) -> torch.nn.Module:
    """Instantiate ``--model`` with its flags, load ``--pretrained_path``, move it, wrap in DDP."""
    cls = model_class(args)
    from aigbench.engine.contract import check_forward_signature  # forward(image, label, ...) callable?

    check_forward_signature(cls)
    model = cls(**kwargs_from_args(cls, args))
    pretrained = getattr(args, "pretrained_path", "")
    # A model whose __init__ takes pretrained_path loads its own (e.g. official) weights.
    if pretrained and "pretrained_path" not in inspect.signature(cls.__init__).parameters:
        state = load_checkpoint(pretrained)
        load_model_weights(model, with_frozen_weights(model, state, pretrained), f"--pretrained_path {pretrained}")
    init_from = getattr(args, "init_from", "")
    if init_from:  # a previous run's weights (frozen parts checked against this model's), strictly
        state = load_checkpoint(init_from)
        load_model_weights(model, with_frozen_weights(model, state, init_from), f"--init_from {init_from}")
        log.info(
            "--init_from %s: model weights loaded (epoch %s); optimizer and schedule start fresh",
            init_from,
            state.get("epoch", "?"),
        )
    model.to(ctx.device)
    if use_channels_last(args, ctx):
        model.to(memory_format=torch.channels_last)
    if getattr(args, "compile", False):
        model = torch.compile(model)
    if ddp and ctx.distributed:
        trainable = any(p.requires_grad for p in model.parameters())
        if trainable:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
    return model


# On the CPU, NHWC convolutions (oneDNN) are faster from this input size on and slower below it
# (timm ResNet-18 training at 32 and 64 px: 1.15x the time; at 128 px 0.93x; EfficientNet-B0
# and MobileNetV3 at 128-224 px 0.7-0.85x; ViTs unchanged).
CHANNELS_LAST_CPU_MIN_SIZE = 128


def use_channels_last(args: argparse.Namespace, ctx: DistContext) -> bool:
    """``--channels_last``, by default on with CUDA (tensor-core convolutions prefer NHWC), and on
    the CPU for inputs of :data:`CHANNELS_LAST_CPU_MIN_SIZE` pixels or more."""
    flag = getattr(args, "channels_last", None)
    if flag is not None:
        return bool(flag)
    if ctx.device.type == "cuda":
        return True
    if ctx.device.type != "cpu" or not hasattr(args, "model"):
        return False
    return preprocess_from_args(model_class(args), args).input_size >= CHANNELS_LAST_CPU_MIN_SIZE


def model_info(model: torch.nn.Module, args: Optional[argparse.Namespace] = None) -> dict[str, Any]:
    """What results should say about the model: ``pretrained`` where the model declares it
    (a probe on random features says ``false``), and, for a test of a trained run, the flags
    given that differ from those it was trained with (``differs_from_training``)."""
    inner = model.module if hasattr(model, "module") else model
    info: dict[str, Any] = {"model": type(inner).__name__}
    if isinstance(getattr(inner, "pretrained", None), bool):
        info["pretrained"] = inner.pretrained
    if args is not None and hasattr(args, "differs_from_training"):
        info["differs_from_training"] = args.differs_from_training
    return info


def preprocess_of(args: argparse.Namespace) -> Preprocess:
    """The model's declared preprocessing with the flags given on top (see ``datasets.preprocess``)."""
    return preprocess_from_args(model_class(args), args)


def format_align(args: argparse.Namespace, train: bool) -> Optional[FormatAlign]:
    """``--align_format`` for evaluation transforms, and for training with ``--align_train``."""
    spec = getattr(args, "align_format", "")
    if not spec or (train and not getattr(args, "align_train", False)):
        return None
    try:
        return FormatAlign(spec)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def build_transform(args: argparse.Namespace, train: bool) -> ImageTransform:
    """The transform of the model's preprocessing; training adds flips and ``--aug_*``; every
    image is first re-encoded by ``--align_format`` where it applies."""
    augments: list[Any] = []
    if train and (args.aug_blur_prob > 0 or args.aug_jpeg_prob > 0):
        augments.append(BlurJPEG(args.aug_blur_prob, args.aug_jpeg_prob, args.aug_blur_sigma, args.aug_jpeg_quality))
    crop = getattr(args, "train_crop" if train else "eval_crop", None)
    mode = {"full": "none"}.get(crop, crop)
    cfg = preprocess_of(args)
    if train and getattr(args, "rsa_ops", ""):
        # Community Forensics: Resize(shorter side) -> RSA -> RandomCrop(input size)
        short = int(round(cfg.input_size / cfg.crop_pct)) if cfg.resize_mode == "resize_crop" else cfg.input_size
        augments.append(RandomStateAugmentation(cfg.input_size, parse_rsa_ops(args.rsa_ops), args.rsa_num, short))
        mode = mode or "random_crop"
    augment = augments[0] if len(augments) == 1 else (AugmentChain(augments) if augments else None)
    transform = ImageTransform.from_preprocess(
        cfg,
        train,
        augment,
        hflip=getattr(args, "hflip", True),
        align=format_align(args, train),
        resize_mode=mode,
        crops=getattr(args, "eval_crops", 5) if crop == "multicrop" else 0,
    )
    spec = getattr(args, "eval_perturb", "")
    if spec and not train:  # --eval_perturb: a fixed chain on every evaluation image, before resizing
        transform = transform.with_perturbation(eval_perturbation(spec), "before_resize")
    return transform


def eval_perturbation(spec: str) -> Any:
    """``--eval_perturb CHAIN``: a chain of perturbations with every strength given, switched on."""
    from aigbench.imageops.perturbations import Chain

    try:
        chain = Chain(spec, 1.0)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"--eval_perturb {spec!r}: {e.args[0] if e.args else e}") from None
    if chain.swept is not None:
        raise ConfigError(f"--eval_perturb {spec!r}: give every step a strength (e.g. jpeg:75, aigenbench:1)")
    return chain


def eval_batch_size(args: argparse.Namespace) -> int:
    """``--batch_size``, or 1 when every evaluation image keeps its own size (``--eval_crop full``,
    or a model that takes full images, ``--resize_mode none``, such as B-Free)."""
    crop = getattr(args, "eval_crop", None)
    full = crop == "full" or (crop is None and preprocess_of(args).resize_mode == "none")
    return 1 if full else args.batch_size


def load_data(args: argparse.Namespace, spec: str, split: str, select: bool = True) -> list[Sample]:
    """``load_samples`` with the run's ``--layout`` and ``--label_map``, for one source or several
    (``a,b``; weights are for training), each with an optional layout (``path@FakesOnly``).
    With ``select``, ``--generators`` / ``--exclude_generators`` filter the samples
    (:func:`~aigbench.datasets.layouts.filter_generators`)."""
    labels = parse_label_map(getattr(args, "label_map", ""))
    out: list[Sample] = []
    folders: list[Path] = []
    for source, _ in parse_sources(spec):
        path, layout = split_layout(source, args.layout)
        out += load_samples(path, split, layout, labels)
        root = resolve_path(path)
        if issubclass(LAYOUTS.get(layouts_of(args, source)[0]), FolderLayout):
            folders.append(root)
    if labels and folders and len(folders) == len(parse_sources(spec)):  # folder names give the labels
        check_label_folders(out, folders, labels)
    include = parse_generators(getattr(args, "generators", ""))
    exclude = parse_generators(getattr(args, "exclude_generators", ""))
    if select and (include or exclude):
        kept = filter_generators(out, include, exclude, f"{spec} ({split})")
        log.info("%s (%s): %d of %d images kept by --generators/--exclude_generators", spec, split, len(kept), len(out))
        out = kept
    return out


# ---- training and validation data ------------------------------------------------------------


@dataclass
class TrainData:
    """The training loader and, when there is validation data, its loader."""

    train: DataLoader
    val: Optional[DataLoader]
    heldout: dict[str, DataLoader] = field(default_factory=dict)  # --test_split: {"heldout": loader}


def layouts_of(args: argparse.Namespace, spec: str) -> list[str]:
    """The layout of each source of ``spec`` (detected under ``--layout auto``)."""
    labels = parse_label_map(getattr(args, "label_map", ""))
    out = []
    for source, _ in parse_sources(spec):
        path, layout = split_layout(source, getattr(args, "layout", "auto"))
        out.append(detect_layout(resolve_path(path), labels) if layout == "auto" else layout)
    return out


def make_dataset(
    args: argparse.Namespace,
    samples: Sequence[Sample],
    transform: ImageTransform,
    name: str,
    substitute: bool = False,
    source: Optional[tuple[str, Optional[str]]] = None,
) -> ImageDataset:
    """An :class:`ImageDataset`, with its pixels decoded once beforehand under ``--cache_decoded``
    (``disk``: in ``<output_dir>/cache/``). ``source`` ``(spec, split)``: where the samples were
    read, recorded as the dataset's provenance."""
    from aigbench.datasets.cache import build_cache

    mode = getattr(args, "cache_decoded", "none")
    cache = None
    if mode != "none":
        folder = Path(args.output_dir) / "cache"
        shared = mode == "disk" and torch.distributed.is_available() and torch.distributed.is_initialized()
        builder = int(os.environ.get("LOCAL_RANK", "0")) == 0  # one per node: output_dir may be node-local
        if shared and not builder:
            torch.distributed.barrier()  # each node's first rank writes the file; the others then map it
        cache = build_cache(samples, mode, folder, name)
        if shared and builder:
            torch.distributed.barrier()
    provenance = None
    if source is not None:
        provenance = data_provenance(source[0], source[1], samples, layouts_of(args, source[0]))
    fast = bool(getattr(args, "fast_decode", False)) and not transform.train
    return ImageDataset(
        samples, transform, name, substitute=substitute, cache=cache, provenance=provenance, fast_decode=fast
    )


def build_train_data(args: argparse.Namespace, ctx: DistContext) -> TrainData:
    """Training data (its ``train`` split) and validation data from ``--val_data_path`` (its
    ``val`` split) or ``--val_split`` of the training data (written to ``val_split.csv``).

    Without validation data nothing selects a best checkpoint: the run says so once. A fresh
    run (no ``--resume``) refuses an ``--output_dir`` that already holds another run's
    checkpoints, so that nothing of that run is overwritten or mistaken for this one's.
    """
    check_fresh_output(args)
    sources = parse_sources(args.data_path)
    samples, source_of = [], []
    for k, (path, _) in enumerate(sources):
        part = load_data(args, path, "train")
        samples += part
        source_of += [k] * len(part)
    heldout: list[Sample] = []
    test_split = getattr(args, "test_split", 0.0)
    val_samples: list[Sample] = []
    val_split = getattr(args, "val_split", 0.0)
    if getattr(args, "val_data_path", "") and val_split:
        raise DatasetError("give --val_data_path or --val_split, not both")
    if test_split or val_split:  # the aiornot recipe: one labelled set split into train / val / test
        train_idx, val_idx, test_idx = split_three(samples, val_split, test_split, args.seed)
        heldout, val_samples = [samples[i] for i in test_idx], [samples[i] for i in val_idx]
        samples, source_of = [samples[i] for i in train_idx], [source_of[i] for i in train_idx]
        log.info(
            "splits of %s: %d train, %d val (--val_split %g), %d test (--test_split %g) images; of the whole, "
            "stratified by label and generator, copies kept together, seeded %d; val_split.csv",
            args.data_path,
            len(samples),
            len(val_samples),
            val_split,
            len(heldout),
            test_split,
            args.seed,
        )
    if getattr(args, "val_data_path", ""):
        val_samples = load_data(args, args.val_data_path, "val")
        warn_overlap(samples, val_samples, "the training and validation data")
        if len({s.label for s in val_samples}) < 2:
            raise DatasetError(
                f"--val_data_path {args.val_data_path}: the validation data holds one class only; selection on it "
                "would rank checkpoints by one class's recall. Give validation data with real and fake images"
            )
    elif not val_split:
        log.info(
            "no validation data (--val_data_path or --val_split): no best checkpoint is selected and the last "
            "epoch is used; test sets are reported, never used for selection"
        )
    check_two_classes(samples, str(args.data_path), getattr(args, "allow_one_class", False))
    train_ds = make_dataset(
        args, samples, build_transform(args, True), "train", substitute=True, source=(args.data_path, "train")
    )
    if len(train_ds) < args.batch_size * ctx.world_size:
        raise DatasetError(
            f"{args.data_path}: {len(train_ds)} training images is fewer than one batch "
            f"(--batch_size {args.batch_size} x {ctx.world_size} process(es)); lower --batch_size"
        )
    weights = None
    balance = getattr(args, "balance", "none")
    if len(sources) > 1 or balance != "none":
        weights = sample_weights(samples, source_of, [w for _, w in sources], balance)
        log.info(
            "training mix per epoch (--data_path weights, --balance %s): %s", balance, describe_mix(samples, weights)
        )
    train = build_loader(
        train_ds,
        args.batch_size,
        True,
        args.num_workers,
        ctx.distributed,
        args.seed,
        weights=weights,
        stream_shards=getattr(args, "stream_shards", False),
    )
    val = None
    if val_samples:
        val_source = (args.val_data_path, "val") if getattr(args, "val_data_path", "") else (args.data_path, "train")
        val_ds = make_dataset(args, val_samples, build_transform(args, False), "val", source=val_source)
        val = build_loader(val_ds, eval_batch_size(args), False, args.num_workers, ctx.distributed, args.seed)
    if ctx.is_main and (val_split or heldout):
        write_split_csv(Path(args.output_dir) / "val_split.csv", samples, val_samples, heldout)
    loaders = {}
    if heldout:
        ds = make_dataset(args, heldout, build_transform(args, False), "heldout", source=(args.data_path, "train"))
        loaders["heldout"] = build_loader(
            ds, eval_batch_size(args), False, args.num_workers, ctx.distributed, args.seed
        )
    return TrainData(train, val, loaders)


def cache_features(
    args: argparse.Namespace, ctx: DistContext, model: torch.nn.Module, data: TrainData, show_progress: bool = True
) -> TrainData:
    """``--cache_features``: compute the frozen backbone's features of every training image once
    (un-augmented, through the evaluation transform) and train the head on them; validation and
    tests still run the whole model on images. Without the flag, ``data`` unchanged."""
    from aigbench.datasets.dataset import FeatureDataset
    from aigbench.engine.checkpoint import unwrap
    from aigbench.engine.loop import compute_frozen_features

    if not getattr(args, "cache_features", False):
        return data
    inner = unwrap(model)
    if not (hasattr(inner, "frozen_parts") and inner.frozen_parts()):
        raise ConfigError(
            f"--cache_features: {type(inner).__name__} has no frozen backbone (e.g. TimmDetector --mode probe, UnivFD)"
        )
    augment = [
        f
        for f, on in (
            ("--hflip", args.hflip),
            ("--aug_blur_prob", args.aug_blur_prob),
            ("--aug_jpeg_prob", args.aug_jpeg_prob),
        )
        if on
    ]
    if augment:
        log.warning(
            "--cache_features: the cached features are of un-augmented images; %s do not apply "
            "(pass --no-hflip and zero probabilities to silence this)",
            ", ".join(augment),
        )
    train_ds = data.train.dataset
    # The training images' features: the evaluation geometry (no random crop or flip), without the
    # evaluation-only --eval_perturb, and re-encoded by --align_format only with --align_train.
    plain = argparse.Namespace(**{**vars(args), "eval_perturb": ""})
    if not getattr(args, "align_train", False):
        plain.align_format = ""
    eval_loader = build_loader(
        train_ds.view(build_transform(plain, False)),
        eval_batch_size(args),
        False,
        args.num_workers,
        ctx.distributed,
        args.seed,
    )
    start = time.perf_counter()
    feats, index = compute_frozen_features(model, eval_loader, ctx, show_progress)
    log.info(
        "--cache_features: features %s of %d training images computed once in %.1f s (%.1f MB)",
        list(feats.shape[1:]),
        len(index),
        time.perf_counter() - start,
        feats.numel() * 4 / 2**20,
    )
    weights = getattr(data.train.sampler, "weights", None)
    ds = FeatureDataset(feats, index, train_ds.samples)
    train = build_loader(
        ds,
        args.batch_size,
        True,
        0,
        ctx.distributed,
        args.seed,
        weights=None if weights is None else np.asarray(weights)[index],
    )
    return dataclasses.replace(data, train=train)


def build_train_loader(args: argparse.Namespace, ctx: DistContext) -> DataLoader:
    """The training loader alone. Only a train.py rendered by aigbench < 0.2 calls this, and that
    script picks checkpoint-best.pth on the test sets: say so."""
    log.warning(
        "this train.py was rendered by an earlier aigbench: it picks checkpoint-best.pth by TEST-set metrics "
        "(selection on test). Render the current one with `bench init --force` in a copy of your project "
        "and use --val_split or --val_data_path"
    )
    return build_train_data(args, ctx).train


def check_overlaps(data: TrainData, test_loaders: dict[str, DataLoader]) -> None:
    """:func:`aigbench.datasets.splits.check_overlaps` of the loaders' samples."""
    check_sample_overlaps(
        data.train.dataset.samples,
        data.val.dataset.samples if data.val is not None else [],
        {name: loader.dataset.samples for name, loader in test_loaders.items()},
    )


def check_fresh_output(args: argparse.Namespace) -> None:
    """Without ``--resume``, ``--output_dir`` must not hold another run's checkpoints."""
    out = Path(args.output_dir)
    if getattr(args, "resume", "") or not out.is_dir():
        return
    old = sorted(p.name for p in out.glob("checkpoint-*.pth"))
    if old:
        raise DatasetError(
            f"--output_dir {out} already holds a run ({', '.join(old[:3])}{' ...' if len(old) > 3 else ''}); "
            "continue it with --resume auto, or pick another --output_dir (nothing was overwritten)"
        )


# ---- test data ---------------------------------------------------------------------------------


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
            for name in data:
                safe_name(name, f"{spec}: test set name")
            base = p.parent

            def resolve(source: str) -> str:
                path, layout = split_layout(source, "")
                if source == DEMO_ALIAS or os.path.isabs(os.path.expanduser(path)):
                    return source
                return str(base / path) + (f"@{layout}" if layout else "")

            return {k: ",".join(resolve(s.strip()) for s in v.split(",")) for k, v in data.items()}
    first = Path(split_layout(spec.split(",")[0].strip())[0]).expanduser()
    if "," in spec or "@" in spec:  # several sources, or one with its layout: named after the first
        p = first
    if not p.exists():
        raise DatasetError(f"test dataset {spec!r} does not exist; fix the path (or the JSON map that names it)")
    p = p.resolve()
    name = safe_name(p.stem if p.is_file() else p.name, f"test dataset {spec!r}: its name")
    return {name: spec}


NO_TEST = ("", "none")


def own_test_sets(args: argparse.Namespace, data_path: str) -> dict[str, str]:
    """``{name: source}`` for each source of ``data_path`` that holds a ``test/`` split of its own."""
    labels = parse_label_map(getattr(args, "label_map", ""))
    out: dict[str, str] = {}
    for source, _ in parse_sources(data_path):
        path, layout = split_layout(source, getattr(args, "layout", "auto"))
        if "test" in available_splits(path, layout, labels):
            out.update(read_test_sets(source))
    return out


def test_sets_of(args: argparse.Namespace, spec: Optional[str] = None) -> dict[str, str]:
    """The test sets of a run, ``{name: path}``.

    train.py (``spec`` None): ``--test_data_path``; ``auto`` (the default) is the ``test/`` split of
    ``--data_path`` when it has one, else none; ``''`` or ``none`` is none. test.py and
    test_robust.py (``spec``: ``--test_data_json``): the sets it lists, except that the untouched
    demo list of ``bench init`` is never used for a run trained on other data: that run's own
    ``test/`` split is, or the run stops and asks for a test set."""
    if spec is None:
        spec = str(args.test_data_path)
        if spec.strip().lower() in NO_TEST:
            log.info("no test set (--test_data_path %r)", spec)
            return {}
        if spec == "auto":
            sets = own_test_sets(args, args.data_path)
            log.info(
                "test sets (--test_data_path auto): %s",
                ", ".join(f"{k} = the test/ split of {v}" for k, v in sets.items()) or "none: --data_path has no test/",
            )
            return sets
        return read_test_sets(spec)
    from aigbench.engine.args import read_run_config

    sets = read_test_sets(spec)
    trained_on = str(read_run_config(args.output_dir).get("data_path", DEMO_ALIAS))
    if set(sets.values()) == {DEMO_ALIAS} and DEMO_ALIAS not in trained_on:
        own = own_test_sets(args, trained_on)
        if not own:
            raise DatasetError(
                f"{spec} lists only the embedded demo, but this run was trained on {trained_on}, which has no test/ "
                "split; name your test sets in that file (or pass --test_data_json FILE)"
            )
        log.warning(
            "%s lists only the embedded demo; testing the run's own data instead: %s", spec, ", ".join(own.values())
        )
        return own
    return sets


def build_test_loaders(args: argparse.Namespace, ctx: DistContext, spec: Optional[str] = None) -> dict[str, DataLoader]:
    """One evaluation loader per test set of :func:`test_sets_of` (its ``test`` split, else
    ``val``); every path is checked before any work starts. ``--generators`` filters the test
    sets of test.py and test_robust.py; in train.py it selects the training and validation data
    only, and the test sets keep every generator (the cross-generator protocol tests on all of them)."""
    sets = test_sets_of(args, spec)
    transform = build_transform(args, False)
    if getattr(args, "fast_decode", False) and transform.decode_floor() is None:
        log.warning(
            "--fast_decode has no effect with the %s geometry: it reduces JPEG decodes only where the image is "
            "resized (resize, resize_crop); a crop at the image's own resolution would show other content",
            transform.crop_name,
        )
    select = hasattr(args, "checkpoint")  # a test or robustness run
    datasets = {
        name: make_dataset(args, load_data(args, path, "test", select), transform, name, source=(path, "test"))
        for name, path in sets.items()
    }
    return {
        name: build_loader(ds, eval_batch_size(args), False, args.num_workers, ctx.distributed, args.seed)
        for name, ds in datasets.items()
    }


def config_dict(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The run configuration as plain JSON-able data."""
    from aigbench import __version__

    cfg = {k: v for k, v in vars(args).items() if k != "rebuilt_from"}
    cfg.update(extra)
    module = sys.modules.get(str(cfg.get("model_module", "")))
    if getattr(module, "__file__", None):  # where bench predict finds the model's code again
        cfg["model_module_file"] = str(Path(module.__file__).resolve())
    cfg["aigbench_version"] = __version__
    return cfg
