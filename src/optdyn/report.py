"""The book's generated pages: the replication scorecard and the run status.

Both are MyST markdown written beside the executed chapters (``book/_executed/``), from the claims
files and ``report.json`` that the runner writes. Claim tables are raw HTML (everything escaped), so no
text of a claim can turn into markup that warns under ``-W -n``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .claims import VERDICTS, Claim, ClaimSet, load

_COLOURS = {"replicated": "#1b7837", "not replicated": "#b2182b", "inconclusive": "#8c6d1f"}
_COLUMNS = ("id", "statement", "paper", "measured", "rule", "verdict", "reason")


def claim_sets(names: list[str], out: Path) -> dict[str, ClaimSet | None]:
    """Chapter → its claims from ``<out>/<chapter>.claims.json``, or None if missing or unreadable."""
    sets: dict[str, ClaimSet | None] = {}
    for name in names:
        try:
            sets[name] = load(out / f"{name}.claims.json")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            sets[name] = None
    return sets


def _md(value: object) -> str:
    """Text safe inside a markdown table cell."""
    return str(value).replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _link(name: str, out: Path) -> str:
    """A {doc} link to the chapter's executed page, or the bare id if there is no page to link to."""
    return f"{{doc}}`{name}`" if (out / f"{name}.ipynb").exists() else f"`{name}`"


def _measured(claim: Claim) -> str:
    text = "n/a" if claim.measured is None else f"{claim.measured:.4g}"
    if claim.detail:
        text += f"<br><small>{html.escape(claim.detail)}</small>"
    return text


def claims_table(claims: list[Claim]) -> str:
    """One raw-HTML table row per claim: id, statement, paper, measured, rule, verdict, reason (the
    chapter is the section the table sits in)."""
    rows = ['<table class="optdyn-scorecard"><thead><tr>']
    rows.append("".join(f"<th>{c}</th>" for c in _COLUMNS) + "</tr></thead><tbody>")
    for c in claims:
        plain = [c.id, c.statement, c.paper]
        cells = [html.escape(str(x)) for x in plain] + [_measured(c), html.escape(c.rule)]
        colour = _COLOURS.get(c.verdict, "inherit")
        cells += [f'<b style="color:{colour}">{html.escape(c.verdict)}</b>', html.escape(c.reason)]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _counts(claim_set: ClaimSet) -> dict[str, int]:
    return {v: sum(c.verdict == v for c in claim_set.claims) for v in VERDICTS}


def _counts_row(label: str, counts: dict[str, int]) -> str:
    return f"| {label} | " + " | ".join(str(counts[v]) for v in VERDICTS) + f" | {sum(counts.values())} |"


def scorecard_markdown(sets: dict[str, ClaimSet | None], out: Path, report: dict | None = None) -> str:
    """The scorecard page: verdict counts for the book and per chapter, then every claim."""
    report = report or {}
    total = dict.fromkeys(VERDICTS, 0)
    summary = []
    for name, claim_set in sets.items():
        if claim_set is None:
            summary.append(f"| {_link(name, out)} | not run |" + " |" * len(VERDICTS))
            continue
        counts = _counts(claim_set)
        total = {v: total[v] + counts[v] for v in VERDICTS}
        summary.append(_counts_row(_link(name, out), counts))
    lines = [
        "# Replication scorecard",
        "",
        "Every claim of every chapter, as measured by the chapter's last successful run: the paper's value,",
        "ours, the rule that compares them, and the verdict it computes.",
        "",
        "| chapter | " + " | ".join(VERDICTS) + " | claims |",
        "|---|" + "---:|" * (len(VERDICTS) + 1),
        _counts_row("**whole book**", total),
        *summary,
        "",
    ]
    for name, claim_set in sets.items():
        lines += [f"## {_md(_title(name, out))}", "", f"Chapter page: {_link(name, out)}.", ""]
        lines += _chapter_section(name, claim_set, report.get(name, {}))
    return "\n".join(lines)


def _chapter_section(name: str, claim_set: ClaimSet | None, entry: dict) -> list[str]:
    if claim_set is None:
        return ["Not run: this chapter has no claims file yet.", ""]
    counts = _counts(claim_set)
    lines = [", ".join(f"{counts[v]} {v}" for v in VERDICTS) + ".", ""]
    if entry.get("status") == "failed":
        last = entry.get("last_success", "an earlier run")
        lines += [f"The latest run failed; these claims are from the last successful run ({_md(last)}).", ""]
    return lines + [claims_table(claim_set.claims), ""]


def status_markdown(report: dict, names: list[str], out: Path) -> str:
    """The status page: one row per chapter with what the runner recorded, then the errors."""
    head = ["chapter", "status", "profile", "seed", "wall time (s)", "cache key", "date", "Python", "torch"]
    lines = [
        "# Run status",
        "",
        "What the runner (`optdyn run`) recorded for each chapter's latest run, from",
        "`book/_executed/report.json`. *cached* means the chapter, its parameters, the `optdyn` package,",
        "the requirements and the Python and torch versions were unchanged, so the earlier run was kept.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    errors = []
    for name in names:
        e = report.get(name, {})
        key = str(e.get("cache_key", ""))[:12]
        cells = [e.get("status", "not run"), e.get("profile", ""), e.get("seed", ""), e.get("wall_s", "")]
        cells += [key, e.get("date", ""), e.get("python", ""), e.get("torch", "")]
        lines.append(f"| {_link(name, out)} | " + " | ".join(_md(c) for c in cells) + " |")
        if e.get("error"):
            look = Path(str(e.get("look", ""))).name
            errors.append(f"- `{name}`: `{_md(e['error'])}`" + (f" (see `{_md(look)}`)" if look else ""))
    if errors:
        lines += ["", "## Failures", "", *errors]
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


def write_pages(root: Path, out: Path) -> None:
    """Write ``scorecard.md`` and ``status.md`` into ``out`` for every chapter of the book."""
    from .runner import _write_atomic, chapters, read_report

    names = toc_order(root, list(chapters(root)))
    report = read_report(out)
    out.mkdir(parents=True, exist_ok=True)
    pages = {
        "scorecard.md": scorecard_markdown(claim_sets(names, out), out, report),
        "status.md": status_markdown(report, names, out),
    }
    for page, text in pages.items():  # unchanged pages keep their mtime: Sphinx need not re-read them
        path = out / page
        if not path.exists() or path.read_text() != text:
            _write_atomic(path, text)
