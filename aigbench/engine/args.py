"""Command-line flags of the generated scripts: the framework's own, then the model's.

Parsing is two-step: the framework flags are read first to learn ``--model``, then that
model's ``__init__`` parameters are added as flags and the full command line is parsed.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from aigbench.datasets.layouts import DEMO_ALIAS
from aigbench.flags import add_signature_flags


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = parser.add_argument_group("common")
    g.add_argument("--model", default="MyModel", help="registered model name (see `bench models`)")
    g.add_argument("--output_dir", default="output_dir", help="folder for checkpoints, logs and results")
    g.add_argument("--image_size", type=int, default=32, help="side of the square model input, in pixels")
    g.add_argument(
        "--resize_mode",
        choices=["resize", "crop", "none"],
        default="resize",
        help="how images reach --image_size: resize, crop (random when training, center when testing) or none",
    )
    g.add_argument("--batch_size", type=int, default=64, help="images per process per step")
    g.add_argument(
        "--num_workers", type=int, default=0, help="DataLoader worker processes (0: load in the main process)"
    )
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    g.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="mixed precision (float16) on CUDA; ignored on CPU",
    )
    g.add_argument("--layout", default="auto", help="dataset layout: auto, CIFAKE, ForenSynths, GenImage, JsonList")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument(
        "--pretrained_path",
        default="",
        help="weights the model starts from (its own loader for zoo models, else a strict state dict)",
    )
    return parser


def train_parser(description: str = "Train a detector") -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(description=description, allow_abbrev=False))
    g = parser.add_argument_group("training")
    g.add_argument(
        "--data_path",
        default=DEMO_ALIAS,
        help=f"training data (its train/ folder when it has one); {DEMO_ALIAS} is the embedded demo",
    )
    g.add_argument(
        "--test_data_path",
        default=DEMO_ALIAS,
        help="test data: a dataset path (its test/ folder when it has one) or a JSON {name: path} file",
    )
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of AdamW")
    g.add_argument("--min_lr", type=float, default=1e-6, help="learning rate at the end of the cosine")
    g.add_argument("--weight_decay", type=float, default=0.05)
    g.add_argument("--warmup_epochs", type=float, default=1.0)
    g.add_argument("--accum_iter", type=int, default=1, help="gradient accumulation steps per optimizer step")
    g.add_argument("--test_period", type=int, default=1, help="test every N epochs (and after the last)")
    g.add_argument(
        "--best_metric", default="accuracy", help="metric (averaged over test sets) that picks checkpoint-best.pth"
    )
    g.add_argument("--log_every", type=int, default=20, help="steps between TensorBoard training scalars")
    g.add_argument("--resume", default="", help="checkpoint to continue from ('auto': the latest in --output_dir)")
    a = parser.add_argument_group("training augmentation")
    a.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=True, help="random horizontal flips")
    a.add_argument(
        "--aug_blur_prob", type=float, default=0.0, help="probability of a Gaussian blur (CNNSpot: 0.5 or 0.1)"
    )
    a.add_argument(
        "--aug_blur_sigma",
        type=float,
        nargs=2,
        default=[0.0, 3.0],
        metavar=("MIN", "MAX"),
        help="blur sigma ~ U[MIN, MAX] pixels",
    )
    a.add_argument("--aug_jpeg_prob", type=float, default=0.0, help="probability of a JPEG re-compression")
    a.add_argument(
        "--aug_jpeg_quality",
        type=int,
        nargs=2,
        default=[30, 100],
        metavar=("MIN", "MAX"),
        help="JPEG quality ~ U{MIN..MAX}",
    )
    return parser


def test_parser(description: str = "Test checkpoints on several datasets") -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(description=description, allow_abbrev=False))
    g = parser.add_argument_group("testing")
    g.add_argument("--test_data_json", default="test_datasets.json", help="JSON {name: path} of test datasets")
    g.add_argument(
        "--checkpoint", default="", help="one checkpoint to test; by default every checkpoint-*.pth in --output_dir"
    )
    return parser


def robust_parser(description: str = "Sweep a checkpoint over perturbations") -> argparse.ArgumentParser:
    parser = test_parser(description)
    g = parser.add_argument_group("robustness")
    g.add_argument(
        "--perturb_stage",
        choices=["before_resize", "after_resize"],
        default="before_resize",
        help="apply perturbations to the decoded image (before_resize) or the model-sized one",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the framework flags, then add the chosen model's flags and parse everything."""
    from aigbench.registry import MODELS

    known, _ = parser.parse_known_args(argv)
    try:
        model_cls = MODELS.get(known.model)
    except KeyError as e:
        parser.error(f"--model: {e.args[0]}")
    add_signature_flags(parser, model_cls, f"{known.model} parameters (from its __init__)")
    args = parser.parse_args(argv)
    from aigbench.metrics import METRIC_NAMES

    if hasattr(args, "best_metric") and args.best_metric not in METRIC_NAMES:
        parser.error(f"--best_metric must be one of {', '.join(METRIC_NAMES)}, got {args.best_metric!r}")
    for flag in ("batch_size", "epochs", "accum_iter", "test_period", "image_size"):
        if hasattr(args, flag) and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    return args
