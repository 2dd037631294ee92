"""``bench``: init, models, env, data check, predict, report, ensemble, sweep, suites, eval, leaderboard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import click

from aigbench import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aigbench")
def cli() -> None:
    """aigbench: train, test and stress-test detectors of AI-generated images (real = 0, fake = 1)."""


@cli.command()
@click.argument("template", default="base")
@click.option(
    "--dir",
    "target",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="folder to write into (created if missing)",
)
@click.option(
    "--force", is_flag=True, help="also overwrite existing files that differ from the template (each is named)"
)
def init(template: str, target: str, force: bool) -> None:
    """Write editable train/test/test_robust scripts, a model stub and shell scripts.

    TEMPLATE is `base` (your own model in mymodel.py) or another bundled template. Inside an
    existing project it adds what is missing and never touches a file that exists (--force
    overwrites, naming each file it replaces)."""
    from aigbench.scaffold import ScaffoldError, write_project

    try:
        done = write_project(template, Path(target), force)
    except ScaffoldError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"--dir {target}: cannot write there: {e.strerror or e}") from None
    where = Path(target).resolve()
    click.echo(f"{where}: {len(done['added'])} file(s) added, {len(done['kept'])} kept as they are"
               + (f", {len(done['replaced'])} replaced" if done["replaced"] else "")
               + (f", {len(done['unchanged'])} already up to date" if done["unchanged"] else ""))  # fmt: skip
    for key, words in (("added", "added"), ("replaced", "replaced (--force)"), ("kept", "kept (yours differs)")):
        for path in done[key]:
            click.echo(f"  {words:<20} {path.name}")
    if done["kept"]:
        click.echo("files that exist were not touched; --force overwrites them with the template's version")
    click.echo("next: sh train_mymodel.sh" if template == "base" else "next: see README-aigbench.md")


@cli.command()
@click.argument("pattern", required=False, default="")
@click.option(
    "--import",
    "-i",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="also import MODULE (e.g. mymodel) so that its models are listed",
)
@click.option(
    "--pretrained",
    is_flag=True,
    help="only models whose authors publish weights: each checkpoint, its source and the flags that load it",
)
def models(pattern: str, modules: tuple[str, ...], pretrained: bool) -> None:
    """List registered models (wildcards: bench models '*spot*'), or show one model's flags."""
    import importlib

    from aigbench.registry import MODELS, describe

    sys.path.insert(0, str(Path.cwd()))
    for m in modules:
        importlib.import_module(m)
    if pretrained:
        _show_published(MODELS.list(pattern or "*"))
        return
    if pattern and not any(c in pattern for c in "*?[") and pattern in MODELS:
        _show_model(pattern)
        return
    names = MODELS.list(pattern or "*")
    if not names:
        if pattern and not any(c in pattern for c in "*?["):
            try:
                MODELS.get(pattern)
            except KeyError as e:
                raise click.ClickException(e.args[0]) from None
        raise click.ClickException(f"no registered model matches {pattern!r}")
    width = max(len(n) for n in names)
    for n in names:
        cls = MODELS.get(n)
        paper = getattr(cls, "paper", "")
        click.echo(f"{n:<{width}}  {describe(cls)}" + (f"  [{paper}]" if paper else ""))


def _show_published(names: list[str]) -> None:
    from aigbench.registry import MODELS

    listed = [(n, MODELS.get(n)) for n in names if getattr(MODELS.get(n), "checkpoints", ())]
    if not listed:
        raise click.ClickException("no matching model has published weights (bench models lists every model)")
    for name, cls in listed:
        click.echo(f"{name}  [{getattr(cls, 'paper', '')}]")
        for ck in cls.checkpoints:
            click.echo(f"  {ck.name}")
            click.echo(f"    load:   {ck.flags}")
            click.echo(f"    source: {ck.source}")
            click.echo(f"    sha256: {ck.sha256 or 'none published'}")
            if ck.note:
                click.echo(f"    layout: {ck.note}")


def _show_model(name: str) -> None:
    from aigbench.flags import signature_table
    from aigbench.registry import MODELS, describe

    cls = MODELS.get(name)
    click.echo(f"{name}: {describe(cls)}")
    if getattr(cls, "paper", ""):
        click.echo(f"paper: {cls.paper}")
    click.echo(f"defined in: {cls.__module__}")
    rows = signature_table(cls)
    if not rows:
        click.echo("flags: (none)")
        return
    click.echo("flags:")
    w = max(len(r[0]) for r in rows)
    for flag, tp, default in rows:
        click.echo(f"  {flag:<{w}}  {tp:<10} default {default}")


