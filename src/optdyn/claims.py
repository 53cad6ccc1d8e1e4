"""Claim records and their verdicts.

A chapter builds a :class:`ClaimSet`, records each claim of its paper with the paper's value, the
measured value and a comparison rule, and ends by displaying the set. The display carries the claims
as JSON under :data:`MIME_TYPE`; the runner reads it from the executed notebook and writes
``<chapter>.claims.json``, and the scorecard page gathers those files.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

#: The output type under which a chapter displays its claims as JSON.
MIME_TYPE = "application/vnd.optdyn.claims+json"
VERDICTS = ("replicated", "not replicated", "inconclusive")


@dataclass(frozen=True)
class Rule:
    """A comparison of the measured value, ``lo <= measured <= hi`` (either side may be open)."""

    lo: float = -math.inf
    hi: float = math.inf
    text: str = ""

    def holds(self, measured: float) -> bool:
        return self.lo <= measured <= self.hi

    def __str__(self) -> str:
        return self.text


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def between(lo: float, hi: float) -> Rule:
    """Measured value in the closed interval [lo, hi]."""
    return Rule(lo, hi, f"in [{_fmt(lo)}, {_fmt(hi)}]")


def within(target: float, rel: float) -> Rule:
    """Measured value within ``rel`` (relative) of ``target``: ``|m - target| <= rel * |target|``."""
    half = abs(target) * rel
    return Rule(target - half, target + half, f"within {rel:.0%} of {_fmt(target)}")


def at_least(lo: float) -> Rule:
    return Rule(lo, math.inf, f">= {_fmt(lo)}")


def at_most(hi: float) -> Rule:
    return Rule(-math.inf, hi, f"<= {_fmt(hi)}")


@dataclass
class Claim:
    """One claim of a paper, measured and judged."""

    id: str
    statement: str
    paper: str
    source: str
    measured: float | None
    rule: str
    verdict: str
    reason: str = ""
    detail: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")


def judge(measured: float | None, rule: Rule) -> tuple[str, str]:
    """Verdict and reason for a measured value under a rule.

    A missing or non-finite measurement (a diverged run, a window with no data) is ``inconclusive``.
    """
    if measured is None or not math.isfinite(measured):
        return "inconclusive", "no finite measurement"
    if rule.holds(measured):
        return "replicated", ""
    return "not replicated", f"measured {_fmt(measured)} is not {rule}"


@dataclass
class ClaimSet:
    """The claims of one chapter, in the order they were recorded."""

    chapter: str
    claims: list[Claim] = field(default_factory=list)

    def record(
        self,
        id: str,
        statement: str,
        *,
        paper: float | str,
        source: str,
        measured: float | None,
        rule: Rule,
        detail: str = "",
        why: str = "",
    ) -> Claim:
        """Judge ``measured`` against ``rule`` and keep the claim.

        ``paper`` is the paper's value (a number or a short phrase), ``source`` the figure or table it
        comes from, ``detail`` the spread or the per-run values, ``why`` the measured explanation added to
        the reason when the claim is not replicated or inconclusive.
        """
        if any(c.id == id for c in self.claims):
            raise ValueError(f"claim id {id!r} recorded twice")
        verdict, reason = judge(measured, rule)
        if verdict != "replicated" and why:
            reason = f"{reason}; {why}" if reason else why
        value = None if measured is None or not math.isfinite(measured) else float(measured)
        claim = Claim(id, statement, _paper_text(paper), source, value, str(rule), verdict, reason, detail)
        self.claims.append(claim)
        return claim

    def counts(self) -> dict[str, int]:
        return {v: sum(c.verdict == v for c in self.claims) for v in VERDICTS}

    def to_dict(self) -> dict:
        return {"chapter": self.chapter, "claims": [asdict(c) for c in self.claims]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def _repr_html_(self) -> str:
        return claims_table_html(self.claims)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {
            MIME_TYPE: self.to_dict(),
            "text/html": self._repr_html_(),
            "text/plain": self.plain_text(),
        }

    def plain_text(self) -> str:
        rows = [
            f"{c.id}: {c.verdict} (measured {_value_text(c.measured)}, rule {c.rule})" for c in self.claims
        ]
        return "\n".join(rows)


def _paper_text(paper: float | str) -> str:
    return _fmt(paper) if isinstance(paper, int | float) else str(paper)


def _value_text(x: float | None) -> str:
    return "n/a" if x is None else _fmt(x)


_BADGE = {"replicated": "#1b7837", "not replicated": "#b2182b", "inconclusive": "#8c6d1f"}


def claims_table_html(claims: Sequence[Claim]) -> str:
    """An HTML table of claims: statement, source, paper's value, measured, rule, verdict, reason."""
    head = ["claim", "statement", "source", "paper", "measured", "rule", "verdict", "reason"]
    out = ['<div style="overflow-x:auto"><table class="optdyn-claims">', "<thead><tr>"]
    out += [f"<th>{h}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for c in claims:
        cells = [c.id, c.statement, c.source, c.paper, _value_text(c.measured), c.rule]
        cells = [html.escape(str(x)) for x in cells]
        if c.detail:
            cells[4] += f"<br><small>{html.escape(c.detail)}</small>"
        verdict = f'<b style="color:{_BADGE[c.verdict]}">{c.verdict}</b>'
        row = cells + [verdict, html.escape(c.reason)]
        out.append("<tr>" + "".join(f"<td>{x}</td>" for x in row) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def load(path) -> ClaimSet:
    """Read a ``<chapter>.claims.json`` file written by the runner."""
    with open(path) as f:
        data = json.load(f)
    return ClaimSet(data["chapter"], [Claim(**c) for c in data["claims"]])
