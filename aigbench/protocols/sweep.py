"""``bench sweep SPACE.yaml``: a hyperparameter search over ``train.py``'s flags with Optuna.

Each trial is a normal run folder (``<out>/trial_<n>/``) made by your ``train.py``; the
objective is a validation key of its ``log.jsonl`` (``val_auroc`` by default; a test or training
key is refused: trials are ranked on validation, never on a test set), taken at the epoch that
``test.py`` will test (the best epoch on validation, else the last). The study lives in
``<out>/sweep.db`` (SQLite), so running the same command again continues an interrupted search:
finished trials are kept, a trial that was running when the search stopped is marked failed and
run again with the same parameters (a grid point too), and a seeded random or TPE sampler goes on
with new draws instead of replaying the first trials'. The metric and direction are stored with
the study: continuing it with others is an error, not a mixed study. After every trial ``<out>/trials.csv``
(number, state, value, parameters, seconds) and, once two trials have finished,
``<out>/importance.json`` (Optuna's fANOVA-free default importance) are rewritten;
``bench report <out>`` plots them.

SPACE.yaml::

    script: train.py          # optional (default train.py)
    metric: val_auroc         # a validation key of log.jsonl (val_*), at the best epoch
    direction: maximize       # or minimize
    sampler: tpe              # tpe (Bayesian), random or grid
    n_trials: 20
    pruner: median            # median (stop trials below the median at the same epoch) or none
    seed: 0
    fixed:                    # flags of every trial
      model: MyModel
      epochs: 5
      val_split: 0.1
    params:                   # the searched flags
      lr: {low: 1.0e-4, high: 1.0e-2, log: true}
      width: {low: 8, high: 64, step: 8}       # ints when low, high and step are ints
      batch_size: {choices: [32, 64]}
"""

from __future__ import annotations

import csv
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Union

from aigbench.errors import ConfigError
from aigbench.fileio import atomic_open, read_jsonl, write_json

log = logging.getLogger("aigbench")

SAMPLERS = ("tpe", "random", "grid")
POLL_S = 1.0


def read_space(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """The search space file, checked: unknown keys and malformed parameters name themselves."""
    import yaml

    p = Path(path)
    try:
        space = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read it as YAML ({e})") from None
    known = {"script", "metric", "direction", "sampler", "n_trials", "pruner", "seed", "fixed", "params"}
    unknown = set(space) - known
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(sorted(unknown))}; the keys are {', '.join(sorted(known))}"
        )
    if not space.get("params"):
        raise ConfigError(f"{path}: 'params' must name at least one flag to search, e.g. lr: {{low: 1e-4, high: 1e-2}}")
    if space.get("sampler", "tpe") not in SAMPLERS:
        raise ConfigError(f"{path}: sampler must be one of {', '.join(SAMPLERS)}, got {space['sampler']!r}")
    if space.get("direction", "maximize") not in ("maximize", "minimize"):
        raise ConfigError(f"{path}: direction must be maximize or minimize, got {space['direction']!r}")
    metric = str(space.get("metric", "val_auroc"))
    if not metric.startswith("val_"):
        raise ConfigError(
            f"{path}: metric {metric!r} is not a validation metric; trials must be ranked on validation data "
            "(val_auroc, val_ap, val_accuracy, val_loss, ...), never on a test set"
        )
    for name, spec in space["params"].items():
        if not isinstance(spec, dict) or not ("choices" in spec or {"low", "high"} <= set(spec)):
            raise ConfigError(f"{path}: params.{name} needs choices: [...] or low: and high:")
        if space.get("sampler") == "grid" and "choices" not in spec:
            raise ConfigError(f"{path}: the grid sampler needs choices: [...] for params.{name}")
    return space


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    if "choices" in spec:
        return trial.suggest_categorical(name, list(spec["choices"]))
    low, high = spec["low"], spec["high"]
    if all(isinstance(v, int) for v in (low, high, spec.get("step", 1))):
        return trial.suggest_int(name, low, high, step=spec.get("step", 1), log=bool(spec.get("log", False)))
    return trial.suggest_float(name, float(low), float(high), log=bool(spec.get("log", False)), step=spec.get("step"))


