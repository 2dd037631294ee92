"""The training policy: what each epoch does, in which order, and how a resumed run finishes
what an interrupted one left undone.

Each epoch has four explicit steps, recorded in ``<output_dir>/progress.json`` (written
atomically after each one): **trained** (the epoch trained, the model's fit step ran and
``checkpoint-<epoch>.pth`` was saved), **validated** (validation scored, ``checkpoint-best.pth``
selected on it), **tested** (the test sets scored, when due; for the record only) and
**logged** (the epoch's row in ``log.jsonl``). A process killed at any point loses nothing:
``--resume`` loads the last epoch checkpoint and first finishes the steps of that epoch that
are missing, the last epoch included, before it trains the next one.

Resuming from an older checkpoint (``--resume out/checkpoint-2.pth``) starts a new branch: the
later epochs' checkpoints, ``checkpoint-best.pth`` when it is later, their ``val/`` and
``test/`` results and ``log.jsonl`` rows are moved to ``abandoned/after-epoch-<E>[-k]/``. The
best epoch is chosen again from the stored validation results up to the resumed epoch, under the
current ``--best_metric`` (so resuming with another metric re-ranks the epochs, or stops with a
message when the epoch it picks was pruned by ``--keep_last``).

The generated ``train.py`` calls :func:`train_epochs`; a fix here reaches projects that were
generated earlier.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from aigbench import fileio
from aigbench.datasets.dataset import check_skipped
from aigbench.engine import checkpoint, loop
from aigbench.engine.checkpoint import BEST_NAME, CheckpointError, ResumeState
from aigbench.engine.contract import NonFiniteLossError
from aigbench.engine.dist import DistContext
from aigbench.engine.loggers import RunLogger, atomic_open, log_epoch, to_jsonable, write_json
from aigbench.evaluation import evaluate, selection
from aigbench.fileio import read_jsonl

log = logging.getLogger("aigbench")

STEPS = ("trained", "validated", "tested", "logged")
PROGRESS = "progress.json"
LOG = "log.jsonl"
ABANDONED = "abandoned"


@dataclass
class TrainingRun:
    """Everything the epoch loop uses, built by the generated ``train.py`` (each piece replaceable)."""

    args: argparse.Namespace
    ctx: DistContext
    model: torch.nn.Module
    train_loader: DataLoader
    val_loader: Optional[DataLoader]
    test_loaders: dict[str, DataLoader]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    amp: Any
    logger: RunLogger
    show_progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # recorded with every test result (build.model_info)

    @property
    def out(self) -> Path:
        return Path(self.args.output_dir)

    def save_kwargs(self, state: ResumeState) -> dict[str, Any]:
        return dict(
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            config=vars(self.args),
            global_step=state.global_step,
        )


# ---- progress.json and log.jsonl ----------------------------------------------------------------


def read_progress(out: Path) -> dict[str, Any]:
    path = out / PROGRESS
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def mark(run: TrainingRun, epoch: int, done: set[str], record: dict[str, Any]) -> None:
    """Record that ``done`` steps of ``epoch`` are finished, with the epoch's log record so far."""
    if run.ctx.is_main:
        write_json(run.out / PROGRESS, {"epoch": epoch, "steps": [s for s in STEPS if s in done], "record": record})


def read_log(out: Path) -> list[dict[str, Any]]:
    return read_jsonl(out / LOG)


def write_log(out: Path, rows: Sequence[dict[str, Any]]) -> None:
    with atomic_open(out / LOG) as f:
        for r in rows:
            f.write(json.dumps(to_jsonable(r), allow_nan=False) + "\n")


def log_row(run: TrainingRun, record: dict[str, Any]) -> None:
    """The epoch's row in ``log.jsonl``, once: a row of the same or a later epoch is replaced."""
    if run.ctx.is_main:
        rows = [r for r in read_log(run.out) if int(r.get("epoch", -1)) < int(record["epoch"])]
        write_log(run.out, [*rows, record])


