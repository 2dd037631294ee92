"""Chronological sliding windows (AI-GenBench, Pellegrini et al. 2025).

The training generators are ordered by release date (``generators.json``: AI-GenBench's own
dates by default) and cut into windows of ``--window_size`` generators; generators released
on the same day stay in one window. Window *i* trains on its generators (with
``--cumulative``, AI-GenBench's default, on windows 0..i) and is tested on every window: the
past ones, its own, and the next one (the "immediate future", AI-GenBench's headline figure).
``windows.csv`` is the window x window matrix with ``past``, ``current`` and ``next`` columns;
``windows.png`` its heatmap; ``windows.json`` the windows and every cell's metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from datetime import date
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from aigbench.datasets.layouts import DatasetError
from aigbench.fileio import write_json
from aigbench.protocols.common import (
    ProtocolError,
    protocol_parser,
    read_predictions,
    run_cell,
    save_heatmap,
    write_matrix,
)

log = logging.getLogger("aigbench")

DEFAULT_GENERATORS_JSON = Path(__file__).resolve().parent / "data" / "generators.json"


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def load_release_dates(path: Optional[str] = None) -> dict[str, date]:
    """``{normalised name: release date}`` from a ``generators.json`` (``{"generators": {name:
    "YYYY-MM-DD"}, "aliases": {folder: name}}``, or a plain ``{name: date}`` map)."""
    p = Path(path) if path else DEFAULT_GENERATORS_JSON
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"--generators_json {p}: cannot read it ({e})") from None
    gens = data.get("generators", data) if isinstance(data, dict) else None
    if not isinstance(gens, dict):
        raise DatasetError(f'--generators_json {p}: expected {{"generators": {{"name": "YYYY-MM-DD"}}}}')
    out: dict[str, date] = {}
    for name, d in gens.items():
        if name.startswith("_"):
            continue
        try:
            out[_key(name)] = date.fromisoformat(str(d))
        except ValueError:
            raise DatasetError(f"--generators_json {p}: {name!r} has date {d!r}; write it as YYYY-MM-DD") from None
    for alias, name in (data.get("aliases") or {}).items():
        if _key(name) in out:
            out.setdefault(_key(alias), out[_key(name)])
    return out


def make_windows(generators: Sequence[str], dates: dict[str, date], size: int) -> list[list[str]]:
    """Generators in release order, cut into consecutive windows of ``size``; one released on the
    same day as the last of a window joins it. Undated generators are an error that names them."""
    missing = [g for g in generators if _key(g) not in dates]
    if missing:
        raise DatasetError(
            f"no release date for generator(s) {', '.join(map(repr, missing))}; add them to a generators.json "
            '({"generators": {"name": "YYYY-MM-DD"}}) and pass --generators_json, or leave them out with '
            "--exclude_generators"
        )
    ordered = sorted(generators, key=lambda g: (dates[_key(g)], g))
    windows: list[list[str]] = []
    for g in ordered:
        last = windows[-1] if windows else None
        if last is not None and (len(last) < size or dates[_key(g)] == dates[_key(last[-1])]):
            last.append(g)
        else:
            windows.append([g])
    return windows


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    p = protocol_parser("Chronological sliding windows (AI-GenBench).")
    p.add_argument("--generators_json", default="", help="release dates {name: YYYY-MM-DD} (default: AI-GenBench's)")
    p.add_argument("--window_size", type=int, default=4, help="generators per window (AI-GenBench: 4)")
    p.add_argument(
        "--cumulative",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="window i trains on windows 0..i (AI-GenBench's default); --no-cumulative: on window i alone",
    )
    p.add_argument(
        "--warm_start",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="window i>0 starts from the last weights of window i-1 (train.py --init_from; AI-GenBench's "
        "default); --no-warm_start: every window starts afresh",
    )
    p.add_argument("--exclude_generators", default="", metavar="G1,G2", help="generators left out of every window")
    args, rest = p.parse_known_args(argv)
    if any(a.split("=")[0] == "--generators" for a in rest):
        p.error(
            "--generators: each window trains on its own generators (by release date); leave generators out with "
            "--exclude_generators, or use cross_generator.py to pick them"
        )
    if args.window_size < 1:
        p.error(f"--window_size must be at least 1, got {args.window_size}")
    return args, rest


def run(argv: Optional[Sequence[str]] = None) -> np.ndarray:
    """Run (or finish) every window; returns the window x window matrix of ``--metric``."""
    from aigbench.engine.checkpoint import list_epoch_checkpoints
    from aigbench.metrics.binary import group_metrics
    from aigbench.protocols.cross_generator import training_generators

    args, passthrough = parse_args(argv)
    args.generators = ""
    out = Path(args.output_dir)
    windows = make_windows(training_generators(args), load_release_dates(args.generators_json), args.window_size)
    names = [f"w{i}" for i in range(len(windows))]
    for n, w in zip(names, windows):
        log.info("window %s: %s", n, ", ".join(w))
    matrix = np.full((len(windows), len(windows)), math.nan)
    cells = {}
    for i, n in enumerate(names):
        train_gens = [g for w in windows[: i + 1] for g in w] if args.cumulative else windows[i]
        train_flags = ["--generators", ",".join(train_gens)]
        if args.warm_start and i > 0:  # the previous window's final weights (its last epoch)
            previous = list_epoch_checkpoints(out / f"train_{names[i - 1]}")
            if not previous:
                raise ProtocolError(
                    f"{out / f'train_{names[i - 1]}'} has no checkpoint-<epoch>.pth to warm-start window {n} from "
                    "(deleted?); delete that window's folder to retrain it, or pass --no-warm_start"
                )
            train_flags += ["--init_from", str(previous[-1])]
        metrics_file = run_cell(out / f"train_{n}", args, train_flags, passthrough)
        y, s, gens = read_predictions(metrics_file.parent / "predictions.csv")
        cells[n] = {"trained_on": train_gens, "tested": {}}
        for j, m in enumerate(names):
            r = group_metrics(y, s, gens, windows[j])
            cells[n]["tested"][m] = r
            matrix[i, j] = r[args.metric]
    past = [float(np.nanmean(matrix[i, :i])) if i else math.nan for i in range(len(names))]
    current = [matrix[i, i] for i in range(len(names))]
    nxt = [matrix[i, i + 1] if i + 1 < len(names) else math.nan for i in range(len(names))]
    labels = [f"{n}: {'+'.join(w)}" for n, w in zip(names, windows)]
    write_matrix(
        out / "windows.csv",
        labels,
        names,
        matrix,
        f"trained_on \\ tested_on ({args.metric})",
        {"past": past, "current": current, "next": nxt},
    )
    finite_next = [v for v in nxt if math.isfinite(v)]
    write_json(
        out / "windows.json",
        {
            "metric": args.metric,
            "window_size": args.window_size,
            "cumulative": args.cumulative,
            "windows": dict(zip(names, windows)),
            "cells": cells,
            "mean_next": float(np.mean(finite_next)) if finite_next else None,
            "note": "next = the immediate future: the window after the one trained on (AI-GenBench's headline figure)",
        },
    )
    save_heatmap(
        out / "windows.png",
        matrix,
        labels,
        names,
        f"sliding windows {args.metric}",
        "tested on window",
        "trained up to window" if args.cumulative else "trained on window",
    )
    if finite_next:
        log.info("mean %s on the next window (immediate future): %.4f", args.metric, float(np.mean(finite_next)))
    log.info("wrote %s and %s", out / "windows.csv", out / "windows.png")
    return matrix
