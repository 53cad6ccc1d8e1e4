"""A chapter's page and verdicts assembled from its seeds' executions, with its Reproduce box."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from .base import ACROSS_TAG, CLAIMS_TAG, REPRODUCE_TAG, _claims, nbformat
from .cache import seed_dir, write_if_changed
from .params import declared_parameters, seeds_text
from .project import Task


def _reproduce_cell(source: Path, out: Path, name: str, runs: list[dict]) -> nbformat.NotebookNode:
    """A box under the chapter's title: the command that reproduces this page (every seed), the wall time
    of each seed's run and the machine, and a link to the source notebook (no outputs)."""
    first = runs[0]
    defaults = {k: d.default for k, d in declared_parameters(source).items()}
    extra = "".join(
        " -p " + shlex.quote(f"{k}={_literal(v)}")
        for k, v in first["parameters"].items()
        if k not in ("profile", "seed") and v != defaults.get(k)
    )
    seeds = [r["seed"] for r in runs]
    which = f"--seed {seeds[0]}" if len(seeds) == 1 else f"--seeds {seeds_text(seeds)}"
    command = f"optdyn run {name} --profile {first['profile']} {which}{extra}"
    gpu = " and a CUDA GPU" if first.get("device") == "cuda" else ""
    machine = f"{os.cpu_count()} CPU cores{gpu}, Python {first['python']}, torch {first['torch']}"
    walls = ", ".join(f"seed {r['seed']} {r.get('wall_s', 0):.0f} s" for r in runs)
    relative = Path(os.path.relpath(source, out)).as_posix()
    lines = [
        "```{admonition} Reproduce this chapter",
        ":class: tip",
        f"`{command}`",
        "",
        f"This page: profile `{first['profile']}`, seed {seeds[0]}'s figures; the verdicts use "
        f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))}, each a separate execution "
        f"({walls}; executed {first['date'][:10]} on {machine}).",
        f"Download the {{download}}`source notebook <{relative}>` (with solutions, no outputs) or the "
        f"{{download}}`student notebook <student/{name}.ipynb>` (no solutions; exercises in plain Markdown "
        "for Colab and Jupyter); the download button at the top of the page gives this executed copy, and "
        "the launch button opens it in Colab or Binder.",
        "```",
    ]
    return nbformat.v4.new_markdown_cell(
        "\n".join(lines), metadata={"tags": [REPRODUCE_TAG]}, id=REPRODUCE_TAG
    )


def _literal(value: object) -> str:
    """A parameter value as the runner's ``-p`` reads it: bare words bare, everything else a literal."""
    return value if isinstance(value, str) and re.fullmatch(r"[\w.\-]+", value) else repr(value)


def _seed_claims(out: Path, tasks: list[Task]) -> list:
    """The claims of every seed that has a good run (the last good one where the latest failed)."""
    found = []
    for task in tasks:
        try:
            data = json.loads((seed_dir(out) / f"{task.run_name}.claims.json").read_text())
            found.append(_claims.ClaimSet.from_dict(data))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _across_seeds_cell(summary: dict, missing: list[int], failed: list[int]) -> nbformat.NotebookNode:
    lost = ""
    if failed:
        lost += f" The latest run of seed(s) {', '.join(map(str, failed))} failed (see the status page)."
    if missing:
        lost += f" Seed(s) {', '.join(map(str, missing))} have no successful run and are left out below."
    text = (
        "**Verdicts across seeds.** The table above is one seed; the verdicts below come from all seeds, "
        "run as separate executions of this chapter: *replicated* when the interval lies inside the band, "
        "*not replicated* when it lies outside, *inconclusive* when it straddles an edge, when too few "
        f"seeds gave a finite value, or when the claim's premise is not replicated.{lost}\n\n"
        + _claims.summary_tables_html(summary)
    )
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [ACROSS_TAG]}, id=ACROSS_TAG)


def _write_student_notebook(source: Path, out: Path, name: str) -> None:
    """``<out>/student/<name>.ipynb``: the chapter without solutions, exercises in plain Markdown."""
    from ..editions import student_edition

    (out / "student").mkdir(exist_ok=True)
    student = student_edition(nbformat.read(source, as_version=4))
    write_if_changed(out / "student" / f"{name}.ipynb", nbformat.writes(student))


def assemble(source: Path, out: Path, name: str, tasks: list[Task], entries: dict[int, dict]) -> dict | None:
    """The chapter's page and verdicts from its seeds' executions.

    Writes ``<out>/<name>.ipynb`` (the first seed's executed copy with the chapter's Reproduce box and the
    "across seeds" table under its claims), ``<out>/<name>.claims.json`` (:func:`optdyn.claims.aggregate`)
    and ``<out>/student/<name>.ipynb`` (the student edition the box links,
    :func:`optdyn.editions.student_edition`), each only when it changed. Returns the summary, or None when
    no seed has a good run.
    """
    runs = _seed_claims(out, tasks)
    first = seed_dir(out) / f"{tasks[0].run_name}.ipynb"
    try:
        page = nbformat.read(first, as_version=4)
    except Exception:
        return None
    good = [entries[t.seed] for t in tasks if t.seed in entries and entries[t.seed].get("status") != "failed"]
    box_runs = good or [entries[tasks[0].seed]]
    cells = [c for c in page.cells if not {REPRODUCE_TAG, ACROSS_TAG} & set(c.metadata.get("tags", []))]
    for cell in cells:  # papermill's copy of the parameters: the Reproduce box says what was injected
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    _write_student_notebook(source, out, name)
    cells.insert(1, _reproduce_cell(source, out, name, box_runs))
    summary = None
    if runs:
        summary = _claims.aggregate(runs)
        missing = [t.seed for t in tasks if t.seed not in summary["seeds"]]
        at = next(
            (i for i, c in enumerate(cells) if CLAIMS_TAG in c.metadata.get("tags", [])), len(cells) - 1
        )
        failed = [t.seed for t in tasks if entries.get(t.seed, {}).get("status") == "failed"]
        cells.insert(at + 1, _across_seeds_cell(summary, missing, failed))
        write_if_changed(out / f"{name}.claims.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    page.cells = cells
    write_if_changed(out / f"{name}.ipynb", nbformat.writes(page))
    return summary
