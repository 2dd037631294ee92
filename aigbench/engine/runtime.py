"""Start and finish a run: process group, device, seed and terminal logging."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from tqdm import tqdm

from aigbench.engine.dist import DistContext, cleanup_distributed, init_distributed, seed_everything
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


def start_run(args: argparse.Namespace) -> DistContext:
    """Process group (under torchrun), device, logging and seed, from the common flags."""
    ctx = init_distributed(args.device)
    setup_logging(ctx)
    seed_everything(args.seed + ctx.rank)
    logging.getLogger("aigbench").info("device %s, %d process(es), model %s", ctx.device, ctx.world_size, args.model)
    return ctx


def finish_run(*loggers: object) -> None:
    for lg in loggers:
        close = getattr(lg, "close", None)
        if close is not None:
            close()
    cleanup_distributed()


def run(main: Callable[[], object]) -> None:
    """Call a script's ``main``; input errors (bad path, key, flag, checkpoint) print as one
    clear message and exit with status 2 instead of a traceback."""
    try:
        main()
    except AigbenchError as e:
        logging.getLogger("aigbench").error("error: %s", e)
        cleanup_distributed()
        sys.exit(2)
    except KeyboardInterrupt:
        cleanup_distributed()
        sys.exit(130)
