"""Render the ``bench init`` templates (jinja2) into file texts."""

from __future__ import annotations

import json
from pathlib import Path

from aigbench import __version__

TEMPLATES = Path(__file__).resolve().parent / "templates"


class ScaffoldError(ValueError):
    """Unknown template or unreadable template folder."""


def available_templates() -> list[str]:
    return sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir() and not p.name.startswith("_"))


def template_files(template: str) -> list[Path]:
    """The ``.j2`` files of a template; ``base``'s files come first and others add to them."""
    if template not in available_templates():
        raise ScaffoldError(f"unknown template {template!r}; choose one of: {', '.join(available_templates())}")
    files = {p.name: p for p in sorted((TEMPLATES / "base").glob("*.j2"))}
    files.update({p.name: p for p in sorted((TEMPLATES / template).glob("*.j2"))})
    return list(files.values())


def zoo_entries(template: str) -> dict[str, dict]:
    """The per-model settings of a template (``zoo.json``), in file order; empty for ``base``."""
    spec = TEMPLATES / template / "zoo.json"
    return json.loads(spec.read_text(encoding="utf-8")) if spec.is_file() else {}


def training_only_flags() -> frozenset[str]:
    """Flags of train.py that test.py does not take (optimizer, schedule, augmentation, data mix)."""
    from aigbench.engine.args import test_parser, train_parser

    def options(parser: object) -> set[str]:
        return {o for a in parser._actions for o in a.option_strings}  # type: ignore[attr-defined]

    return frozenset(options(train_parser()) - options(test_parser()))


def evaluation_flags(entry: dict) -> list[str]:
    """The flags of a zoo entry's test scripts: its ``test_flags``, else its ``flags`` without the
    training-only ones (a flag with its values is one string, e.g. ``--aug_blur_sigma 0 3``)."""
    if "test_flags" in entry:
        return list(entry["test_flags"])
    train_only = training_only_flags()
    return [f for f in entry["flags"] if f.split()[0] not in train_only]


def render_template(template: str, target: Path, **context: object) -> dict[Path, str]:
    """``{output path: text}`` for every file of ``template`` rendered into ``target``.

    A ``<kind>_zoo.sh.j2`` file is rendered once per ``zoo.json`` entry as ``<kind>_<key>.sh``;
    ``sliding_windows_zoo.sh.j2`` only for the entries with ``"sliding_windows": true``.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(TEMPLATES / template), str(TEMPLATES / "base")]),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    entries = zoo_entries(template)
    ctx = {"version": __version__, "template": template, "zoo": entries, **context}
    out: dict[Path, str] = {}
    for p in template_files(template):
        tpl = env.get_template(p.name)
        if p.name.endswith("_zoo.sh.j2"):
            kind = p.name[: -len("_zoo.sh.j2")]
            for key, entry in entries.items():
                if kind == "sliding_windows" and not entry.get("sliding_windows"):
                    continue
                flags = evaluation_flags(entry)
                if kind == "test_robust":  # a sweep perturbs the clean images itself
                    flags = [f for f in flags if f.split()[0] != "--eval_perturb"]
                out[target / p.name.replace("zoo.sh.j2", f"{key}.sh")] = tpl.render(
                    **ctx, key=key, entry=entry, eval_flags=flags
                )
        else:
            out[target / p.name[: -len(".j2")]] = tpl.render(**ctx)
    return out


def write_project(template: str, target: Path, force: bool = False) -> dict[str, list[Path]]:
    """Render ``template`` into ``target`` (created if missing) and write what is missing; an
    existing file is never touched unless ``force``. Returns the files ``added``, ``kept``
    (existing, different from the template: yours), ``unchanged`` (existing, identical) and
    ``replaced`` (existing and different, overwritten because of ``force``). So ``bench init
    model_zoo`` inside a project made by ``bench init`` adds the zoo's scripts and leaves your
    edited ``train.py`` and ``mymodel.py`` alone."""
    files = render_template(template, Path(target))
    out: dict[str, list[Path]] = {"added": [], "kept": [], "unchanged": [], "replaced": []}
    for path, text in files.items():
        if path.exists():
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            if same:
                out["unchanged"].append(path)
                continue
            if not force:
                out["kept"].append(path)
                continue
            out["replaced"].append(path)
        else:
            out["added"].append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if path.suffix == ".sh":
            path.chmod(0o755)
    return out
