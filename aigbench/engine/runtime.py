"""Start and finish a run: process group, device, seed and terminal logging."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import sys
from typing import Callable

from tqdm import tqdm

from aigbench.engine.dist import DistContext, cleanup_distributed, init_distributed, seed_everything
from aigbench.engine.threads import apply_threads
from aigbench.errors import AigbenchError


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear progress bars apart."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr if record.levelno >= logging.WARNING else sys.stdout)
        except Exception:
            self.handleError(record)


def setup_logging(ctx: DistContext) -> logging.Logger:
    """INFO on the main process, warnings only on the others (prefixed with the rank)."""
    log = logging.getLogger("aigbench")
    log.handlers.clear()
    handler = _TqdmHandler()
    prefix = f"[rank {ctx.rank}] " if ctx.distributed else ""
    handler.setFormatter(logging.Formatter(f"{prefix}%(levelname)s %(message)s" if not ctx.is_main else "%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if ctx.is_main else logging.WARNING)
    log.propagate = False
    return log


def setup_single_process_logging() -> logging.Logger:
    """Terminal logging for a command that drives other runs (a protocol, ``bench predict``)."""
    import torch

    return setup_logging(DistContext(torch.device("cpu")))


def start_run(args: argparse.Namespace) -> DistContext:
    """Process group (under torchrun), device, logging and seed, from the common flags."""
    ctx = init_distributed(args.device)
    ctx = dataclasses.replace(
        ctx, fuse_eval=not getattr(args, "no_fuse", False), micro_batch=int(getattr(args, "micro_batch", 16))
    )
    setup_logging(ctx)
    apply_threads(getattr(args, "threads", None), getattr(args, "num_workers", 0))
    configure_cuda(ctx, tf32=getattr(args, "tf32", True), fixed_size=getattr(args, "eval_crop", None) != "full")
    seed_everything(args.seed + ctx.rank)
    log = logging.getLogger("aigbench")
    log.info("device %s, %d process(es), model %s", ctx.device, ctx.world_size, args.model)
    if getattr(args, "rebuilt_from", None):
        log.info("model flags from %s (flags on the command line win)", args.rebuilt_from)
    return ctx


def configure_cuda(ctx: DistContext, tf32: bool = True, fixed_size: bool = True) -> None:
    """On CUDA: cuDNN autotuning when every batch has one input size, and TF32 (``--tf32``)."""
    import torch

    if ctx.device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = fixed_size
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def show_progress(args: argparse.Namespace, ctx: DistContext) -> bool:
    """Progress bars on the main process unless ``--no_progress``; ``loop.progress`` also drops
    them when stderr is not a terminal (a cluster job's log file gets one line per epoch)."""
    return ctx.is_main and not getattr(args, "no_progress", False)


def resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted training run (``--resume auto``)."""
    args, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--resume":
            skip = True
            continue
        if a.startswith("--resume="):
            continue
        args.append(a)
    script = os.path.basename(sys.argv[0]) or "train.py"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = ["python"]
    if world > 1:  # keep the same processes: the effective batch size depends on them
        nodes = int(os.environ.get("GROUP_WORLD_SIZE", os.environ.get("NNODES", "1")) or 1)
        launcher = ["torchrun", "--nnodes", str(nodes), "--nproc_per_node", str(world // max(nodes, 1))]
    return " ".join(shlex.quote(x) for x in [*launcher, script, *args, "--resume", "auto"])


def finish_run(*loggers: object) -> None:
    for lg in loggers:
        close = getattr(lg, "close", None)
        if close is not None:
            close()
    cleanup_distributed()


def run(main: Callable[[], object], resumable: bool = False) -> None:
    """Call a script's ``main``; input errors (bad path, key, flag, checkpoint) print as one
    clear message and exit with status 2 instead of a traceback. Ctrl-C stops cleanly
    (checkpoints are written atomically, so the last one is intact); with ``resumable``
    (train.py) it prints the command that continues the run."""
    log = logging.getLogger("aigbench")
    try:
        main()
    except AigbenchError as e:
        log.error("error: %s", e)
        cleanup_distributed()
        sys.exit(2)
    except KeyboardInterrupt:
        if resumable:
            log.warning(
                "interrupted: the checkpoints of finished epochs are kept. Continue with:\n  %s",
                resume_command(sys.argv[1:]),
            )
        else:
            log.warning("interrupted")
        cleanup_distributed()
        sys.exit(130)