@cli.command()
def env() -> None:
    """Print versions of aigbench and its dependencies, and the compute device."""
    from aigbench.envinfo import collect_env

    for key, value in collect_env().items():
        click.echo(f"{key:<22} {value}")


@cli.group()
def data() -> None:
    """Inspect datasets: bench data check PATH."""


def data_options(command: Any) -> Any:
    """--layout, --label_map and --json, as every ``bench data`` command takes them."""
    options = (
        click.option(
            "--layout",
            default="auto",
            show_default=True,
            help="dataset layout, e.g. CIFAKE, ForenSynths, GenImage, JsonList, CsvList, Parquet (auto: detected)",
        ),
        click.option(
            "--label_map",
            default="",
            metavar="NAME:0,NAME:1",
            help="label names of your data, e.g. real:0,fake:1 (folder names, or label values of a list)",
        ),
        click.option(
            "--json",
            "json_out",
            type=click.Path(dir_okay=False),
            default=None,
            metavar="OUT",
            help="also write the report as JSON to OUT (see docs/data_check.md)",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


@data.command("check")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@data_options
@click.option(
    "--no_progress", is_flag=True, help="no progress bar (there is none anyway when stderr is not a terminal)"
)
def data_check(paths: tuple[str, ...], layout: str, label_map: str, json_out: Optional[str], no_progress: bool) -> None:
    """Check datasets before training: counts, broken files, duplicates, leaks, per-class
    format/quality/size and a metadata shortcut audit, with advice ranked by what it measured.

    PATH is a dataset root folder (every split below it is checked), a .json or .csv
    list, or parquet data. Several PATHs (bench data check TRAIN TEST ...) are checked
    together: content that two of them share is a leak.

    Exit status 1 when the data cannot give an honest number: test content also in train/ or
    val/, content shared by two PATHs, or a PATH (or split) with one class only.
    """
    from aigbench.audit import check_dataset, format_report, write_report
    from aigbench.datasets.layouts import parse_label_map
    from aigbench.errors import AigbenchError

    try:
        labels = parse_label_map(label_map)
        report = check_dataset(list(paths), layout, labels, progress=not no_progress and sys.stderr.isatty())
        click.echo(format_report(report))
        if json_out:
            write_report(report, json_out)
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    if report["exit_status"]:
        sys.exit(report["exit_status"])


@data.command("spectrum")
@click.argument("path", metavar="PATH")
@click.option("--out", default="spectrum", show_default=True, type=click.Path(file_okay=False), help="output folder")
@data_options
@click.option(
    "--size", type=int, default=0, help="side of the centre crop of every image (0: 256, or less for small images)"
)
@click.option(
    "--max_per_group", type=int, default=500, show_default=True, help="a seeded sample of each group beyond this"
)
@click.option("--seed", type=int, default=0, show_default=True)
def data_spectrum(
    path: str, out: str, json_out: Optional[str], size: int, layout: str, label_map: str, max_per_group: int, seed: int
) -> None:
    """Mean power spectrum of noise residuals (image minus its 3x3 median) per class and
    generator: one PNG per group on one colour scale, the differences against the reals, and
    the strongest off-centre peaks (OUT/spectrum.json)."""
    from aigbench.audit.spectrum import data_spectrum as run_spectrum
    from aigbench.audit.spectrum import format_spectrum
    from aigbench.datasets.layouts import parse_label_map
    from aigbench.errors import AigbenchError
    from aigbench.fileio import write_json

    try:
        labels = parse_label_map(label_map) if label_map else None
        report = run_spectrum(path, out, size, layout, labels, max_per_group, seed)
        if json_out:
            write_json(json_out, report)
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_spectrum(report))
    click.echo(
        f"wrote {Path(out) / 'spectrum.json'}, {Path(out) / 'spectra'}/"
        + (f", {Path(out) / 'differences.png'}" if "differences" in report["figures"] else "")
    )


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="PATH...")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="a train.py --output_dir")
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="CSV to write (default: RUN/predict/predictions.csv)",
)
@click.option(
    "--checkpoint", default="", help="best (default: checkpoint-best.pth, else the last epoch), last, N, or a file"
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N")
@click.option("--batch_size", type=int, default=None, help="images per batch (default: the run's)")
@click.option("--num_workers", type=int, default=0, show_default=True, help="DataLoader worker processes")
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="score in [0, 1] from which label_pred is 1 (default: the run's validation threshold, else 0.5)",
)
@click.option("--no_progress", is_flag=True, help="no progress bar")
def predict(
    inputs: tuple[str, ...],
    run_dir: str,
    out: Optional[str],
    checkpoint: str,
    device: str,
    batch_size: Optional[int],
    num_workers: int,
    threshold: Optional[float],
    no_progress: bool,
) -> None:
    """Score images (files, folders searched recursively, .txt lists) with a trained run; no labels
    needed. Writes one row per input file: path, score, label_pred (1 = fake), threshold, status
    (ok, truncated: scored and flagged, unreadable: no score) and reason."""
    import numpy as np

    from aigbench.engine.runtime import setup_single_process_logging
    from aigbench.errors import AigbenchError
    from aigbench.evaluation.predict import check_threshold, predict_images

    try:
        check_threshold(threshold)  # before the run is loaded
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    setup_single_process_logging()
    try:
        result = predict_images(
            run_dir, inputs, out, checkpoint, device, batch_size, num_workers, threshold, show_progress=not no_progress
        )
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    from aigbench.metrics.binary import is_fake

    scored = ~np.isnan(result.scores)
    n_fake = int(is_fake(result.scores[scored], result.threshold).sum())
    n_scored = int(scored.sum())
    click.echo(
        f"{len(result.paths)} file(s): {n_scored} scored with {result.checkpoint.name}, {n_fake} fake and "
        f"{n_scored - n_fake} real at threshold {result.threshold:.6g} ({result.threshold_source})"
        + (f", {result.count('truncated')} of them truncated (flagged)" if result.count("truncated") else "")
        + (f"; {result.count('unreadable')} unreadable (no score)" if result.count("unreadable") else "")
    )
    for status in ("truncated", "unreadable"):
        named = [(p, r) for p, st, r in zip(result.paths, result.status, result.reasons) if st == status]
        for p, r in named[:10]:
            click.echo(f"  {status:<10}  {p}  ({r})")
        if len(named) > 10:
            click.echo(f"  ... and {len(named) - 10} more {status} (all in the CSV)")
    if result.left_out:
        shown = ", ".join(result.left_out[:5]) + (
            f" and {len(result.left_out) - 5} more" if len(result.left_out) > 5 else ""
        )
        click.echo(f"left out {len(result.left_out)} file(s) that are not images by name or content: {shown}")
    click.echo(f"wrote {result.out}")


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGES...")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="a train.py --output_dir")
@click.option(
    "--method",
    type=click.Choice(["gradcam", "gradcam++", "scorecam", "layercam", "eigencam"]),
    default="gradcam",
    show_default=True,
)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="folder (default: RUN/explain)")
@click.option("--target_layer", default="", help="module name, e.g. net.layer4 or encoder.blocks.-1.norm1")
@click.option(
    "--checkpoint", default="", help="best (default: checkpoint-best.pth, else the last epoch), last, N, or a file"
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N")
@click.option("--limit", type=int, default=0, help="a seeded sample of at most N images per class (0: all)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of --limit and of the randomised model")
@click.option("--no_randomisation", is_flag=True, help="skip the model-randomisation check")
@click.option("--no_road", is_flag=True, help="skip the ROAD faithfulness score")
@click.option(
    "--max_rank_correlation",
    type=float,
    default=0.5,
    show_default=True,
    help="maps whose Spearman correlation with the randomised model's map is above this do not explain the model",
)
@click.option(
    "--min_road",
    type=float,
    default=0.005,
    show_default=True,
    help="maps whose |ROAD| (fake-probability units) is below this are flagged as not faithful",
)
def explain(
    inputs: tuple[str, ...],
    run_dir: str,
    method: str,
    out: Optional[str],
    target_layer: str,
    checkpoint: str,
    device: str,
    limit: int,
    seed: int,
    no_randomisation: bool,
    no_road: bool,
    max_rank_correlation: float,
    min_road: float,
) -> None:
    """Class-activation maps of a trained run on images (files, folders, .txt lists, or a dataset
    whose layout gives labels), on the very tensor the model scores, drawn over that view and
    the full image, with two checks per map: model randomisation (Adebayo et al. 2018) and ROAD
    faithfulness. Needs pip install -e ".[explain]"."""
    from aigbench.engine.runtime import setup_single_process_logging
    from aigbench.errors import AigbenchError
    from aigbench.explain.run import explain_images

    setup_single_process_logging()
    try:
        summary = explain_images(
            run_dir,
            inputs,
            out,
            limit=limit,
            seed=seed,
            method=method,
            target_layer=target_layer,
            checkpoint=checkpoint,
            device=device,
            randomisation=not no_randomisation,
            road=not no_road,
            max_rank_correlation=max_rank_correlation,
            min_road=min_road,
        )
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    r, f = summary["randomisation"], summary["road"]
    click.echo(
        f"{summary['n_explained']} image(s) explained with {method} at {summary['target_layer']} "
        f"({summary['target_layer_source']})"
        + (f"; {summary['n_unreadable']} unreadable" if summary["n_unreadable"] else "")
    )
    if r["mean_spearman"] is not None:
        click.echo(
            f"  randomisation check: mean Spearman {r['mean_spearman']:.3f} with the randomised model's maps; "
            f"{r['n_not_explaining']} map(s) above {r['max_rank_correlation']:g} do not explain the trained model"
        )
    if f["mean"] is not None:
        click.echo(
            f"  ROAD: mean {f['mean']:.4f}; {f['n_unfaithful']} map(s) with |ROAD| < {f['min_road']:g} (not faithful)"
        )
    click.echo(f"wrote {Path(out) if out else Path(run_dir) / 'explain'} (explanations.csv, maps/, grids/)")


@cli.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option(
    "--out", default="report", show_default=True, type=click.Path(file_okay=False), help="folder for the report"
)
@click.option(
    "--explain",
    "n_explain",
    type=int,
    default=0,
    help="add 'where it looks': maps (bench explain) of the N most confident mistakes and N random images per class "
    "of each test set (needs the explain extra)",
)
@click.option("--method", default="gradcam", show_default=True, help="the CAM method of --explain")
@click.option("--spectrum", is_flag=True, help="add the residual spectra of each test set (bench data spectrum)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the random sample of --explain")
@click.option("--device", default="auto", show_default=True, help="device of --explain")
def report(
    runs: tuple[str, ...], out: str, n_explain: int, method: str, spectrum: bool, seed: int, device: str
) -> None:
    """Write report.html (self-contained, offline) and report.md for one or more runs: training
    curves, metrics with CIs, ROC/PR, reliability, per-generator bars, robustness curves,
    protocol heatmaps and the most confident mistakes; several runs are compared side by side.
    --explain N and --spectrum add where each model looks and what its test data carries."""
    from aigbench.errors import AigbenchError
    from aigbench.reports.report import build_report

    try:
        if n_explain or spectrum:
            from aigbench.engine.runtime import setup_single_process_logging
            from aigbench.explain.analysis import analyse_runs

            setup_single_process_logging()
            analyse_runs(runs, out, n_explain, method, spectrum, seed, device)
        written = build_report(runs, out)
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    for path in written.values():
        click.echo(f"wrote {path}")


@cli.command()
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option("--out", default="ensemble", show_default=True, type=click.Path(file_okay=False))
@click.option("--method", type=click.Choice(["mean", "median"]), default="mean", show_default=True)
@click.option("--threshold", type=float, default=0.5, show_default=True, help="threshold of accuracy")
@click.option("--bootstrap", type=int, default=0, help="95% bootstrap CIs from N replicates")
@click.option("--seed", type=int, default=0, show_default=True)
def ensemble(runs: tuple[str, ...], out: str, method: str, threshold: float, bootstrap: int, seed: int) -> None:
    """Average the scores of several runs' predictions.csv on the same test images and report
    the ensemble's metrics beside each run's (OUT/ensemble.csv, OUT/<dataset>/metrics.json)."""
    from aigbench.errors import AigbenchError
    from aigbench.evaluation.ensemble import ensemble_runs, ensemble_table

    try:
        ensemble_runs(runs, out, method, threshold, bootstrap, seed)
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(ensemble_table(Path(out) / "ensemble.csv"))
    click.echo(f"wrote {Path(out) / 'ensemble.csv'}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("space", type=click.Path(dir_okay=False, exists=True))
@click.option("--out", default="output_dir/sweep", show_default=True, type=click.Path(file_okay=False))
@click.option("--n_trials", type=int, default=None, help="total trials (default: the file's n_trials)")
@click.pass_context
def sweep(ctx: click.Context, space: str, out: str, n_trials: Optional[int]) -> None:
    """Hyperparameter search over train.py's flags with Optuna (grid, random or TPE, median
    pruning on the per-epoch validation metric, resumable from OUT/sweep.db). Extra flags after
    the options go to every trial's train.py. See sweep_space.yaml from `bench init`."""
    from aigbench.engine.runtime import setup_single_process_logging
    from aigbench.errors import AigbenchError
    from aigbench.protocols.sweep import run_sweep

    setup_single_process_logging()
    try:
        study = run_sweep(space, out, list(ctx.args), n_trials)
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if done:
        click.echo(f"best trial {study.best_trial.number}: {study.best_value:.4f} with {study.best_params}")
    click.echo(f"wrote {Path(out) / 'trials.csv'}")


@cli.command()
@click.argument("name", required=False, default="")
def suites(name: str) -> None:
    """List the benchmark suites, or show one's protocol card: tree, sets, pairing, geometry,
    metrics and reference numbers with their sources."""
    from aigbench.errors import AigbenchError
    from aigbench.suites.base import builtin_suites, load_suite, protocol_card

    try:
        if name:
            click.echo(protocol_card(load_suite(name)))
            return
        for key in builtin_suites():
            s = load_suite(key)
            click.echo(f"{key:<24} {s.title}")
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None


@cli.command("eval")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="a train.py --output_dir")
@click.option("--suite", "suite_args", multiple=True, required=True, metavar="NAME=PATH",
              help="a suite (bench suites) and the benchmark's root as shipped; repeatable")  # fmt: skip
@click.option("--checkpoint", default="", help="best (default), last, N or a path")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N")
@click.option("--batch_size", type=int, default=None, help="images per batch (default: the run's)")
@click.option("--num_workers", type=int, default=0, show_default=True, help="DataLoader worker processes")
@click.option("--official_sampling", is_flag=True, help="the suite's official subsampling (UnivFD), seeded")
@click.option("--no_progress", is_flag=True, help="no progress bar")
@click.option("--fast_decode", is_flag=True, hidden=True, help="refused: a suite's protocol decodes every image fully")
def eval_suites(
    run_dir: str,
    suite_args: tuple[str, ...],
    checkpoint: str,
    device: str,
    batch_size: Optional[int],
    num_workers: int,
    official_sampling: bool,
    no_progress: bool,
    fast_decode: bool,
) -> None:
    """Evaluate a trained run on benchmark suites by their official protocols: RUN/suites/NAME/
    predictions.csv, metrics.json and table.md / table.csv in the papers' format."""
    from aigbench.engine.runtime import setup_single_process_logging
    from aigbench.errors import AigbenchError
    from aigbench.suites.run import evaluate_suite

    if fast_decode:
        raise click.ClickException(
            "--fast_decode is refused by bench eval: a suite's protocol is exact (the published numbers come from "
            "full decodes and the official resize), and a reduced decode moves pixels and scores; use it with "
            "test.py, where metrics.json records it"
        )

    setup_single_process_logging()
    for spec in suite_args:
        try:
            r = evaluate_suite(run_dir, spec, checkpoint, device, batch_size, num_workers, official_sampling,
                               show_progress=not no_progress)  # fmt: skip
        except AigbenchError as e:
            raise click.ClickException(str(e)) from None
        out = Path(run_dir) / "suites" / r["suite"]
        click.echo((out / "table.md").read_text(encoding="utf-8"))
        click.echo(f"wrote {out / 'metrics.json'}, {out / 'table.md'}, {out / 'table.csv'}, {out / 'predictions.csv'}")


@cli.command("leaderboard")
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option("--out", default="leaderboard", show_default=True, type=click.Path(file_okay=False))
def leaderboard_cmd(runs: tuple[str, ...], out: str) -> None:
    """Runs side by side across the suites they were evaluated on (bench eval): per suite the mean
    accuracy and AP over its sets; across suites the mean, worst and standard deviation."""
    from aigbench.errors import AigbenchError
    from aigbench.suites.leaderboard import leaderboard, write_leaderboard

    try:
        written = write_leaderboard(leaderboard(runs), out)
    except AigbenchError as e:
        raise click.ClickException(str(e)) from None
    click.echo(written["md"].read_text(encoding="utf-8"))
    click.echo(f"wrote {written['md']}, {written['csv']}, {written['png']}")


def main(argv: Optional[list[str]] = None) -> None:
    cli.main(args=argv, prog_name="bench")
