"""The shortcut audit: can metadata alone tell real from fake?

The cross-validated AUROC of a classifier that sees metadata only (format, JPEG quality, width,
height, aspect ratio, file size, mode), after Grommelt et al. 2024, "Fake or JPEG? Revealing
Common Biases in Generated Image Detection Datasets"; each feature's AUROC alone, a warning in
plain words that quotes each class's own statistics, and advice ranked by what each group of
features measured."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from aigbench.audit.counts import kib, split_order
from aigbench.audit.files import FileInfo

SHORTCUT_THRESHOLD = 0.6  # a metadata-only AUROC above this is a warning
CV_FOLDS = 5
CV_SEED = 0
CV_MIN_PER_CLASS = 20  # fewer images of a class give fold AUROCs too coarse to mean anything
AUDIT_MAX_IMAGES = 20000  # larger datasets are audited on a stratified, seeded sample
DEFAULT_ALIGN_QUALITY = 96
FEATURE_WORDS = {
    "format": "file format",
    "jpeg_quality": "JPEG quality",
    "width": "width",
    "height": "height",
    "aspect": "aspect ratio",
    "mode": "colour mode",
    "file_size": "file size",
}
# Features that one sentence of the warning describes together.
_CLAUSE_OF = {
    "format": "format",
    "jpeg_quality": "format",
    "width": "dimensions",
    "height": "dimensions",
    "aspect": "dimensions",
    "file_size": "file_size",
    "mode": "mode",
}


def _feature_table(infos: Sequence[FileInfo]) -> tuple[np.ndarray, list[str], dict[str, list[int]]]:
    """The metadata design matrix: one-hot format and mode, JPEG quality (-1 when not JPEG),
    width, height, aspect and file size; with the column names and the columns of each feature."""
    formats = sorted({i.format for i in infos})
    modes = sorted({i.mode for i in infos})
    cols: list[np.ndarray] = []
    names: list[str] = []
    groups: dict[str, list[int]] = defaultdict(list)

    def add(group: str, name: str, values: Sequence[float]) -> None:
        groups[group].append(len(cols))
        cols.append(np.asarray(values, dtype=np.float64))
        names.append(name)

    for f in formats:
        add("format", f"format={f}", [i.format == f for i in infos])
    add("jpeg_quality", "jpeg_quality", [i.quality for i in infos])
    add("width", "width", [i.width for i in infos])
    add("height", "height", [i.height for i in infos])
    add("aspect", "aspect", [i.width / i.height if i.height else 0.0 for i in infos])
    add("file_size", "file_size", [i.size for i in infos])
    for m in modes:
        add("mode", f"mode={m}", [i.mode == m for i in infos])
    return np.stack(cols, axis=1), names, dict(groups)


def _feature_keys(infos: Sequence[FileInfo]) -> dict[str, np.ndarray]:
    """Each feature as integer codes: exact values, aspect to 3 decimals, file size in 20
    quantile bins."""
    raw = {
        "format": [i.format for i in infos],
        "jpeg_quality": [i.quality for i in infos],
        "width": [i.width for i in infos],
        "height": [i.height for i in infos],
        "aspect": [round(i.width / i.height, 3) if i.height else 0.0 for i in infos],
        "mode": [i.mode for i in infos],
    }
    keys = {k: np.unique(np.asarray(v), return_inverse=True)[1].reshape(-1) for k, v in raw.items()}
    sizes = np.asarray([i.size for i in infos], dtype=np.float64)
    edges = np.unique(np.quantile(sizes, np.linspace(0, 1, 21)[1:-1]))
    keys["file_size"] = np.searchsorted(edges, sizes, side="right")
    return keys


def _rate_auroc(codes: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Out-of-fold AUROC of one feature alone: each held-out image is scored by the fraction
    of fakes among training images with the same value (smoothed towards the prior)."""
    from sklearn.metrics import roc_auc_score

    k = int(codes.max()) + 1
    score = np.empty(len(y))
    for train, test in folds:
        fakes = np.bincount(codes[train], weights=y[train], minlength=k)
        total = np.bincount(codes[train], minlength=k)
        prior = y[train].mean()
        score[test] = ((fakes + prior) / (total + 1))[codes[test]]
    return float(roc_auc_score(y, score))


