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


def render_template(template: str, target: Path, **context: object) -> dict[Path, str]:
    """``{output path: text}`` for every file of ``template`` rendered into ``target``.

    A ``<kind>_zoo.sh.j2`` file is rendered once per ``zoo.json`` entry as ``<kind>_<key>.sh``.
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
            for key, entry in entries.items():
                out[target / p.name.replace("zoo.sh.j2", f"{key}.sh")] = tpl.render(**ctx, key=key, entry=entry)
        else:
            out[target / p.name[: -len(".j2")]] = tpl.render(**ctx)
    return out
