"""``bench report --explain N --spectrum``: the maps and spectra a report shows, computed for each
run's test sets into the report's own folder (:func:`aigbench.reports.report.analysis_dir`)."""

from __future__ import annotations

import logging
import os
from typing import Sequence, Union

from aigbench.datasets.layouts import Sample
from aigbench.reports.report import analysis_dir, load_runs

log = logging.getLogger("aigbench")


def analyse_runs(
    run_dirs: Sequence[Union[str, os.PathLike]],
    out: Union[str, os.PathLike],
    n_explain: int = 0,
    method: str = "gradcam",
    spectrum: bool = False,
    seed: int = 0,
    device: str = "auto",
) -> None:
    """For each run and each of its test sets with ``predictions.csv``: ``bench explain`` of the
    ``n_explain`` most confident mistakes and of a seeded sample per class, and ``bench data
    spectrum`` of the set; written below ``<out>/analysis/<run>/``."""
    from aigbench.audit.spectrum import spectrum_report
    from aigbench.explain.run import explain_samples, report_selections

    for run in load_runs(run_dirs):
        for name, ds in run.datasets.items():
            if ds.labels is None or ds.scores is None:  # no predictions.csv
                continue
            every = (ds.labels, ds.scores, ds.paths, ds.generators)
            where = analysis_dir(out, run.name)
            if n_explain and run.config:
                threshold = float(ds.metrics.get("metrics", {}).get("threshold", 0.5))
                for key, samples in report_selections(*every, threshold, n_explain, seed).items():
                    if samples:
                        log.info("%s, %s: explaining %d image(s) (%s)", run.name, name, len(samples), key)
                        explain_samples(
                            run.path,
                            samples,
                            where / "explain" / name / key,
                            method,
                            checkpoint=run.checkpoint.removeprefix("checkpoint-"),
                            device=device,
                        )
            if spectrum:
                samples = [Sample(p, int(y), g) for p, y, g in zip(ds.paths, ds.labels, ds.generators)]
                spectrum_report(samples, where / "spectrum" / name, source=f"{run.name}: {name}", layout="test set")