def _flags(values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in values.items():
        flag = f"--{k}"
        if isinstance(v, bool):
            out.append(flag if v else f"--no-{k}")
        elif isinstance(v, (list, tuple)):  # nargs flags: --aug_jpeg_quality 30 100
            out += [flag, *map(str, v)]
        else:
            out += [flag, str(v)]
    return out


def run_trial(trial: Any, space: dict[str, Any], out: Path, passthrough: list[str]) -> float:
    """One training run; reports the metric per epoch and stops it when the pruner says so."""
    import optuna

    params = {name: _suggest(trial, name, spec) for name, spec in space["params"].items()}
    folder = out / f"trial_{trial.number}"
    if folder.exists():  # left by an earlier study in this folder: its epochs are not this trial's
        import shutil

        shutil.rmtree(folder)
    metric = space.get("metric", "val_auroc")
    cmd = [
        sys.executable,
        space.get("script", "train.py"),
        *_flags(dict(space.get("fixed") or {})),
        *_flags(params),
        *passthrough,
        "--output_dir",
        str(folder),
        "--no_progress",
    ]
    log.info("trial %d: %s", trial.number, " ".join(_flags(params)))
    with open(out / f"trial_{trial.number}.log", "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        seen = 0
        while True:
            done = proc.poll() is not None
            records = read_jsonl(folder / "log.jsonl")
            for r in records[seen:]:
                if metric in r and r[metric] is not None and math.isfinite(float(r[metric])):
                    trial.report(float(r[metric]), int(r["epoch"]))
                    if trial.should_prune():
                        proc.terminate()
                        proc.wait()
                        raise optuna.TrialPruned(f"epoch {r['epoch']}: {metric} {r[metric]:.4f}")
            seen = len(records)
            if done:
                break
            time.sleep(POLL_S)
    if proc.returncode:
        raise ConfigError(
            f"trial {trial.number} failed (exit status {proc.returncode}); see {out}/trial_{trial.number}.log"
        )
    return trial_value(folder / "log.jsonl", metric, trial.number)


def trial_line(study: Any, trial: Any, metric: str) -> str:
    """One line per finished trial: its parameters, its value (or where it was pruned, or why it
    failed) and the best so far."""
    import optuna

    params = " ".join(_flags(trial.params)) or "(no parameters)"
    state = trial.state
    if state == optuna.trial.TrialState.COMPLETE:
        what = f"{metric} {trial.value:.4f}"
    elif state == optuna.trial.TrialState.PRUNED:
        steps = trial.intermediate_values
        last = max(steps) if steps else None
        what = f"pruned at epoch {last} ({metric} {steps[last]:.4f})" if last is not None else "pruned"
    else:
        what = f"{state.name.lower()}" + (f": {trial.user_attrs['error']}" if "error" in trial.user_attrs else "")
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = (
            max(done, key=lambda t: t.value) if study.direction.name == "MAXIMIZE" else min(done, key=lambda t: t.value)
        )
        so_far = f"best so far: trial {best.number}, {best.value:.4f}"
    else:
        so_far = "no trial completed yet"
    return f"trial {trial.number} {what}; {params}; {so_far}"


def trial_value(log_file: Path, metric: str, number: int) -> float:
    """``metric`` at the epoch that test.py tests: the last epoch selected on validation
    (``selected`` in ``log.jsonl``: checkpoint-best.pth), else the last epoch."""
    records = [r for r in read_jsonl(log_file) if r.get(metric) is not None]
    if not records:
        raise ConfigError(f"trial {number}: log.jsonl has no {metric!r}; give validation data (fixed: val_split)")
    selected = [r for r in records if r.get("selected")]
    return float((selected or records)[-1][metric])


def write_trials(study: Any, out: Path) -> None:
    """``trials.csv`` and (with two finished trials or more) ``importance.json``."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    with atomic_open(out / "trials.csv") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", *names, "seconds", "direction"])
        for t in trials:
            secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
            w.writerow(
                [
                    t.number,
                    t.state.name,
                    "" if t.value is None else t.value,
                    *[t.params.get(k, "") for k in names],
                    secs,
                    study.direction.name.lower(),
                ]
            )
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) >= 2 and names:
        try:
            importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):
            importance = {}
        write_json(
            out / "importance.json",
            {
                "importance": importance,
                "best_trial": study.best_trial.number,
                "best_value": study.best_value,
                "best_params": study.best_params,
            },
        )


def make_sampler(space: dict[str, Any], seed: int, n_before: int) -> Any:
    """The space's sampler. A continued random or TPE search is seeded ``seed + n_before`` (the
    trials already in the study), so it goes on with new draws, still reproducibly; a grid keeps
    its order (the trials it has visited are in the study)."""
    import optuna

    name = space.get("sampler", "tpe")
    if name == "grid":
        return optuna.samplers.GridSampler({k: list(v["choices"]) for k, v in space["params"].items()}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed + n_before)
    return optuna.samplers.TPESampler(seed=seed + n_before)


def check_study(study: Any, space: dict[str, Any], out_dir: Path) -> None:
    """The metric and direction of a study are fixed when it starts: continuing it with others is
    an error that names both."""
    now = {"metric": str(space.get("metric", "val_auroc")), "direction": str(space.get("direction", "maximize"))}
    stored = {k: study.user_attrs.get(k) for k in now}
    if not any(stored.values()) and not study.get_trials(deepcopy=False):
        for k, v in now.items():
            study.set_user_attr(k, v)
        return
    if stored != now:
        raise ConfigError(
            f"{out_dir}/sweep.db is a study of {stored['metric']} ({stored['direction']}), not {now['metric']} "
            f"({now['direction']}); continue it with the same metric and direction, or use another --out"
        )


def run_sweep(
    space_file: Union[str, os.PathLike],
    out: Union[str, os.PathLike],
    passthrough: Optional[list[str]] = None,
    n_trials: Optional[int] = None,
) -> Any:
    """Run (or continue) the search of ``space_file`` in ``out``; returns the Optuna study."""
    try:
        import optuna
    except ImportError:
        raise ConfigError('bench sweep needs Optuna: pip install -e ".[sweep]" (or pip install optuna)') from None

    space = read_space(space_file)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(space.get("seed", 0))
    sampler_name = space.get("sampler", "tpe")
    pruner = (
        optuna.pruners.MedianPruner(n_warmup_steps=0)
        if space.get("pruner", "median") == "median"
        else (optuna.pruners.NopPruner())
    )
    study = optuna.create_study(
        study_name="sweep",
        storage=f"sqlite:///{out_dir.resolve() / 'sweep.db'}",
        sampler=optuna.samplers.RandomSampler(seed=seed),  # replaced below, once the study's size is known
        pruner=pruner,
        direction=space.get("direction", "maximize"),
        load_if_exists=True,
    )
    check_study(study, space, out_dir)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)  # interrupted by the last stop
        if t.params:
            study.enqueue_trial(dict(t.params))  # its point is run again, the next trial
        log.info("trial %d was running when the sweep stopped: marked failed; its parameters run again", t.number)
    study.sampler = make_sampler(space, seed, len(study.get_trials(deepcopy=False)))
    total = int(n_trials or space.get("n_trials", 10))
    finished = len(
        [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL
        ]
    )
    remaining = max(0, total - finished)
    log.info(
        "sweep %s: %d of %d trials done, %d to run (%s sampler)", out_dir, finished, total, remaining, sampler_name
    )

    def objective(trial: Any) -> float:
        return run_trial(trial, space, out_dir, list(passthrough or []))

    def after(study: Any, trial: Any) -> None:
        write_trials(study, out_dir)
        log.info("%s", trial_line(study, trial, space.get("metric", "val_auroc")))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if remaining:
        study.optimize(objective, n_trials=remaining, callbacks=[after], catch=(ConfigError,))
    write_trials(study, out_dir)
    return study
