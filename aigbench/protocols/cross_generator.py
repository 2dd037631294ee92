"""Cross-generator matrix: train one model per training generator, test each on every generator.

The rows of ``cross_generator.csv`` are the generator trained on, its columns the generators
tested on (each generator's fakes with the reals paired as in ``metrics.json``: its own reals,
or the pooled reals), then their mean; ``cross_generator.png`` is its heatmap and
``cross_generator.json`` holds every metric of every cell.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from aigbench.fileio import write_json
from aigbench.protocols.common import (
    metric_of,
    protocol_parser,
    run_cell,
    save_heatmap,
    write_matrix,
)

log = logging.getLogger("aigbench")


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple[argparse.Namespace, list[str]]:
    p = protocol_parser("Cross-generator matrix: one model per training generator, tested on every generator.")
    p.add_argument(
        "--generators", default="", metavar="G1,G2", help="generators to train on (default: every one of --data_path)"
    )
    p.add_argument("--exclude_generators", default="", metavar="G1,G2", help="generators not to train on")
    return p.parse_known_args(argv)


def training_generators(args: argparse.Namespace) -> list[str]:
    """The generators with fakes in the training data, filtered by ``--generators`` / ``--exclude_generators``."""
    from aigbench.datasets.layouts import filter_generators, parse_generators
    from aigbench.engine.build import load_data

    samples = load_data(argparse.Namespace(layout=args.layout, label_map=args.label_map), args.data_path, "train")
    kept = filter_generators(
        samples, parse_generators(args.generators), parse_generators(args.exclude_generators), args.data_path
    )
    gens = sorted({s.generator for s in kept if s.label == 1 and s.generator})
    if len(gens) < 2:
        from aigbench.datasets.layouts import DatasetError

        raise DatasetError(
            f"{args.data_path}: a cross-generator matrix needs fakes of 2 or more generators, found "
            f"{gens or 'none'}; check --layout (generators come from folder names or a list's column)"
        )
    return gens


def run(argv: Optional[Sequence[str]] = None) -> np.ndarray:
    """Run (or finish) the matrix; returns it (rows: trained on, columns: tested on)."""
    import json

    args, passthrough = parse_args(argv)
    out = Path(args.output_dir)
    gens = training_generators(args)
    log.info("cross-generator matrix: %d training generators: %s", len(gens), ", ".join(gens))
    cells = {}
    for g in gens:
        cells[g] = json.loads(run_cell(out / f"train_{g}", args, ["--generators", g], passthrough).read_text())
    tested = sorted({h for r in cells.values() for h in r.get("per_generator", {})})
    matrix = np.array([[metric_of(cells[g]["per_generator"].get(h, {}), args.metric) for h in tested] for g in gens])
    means = [float(np.nanmean(row)) if np.isfinite(row).any() else math.nan for row in matrix]
    write_matrix(
        out / "cross_generator.csv", gens, tested, matrix, f"trained_on \\ tested_on ({args.metric})", {"mean": means}
    )
    write_json(
        out / "cross_generator.json",
        {
            "metric": args.metric,
            "trained_on": gens,
            "tested_on": tested,
            "cells": {g: {h: cells[g]["per_generator"].get(h) for h in tested} for g in gens},
            "pairing": {g: cells[g].get("generator_pairing") for g in gens},
        },
    )
    save_heatmap(
        out / "cross_generator.png", matrix, gens, tested, f"cross-generator {args.metric}", "tested on", "trained on"
    )
    log.info("wrote %s and %s", out / "cross_generator.csv", out / "cross_generator.png")
    return matrix