# ---- selection ------------------------------------------------------------------------------------


def rank_validation(out: Path, metric: str, upto: int) -> dict[str, Any]:
    """The best epoch ``<= upto`` under ``metric``, from the stored validation results
    (``val/checkpoint-<epoch>/val/metrics.json``); ``{}`` when there are none. Ties keep the
    earlier epoch."""
    best: dict[str, Any] = {}
    for epoch in range(upto + 1):
        path = selection.val_results_dir(out, epoch) / selection.VAL_NAME / "metrics.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        calib = result.get("calibrated_threshold") or {}
        checkpoint.improve_best(
            best,
            metric,
            selection.selection_value(result, metric),
            epoch,
            threshold=calib.get("threshold"),
            threshold_rule=calib.get("rule"),
        )
    return best


def sync_best(run: TrainingRun, best: dict[str, Any]) -> None:
    """Make ``checkpoint-best.pth`` the checkpoint of ``best["epoch"]`` (copied from its epoch
    checkpoint, with ``best`` recorded in it); none when there is no best."""
    path = run.out / BEST_NAME
    src = run.out / f"checkpoint-{best['epoch']}.pth" if best else None
    if src is not None and not src.is_file():  # on every rank: all of them stop, none waits in a collective
        raise CheckpointError(
            f"--best_metric {best['metric']}: epoch {best['epoch']} is the best on validation, but {src} was "
            "removed (--keep_last); resume with the --best_metric the run was trained with, or start a new run"
        )
    if not run.ctx.is_main:
        return
    if not best:
        if path.is_file():
            set_aside(run.out, [path], "no-best")
        return
    stored = checkpoint.load_checkpoint(path).get("best") or {} if path.is_file() else {}
    if (stored.get("epoch"), stored.get("metric")) == (best["epoch"], best["metric"]):
        return
    state = checkpoint.load_checkpoint(src)
    state["best"] = dict(best)
    checkpoint.atomic_torch_save(state, path)


# ---- branches -------------------------------------------------------------------------------------


def set_aside(out: Path, paths: Sequence[Path], tag: str) -> Optional[Path]:
    """Move ``paths`` (keeping their place below ``out``) into a new ``abandoned/<tag>[-k]/``."""
    return fileio.set_aside(out, paths, tag, ABANDONED)


def later_epochs_exist(out: Path, epoch: int) -> bool:
    """Whether the run went beyond ``epoch`` (checkpoints, results or log rows of later epochs)."""
    if any(checkpoint.epoch_of(p) > epoch for p in checkpoint.list_epoch_checkpoints(out)):
        return True
    return any(int(r.get("epoch", -1)) > epoch for r in read_log(out))


def set_aside_later(run: TrainingRun, epoch: int) -> None:
    """A branch resumed at ``epoch``: move every later epoch's files and log rows aside."""
    out = run.out
    if not run.ctx.is_main:
        return
    later = [p for p in checkpoint.list_epoch_checkpoints(out) if checkpoint.epoch_of(p) > epoch]
    for kind in ("val", "test"):
        for p in (out / kind).glob("checkpoint-*") if (out / kind).is_dir() else []:
            n = p.name[len("checkpoint-") :]
            if n.isdigit() and int(n) > epoch:
                later.append(p)
    best = out / BEST_NAME
    if best.is_file() and int((checkpoint.load_checkpoint(best).get("best") or {}).get("epoch", -1)) > epoch:
        later += [best, out / "test" / "checkpoint-best"]
    rows = read_log(out)
    gone = [r for r in rows if int(r.get("epoch", -1)) > epoch]
    if not later and not gone:
        return
    dest = set_aside(out, later, f"after-epoch-{epoch}")
    if gone:
        if dest is None:
            dest = set_aside(out, [], f"after-epoch-{epoch}") or out / ABANDONED / f"after-epoch-{epoch}"
            dest.mkdir(parents=True, exist_ok=True)
        with open(dest / LOG, "a", encoding="utf-8") as f:
            for r in gone:
                f.write(json.dumps(r) + "\n")
        write_log(out, [r for r in rows if int(r.get("epoch", -1)) <= epoch])
    progress = read_progress(out)
    if progress and int(progress.get("epoch", -1)) > epoch:
        (out / PROGRESS).unlink()
    log.warning(
        "resumed at epoch %d of a run that had gone further: its later epochs (%d file(s), %d log row(s)) are set "
        "aside in %s; this branch selects its own best checkpoint",
        epoch,
        len(later),
        len(gone),
        dest,
    )


