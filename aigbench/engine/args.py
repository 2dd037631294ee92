"""Command-line flags of the generated scripts: the framework's own, then the model's.

Parsing is two-step: the framework flags are read first to learn ``--model``, then that
model's ``__init__`` parameters are added as flags and the full command line is parsed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from aigbench.datasets.layouts import DEFAULT_MAX_SKIP_RATIO, DEMO_ALIAS
from aigbench.datasets.preprocess import RESIZE_MODES, preprocess_from_args
from aigbench.engine.contract import ForwardSignatureError, check_forward_signature
from aigbench.errors import ConfigError
from aigbench.flags import add_signature_flags
from aigbench.metrics.binary import METRIC_NAMES

log = logging.getLogger("aigbench")
# --best_metric: the validation metrics (aigbench.metrics.METRIC_NAMES) and the validation loss
METRIC_CHOICES = (*METRIC_NAMES, "val_loss")

DEFAULT_MODEL = "MyModel"
# Flags that test.py / test_robust.py take from the run's config.json (with the model's own
# flags) unless they are given on the command line.
REBUILD_FLAGS = (
    "model",
    "image_size",
    "resize_mode",
    "interpolation",
    "crop_pct",
    "pad_mode",
    "align_format",
    "eval_crop",
    "eval_crops",
    "eval_perturb",  # not for robustness sweeps, which start from the clean images
)
# Framework flags that a model's __init__ may take as parameters (and so receive their values).
SHARED_WITH_MODELS = ("image_size", "pretrained_path")


BENCO, COMMFOR, AIGENBENCH, NOTEBOOKS = (
    "IMDL-BenCo",
    "Community Forensics",
    "AI-GenBench's Lightning trainer",
    "aiornot / CIFAKE notebooks",
)
_TORCHRUN = "torchrun --nproc_per_node N train.py ... (aigbench reads WORLD_SIZE, RANK and LOCAL_RANK from it)"
# Flags of other tools: name -> (tools, the aigbench flag that does it or "" for none, how / why).
# An unknown flag on the command line is looked up here first (docs/migrating.md has the tables).
FOREIGN_FLAGS: dict[str, tuple[str, str, str]] = {
    "world_size": (BENCO, "", f"the number of processes is torchrun's: {_TORCHRUN}"),
    "local_rank": (BENCO, "", f"torchrun sets LOCAL_RANK: {_TORCHRUN}"),
    "dist_url": (BENCO, "", "processes meet through torchrun's env:// rendezvous; train_slurm.sh runs several nodes"),
    "dist_on_itp": (
        BENCO,
        "",
        "processes meet through torchrun's env:// rendezvous; train_slurm.sh runs several nodes",
    ),
    "if_resizing": (BENCO, "--resize_mode resize", "squashes every image to --image_size (default: the model's own)"),
    "if_padding": (
        BENCO,
        "--resize_mode crop",
        "keeps the pixels unresized: images smaller than --image_size are zero-padded (--pad_mode constant), "
        "larger ones cropped; --eval_crop full evaluates each image whole, at its own size",
    ),
    "edge_mask_width": (BENCO, "", "detection data has one label per image and no masks to draw edges from"),
    "if_predict_label": (BENCO, "", "every aigbench model predicts the image label (pred_label); there are no masks"),
    "log_per_epoch_count": (BENCO, "--log_every", "steps between TensorBoard training scalars (not a count per epoch)"),
    "find_unused_parameters": (
        BENCO,
        "",
        "DDP runs with find_unused_parameters=False: freeze what the loss does not use (requires_grad_(False)) "
        "or use it in the loss",
    ),
    "no_model_eval": (BENCO, "", "evaluation always runs the model in eval() mode"),
    "if_not_amp": (BENCO, "--no-amp", "mixed precision is on by default on CUDA and always off on the CPU"),
    "blr": (BENCO, "--lr", "the peak learning rate itself; aigbench does not scale it by the batch size"),
    "start_epoch": (BENCO, "--resume", "--resume PATH or --resume auto continues from the checkpoint's epoch"),
    "test_batch_size": (BENCO, "--batch_size", "test.py and test_robust.py take their own --batch_size"),
    "log_dir": (BENCO, "--output_dir", "TensorBoard events go to <output_dir>/tensorboard"),
    "pin_mem": (BENCO, "", "memory is pinned whenever CUDA is available"),
    "no_pin_mem": (BENCO, "", "memory is pinned whenever CUDA is available"),
    "checkpoint_path": (
        BENCO,
        "--checkpoint",
        "test.py --output_dir RUN --checkpoint best|last|all|N|PATH tests a run's checkpoints; to train from "
        "saved weights use --init_from CHECKPOINT (--pretrained_path for backbone weights), to continue a run "
        "--resume",
    ),
    "test_data_json": (BENCO, "--test_data_path", "train.py takes the JSON {name: path} file of test sets there"),
    "test_data_path": (
        BENCO,
        "--test_data_json",
        "test.py and test_robust.py read a JSON {name: path} file or one dataset path from it",
    ),
    "additional_train_data": (
        COMMFOR,
        "--data_path",
        "list every source there: --data_path main:1,extra:1 draws each in proportion to its weight "
        "(--balance label|generator evens the classes or generators)",
    ),
    "warmup_frac": (COMMFOR, "--warmup_fraction", "linear warm-up as a fraction of all steps"),
    "val_frac": (COMMFOR, "--val_split", "hold out this fraction of the training data, stratified and seeded"),
    "trainer.max_epochs": (AIGENBENCH, "--epochs", ""),
    "trainer.devices": (AIGENBENCH, "", f"processes are torchrun's: {_TORCHRUN}"),
    "trainer.num_nodes": (AIGENBENCH, "", "several nodes: train_slurm.sh (torchrun on each node)"),
    "trainer.precision": (AIGENBENCH, "--amp", "--amp/--no-amp: bfloat16 where the GPU has it, else float16"),
    "trainer.gradient_clip_val": (AIGENBENCH, "--clip_grad", "the gradients' total norm (AI-GenBench: 1)"),
    "trainer.accumulate_grad_batches": (AIGENBENCH, "--accum_iter", ""),
    "trainer.check_val_every_n_epoch": (
        AIGENBENCH,
        "",
        "validation runs every epoch (it selects checkpoint-best.pth); --test_period N spaces the test sets",
    ),
    "trainer.default_root_dir": (AIGENBENCH, "--output_dir", ""),
    "seed_everything": (AIGENBENCH, "--seed", ""),
    "ckpt_path": (AIGENBENCH, "--resume", "--resume PATH or --resume auto"),
    "config": (
        AIGENBENCH,
        "",
        "flags go on the command line, not in a YAML file: `bench init model_zoo` writes train_aigenbench_*.sh "
        "with AI-GenBench's recipe",
    ),
    "validation_split": (NOTEBOOKS, "--val_split", "a held-out fraction of the training data, stratified and seeded"),
    "test_size": (NOTEBOOKS, "--test_split", "a held-out test fraction of the training data, stratified and seeded"),
    "test_frac": (NOTEBOOKS, "--test_split", "a held-out test fraction of the training data, stratified and seeded"),
    "img_size": (NOTEBOOKS, "--image_size", ""),
    "input_size": (NOTEBOOKS, "--image_size", ""),
    "learning_rate": (NOTEBOOKS, "--lr", ""),
    "num_epochs": (NOTEBOOKS, "--epochs", ""),
    "max_epochs": (NOTEBOOKS, "--epochs", ""),
    "workers": (NOTEBOOKS, "--num_workers", ""),
    "fp16": (NOTEBOOKS, "--amp", "mixed precision is on by default on CUDA (--no-amp turns it off)"),
    "mixed_precision": (NOTEBOOKS, "--amp", "mixed precision is on by default on CUDA (--no-amp turns it off)"),
    "weights": (NOTEBOOKS, "--pretrained_path", "a local weight file; nothing is downloaded"),
    "pretrained": (NOTEBOOKS, "--pretrained_path", "a local weight file; nothing is downloaded"),
    "gpus": (NOTEBOOKS, "--device", f"--device cuda:N picks one GPU; several: {_TORCHRUN}"),
    "gpu": (NOTEBOOKS, "--device", f"--device cuda:N picks one GPU; several: {_TORCHRUN}"),
    "grad_clip": (NOTEBOOKS, "--clip_grad", ""),
    "max_grad_norm": (NOTEBOOKS, "--clip_grad", ""),
    "warmup_ratio": (NOTEBOOKS, "--warmup_fraction", ""),
}


def suggest_flag(parser: argparse.ArgumentParser, flag: str) -> str:
    """One line about an unknown ``flag``: the aigbench flag that does what another tool's flag
    of that name does (:data:`FOREIGN_FLAGS`), why there is none, or the closest flag of ``parser``."""
    name = flag.split("=", 1)[0]
    options = sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--")})
    entry = FOREIGN_FLAGS.get(name.lstrip("-").replace("-", "_").lower())
    if entry is not None:
        tools, use, note = entry
        if use and use.split()[0] in options:
            return f"{name} ({tools}): did you mean {use}?" + (f" {note[:1].upper()}{note[1:]}" if note else "")
        where = "this script has" if use else "aigbench has"
        return f"{name} ({tools}): {where} no such flag; {note or f'see {use}'}"
    close = difflib.get_close_matches(name, options, n=2, cutoff=0.7)
    if close:
        return f"{name}: did you mean {' or '.join(close)}?"
    return f"{name}: not a flag of this script; --help lists them all (docs/migrating.md maps other tools' flags)"


def layout_help() -> str:
    """``--layout``'s help: every registered layout, from the registry (the built-in ones and any a
    user registered before the parser was built)."""
    from aigbench.registry import LAYOUTS

    return "dataset layout: auto (detected), or one of " + ", ".join(sorted(LAYOUTS.list(), key=str.lower))


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    g = parser.add_argument_group("common")
    g.add_argument("--model", default=None, help=f"registered model name (see `bench models`; default {DEFAULT_MODEL})")
    g.add_argument("--output_dir", default="output_dir", help="folder for checkpoints, logs and results")
    g.add_argument(
        "--image_size",
        type=int,
        default=None,
        help="side of the square model input, in pixels (default: the model's declared input size)",
    )
    g.add_argument(
        "--resize_mode",
        choices=list(RESIZE_MODES),
        default=None,
        help="how images reach --image_size: resize, crop (random when training, center when testing), "
        "resize_crop (shorter side to image_size/crop_pct, then crop) or none (default: the model's)",
    )
    g.add_argument(
        "--interpolation",
        choices=["nearest", "bilinear", "bicubic", "area", "lanczos"],
        default=None,
        help="Pillow's resampling filter, as torchvision on PIL images (antialiased when shrinking; default: the "
        "model's)",
    )
    g.add_argument("--crop_pct", type=float, default=None, help="crop fraction of --resize_mode resize_crop")
    g.add_argument(
        "--pad_mode",
        choices=["constant", "reflect", "wrap"],
        default=None,
        help="images smaller than a crop: zero-padded as torchvision's CenterCrop (constant), mirrored (reflect) "
        "or tiled (wrap) (default: the model's, constant)",
    )
    g.add_argument(
        "--eval_crop",
        choices=["resize", "center_crop", "multicrop", "full"],
        default=None,
        help="evaluation images: resized, centre-cropped, --eval_crops crops whose scores are averaged, or full "
        "(each image at its own size, one per batch, as CNNSpot's evaluation); default: --resize_mode",
    )
    g.add_argument("--eval_crops", type=int, default=5, choices=[5, 10], help="crops of --eval_crop multicrop")
    g.add_argument("--batch_size", type=int, default=64, help="images per process per step")
    g.add_argument(
        "--num_workers",
        default="auto",
        help="DataLoader worker processes: auto (on CUDA one per CPU of this process's share, at most 8; on the "
        "CPU 0), or a number (0: load in the main process)",
    )
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    g.add_argument(
        "--cache_decoded",
        choices=["none", "ram", "disk"],
        default="none",
        help="decode every image once before the first epoch into RAM, or into a memory-mapped file under "
        "<output_dir>/cache/ (disk): for datasets that fit; augmentation still runs per epoch",
    )
    g.add_argument(
        "--channels_last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC memory layout for the model and its inputs (default: on with CUDA, and on the CPU for inputs "
        "of 128 px or more, where oneDNN's NHWC convolutions are faster)",
    )
    g.add_argument(
        "--tf32",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TF32 matmuls and convolutions on Ampere+ GPUs (10-bit mantissa inputs, float32 accumulation)",
    )
    g.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op CPU threads per process (default: the CPUs this process may use, from its affinity and "
        "cgroup quota, divided among the node's processes, less one per loader worker)",
    )
    g.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="mixed precision on CUDA: bfloat16 where the GPU supports it, else float16 with loss scaling; off on CPU",
    )
    g.add_argument(
        "--layout",
        default="auto",
        help=layout_help(),
    )
    g.add_argument(
        "--label_map",
        default="",
        metavar="NAME:0,NAME:1",
        help="label names of your data, e.g. real:0,fake:1 (folder names, or label values of a list)",
    )
    g.add_argument(
        "--generators",
        default="",
        metavar="G1,G2",
        help="keep only these generators' fakes (reals stay, except reals that belong to a generator's own "
        "folder); train.py: of the training and validation data; test.py, test_robust.py: of the test sets",
    )
    g.add_argument(
        "--exclude_generators", default="", metavar="G1,G2", help="drop these generators' fakes (and their own reals)"
    )
    g.add_argument("--seed", type=int, default=42)
    g.add_argument(
        "--pretrained_path",
        default="",
        help="weights the model starts from (its own loader for zoo models, else a strict state dict)",
    )
    g.add_argument(
        "--align_format",
        default="",
        metavar="jpeg:QUALITY",
        help="re-encode every evaluation image (validation, test, robustness) in this format first, e.g. "
        "jpeg:96: takes away the real-JPEG / fake-PNG shortcut (Grommelt et al. 2024); recorded in metrics.json",
    )
    g.add_argument(
        "--eval_perturb",
        default="",
        metavar="CHAIN",
        help="perturb every validation and test image first, with a fixed chain of robustness perturbations, "
        "e.g. aigenbench:1 (AI-GenBench's mandatory evaluation distortions) or jpeg:75>resize:0.5; seeded per "
        "image, recorded in metrics.json; never applied by bench predict",
    )
    g.add_argument(
        "--max_skip_ratio",
        type=float,
        default=DEFAULT_MAX_SKIP_RATIO,
        help="stop when more than this fraction of a dataset is undecodable (0 allows none)",
    )
    g.add_argument(
        "--wandb",
        action="store_true",
        help="also log every TensorBoard scalar to Weights & Biases (pip install wandb; offline by default, "
        "files under OUTPUT_DIR/wandb; `wandb sync` uploads them later)",
    )
    g.add_argument("--wandb_project", default="aigbench", help="W&B project of --wandb")
    g.add_argument(
        "--wandb_mode", default="offline", choices=["offline", "online"], help="online streams to W&B (needs a login)"
    )
    g.add_argument(
        "--no_progress",
        action="store_true",
        help="no progress bars (they are off anyway when output is not a terminal: one line per epoch)",
    )
    g.add_argument(
        "--no_fuse",
        action="store_true",
        help="evaluate the model as it is: by default each BatchNorm is folded into the convolution before it "
        "where that is exact (scores within 1e-6; metrics.json says so under model_fusion)",
    )
    g.add_argument(
        "--micro_batch",
        type=int,
        default=16,
        help="on the CPU, score each evaluation batch this many images at a time (same scores, a fraction of the "
        "memory; 0: whole batches)",
    )
    return parser


def train_parser(description: str = "Train a detector") -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(description=description, allow_abbrev=False))
    g = parser.add_argument_group("training")
    g.add_argument(
        "--data_path",
        default=DEMO_ALIAS,
        help=f"training data (its train split when it has one); {DEMO_ALIAS} is the embedded demo. Several "
        "sources: a:1,b:2 (each drawn in proportion to its weight, whatever its size)",
    )
    g.add_argument(
        "--balance",
        choices=["none", "label", "generator"],
        default="none",
        help="draw real and fake equally often (label), and each generator equally often among fakes "
        "(generator); with replacement, seeded",
    )
    g.add_argument(
        "--val_data_path",
        default="",
        help="validation data that selects checkpoint-best.pth and the threshold (its val/ folder when it has one)",
    )
    g.add_argument(
        "--val_split",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="hold out this fraction of the training data for validation, stratified by label and generator "
        "and seeded (written to val_split.csv)",
    )
    g.add_argument(
        "--test_split",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="also hold out this fraction of the training data as a test set 'heldout' (stratified, seeded, "
        "in val_split.csv; test it again with --test_data_path <output_dir>/val_split.csv). --val_split and "
        "--test_split are both fractions of the whole; copies of an image stay in one split",
    )
    g.add_argument(
        "--test_data_path",
        default="auto",
        help="test data, reported only, never used for selection: a dataset path (its test/ folder when it "
        "has one) or a JSON {name: path} file; auto: the test/ split of --data_path when it has one, else no "
        "test set; '' or none: no test set",
    )
    g.add_argument(
        "--train_crop",
        choices=["resize", "random_crop", "center_crop"],
        default=None,
        help="training images: resized, randomly cropped or centre-cropped (default: --resize_mode)",
    )
    g.add_argument(
        "--align_train",
        action="store_true",
        help="apply --align_format to the training images too",
    )
    g.add_argument(
        "--stream_shards",
        action="store_true",
        help="training data of several parquet / WebDataset tar shards: each process and loader worker reads its "
        "own shards, one after another (shards shuffled each epoch, rows in blocks of 1024); the shards must "
        "have been shuffled when written. Evaluation always reads shard by shard",
    )
    g.add_argument(
        "--allow_one_class",
        action="store_true",
        help="train even when the training data holds one class only (otherwise an error)",
    )
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw", help="AdamW, or SGD with --momentum")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (--optimizer sgd)")
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    g.add_argument(
        "--scheduler",
        choices=["cosine", "onecycle"],
        default="cosine",
        help="cosine: linear warmup then cosine to --min_lr; onecycle: torch's OneCycleLR with its defaults "
        "(AI-GenBench; 30%% warm-up, momentum cycled 0.85-0.95), --warmup_* and --min_lr unused",
    )
    g.add_argument("--min_lr", type=float, default=1e-6, help="learning rate at the end of the cosine")
    g.add_argument("--weight_decay", type=float, default=0.05)
    g.add_argument("--warmup_epochs", type=float, default=1.0, help="linear warm-up length in epochs")
    g.add_argument(
        "--warmup_fraction",
        type=float,
        default=None,
        metavar="F",
        help="linear warm-up as a fraction of all steps (e.g. 0.1); replaces --warmup_epochs",
    )
    g.add_argument(
        "--clip_grad", type=float, default=0.0, metavar="NORM", help="clip the gradients' total norm (0: off)"
    )
    g.add_argument(
        "--init_from",
        default="",
        metavar="CHECKPOINT",
        help="start from the model weights of an aigbench checkpoint (e.g. the previous sliding window's); "
        "optimizer and schedule start fresh (--resume continues a run instead)",
    )
    g.add_argument("--accum_iter", type=int, default=1, help="gradient accumulation steps per optimizer step")
    g.add_argument(
        "--test_period",
        type=int,
        default=1,
        help="test every N epochs (and after the last); validation runs every epoch",
    )
    g.add_argument(
        "--best_metric",
        default="auroc",
        help="validation metric that picks checkpoint-best.pth (threshold-free by default): "
        + ", ".join(METRIC_CHOICES)
        + "; val_loss is the binary cross-entropy of the scores (lower is better); a tie keeps the earlier epoch",
    )
    g.add_argument(
        "--early_stop",
        type=int,
        default=0,
        metavar="PATIENCE",
        help="stop when PATIENCE validated epochs pass without a better --best_metric (0: off; validation only)",
    )
    g.add_argument("--log_every", type=int, default=20, help="steps between TensorBoard training scalars")
    g.add_argument("--resume", default="", help="checkpoint to continue from ('auto': the latest in --output_dir)")
    g.add_argument(
        "--cache_features",
        action="store_true",
        help="frozen-backbone models (TimmDetector --mode probe, UnivFD): compute the backbone's features of the "
        "training images once (un-augmented) and train the head on them",
    )
    g.add_argument(
        "--keep_last",
        type=int,
        default=0,
        metavar="N",
        help="keep only the N latest checkpoint-<epoch>.pth (checkpoint-best.pth always stays; 0 keeps every epoch)",
    )
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
    a.add_argument(
        "--rsa_ops",
        default="",
        metavar="OPS",
        help="RandomStateAugmentation of Community Forensics: 'default' (its 11 operations) or names separated "
        "by commas (JPEGinMemory,RandomResizeWithRandomIntpl,RandomCrop,...); each runs --rsa_num times, in "
        "random order, after the shorter side is resized to --image_size / --crop_pct; then a random crop",
    )
    a.add_argument(
        "--rsa_num",
        type=int,
        nargs=2,
        default=[0, 2],
        metavar=("MIN", "MAX"),
        help="how often each --rsa_ops operation runs, ~ U{MIN..MAX} per image (Community Forensics: 0 2)",
    )
    return parser


def test_parser(description: str = "Test checkpoints on several datasets") -> argparse.ArgumentParser:
    parser = _common(argparse.ArgumentParser(description=description, allow_abbrev=False))
    g = parser.add_argument_group("testing")
    g.add_argument("--test_data_json", default="test_datasets.json", help="JSON {name: path} of test datasets")
    g.add_argument(
        "--checkpoint",
        default="",
        help="best (default: checkpoint-best.pth, else the last epoch), last, an epoch number, all (every epoch: "
        "choosing among them is selection on test), pretrained, a file name in --output_dir, or a path",
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="fixed score threshold of the threshold-based metrics (accuracy, real/fake accuracy, F1); the "
        "threshold calibrated on validation is reported beside it when the run has one",
    )
    g.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="add 95%% bootstrap confidence intervals of accuracy, AUROC and AP from N replicates "
        "(stratified by label, seeded by --seed; 1000 is usual)",
    )
    g.add_argument(
        "--fast_decode",
        action="store_true",
        help="decode JPEGs at a reduced DCT scale that keeps at least twice the resize target on each side "
        "(libjpeg's scaled decode): about 3x faster preprocessing of full-size photos, pixels within a few grey "
        "levels of the exact pipeline. Never the default; recorded in metrics.json; only for geometries that "
        "resize (resize, resize_crop); refused by bench eval's exact protocols",
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


def read_run_config(output_dir: str) -> dict[str, Any]:
    """The run's ``config.json`` (written by train.py), or ``{}`` when there is none."""
    path = Path(output_dir) / "config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}); delete it or fix it") from None
    return data if isinstance(data, dict) else {}


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the framework flags, then add the chosen model's flags and parse everything.

    ``--help`` lists the model's flags too. A test or robustness parser (one with
    ``--checkpoint``) takes the model and its flags from ``<output_dir>/config.json``;
    flags given on the command line win. Then the model's preprocessing is resolved
    (:func:`~aigbench.datasets.preprocess.resolve_preprocess`) into ``args``.
    """
    from aigbench.registry import MODELS

    argv = list(sys.argv[1:] if argv is None else argv)
    known, _ = parser.parse_known_args([a for a in argv if a not in ("-h", "--help")])
    config = read_run_config(known.output_dir) if hasattr(known, "checkpoint") else {}
    model_name = known.model or config.get("model") or DEFAULT_MODEL
    try:
        model_cls = MODELS.get(model_name)
    except KeyError as e:
        parser.error(f"--model: {e.args[0]}")
    try:  # before any data is read: a forward the loop cannot call stops here
        check_forward_signature(model_cls)
    except ForwardSignatureError as e:
        parser.error(f"--model {model_name}: {e}")
    parser.set_defaults(model=model_name)
    names = add_signature_flags(
        parser, model_cls, f"{model_name} parameters (from its __init__)", shareable=SHARED_WITH_MODELS
    )
    if config and config.get("model", model_name) == model_name:
        rebuilt = [k for k in (*names, *REBUILD_FLAGS) if k in config]
        if hasattr(known, "perturb_stage"):  # a robustness sweep perturbs the clean images itself
            rebuilt = [k for k in rebuilt if k != "eval_perturb"]
        parser.set_defaults(**{k: config[k] for k in rebuilt})
        parser.set_defaults(rebuilt_from=str(Path(known.output_dir) / "config.json"))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [a for a in unknown if a.startswith("-") and not a.lstrip("-").replace(".", "").isdigit()]
        parser.error(
            f"unrecognized arguments: {' '.join(unknown)}" + "".join(f"\n  {suggest_flag(parser, f)}" for f in flags)
        )
    if hasattr(args, "best_metric") and args.best_metric not in METRIC_CHOICES:
        parser.error(f"--best_metric must be one of {', '.join(METRIC_CHOICES)}, got {args.best_metric!r}")
    if getattr(args, "early_stop", 0) < 0:
        parser.error(f"--early_stop must be 0 (off) or a number of epochs, got {args.early_stop}")
    for flag in ("batch_size", "epochs", "accum_iter", "test_period", "image_size", "threads", "log_every"):
        if getattr(args, flag, None) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    fraction = getattr(args, "warmup_fraction", None)
    if fraction is not None and not 0.0 <= fraction < 1.0:
        parser.error(f"--warmup_fraction must be a fraction in [0, 1), got {fraction}")
    if getattr(args, "clip_grad", 0.0) < 0:
        parser.error(f"--clip_grad must be a norm > 0 (or 0: off), got {args.clip_grad}")
    if getattr(args, "keep_last", 0) < 0:
        parser.error(f"--keep_last must be 0 (keep all) or a number of checkpoints, got {args.keep_last}")
    for flag in ("val_split", "test_split"):
        if not 0.0 <= getattr(args, flag, 0.0) < 1.0:
            parser.error(f"--{flag} must be a fraction in [0, 1), got {getattr(args, flag)}")
    if str(args.num_workers) == "auto":
        from aigbench.engine.threads import auto_workers

        args.num_workers = auto_workers(args.device)
    elif not str(args.num_workers).isdigit():
        parser.error(f"--num_workers takes auto or a number >= 0, got {args.num_workers!r}")
    args.num_workers = int(args.num_workers)
    if not 0.0 <= getattr(args, "threshold", 0.5) <= 1.0:
        parser.error(f"--threshold must be a score in [0, 1], got {args.threshold}")
    if getattr(args, "bootstrap", 0) < 0:
        parser.error(f"--bootstrap must be 0 (off) or a number of replicates, got {args.bootstrap}")
    if not 0.0 <= args.max_skip_ratio <= 1.0:
        parser.error(f"--max_skip_ratio must be in [0, 1], got {args.max_skip_ratio}")
    cfg = preprocess_from_args(model_cls, args)
    args.image_size, args.resize_mode = cfg.input_size, cfg.resize_mode
    args.interpolation, args.crop_pct, args.pad_mode = cfg.interpolation, cfg.crop_pct, cfg.pad_mode
    args.preprocess = cfg.as_dict()
    if config:
        args.differs_from_training = differs_from_training(args, config, (*names, *REBUILD_FLAGS))
    return args


def differs_from_training(args: argparse.Namespace, config: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The model and preprocessing flags whose values differ from those the run was trained with
    (its ``config.json``), each ``{"trained": ..., "now": ...}``; named on the terminal too."""
    out = {}
    for k in keys:
        if k in config and hasattr(args, k) and getattr(args, k) != config[k]:
            out[k] = {"trained": config[k], "now": getattr(args, k)}
    if out:
        log.warning(
            "testing with flags that differ from training (%s): %s; the result records them",
            Path(args.output_dir) / "config.json",
            ", ".join(f"--{k} {v['now']} (trained with {v['trained']})" for k, v in out.items()),
        )
    return out