def _audit_one(infos: Sequence[FileInfo], labels: Sequence[int], seed: int) -> dict[str, Any]:
    """Cross-validated AUROC of a metadata-only classifier; or a note why there is none."""
    y = np.asarray(labels, dtype=np.int64)
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    base = {"auroc": None, "auroc_std": None, "n_images": len(y), "n_real": n_real, "n_fake": n_fake}
    if n_real == 0 and n_fake == 0:
        return {**base, "note": "no readable images"}
    if n_real == 0 or n_fake == 0:
        only = "real" if n_fake == 0 else "fake"
        return {**base, "note": f"only {only} images: no audit without both classes"}
    if min(n_real, n_fake) < CV_MIN_PER_CLASS:
        return {
            **base,
            "note": f"too few images for {CV_FOLDS}-fold cross-validation (need at least {CV_MIN_PER_CLASS} of "
            f"each class; found {n_real} real, {n_fake} fake)",
        }
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    x, _, _ = _feature_table(infos)
    folds = list(StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed).split(x, y))
    leaf = int(min(20, max(1, len(y) // 100)))  # small datasets: leaves small enough to learn anything
    scores = []
    # One OpenMP thread: a model this small gains nothing from more, and on a busy machine
    # OpenMP's spinning threads make it many times slower.
    with threadpool_limits(1):
        for train, test in folds:
            model = HistGradientBoostingClassifier(max_iter=100, min_samples_leaf=leaf, random_state=seed)
            model.fit(x[train], y[train])
            scores.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    keys = _feature_keys(infos)
    feature_auroc = {name: round(_rate_auroc(keys[name], y.astype(np.float64), folds), 4) for name in FEATURE_WORDS}
    return {
        **base,
        "auroc": round(float(np.mean(scores)), 4),
        "auroc_std": round(float(np.std(scores)), 4),
        # strongest first; near-ties (same 2 decimals) in FEATURE_WORDS order, which puts the
        # causes (format, quality, size) before file size, their consequence
        "feature_auroc": dict(sorted(feature_auroc.items(), key=lambda kv: -round(kv[1], 2))),
        "note": None,
    }


def _subsample(idx: list[int], labels: Sequence[int], limit: int, seed: int) -> list[int]:
    """At most ``limit`` of ``idx``, the same fraction of each class, seeded."""
    if len(idx) <= limit:
        return idx
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in (0, 1):
        members = [i for i in idx if labels[i] == c]
        k = round(limit * len(members) / len(idx))
        keep += [members[j] for j in sorted(rng.choice(len(members), size=k, replace=False))]
    return sorted(keep)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "0 %"


def _top(values: Sequence[str]) -> tuple[str, int]:
    value, count = sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[0]
    return value, count


def _contrast(real: Sequence[str], fake: Sequence[str], unit: str = "") -> str:
    """Each class's own statistics of one categorical feature: the most common value of each when
    they differ; else the value whose share differs most, with its share in each class."""
    (rv, rc), (fv, fc) = _top(real), _top(fake)
    if rv != fv:
        return f"real images are {_pct(rc, len(real))} {rv}{unit}, fakes {_pct(fc, len(fake))} {fv}{unit}"
    cr, cf = Counter(real), Counter(fake)

    def gap(v: str) -> tuple[float, int, str]:
        return (abs(cr[v] / len(real) - cf[v] / len(fake)), cr[v] + cf[v], v)

    v = max(set(cr) | set(cf), key=gap)
    return f"{v}{unit} is {_pct(cr[v], len(real))} of real images and {_pct(cf[v], len(fake))} of fakes"


def _clause(kind: str, by_class: Sequence[Sequence[FileInfo]], leading: Sequence[str]) -> str:
    """One plain-words comparison of real and fake images for a group of features, each class
    quoted with its own statistics."""
    real, fake = by_class
    if kind == "format":
        with_q = "jpeg_quality" in leading

        def label(i: FileInfo) -> str:
            return f"JPEG q≈{i.quality}" if with_q and i.format == "JPEG" and i.quality > 0 else i.format

        return _contrast([label(i) for i in real], [label(i) for i in fake])
    if kind == "dimensions":
        text = _contrast([f"{i.width}x{i.height}" for i in real], [f"{i.width}x{i.height}" for i in fake], " pixels")
        aspects = [np.median([i.width / i.height if i.height else 0.0 for i in c]) for c in (real, fake)]
        if round(aspects[0], 2) != round(aspects[1], 2):
            text += f" (median aspect ratio {aspects[0]:.2f} for real images, {aspects[1]:.2f} for fakes)"
        return text
    if kind == "file_size":
        r, f = np.median([i.size for i in real]), np.median([i.size for i in fake])
        return f"real files have a median size of {kib(r)}, fakes {kib(f)}"
    return _contrast([i.mode for i in real], [i.mode for i in fake])


def _align_quality(infos: Sequence[FileInfo], labels: Sequence[int]) -> int:
    """The JPEG quality to align to: the most common one among real JPEGs, else among all."""
    for pool in ([i for i, y in zip(infos, labels) if y == 0], infos):
        qs = [i.quality for i in pool if i.format == "JPEG" and i.quality > 0]
        if qs:
            return Counter(qs).most_common(1)[0][0]
    return DEFAULT_ALIGN_QUALITY


# The groups of features that one piece of advice removes, in the order that breaks ties.
ADVICE_GROUPS = {
    "format": "format and JPEG quality",
    "dimensions": "size and aspect ratio",
    "mode": "colour mode",
    "file_size": "file size",
}


def _advice(feature_auroc: Mapping[str, float], quality: int) -> list[dict[str, Any]]:
    """What to do about each group of features (:data:`ADVICE_GROUPS`) that separates the classes
    on its own (AUROC above :data:`SHORTCUT_THRESHOLD`; the strongest group when none does),
    strongest first, each with its strongest feature and that feature's AUROC alone. File size
    gets advice of its own only when no other group separates the classes."""
    best: dict[str, tuple[float, str]] = {}
    for name, auroc in feature_auroc.items():
        group = _CLAUSE_OF[name]
        if group not in best or auroc > best[group][0]:
            best[group] = (auroc, name)
    order = list(ADVICE_GROUPS)
    ranked = sorted(best, key=lambda g: (-best[g][0], order.index(g)))
    # file size follows from the others (and from content): advice of its own only when they do not lead
    strong = [g for g in ranked if best[g][0] > SHORTCUT_THRESHOLD]
    chosen = [g for g in strong if g != "file_size"] or strong or ranked[:1]
    fixes = {
        "format": f"evaluate format-aligned: train.py/test.py --align_format jpeg:{quality} re-encodes every "
        f"evaluation image (validation and test) as JPEG at quality {quality}, and --align_train the training "
        "images too",
        "dimensions": "give both classes the same sizes: take fixed-size crops rather than resizing "
        "(train.py/test.py --resize_mode crop), since resampling leaves a trace of each image's original size, or "
        "build the data from images of matching sizes",
        "mode": "store both classes in the same colour mode: grayscale or palette images of one class stay "
        "recognisable after decoding to RGB",
        "file_size": "file size follows from format, quality, size and content: compare the classes' histograms "
        "above and align the one that differs",
    }
    return [
        {
            "group": g,
            "feature": best[g][1],
            "auroc": best[g][0],
            "fix": f"{ADVICE_GROUPS[g]} ({FEATURE_WORDS[best[g][1]]} alone: AUROC {best[g][0]:.3f}): {fixes[g]}",
        }
        for g in chosen
    ]


def _audit_by(
    infos: Sequence[FileInfo], labels: Sequence[int], keys: Sequence[str], seed: int
) -> dict[str, dict[str, Any]]:
    """:func:`_audit_one` of the images of each value of ``keys`` (a split, or a PATH) alone."""
    out = {}
    for key in sorted(set(keys), key=split_order):
        members = [i for i in range(len(infos)) if keys[i] == key]
        members = _subsample(members, labels, AUDIT_MAX_IMAGES, seed)
        one = _audit_one([infos[i] for i in members], [labels[i] for i in members], seed)
        out[key] = {"auroc": one["auroc"], "n_images": one["n_images"], "note": one["note"]}
    return out


def shortcut_audit(
    infos: Sequence[FileInfo],
    labels: Sequence[int],
    splits: Optional[Sequence[str]] = None,
    seed: int = CV_SEED,
    sources: Optional[Sequence[str]] = None,
) -> dict[str, Any]:
    """How well metadata alone separates real from fake (see :data:`FEATURE_WORDS`).

    ``auroc`` is the mean AUROC of a HistGradientBoostingClassifier over a seeded, stratified
    ``CV_FOLDS``-fold split (None, with a ``note``, for one class or too few images);
    ``feature_auroc`` the out-of-fold AUROC of each feature alone, which ranks them; above
    :data:`SHORTCUT_THRESHOLD`, ``warning`` describes the leading features in plain words, each
    class with its own statistics, and ``advice`` says how to evaluate without them, one item
    per group of features, strongest first (``fix`` joins them). With several ``splits``,
    ``by_split`` audits each; with several ``sources`` (the PATHs checked together), ``by_path``.
    """
    idx = _subsample(list(range(len(infos))), labels, AUDIT_MAX_IMAGES, seed)
    sub, sub_y = [infos[i] for i in idx], [labels[i] for i in idx]
    result = _audit_one(sub, sub_y, seed)
    result.update(
        model=f"HistGradientBoostingClassifier, {CV_FOLDS}-fold stratified CV, seed {seed}",
        features=list(FEATURE_WORDS),
        n_readable=len(infos),
        leading=[],
        warning=None,
        advice=[],
        fix=None,
    )
    if splits is not None and len(set(splits)) > 1:
        result["by_split"] = _audit_by(infos, labels, splits, seed)
    if sources is not None and len(set(sources)) > 1:
        result["by_path"] = _audit_by(infos, labels, sources, seed)
    auroc = result["auroc"]
    if auroc is None or auroc <= SHORTCUT_THRESHOLD:
        return result
    ranked = list(result["feature_auroc"].items())
    leading = [name for name, a in ranked if a > SHORTCUT_THRESHOLD][:4] or [ranked[0][0]]
    result["leading"] = leading
    by_class = [[i for i, y in zip(sub, sub_y) if y == c] for c in (0, 1)]
    clauses: list[str] = []
    for name in leading:
        kind = _CLAUSE_OF[name]
        text = _clause(kind, by_class, leading)
        if text not in clauses:
            clauses.append(text)
    words = ", ".join(f"{FEATURE_WORDS[n]} ({result['feature_auroc'][n]:.2f} alone)" for n in leading)
    result["warning"] = (
        f"metadata shortcut: {'; '.join(clauses[:3])}: a detector can reach AUROC {auroc:.2f} without looking at "
        f"pixels (leading features: {words})"
    )
    result["advice"] = _advice(result["feature_auroc"], _align_quality(sub, sub_y))
    result["fix"] = (
        "; ".join(f"{k}. {a['fix']}" for k, a in enumerate(result["advice"], 1))
        + "; better still, build the data so that both classes share format, quality and size"
    )
    return result