# ---- the epoch ------------------------------------------------------------------------------------


def test_due(args: argparse.Namespace, epoch: int) -> bool:
    return (epoch + 1) % args.test_period == 0 or epoch + 1 == args.epochs


def early_stop_due(args: argparse.Namespace, state: ResumeState, epoch: int) -> bool:
    """``--early_stop N``: N validated epochs after the best one without a better one."""
    patience = getattr(args, "early_stop", 0) or 0
    best_epoch = state.best.get("epoch")
    return patience > 0 and best_epoch is not None and epoch - int(best_epoch) >= patience


def train_step(run: TrainingRun, state: ResumeState, epoch: int) -> dict[str, Any]:
    """Train one epoch (with the model's fit step), save its checkpoint; the log record so far."""
    args, ctx, out = run.args, run.ctx, run.out
    loop.begin_epoch(run.train_loader, epoch, args.seed, ctx.rank)
    try:
        result = loop.train_one_epoch(
            run.model,
            run.train_loader,
            run.optimizer,
            run.scheduler,
            run.scaler,
            ctx,
            epoch,
            state.global_step,
            args.accum_iter,
            run.amp,
            run.logger,
            args.log_every,
            show_progress=run.show_progress,
            clip_grad=args.clip_grad,
        )
    except NonFiniteLossError as e:
        if ctx.is_main:  # the weights are still those of the last good step
            kwargs = {**run.save_kwargs(state), "global_step": e.global_step}
            checkpoint.save_checkpoint(
                out, epoch, run.model, best=state.best, name="checkpoint-nonfinite.pth", **kwargs
            )
            run.logger.close()
        raise
    state.global_step = result.global_step
    record = {"epoch": epoch, "global_step": state.global_step, **{f"train_{k}": v for k, v in result.stats.items()}}
    if ctx.is_main:  # saved before evaluating: a crash during evaluation loses nothing that was trained
        mark(run, epoch, set(), record)  # the record, in case the process dies right after the save
        checkpoint.save_checkpoint(out, epoch, run.model, best=state.best, **run.save_kwargs(state))
        checkpoint.prune_checkpoints(out, args.keep_last)  # --keep_last N; checkpoint-best.pth stays
        mark(run, epoch, {"trained"}, record)
    check_skipped("training data", len(result.skipped), len(run.train_loader.dataset), args.max_skip_ratio)
    run.logger.scalars("train", result.stats, epoch)
    if result.first_batch is not None:
        evaluate.log_batch_images(run.logger, "train", result.first_batch, run.train_loader, epoch)
    return record


