"""The data check's report: :func:`format_report` renders it for the terminal (a pure function
of the JSON report, so both say the same) and :func:`write_report` writes it as JSON."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence, Union

from aigbench.audit.counts import kib
from aigbench.audit.shortcuts import FEATURE_WORDS, SHORTCUT_THRESHOLD
from aigbench.datasets.layouts import DatasetError

SHOWN_PATHS = 20  # paths shown per list in the terminal (the JSON has all of them)


def write_report(report: Mapping[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write ``report`` as indented JSON to ``path``, atomically (a temporary file renamed);
    creates the folder; an error names ``--json``."""
    from aigbench.fileio import write_json

    try:
        write_json(path, report)
    except OSError as e:
        raise DatasetError(f"--json: cannot write {path}: {e.strerror or e}; pick a writable path") from None


def _rel(path: str, root: str) -> str:
    """``path`` relative to the dataset root when it lies below it (shorter lines)."""
    base = root if os.path.isdir(root) else os.path.dirname(root)
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _shown(items: Sequence[Any]) -> tuple[Sequence[Any], str]:
    more = len(items) - SHOWN_PATHS
    return items[:SHOWN_PATHS], (f"    ... and {more} more (all in --json)" if more > 0 else "")


def _hist_text(rows: Sequence[Mapping[str, Any]], fmt: Any = str) -> str:
    return ", ".join(f"{fmt(r['value'])} {r['percent']:g} %" for r in rows) or "-"


def _quality_text(value: Any) -> str:
    return "not JPEG" if value == -1 else ("other" if value == "other" else f"q{value}")


