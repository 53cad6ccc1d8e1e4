"""The book's generated pages: the replication scorecard and the run status.

Both are MyST markdown written beside the executed chapters (``book/_executed/``), from the aggregated
claims files and ``report.json`` that the runner writes. Claim tables are raw HTML (everything escaped),
so no text of a claim can turn into markup that warns under ``-W -n``. Paper claims and checks are
counted apart; only paper claims count as replications.
"""

from __future__ import annotations

import json
from pathlib import Path

from .claims import CHECK_VERDICTS, INTERVAL_METHOD, VERDICTS, counts, load, summary_tables_html
from .runner.cache import read_report, write_atomic
from .runner.project import chapters


def claim_summaries(names: list[str], out: Path) -> dict[str, dict | None]:
    """Chapter → its aggregated ``<out>/<chapter>.claims.json``, or None if missing or unreadable."""
    found: dict[str, dict | None] = {}
    for name in names:
        try:
            found[name] = load(out / f"{name}.claims.json")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            found[name] = None
    return found


def _md(value: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(value).replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _link(name: str, out: Path) -> str:
    """A {doc} link to the chapter's executed page, or the bare id if there is no page to link to."""
    return f"{{doc}}`{name}`" if (out / f"{name}.ipynb").exists() else f"`{name}`"


_HEAD = ("chapter", "seeds", "paper claims: replicated / not / inconclusive", "checks: hold / fail")


def _counts_row(label: str, seeds: str, c: dict[str, int]) -> str:
    """One row of the counts table: four columns, so that it fits a laptop's and a phone's content width."""
    claims = " / ".join(str(c[v]) for v in VERDICTS) + f" of {sum(c[v] for v in VERDICTS)}"
    checks = " / ".join(str(c[v]) for v in CHECK_VERDICTS)
    return f"| {label} | {seeds} | {claims} | {checks} |"


def scorecard_markdown(summaries: dict[str, dict | None], out: Path, report: dict | None = None) -> str:
    """The scorecard page: counts for the book and per chapter, then each chapter's verdicts with their
    intervals and a picture of interval against band."""
    report = report or {}
    total = dict.fromkeys((*VERDICTS, *CHECK_VERDICTS), 0)
    rows = []
    for name, summary in summaries.items():
        if summary is None:
            rows.append(f"| {_link(name, out)} | not run |" + " |" * (len(_HEAD) - 2))
            continue
        c = counts(summary)
        total = {k: total[k] + c[k] for k in total}
        rows.append(_counts_row(_link(name, out), ", ".join(map(str, summary["seeds"])), c))
    lines = [
        "# Replication scorecard",
        "",
        "Every paper claim of every chapter, as measured by the chapter's last successful runs. Each seed",
        "is a separate execution of the chapter; the estimate is the mean over seeds with its interval",
        f"({INTERVAL_METHOD}). A claim is *replicated* when the interval lies inside its band, *not",
        "replicated* when it lies outside, and *inconclusive* when it straddles an edge, when too few seeds",
        "gave a finite value, or when its premise is not replicated. Bands were fixed before the runs and",
        "never depend on the measured spread; a band changed after looking says so in its row.",
        "*Checks* are identities and sanity properties of our own code: they are listed apart and never",
        "counted as replications.",
        "",
        "| " + " | ".join(_HEAD) + " |",
        "|---|---|---:|---:|",
        _counts_row("**whole book**", "", total),
        *rows,
        "",
    ]
    for name, summary in summaries.items():
        lines += [f"## {_md(_title(name, out))}", "", f"Chapter page: {_link(name, out)}.", ""]
        lines += _chapter_section(name, summary, report.get(name, {}), out)
    return "\n".join(lines)


def _chapter_section(name: str, summary: dict | None, entry: dict, out: Path) -> list[str]:
    if summary is None:
        return ["Not run: this chapter has no claims file yet.", ""]
    c = counts(summary)
    lines = [
        f"Seeds {', '.join(map(str, summary['seeds']))} (profile `{summary['profile']}`): paper claims "
        + ", ".join(f"{c[v]} {v}" for v in VERDICTS)
        + f"; checks {c['holds']} hold, {c['fails']} fail.",
        "",
    ]
    if entry.get("status") == "failed":
        lines += [
            f"The latest run failed (`{_md(entry.get('error', ''))}`); the verdicts use the last good runs.",
            "",
        ]
    figure = _interval_figure(name, summary, out)
    if figure:
        lines += [
            f"```{{figure}} {figure}",
            f":alt: Estimate and 90 % interval of each paper claim of {name} against its band",
            f":name: scorecard-{name}",
            "",
            "Each row is a paper claim: the shaded bar is its band, on the claim's own scale (band edges at",
            "the ticks), the line its 90 % interval over seeds, the dot the estimate, coloured by verdict.",
            "```",
            "",
        ]
    return lines + [summary_tables_html(summary), ""]


def _interval_figure(name: str, summary: dict, out: Path) -> str | None:
    """Write ``scorecard-<name>.png`` (interval against band, one row per paper claim); its file name."""
    if not summary["claims"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import interval_vs_band

    fig = interval_vs_band(summary["claims"])
    path = out / f"scorecard-{name}.png"
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    if path.exists() and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(path)
    return path.name


def status_markdown(report: dict, names: list[str], out: Path) -> str:
    """The status page: one row per chapter with what the runner recorded, then the errors."""
    head = [
        "chapter",
        "status",
        "profile",
        "seeds",
        "wall time per seed (s)",
        "cache key",
        "date",
        "Python",
        "torch",
    ]
    lines = [
        "# Run status",
        "",
        "What the runner (`optdyn run`) recorded for each chapter's runs of record, from",
        "`book/_executed/report.json`. A rebuild that finds a run current (same chapter, parameters,",
        "`optdyn` package, requirements, Python and torch) keeps it and leaves this page as it was.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    errors = []
    for name in names:
        e = report.get(name, {})
        runs = e.get("runs", {})
        walls = ", ".join(str(runs[s].get("wall_s", "")) for s in map(str, e.get("seeds", [])) if s in runs)
        key = str(e.get("cache_key", ""))[:12]
        seeds = ", ".join(map(str, e.get("seeds", [])))
        cells = [e.get("status", "not run"), e.get("profile", ""), seeds, walls]
        cells += [e.get("date", ""), e.get("commit", ""), e.get("machine", "")]
        cells += [key, e.get("python", ""), e.get("torch", "")]
        lines.append(f"| {_link(name, out)} | " + " | ".join(_md(c) for c in cells) + " |")
        if e.get("error"):
            look = Path(str(e.get("look", ""))).name
            errors.append(f"- `{name}`: `{_md(e['error'])}`" + (f" (see `{_md(look)}`)" if look else ""))
    if errors:
        lines += ["", "## Failures", "", *errors]
    return "\n".join(lines) + "\n"


def _reading_minutes(path: Path, words_per_minute: int = 200) -> float | None:
    """Reading time of a chapter's prose: words of its markdown cells over ``words_per_minute``."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "markdown"]
    text = " ".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells)
    return len(text.split()) / words_per_minute


def run_times_markdown(report: dict, names: list[str], out: Path, docs: str = "/book/_executed") -> str:
    """A table for the course page, measured, not typed: per chapter the profile and seeds of its runs of
    record, the wall time per seed, their total, and the reading time of its prose (200 words/min).
    The table is included into another page, so chapters are linked by their absolute ``docs`` path."""
    head = ["chapter", "profile", "seeds", "wall time per seed", "all seeds", "reading time"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---:|"]
    for name in names:
        e = report.get(name, {})
        runs = [e.get("runs", {}).get(str(s), {}) for s in e.get("seeds", [])]
        walls = [r["wall_s"] for r in runs if isinstance(r.get("wall_s"), int | float)]
        mean = f"{sum(walls) / len(walls) / 60:.1f} min" if walls else "not run"
        total = f"{sum(walls) / 60:.1f} min" if walls else "—"
        minutes = _reading_minutes(out / f"{name}.ipynb")
        reading = f"{minutes:.0f} min" if minutes is not None else "—"
        seeds = ", ".join(map(str, e.get("seeds", []))) or "—"
        link = f"{{doc}}`{docs}/{name}`" if (out / f"{name}.ipynb").exists() else f"`{name}`"
        cells = [link, f"`{e.get('profile', '—')}`", seeds, mean, total, reading]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def toc_order(root: Path, names: list[str]) -> list[str]:
    """``names`` in the order the book's ``_toc.yml`` lists their executed pages; others after, sorted."""
    import yaml

    try:
        toc = yaml.safe_load((root / "_toc.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return sorted(names)
    files = [c.get("file", "") for part in toc.get("parts", []) for c in part.get("chapters", [])]
    listed = [Path(f).name for f in files if Path(f).name in names]
    return listed + sorted(set(names) - set(listed))


def _title(name: str, out: Path) -> str:
    """The chapter's title: the first heading of its executed copy (the id if there is none)."""
    try:
        nb = json.loads((out / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "markdown" and text.startswith("# "):
                return text.splitlines()[0][2:].strip()
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return name


def _relative(out: Path, root: Path) -> str:
    try:
        return out.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return "book/_executed"


def write_pages(root: Path, out: Path) -> None:
    """Write ``scorecard.md`` and ``status.md`` into ``out`` for every chapter of the book."""
    names = toc_order(root, list(chapters(root)))
    report = read_report(out)
    out.mkdir(parents=True, exist_ok=True)
    pages = {
        "scorecard.md": scorecard_markdown(claim_summaries(names, out), out, report),
        "status.md": status_markdown(report, names, out),
        "run_times.md": run_times_markdown(report, names, out, "/" + _relative(out, root)),
    }
    for page, text in pages.items():  # unchanged pages keep their mtime: Sphinx need not re-read them
        path = out / page
        if not path.exists() or path.read_text() != text:
            write_atomic(path, text)


def main(argv: list[str] | None = None) -> int:
    """``python -m optdyn.report ROOT OUT``: :func:`write_pages` (what ``optdyn build`` runs after the
    chapters)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m optdyn.report ROOT OUT", file=sys.stderr)
        return 2
    write_pages(Path(args[0]), Path(args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