def finish_epoch(run: TrainingRun, state: ResumeState, epoch: int, record: dict[str, Any], done: set[str]) -> bool:
    """The steps of ``epoch`` after training that ``done`` lacks; True when early stopping is due."""
    args, ctx, out = run.args, run.ctx, run.out
    record = dict(record)
    if run.val_loader is None:
        done.add("validated")  # nothing to validate: the step is done
    elif "validated" not in done:
        record.update(
            selection.validate_and_select(
                run.model,
                run.val_loader,
                ctx,
                out,
                epoch,
                state,
                args.best_metric,
                run.amp,
                run.logger,
                args.max_skip_ratio,
                run.show_progress,
                run.save_kwargs(state),
            )
        )
        done.add("validated")
        mark(run, epoch, done, record)
    stop = early_stop_due(args, state, epoch)
    if (test_due(args, epoch) or stop) and run.test_loaders and "tested" not in done:
        results = evaluate.evaluate_datasets(
            run.model,
            run.test_loaders,
            ctx,
            out / "test" / f"checkpoint-{epoch}",
            run.logger,
            epoch,
            run.amp,
            extra={"checkpoint": f"checkpoint-{epoch}.pth", "checkpoint_epoch": epoch, **run.extra},
            max_skip_ratio=args.max_skip_ratio,
            show_progress=run.show_progress,
        )
        for name, r in results.items():
            record.update({f"test_{name}_{k}": v for k, v in r["metrics"].items()})
            record.update({f"test_{name}_mean_over_sets_{k}": v for k, v in evaluate.headline(r).items()})
        done.add("tested")
        mark(run, epoch, done, record)
    elif not (test_due(args, epoch) or stop) or not run.test_loaders:
        done.add("tested")  # not due this epoch (or no test set): nothing left to do
    if "logged" not in done:
        log_row(run, record)
        run.logger.flush()
        if ctx.is_main:
            log_epoch(record)
        done.add("logged")
        mark(run, epoch, done, record)
    if stop:
        log.info(
            "early stop (--early_stop %d): no better validation %s since epoch %s",
            args.early_stop,
            args.best_metric,
            state.best.get("epoch"),
        )
    return stop


def resume_unfinished(run: TrainingRun, state: ResumeState) -> bool:
    """Before training on: set a branch's later epochs aside, re-rank the stored validation
    results under ``--best_metric``, and finish the steps that the last saved epoch lacks.
    True when the run should not train further (early stop)."""
    last = state.start_epoch - 1
    if last < 0:
        return False
    branch = later_epochs_exist(run.out, last)  # the same answer on every rank (shared output folder)
    set_aside_later(run, last)
    metric_changed = state.best.get("metric") not in (None, run.args.best_metric)
    if run.val_loader is not None and (branch or metric_changed):
        # the stored results carry 6 digits: re-rank only when the stored best cannot be trusted
        best = rank_validation(run.out, run.args.best_metric, last)
        if best != state.best:
            if state.best.get("metric") not in (None, run.args.best_metric):
                log.warning(
                    "--best_metric %s (the run selected by %s so far): the stored validation results are re-ranked; "
                    "best is now epoch %s",
                    run.args.best_metric,
                    state.best.get("metric"),
                    best.get("epoch"),
                )
            state.best = best
        sync_best(run, state.best)
    progress = read_progress(run.out)
    if progress.get("epoch") == last:
        done, record = set(progress.get("steps", [])), dict(progress.get("record") or {})
    else:  # no progress file (a run of an earlier version): the log says whether the epoch finished
        logged = any(int(r.get("epoch", -1)) == last for r in read_log(run.out))
        done = set(STEPS) if logged else {"trained"}
        record = {"epoch": last, "global_step": state.global_step}
    done.add("trained")
    if done >= set(STEPS):
        return early_stop_due(run.args, state, last)
    missing = [s for s in STEPS if s not in done]
    log.info("epoch %d was interrupted before it was %s: finishing it first", last, ", ".join(missing))
    return finish_epoch(run, state, last, record, done)


def train_epochs(run: TrainingRun, state: ResumeState) -> None:
    """Train from ``state.start_epoch`` to ``--epochs``: each epoch trained and saved, validated
    (selects ``checkpoint-best.pth``), tested when due (for the record), logged; a resumed run
    first finishes its last epoch (see the module docstring)."""
    if resume_unfinished(run, state):
        return
    for epoch in range(state.start_epoch, run.args.epochs):
        record = train_step(run, state, epoch)
        if finish_epoch(run, state, epoch, record, {"trained"}):
            break
