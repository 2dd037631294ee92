"""The two loops: one training epoch, and prediction over a dataset with exact-once gathering."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from aigbench.datasets.dataset import model_input
from aigbench.engine.amp import MAX_SKIPPED_STEPS, AmpPolicy, as_policy
from aigbench.engine.checkpoint import unwrap
from aigbench.engine.contract import NonFiniteLossError, check_finite_loss, validate_output
from aigbench.engine.dist import DistContext, all_gather_objects, all_reduce_mean, any_rank, broadcast_buffers
from aigbench.engine.fusion import fused_for_eval, worth_fusing
from aigbench.engine.memory import TRIM_EVERY, trim_heap
from aigbench.metrics.binary import is_fake

log = logging.getLogger("aigbench")


class SkipCounter:
    """Warns once per undecodable file (naming it) and counts them."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._seen: set[str] = set()

    def add(self, paths: list[str]) -> None:
        for p in paths:
            if p not in self._seen:
                self._seen.add(p)
                self.paths.append(p)
                log.warning("skipped undecodable image file: %s", p)

    def __len__(self) -> int:
        return len(self.paths)


def _forward(
    model: torch.nn.Module, batch: dict[str, Any], device: torch.device, amp: AmpPolicy, channels_last: bool = False
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    label = batch["label"].to(device, non_blocking=True)
    if "features" in batch:  # --cache_features: the frozen backbone's features, computed once
        image = batch["features"].to(device, non_blocking=True)
        extra = {"features_precomputed": True}
    else:
        image, extra = model_input(batch, device, channels_last), {}
    with amp.autocast():
        out = model(image, label, path=batch["path"], generator=batch["generator"], index=batch["index"], **extra)
    return out, label, image


def channels_last_of(model: torch.nn.Module) -> bool:
    """Whether the model's convolution weights are in NHWC layout (``--channels_last``): its inputs
    then get the same layout."""
    for p in model.parameters():
        if p.dim() == 4:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def progress(iterable: Any, desc: str, enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar when ``enabled`` (main process, no ``--no_progress``) and stderr is a terminal,
    else the iterable: a log file gets no ``\\r`` fragments."""
    if enabled and sys.stderr.isatty():
        return tqdm(iterable, desc=desc, dynamic_ncols=True, leave=False, **kwargs)
    return iterable


def _model_name(model: torch.nn.Module) -> str:
    inner = model.module if hasattr(model, "module") else model
    return type(inner).__name__


@dataclass
class EpochResult:
    stats: dict[str, float]
    global_step: int
    skipped: list[str] = field(default_factory=list)  # undecodable files of every rank
    first_batch: Optional[dict[str, Any]] = None


class WeightSnapshot:
    """A host copy of what training changes (trainable parameters and buffers), refreshed at
    each check without waiting for the device (pinned memory, non-blocking copies on CUDA):
    the last weights known to be finite, put back when a later check finds a NaN/inf."""

    def __init__(self, model: torch.nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> None:
        inner = unwrap(model)
        self.optimizer = optimizer
        pin = next((p.is_cuda for p in inner.parameters()), False)
        self.tensors = {n: p for n, p in inner.named_parameters() if p.requires_grad}
        self.tensors.update(dict(inner.named_buffers()))
        self.copies = {n: torch.empty(t.shape, dtype=t.dtype, pin_memory=pin) for n, t in self.tensors.items()}
        self.global_step = 0

    def take(self, global_step: int) -> None:
        with torch.no_grad():
            for n, t in self.tensors.items():
                self.copies[n].copy_(t.detach(), non_blocking=True)
        self.global_step = global_step

    def restore(self) -> None:
        """The weights of the last check back in the model; the optimizer's state (moments, which
        the non-finite gradients reached) is cleared, so that nothing saved after this holds NaN."""
        with torch.no_grad():
            for n, t in self.tensors.items():
                t.copy_(self.copies[n])
        if self.optimizer is not None:
            self.optimizer.state.clear()


def sync_interval(ctx: DistContext, scaling: bool, log_every: int) -> int:
    """Optimizer steps between host reads of the training scalars: every step on the CPU (a read
    costs nothing there) and with a float16 GradScaler (torch's ``scaler.step`` reads its
    overflow flag every step anyway); on CUDA otherwise once per ``--log_every`` steps."""
    return 1 if ctx.device.type != "cuda" or scaling else max(1, log_every)


def train_one_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Optional[torch.amp.GradScaler],
    ctx: DistContext,
    epoch: int,
    global_step: int = 0,
    accum_iter: int = 1,
    amp: Union[bool, AmpPolicy] = False,
    logger: Any = None,
    log_every: int = 20,
    validate: bool = True,
    show_progress: bool = True,
    channels_last: Optional[bool] = None,
    clip_grad: float = 0.0,
    sync_every: Optional[int] = None,
) -> EpochResult:
    """One pass over ``loader``; ``clip_grad > 0`` clips the gradients' total norm before each step.

    The loss, ``visual_loss`` and accuracy are summed on the device, and read by the host once
    per ``sync_every`` batches (default :func:`sync_interval`: each batch on the CPU, once per
    ``log_every`` on CUDA), in one transfer with a NaN/inf flag. A non-finite loss raises
    :class:`NonFiniteLossError` with the weights in memory those of the last good step: checked
    before stepping when every batch is read; otherwise the trainable weights and buffers are
    put back to the host copy taken at the last check that found everything finite.

    With a float16 GradScaler, a non-finite loss is an overflow that the scaler skips (it
    lowers its scale and the weights do not change); only :data:`MAX_SKIPPED_STEPS` of them
    in a row stop the run.
    """
    amp = as_policy(amp, ctx.device)
    channels_last = channels_last_of(model) if channels_last is None else channels_last
    scaling = scaler is not None and scaler.is_enabled()
    sync_every = sync_interval(ctx, scaling, log_every) if sync_every is None else max(1, int(sync_every))
    model.train()
    sums: dict[str, torch.Tensor] = {}  # on the device: value x batch size
    host: dict[str, float] = {}
    count = 0
    skipped = SkipCounter()
    first_batch = None
    nonfinite_streak = 0
    bad = torch.zeros((), dtype=torch.bool, device=ctx.device)  # a non-finite loss since the last check
    snapshot = WeightSnapshot(model, optimizer) if sync_every > 1 else None
    if snapshot is not None:
        snapshot.take(global_step)
    optimizer.zero_grad(set_to_none=True)
    n_steps = len(loader)
    bar = progress(loader, f"train epoch {epoch}", show_progress and ctx.is_main)
    start = time.perf_counter()
    checked = not validate

    def read(step: int, log_now: bool, values: dict[str, torch.Tensor]) -> None:
        nonlocal host
        got = _read_sums(
            {**sums, **{f"step/{k}": v for k, v in values.items()}}, bad, ctx, snapshot, epoch, step, global_step
        )
        host = {k: v / max(count, 1) for k, v in got.items() if not k.startswith("step/")}
        if ctx.is_main:
            if hasattr(bar, "set_postfix") and "loss" in host:
                bar.set_postfix(loss=f"{host['loss']:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if logger is not None and log_now and values:
                logged = {k[len("step/") :]: v for k, v in got.items() if k.startswith("step/")}
                logger.scalars("train_step", {**logged, "lr": optimizer.param_groups[0]["lr"]}, global_step)

    for step, batch in enumerate(bar):
        skipped.add(batch["skipped"])
        values: dict[str, torch.Tensor] = {}
        if "label" in batch:  # else every file of the batch was undecodable
            boundary = (step + 1) % accum_iter == 0 or step + 1 == n_steps
            sync = contextlib.nullcontext() if boundary or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                out, label, image = _forward(model, batch, ctx.device, amp, channels_last)
                if not checked:
                    validate_output(out, label.shape[0], _model_name(model))
                    checked = True
                loss = out["backward_loss"]
                # torch's scaler reads it anyway; all ranks agree, so that all of them stop together
                if scaling and any_rank(not math.isfinite(float(loss.detach())), ctx.device):
                    nonfinite_streak += 1
                    if nonfinite_streak > MAX_SKIPPED_STEPS:
                        raise NonFiniteLossError(
                            f"backward_loss was non-finite on {nonfinite_streak} float16 steps in a row (epoch "
                            f"{epoch}, step {step}); the GradScaler cannot fix it. Lower --lr or run with --no-amp.",
                            global_step,
                        )
                else:
                    nonfinite_streak = 0
                    if snapshot is None:  # read every batch: check before stepping
                        check_finite_loss(loss, f"epoch {epoch}, step {step}", global_step, ctx.device)
                    else:
                        bad = bad | ~torch.isfinite(loss.detach())
                scaled = loss / accum_iter
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
            if first_batch is None and "features" not in batch:  # cached features are no images to show
                first_batch = {
                    "image": image[:32].detach().cpu(),
                    "label": label[:32].detach().cpu(),
                    "score": out["pred_label"][:32].detach().float().cpu(),
                    "visual_image": {k: v.detach().cpu() for k, v in out["visual_image"].items()},
                }
            if boundary:
                if clip_grad > 0:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None], clip_grad
                    )
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None:
                    scheduler.step()
                global_step += 1
            if not nonfinite_streak:  # else a step the GradScaler skipped: nothing to average
                b = label.shape[0]
                with torch.no_grad():
                    values = {"loss": loss.detach().float()}
                    values.update(device_scalars(out["visual_loss"], ctx.device))
                    values["acc"] = (is_fake(out["pred_label"].detach()).float() == label).float().mean()
                    for k, v in values.items():
                        sums[k] = sums[k] + v * b if k in sums else v * b
                count += b
        # the same steps on every process (the flag is all-reduced), whatever each one's batch held
        log_now = step % log_every == 0 and sync_every == 1 or (step + 1) % sync_every == 0 and sync_every > 1
        if (step + 1) % sync_every == 0 or step + 1 == n_steps:
            read(step, log_now, values)
    if hasattr(bar, "close"):
        bar.close()
    trim_heap()
    elapsed = time.perf_counter() - start
    stats = all_reduce_mean(host, ctx.device, weight=count)
    all_skipped = sorted({p for part in all_gather_objects(skipped.paths) for p in part})
    if all_skipped:
        log.warning(
            "epoch %d: %d undecodable training file(s); each was replaced by the next decodable one",
            epoch,
            len(all_skipped),
        )
    stats["skipped_files"] = float(len(all_skipped))
    stats["epoch_time_s"] = elapsed
    stats["images_per_s"] = count * ctx.world_size / max(elapsed, 1e-9)
    stats["lr"] = optimizer.param_groups[0]["lr"]
    stats.update(fit_from_data(model))
    return EpochResult(stats, global_step, all_skipped, first_batch)


def fit_from_data(model: torch.nn.Module) -> dict[str, float]:
    """The contract's fit step: a model fitted in closed form from the data it saw in training
    (PCA + logistic regression, a scikit-learn head, a closed-form probe) defines ``fit()``, which
    the loop calls at the end of each training epoch, before the checkpoint is written, so that
    checkpoints, ``test.py``, ``bench predict`` and ``--resume`` hold the fitted model. Nothing is
    fitted in ``eval()`` or ``forward()``. ``fit()`` may return statistics of the fit (numbers),
    recorded as ``train_fit_<name>``."""
    fit = getattr(unwrap(model), "fit", None)
    if not callable(fit):
        return {}
    with torch.no_grad():
        stats = fit() or {}
    return {f"fit_{k}": float(v) for k, v in stats.items()}


def device_scalars(visual_loss: Any, device: torch.device) -> dict[str, torch.Tensor]:
    """``visual_loss`` as 0-d float tensors on ``device`` (no host read)."""
    return {
        k: (
            v.detach().float().reshape(()).to(device, non_blocking=True)
            if isinstance(v, torch.Tensor)
            else torch.tensor(float(v), device=device)
        )
        for k, v in visual_loss.items()
    }


def _read_sums(
    sums: dict[str, torch.Tensor],
    bad: torch.Tensor,
    ctx: DistContext,
    snapshot: Optional[WeightSnapshot],
    epoch: int,
    step: int,
    global_step: int,
) -> dict[str, float]:
    """One host read of every running sum and the NaN/inf flag (all processes agree on the flag).
    A non-finite loss since the last read puts the weights of that read back and raises."""
    keys = list(sums)
    flag = bad.float().reshape(1)
    if ctx.distributed and snapshot is not None:
        import torch.distributed as dist

        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    packed = torch.cat([flag, *[sums[k].float().reshape(1) for k in keys]]).tolist()  # the one sync
    if packed[0] > 0:
        if snapshot is None:
            raise NonFiniteLossError(f"backward_loss was non-finite before epoch {epoch}, step {step}", global_step)
        snapshot.restore()
        raise NonFiniteLossError(
            f"backward_loss was non-finite between optimizer steps {snapshot.global_step} and {global_step} (epoch "
            f"{epoch}, checked at step {step}); the weights were put back to those of step {snapshot.global_step}, "
            "the last check that found every loss finite, and the optimizer's moments cleared. Lower --lr, check "
            "the inputs and the loss, or disable --amp; resume from the last checkpoint with --resume.",
            snapshot.global_step,
        )
    if snapshot is not None:
        snapshot.take(global_step)
    return dict(zip(keys, packed[1:]))


@dataclass
class Predictions:
    """Scores for every image of a dataset, each counted once, in dataset order."""

    index: np.ndarray
    label: np.ndarray
    score: np.ndarray
    skipped: list[str]
    first_batch: Optional[dict[str, Any]] = None
    fusion: Optional[dict[str, Any]] = None  # what engine.fusion did to the evaluated model


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    loader: DataLoader,
    ctx: DistContext,
    amp: Union[bool, AmpPolicy] = False,
    desc: str = "test",
    validate: bool = True,
    show_progress: bool = True,
    channels_last: Optional[bool] = None,
) -> Predictions:
    """Run the model over ``loader`` and gather scores (float32) from all ranks.

    **Evaluation runs in float32**, whatever ``amp`` says (the argument stays for scripts
    rendered by earlier versions): under bfloat16 autocast a model's last layer gives logits
    with 8 significant bits, which tie thousands of scores and lower AUROC, AP and the
    calibrated threshold. Training keeps its mixed precision.

    A padded ``DistributedSampler`` repeats a few images on some ranks; gathering keeps the
    first score of each dataset index, so every image counts exactly once. The model runs
    unwrapped from DDP: evaluation has no gradients to synchronise, so a rank with fewer
    batches (or an empty one) never waits on another. Rank 0's buffers are broadcast first,
    so that every rank scores the model that rank 0 saves.
    """
    return predict_views(model, loader, ctx, 0, desc, validate, show_progress, channels_last)[0]


class _Gatherer:
    """Scores of one dataset (or one view of it) batch by batch, then gathered from every rank."""

    def __init__(self) -> None:
        self.idx: list[np.ndarray] = []
        self.label: list[np.ndarray] = []
        self.score: list[np.ndarray] = []
        self.first_batch: Optional[dict[str, Any]] = None

    def add(self, batch: dict[str, Any], score: torch.Tensor, image: torch.Tensor, out: dict[str, Any]) -> None:
        if self.first_batch is None:
            self.first_batch = {
                "image": image[:32].detach().cpu(),
                "label": batch["label"][:32],
                "score": score[:32],
                "visual_image": {k: v.detach().cpu() for k, v in out["visual_image"].items()},
            }
        self.idx.append(batch["index"].numpy())
        self.label.append(batch["label"].numpy())
        self.score.append(score.numpy())

    def gather(self, skipped: list[str]) -> Predictions:
        local = (
            np.concatenate(self.idx) if self.idx else np.zeros(0, np.int64),
            np.concatenate(self.label) if self.label else np.zeros(0, np.float32),
            np.concatenate(self.score) if self.score else np.zeros(0, np.float32),
            skipped,
        )
        gathered = all_gather_objects(local)
        index = np.concatenate([g[0] for g in gathered])
        label = np.concatenate([g[1] for g in gathered])
        score = np.concatenate([g[2] for g in gathered])
        all_skipped = sorted({p for g in gathered for p in g[3]})
        index, first = np.unique(index, return_index=True)  # sorted, first occurrence of each
        return Predictions(index, label[first], score[first], all_skipped, self.first_batch)


def _slice(batch: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Rows ``start:stop`` of a batch (tensors and lists alike)."""
    return {
        k: (v[start:stop] if isinstance(v, (torch.Tensor, list)) and k != "skipped" else v) for k, v in batch.items()
    }


def _score_batch(
    model: torch.nn.Module, batch: dict[str, Any], ctx: DistContext, channels_last: bool, validate: bool
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Float32 scores of one batch (``[B]``), the model input and the output dict; with several
    crops per image (``--eval_crop multicrop``) every crop is scored and an image's score is
    their mean."""
    n_crops = batch["image"].shape[1] if batch["image"].dim() == 5 else 0
    if n_crops:
        batch = {
            **batch,
            "image": batch["image"].flatten(0, 1),
            "label": batch["label"].repeat_interleave(n_crops),
            "path": [p for p in batch["path"] for _ in range(n_crops)],
            "generator": [g for g in batch["generator"] for _ in range(n_crops)],
            "index": batch["index"].repeat_interleave(n_crops),
        }
    micro = ctx.micro_batch if ctx.device.type == "cpu" and len(batch["path"]) > ctx.micro_batch else 0
    need = 32 * max(1, n_crops)  # the inputs that the first-batch grid shows
    scores, images, first = [], [], None
    for start in range(0, len(batch["path"]), micro or len(batch["path"])):
        part = _slice(batch, start, start + micro) if micro else batch
        out, label, image = _forward(model, part, ctx.device, AmpPolicy(ctx.device.type, None), channels_last)
        if first is None:
            if validate:
                validate_output(out, label.shape[0], _model_name(model))
            first = out  # the first micro-batch's visual_image: what TensorBoard shows
        scores.append(out["pred_label"].detach().float().cpu().reshape(-1))
        if sum(i.shape[0] for i in images) < need:
            images.append(image)
    score = torch.cat(scores)
    image = torch.cat(images) if len(images) > 1 else images[0]
    out = first
    if n_crops:
        score, image = score.view(-1, n_crops).mean(1), image[::n_crops]
    return score, image, out


@torch.inference_mode()
def predict_views(
    model: torch.nn.Module,
    loader: DataLoader,
    ctx: DistContext,
    n_views: int,
    desc: str = "test",
    validate: bool = True,
    show_progress: bool = True,
    channels_last: Optional[bool] = None,
) -> list[Predictions]:
    """:func:`predict` for a loader whose batches hold ``n_views`` versions of each image
    (``image`` of shape ``[B, n_views, ...]``, e.g. every point of a robustness grid, decoded
    once): one :class:`Predictions` per view, each equal to what ``predict`` gives on that
    view alone. ``n_views = 0``: a plain loader, one result."""
    model = unwrap(model)
    channels_last = channels_last_of(model) if channels_last is None else channels_last
    broadcast_buffers(model)
    model.eval()
    skipped = SkipCounter()
    views = [_Gatherer() for _ in range(max(1, n_views))]
    fusion: Optional[dict[str, Any]] = None if ctx.fuse_eval else {"fused": False, "note": "--no_fuse"}
    side = int(getattr(getattr(loader.dataset, "transform", None), "image_size", 224) or 224)
    if fusion is None and not worth_fusing(len(loader.dataset), side):
        fusion = {"fused": False, "note": f"{len(loader.dataset)} images of {side} px: too few to gain from folding"}
    for step, batch in enumerate(progress(loader, desc, show_progress and ctx.is_main)):
        skipped.add(batch["skipped"])
        if step % TRIM_EVERY == TRIM_EVERY - 1:
            trim_heap()  # keeps a long evaluation's memory flat (aigbench.engine.memory)
        if "image" not in batch:
            continue
        if fusion is None:  # the first batch is the probe that checks the fused copy's scores
            image = batch["image"][:, 0] if n_views else batch["image"]
            image = image.flatten(0, 1) if image.dim() == 5 else image
            probe = model_input({**batch, "image": image[:2]}, ctx.device)
            model, fusion = fused_for_eval(model, probe)
            channels_last = channels_last_of(model) if fusion["fused"] else channels_last
        for v, gatherer in enumerate(views):
            view = {**batch, "image": batch["image"][:, v]} if n_views else batch
            score, image, out = _score_batch(model, view, ctx, channels_last, validate and gatherer.first_batch is None)
            gatherer.add(view, score, image, out)
    trim_heap()
    return [dataclasses.replace(g.gather(skipped.paths), fusion=fusion) for g in views]


@torch.inference_mode()
def compute_frozen_features(
    model: torch.nn.Module, loader: DataLoader, ctx: DistContext, show_progress: bool = True
) -> tuple[torch.Tensor, np.ndarray]:
    """``frozen_features`` of every image of ``loader`` (an evaluation loader: no augmentation),
    gathered from every rank, in dataset order, on the CPU; and the dataset indices that were
    decodable."""
    inner = unwrap(model)
    channels_last = channels_last_of(inner)
    parts: list[tuple[np.ndarray, torch.Tensor]] = []
    skipped = SkipCounter()
    for batch in progress(loader, "features", show_progress and ctx.is_main):
        skipped.add(batch["skipped"])
        if "label" not in batch:
            continue
        feats = inner.frozen_features(model_input(batch, ctx.device, channels_last))
        parts.append((batch["index"].numpy(), feats.float().cpu()))
    local = (
        np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64),
        torch.cat([p[1] for p in parts]) if parts else torch.zeros(0),
    )
    gathered = all_gather_objects(local)
    index = np.concatenate([g[0] for g in gathered])
    feats = torch.cat([g[1] for g in gathered if len(g[0])])
    index, first = np.unique(index, return_index=True)
    return feats[torch.from_numpy(first)], index


def begin_epoch(loader: DataLoader, epoch: int, seed: int, rank: int = 0) -> None:
    """Seed everything random in epoch ``epoch`` from ``seed`` alone (shuffle order, augmentation,
    dropout), so that ``--resume`` continues exactly as an uninterrupted run would."""
    from aigbench.datasets.dataset import set_loader_epoch
    from aigbench.engine.dist import seed_everything

    seed_everything(seed + 1000 * epoch + rank)
    set_loader_epoch(loader, epoch, seed)