def format_report(report: Mapping[str, Any]) -> str:
    """The terminal report: a pure function of the JSON report, so both say the same."""
    root = report["root"]
    lines = [
        f"{report['path']} ({report['layout']} layout): {report['n_files']} files checked in {report['seconds']:g} s",
        "",
    ]
    c = report["counts"]
    rows = c["rows"]
    w = [max([len(h)] + [len(str(r[h])) for r in rows]) for h in ("split", "generator", "category")]
    lines.append("COUNTS")
    lines.append(
        f"  {'split':<{w[0]}}  {'generator':<{w[1]}}  {'category':<{w[2]}}  {'real':>7} {'fake':>7} {'total':>7}"
    )
    for r in rows:
        lines.append(
            f"  {r['split']:<{w[0]}}  {r['generator']:<{w[1]}}  {r['category']:<{w[2]}}  "
            f"{r['real']:>7} {r['fake']:>7} {r['total']:>7}"
        )
    if len(rows) > 1:
        for split, v in c["by_split"].items():
            label = f"{split} (all)"
            lines.append(f"  {label:<{w[0] + w[1] + w[2] + 4}}  {v['real']:>7} {v['fake']:>7} {v['total']:>7}")
    t = c["total"]
    lines.append(f"  {'total':<{w[0] + w[1] + w[2] + 4}}  {t['real']:>7} {t['fake']:>7} {t['total']:>7}")
    for k, (p, v) in enumerate(c.get("by_path", {}).items(), 1):
        lines.append(f"  PATH {k}: {v['real']} real, {v['fake']} fake, {v['total']} total  {p}")

    lines += ["", f"PROBLEM FILES: {len(report['problems']) or 'none'}"]
    shown, more = _shown(report["problems"])
    kw = max([len(p["problem"]) for p in shown] or [0])
    for p in shown:
        lines.append(f"  {p['problem']:<{kw}}  {_rel(p['path'], root)}  ({p['detail']})")
    if more:
        lines.append(more)
    if report["extension_mismatches"]:
        m = report["extension_mismatches"]
        lines.append(f"  note: {len(m)} file(s) have an extension that does not match their content, e.g.")
        for e in m[:3]:
            lines.append(f"    {_rel(e['path'], root)} is {e['format']}")

    d = report["duplicates"]
    lines += [
        "",
        f"DUPLICATES (identical bytes): {d['n_groups'] or 'none'}"
        + (f" content(s) stored more than once, {d['n_redundant_files']} redundant file(s)" if d["n_groups"] else ""),
    ]
    several = len(report.get("paths", ())) > 1
    for place, v in d["within_split"].items():
        lines.append(
            f"  within {place if several else place + '/'}: {v['groups']} content(s), "
            f"{v['redundant_files']} redundant file(s)"
        )
    shown, more = _shown(d["groups"])
    for g in shown:
        lines.append("  " + "  ==  ".join(f"{_rel(p, root)}" for p in g["paths"]))
    if more:
        lines.append(more)
    if report["label_conflicts"]:
        lines.append("  labelled both real and fake:")
        for g in report["label_conflicts"][:SHOWN_PATHS]:
            lines.append("    " + "  ==  ".join(_rel(p, root) for p in g["paths"]))
    if report["leaks"]:
        lines += ["", "LEAKS (the same content in two splits, or in two PATHs)"]
        shown, more = _shown(report["leaks"])
        for g in shown:
            tag = "ERROR" if g["severity"] == "error" else "WARNING"
            where = "/".join(g["splits"]) if g["kind"] == "split" else " | ".join(f"PATH {p}" for p in g["sources"])
            lines.append(f"  {tag} {where}: " + "  ==  ".join(_rel(p, root) for p in g["paths"]))
        if more:
            lines.append(more)

    lines += ["", "METADATA per class (readable files; top values)"]
    fields = (
        ("format", "format", str),
        ("jpeg_quality", "JPEG quality", _quality_text),
        ("dimensions", "width x height", str),
        ("mode", "colour mode", str),
        ("file_size", "file size", str),
    )
    for key, title, fmt in fields:
        for i, (cls, meta) in enumerate(report["metadata"].items()):
            extra = ""
            if key == "file_size" and meta["file_size_median"] is not None:
                extra = f"  (median {kib(meta['file_size_median'])})"
            head = title if i == 0 else ""
            lines.append(f"  {head:<15} {cls:<5} {_hist_text(meta[key], fmt)}{extra}")

    s = report["shortcut"]
    lines += ["", f"SHORTCUT AUDIT (metadata only: {s['model']})"]
    if s["auroc"] is None:
        lines.append(f"  shortcut_auroc: n/a, {s['note']}")
    else:
        lines.append(
            f"  shortcut_auroc {s['auroc']:.3f} (±{s['auroc_std']:.3f} over folds) on {s['n_images']} images "
            f"({s['n_real']} real, {s['n_fake']} fake)"
        )
        lines.append(
            "  AUROC of each feature alone: "
            + ", ".join(f"{FEATURE_WORDS[k]} {v:.2f}" for k, v in s["feature_auroc"].items())
        )
        for where, v in [(f"{k}/", v) for k, v in s.get("by_split", {}).items()] + [
            (f"PATH {k}", v) for k, v in s.get("by_path", {}).items()
        ]:
            value = f"{v['auroc']:.3f}" if v["auroc"] is not None else f"n/a, {v['note']}"
            lines.append(f"  {where} only: {value}")
        if s["warning"]:
            lines.append(f"WARNING: {s['warning']}")
            lines.append("  fix, strongest shortcut first (see docs/data_check.md):")
            for k, a in enumerate(s["advice"], 1):
                lines.append(f"    {k}. {a['fix']}")
            lines.append("    better still, build the data so that both classes share format, quality and size")
        else:
            lines.append(f"  no metadata shortcut (AUROC ≤ {SHORTCUT_THRESHOLD:g})")

    lines.append("")
    for e in report["errors"]:
        lines.append(f"ERROR: {e}")
    for wn in report["warnings"]:
        if wn != s["warning"]:
            lines.append(f"WARNING: {wn}")
    ne, nw = len(report["errors"]), len(report["warnings"])
    lines.append(
        f"result: {ne} error(s), {nw} warning(s); exit status {report['exit_status']}"
        if ne or nw
        else "result: no errors, no warnings"
    )
    return "\n".join(lines)
