"""Claims as data, measured per seed, judged across seeds.

A chapter declares its records once, as a table of :class:`Spec` (in its experiment module, registered
in a commit before its first ``default`` run):

- ``kind="paper"``: a statement the paper makes, with the paper's value and its source, the band that
  counts as agreement, the number of seeds its verdict needs, and optionally a premise (``given``);
- ``kind="check"``: an identity or sanity property of our own code. Checks are shown apart and never
  counted as replications; a check that fails on any seed fails the chapter's test.

One execution of a chapter is one seed. :meth:`ClaimSet.measure` applies every record's measuring
function to the run's data and the chapter displays the set; the runner reads the records from the
executed notebook (mime type :data:`MIME_TYPE`), gathers the seeds of a chapter and calls
:func:`aggregate`, which computes each paper claim's estimate, its 90 % t-interval over seeds and the
three-way verdict of :func:`judge`:

- *replicated* when the interval lies inside the band,
- *not replicated* when it lies wholly outside,
- *inconclusive* when it straddles an edge, when fewer seeds than required gave a finite value, or when
  the premise is not replicated.

A band never depends on the measured spread. A band changed after seeing results carries a
:class:`Change` with the old band and the reason, and the chapter lists it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

#: The output type under which a chapter displays its measured records as JSON.
MIME_TYPE = "application/vnd.optdyn.claims+json"
KINDS = ("paper", "check")
VERDICTS = ("replicated", "not replicated", "inconclusive")
CHECK_VERDICTS = ("holds", "fails")
#: Confidence level of the interval over seeds.
LEVEL = 0.90
INTERVAL_METHOD = "90 % t-interval over seeds: mean ± t(0.95, n−1)·s/√n"


# ---------------------------------------------------------------------------------------------- bands


@dataclass(frozen=True)
class Band:
    """The values that count as agreement: ``lo <= x <= hi`` (either side may be open)."""

    lo: float = -math.inf
    hi: float = math.inf

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def __str__(self) -> str:
        if math.isinf(self.lo) and math.isinf(self.hi):
            return "any value"
        if math.isinf(self.lo):
            return f"≤ {_fmt(self.hi)}"
        if math.isinf(self.hi):
            return f"≥ {_fmt(self.lo)}"
        return f"[{_fmt(self.lo)}, {_fmt(self.hi)}]"

    def to_dict(self) -> dict:
        return {"lo": _json_float(self.lo), "hi": _json_float(self.hi), "text": str(self)}

    @classmethod
    def from_dict(cls, d: Mapping) -> Band:
        return cls(_from_json_float(d["lo"], -math.inf), _from_json_float(d["hi"], math.inf))


def between(lo: float, hi: float) -> Band:
    """The closed interval [lo, hi]."""
    if not lo <= hi:
        raise ValueError(f"band [{lo}, {hi}] is empty")
    return Band(lo, hi)


def within(target: float, rel: float) -> Band:
    """``|x − target| ≤ rel·|target|``."""
    half = abs(target) * rel
    return Band(target - half, target + half)


def at_least(lo: float) -> Band:
    return Band(lo, math.inf)


def at_most(hi: float) -> Band:
    return Band(-math.inf, hi)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _json_float(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else float(x)


def _from_json_float(x: float | None, default: float) -> float:
    return default if x is None else float(x)


# ---------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Change:
    """A band changed after seeing results: the band before, and why it was changed."""

    old: Band
    reason: str


@dataclass(frozen=True)
class Measurement:
    """What a measuring function returns when it has more to say than the number: ``detail`` is shown
    beside the value (per-run values, quartiles), ``why`` explains a non-finite value."""

    value: float | None
    detail: str = ""
    why: str = ""


Measure = Callable[[Mapping[str, Any]], "float | Measurement | None"]


@dataclass(frozen=True)
class Spec:
    """One record of a chapter's claims table.

    ``measure`` maps the run's data (a mapping of the chapter's experiment results) to a number or a
    :class:`Measurement`. ``seeds`` is how many seeds with a finite value a paper claim's verdict needs;
    ``given`` names a paper claim that must be replicated for this one to be judged.
    """

    id: str
    kind: str
    statement: str
    band: Band
    measure: Measure
    paper: str = ""
    source: str = ""
    seeds: int = 3
    given: str | None = None
    changed: tuple[Change, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == "paper" and not (self.paper and self.source):
            raise ValueError(f"{self.id}: a paper claim needs the paper's value and its source")
        if self.seeds < 1:
            raise ValueError(f"{self.id}: seeds must be at least 1")


def paper_claim(
    id: str,
    statement: str,
    *,
    paper: float | str,
    source: str,
    band: Band,
    measure: Measure,
    seeds: int = 3,
    given: str | None = None,
    changed: Sequence[Change] = (),
) -> Spec:
    """A statement the paper makes, judged against ``band`` over ``seeds`` seeds."""
    return Spec(
        id, "paper", statement, band, measure, _paper_text(paper), source, seeds, given, tuple(changed)
    )


def check(id: str, statement: str, *, band: Band, measure: Measure) -> Spec:
    """An identity or sanity property of our own code: it must hold on every seed."""
    return Spec(id, "check", statement, band, measure, seeds=1)


def _paper_text(paper: float | str) -> str:
    return _fmt(paper) if isinstance(paper, int | float) else str(paper)


def validate(specs: Sequence[Spec]) -> None:
    """Unique ids, premises that name an earlier paper claim; raises ValueError."""
    seen: dict[str, Spec] = {}
    for spec in specs:
        if spec.id in seen:
            raise ValueError(f"claim id {spec.id!r} declared twice")
        if spec.given is not None:
            premise = seen.get(spec.given)
            if premise is None or premise.kind != "paper":
                raise ValueError(f"{spec.id}: premise {spec.given!r} is not an earlier paper claim")
        seen[spec.id] = spec


# ------------------------------------------------------------------------------------- one seed's run


@dataclass
class Record:
    """A spec measured on one seed."""

    id: str
    kind: str
    statement: str
    paper: str
    source: str
    band: Band
    seeds: int
    given: str | None
    changed: tuple[Change, ...]
    value: float | None
    detail: str = ""
    why: str = ""

    @property
    def inside(self) -> bool | None:
        return None if self.value is None else self.band.contains(self.value)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "paper": self.paper,
            "source": self.source,
            "band": self.band.to_dict(),
            "seeds_required": self.seeds,
            "given": self.given,
            "changed": [{"old": c.old.to_dict(), "reason": c.reason} for c in self.changed],
            "value": self.value,
            "detail": self.detail,
            "why": self.why,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Record:
        changed = tuple(Change(Band.from_dict(c["old"]), c["reason"]) for c in d.get("changed", []))
        return cls(
            d["id"],
            d["kind"],
            d["statement"],
            d["paper"],
            d["source"],
            Band.from_dict(d["band"]),
            int(d["seeds_required"]),
            d.get("given"),
            changed,
            d["value"],
            d.get("detail", ""),
            d.get("why", ""),
        )


def _finite_or_none(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def measure_one(spec: Spec, data: Mapping[str, Any]) -> Record:
    """Apply ``spec.measure`` to ``data``; a non-finite result is kept as ``None`` with its reason."""
    result = spec.measure(data)
    m = result if isinstance(result, Measurement) else Measurement(result)
    value = _finite_or_none(m.value)
    why = m.why or ("" if value is not None else "no finite measurement")
    return Record(
        spec.id,
        spec.kind,
        spec.statement,
        spec.paper,
        spec.source,
        spec.band,
        spec.seeds,
        spec.given,
        spec.changed,
        value,
        m.detail,
        why,
    )


@dataclass
class ClaimSet:
    """The records of one chapter measured on one seed, displayed at the end of the chapter."""

    chapter: str
    seed: int
    profile: str
    records: list[Record] = field(default_factory=list)

    @classmethod
    def measure(
        cls, chapter: str, specs: Sequence[Spec], data: Mapping[str, Any], *, seed: int, profile: str
    ) -> ClaimSet:
        """Every spec measured on ``data`` (one seed's results)."""
        validate(specs)
        return cls(chapter, seed, profile, [measure_one(s, data) for s in specs])

    def paper(self) -> list[Record]:
        return [r for r in self.records if r.kind == "paper"]

    def checks(self) -> list[Record]:
        return [r for r in self.records if r.kind == "check"]

    def failed_checks(self) -> list[Record]:
        return [r for r in self.checks() if not r.inside]

    def to_dict(self) -> dict:
        return {
            "chapter": self.chapter,
            "seed": self.seed,
            "profile": self.profile,
            "records": [r.to_dict() for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> ClaimSet:
        return cls(d["chapter"], d["seed"], d["profile"], [Record.from_dict(r) for r in d["records"]])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def _repr_html_(self) -> str:
        return seed_tables_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {MIME_TYPE: self.to_dict(), "text/html": self._repr_html_(), "text/plain": self.plain_text()}

    def plain_text(self) -> str:
        return "\n".join(
            f"{r.kind} {r.id}: {_value_text(r.value)} (band {r.band}, seed {self.seed})" for r in self.records
        )


def _value_text(x: float | None) -> str:
    return "—" if x is None else _fmt(x)


# ------------------------------------------------------------------------------- across seeds: verdicts


@dataclass(frozen=True)
class Interval:
    """Mean of the finite per-seed values and its two-sided t-interval at :data:`LEVEL`."""

    estimate: float
    lo: float
    hi: float
    n: int


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """``mean ± t_{(1+level)/2, n−1} · s/√n`` over the finite values (s the sample standard deviation).

    One finite value gives a zero-width interval only when ``level`` allows no spread; here it gives
    None: one seed says nothing about the spread. Identical values give a zero-width interval.
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) < 2:
        return None
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half, len(x))


def judge(
    values: Sequence[float | None], band: Band, seeds_required: int, premise: str | None = None
) -> tuple[str, str, Interval | None]:
    """Three-way verdict of a paper claim from its per-seed values (see the module's docstring).

    ``premise`` is the verdict of the claim's premise, if it has one. Returns (verdict, reason,
    interval).
    """
    finite = [v for v in values if v is not None and math.isfinite(v)]
    interval = t_interval(finite)
    if premise is not None and premise != "replicated":
        return "inconclusive", f"premise failed (it is {premise})", interval
    if len(finite) < max(seeds_required, 2):
        need = max(seeds_required, 2)
        return "inconclusive", f"{len(finite)} of {len(values)} seeds finite; {need} needed", interval
    assert interval is not None
    if band.lo <= interval.lo and interval.hi <= band.hi:
        return "replicated", "", interval
    if interval.hi < band.lo or interval.lo > band.hi:
        side = "below" if interval.hi < band.lo else "above"
        return "not replicated", f"interval {_interval_text(interval)} lies {side} the band {band}", interval
    return "inconclusive", f"interval {_interval_text(interval)} straddles the band {band}", interval


def _interval_text(i: Interval | None) -> str:
    return "—" if i is None else f"[{_fmt(i.lo)}, {_fmt(i.hi)}]"


def aggregate(runs: Sequence[ClaimSet]) -> dict:
    """The chapter's verdicts over its seeds: one entry per paper claim and per check.

    Every run must carry the same records (same ids, bands, seeds) in the same order.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    first = runs[0]
    for run in runs[1:]:
        if [r.to_dict() | _noise(r) for r in run.records] != [r.to_dict() | _noise(r) for r in first.records]:
            raise ValueError(
                f"{first.chapter}: seed {run.seed} declares different claims than seed {first.seed}"
            )
    seeds = [run.seed for run in runs]
    by_id = {r.id: [run.records[i] for run in runs] for i, r in enumerate(first.records)}
    verdicts: dict[str, str] = {}
    claims, checks = [], []
    for rid, recs in by_id.items():
        spec = recs[0]
        values = [r.value for r in recs]
        entry = spec.to_dict() | {
            "seeds": seeds,
            "values": values,
            "details": [r.detail for r in recs],
            "whys": [r.why for r in recs],
        }
        for key in ("value", "detail", "why"):
            entry.pop(key)
        if spec.kind == "check":
            failed = [s for s, r in zip(seeds, recs, strict=True) if not r.inside]
            entry["verdict"] = "fails" if failed else "holds"
            entry["reason"] = _check_reason(failed, recs, seeds)
            checks.append(entry)
            continue
        premise = verdicts.get(spec.given) if spec.given else None
        verdict, reason, interval = judge(values, spec.band, spec.seeds, premise)
        whys = sorted({w for w in entry["whys"] if w})
        if verdict != "replicated" and whys:
            reason = "; ".join([reason, *whys]) if reason else "; ".join(whys)
        verdicts[rid] = verdict
        entry |= {"verdict": verdict, "reason": reason}
        entry |= _interval_dict(interval)
        claims.append(entry)
    return {
        "chapter": first.chapter,
        "profile": first.profile,
        "seeds": seeds,
        "interval_method": INTERVAL_METHOD,
        "claims": claims,
        "checks": checks,
    }


def _noise(record: Record) -> dict:
    """The per-seed fields, blanked for comparing two seeds' declarations."""
    return {"value": None, "detail": "", "why": ""}


def _check_reason(failed: list[int], recs: Sequence[Record], seeds: list[int]) -> str:
    if not failed:
        return ""
    values = {s: r.value for s, r in zip(seeds, recs, strict=True)}
    return "; ".join(f"seed {s}: {_value_text(values[s])} not in {recs[0].band}" for s in failed)


def _interval_dict(interval: Interval | None) -> dict:
    if interval is None:
        return {"estimate": None, "interval": None, "n_finite": 0}
    return {"estimate": interval.estimate, "interval": [interval.lo, interval.hi], "n_finite": interval.n}


def counts(summary: Mapping) -> dict[str, int]:
    """Verdict counts of an :func:`aggregate` summary: paper claims by verdict, checks by result."""
    out = {v: sum(c["verdict"] == v for c in summary["claims"]) for v in VERDICTS}
    out |= {v: sum(c["verdict"] == v for c in summary["checks"]) for v in CHECK_VERDICTS}
    return out


def load(path) -> dict:
    """An aggregated ``<chapter>.claims.json`` written by the runner."""
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ValueError(f"{path}: not a claims summary")
    data.setdefault("checks", [])
    return data


# -------------------------------------------------------------------------------------------- tables

_BADGE = {
    "replicated": "#1b7837",
    "not replicated": "#b2182b",
    "inconclusive": "#8c6d1f",
    "holds": "#1b7837",
    "fails": "#b2182b",
}


def badge(verdict: str) -> str:
    """A verdict as a coloured HTML badge."""
    colour = _BADGE.get(verdict, "#555")
    return (
        f'<span class="optdyn-verdict" style="background:{colour};color:#fff;padding:0 .4em;'
        f'border-radius:.3em;white-space:nowrap">{html.escape(verdict)}</span>'
    )


def _esc(x: object) -> str:
    return html.escape(str(x))


def _changed_text(changed: Sequence[Mapping]) -> str:
    return "; ".join(f"band changed after looking, was {c['old']['text']}: {c['reason']}" for c in changed)


def seed_tables_html(cs: ClaimSet) -> str:
    """This seed's values: paper claims (value, band, inside?) and checks (value, band, holds?).

    The verdicts over seeds are the runner's "across seeds" table (:func:`summary_tables_html`).
    """
    out = [
        f"<p><b>Paper claims, seed {cs.seed}</b> (profile <code>{_esc(cs.profile)}</code>). One seed "
        "is one execution; verdicts need the seeds listed and come from the interval over seeds.</p>",
        _table(
            ["claim", "statement", "paper", "source", "this seed", "band", "seeds needed"],
            [
                [
                    r.id,
                    r.statement + (f" (given {r.given})" if r.given else ""),
                    r.paper,
                    r.source,
                    _seed_value(r),
                    str(r.band) + _changed_note(r),
                    str(r.seeds),
                ]
                for r in cs.paper()
            ],
            raw_cols={4, 5},
        ),
    ]
    if cs.checks():
        out += [
            "<p><b>Checks of our own code</b> (never counted as replications)</p>",
            _table(
                ["result", "check", "statement", "value", "band"],
                [
                    [badge("holds" if r.inside else "fails"), r.id, r.statement, _seed_value(r), str(r.band)]
                    for r in cs.checks()
                ],
                raw_cols={0, 3},
            ),
        ]
    return "".join(out)


def _changed_note(r: Record) -> str:
    if not r.changed:
        return ""
    text = "; ".join(f"was {c.old}: {c.reason}" for c in r.changed)
    return f"<br><small>changed after looking ({_esc(text)})</small>"


def _seed_value(r: Record) -> str:
    text = _esc(_value_text(r.value))
    if r.value is None and r.why:
        text += f"<br><small>{_esc(r.why)}</small>"
    elif r.detail:
        text += f"<br><small>{_esc(r.detail)}</small>"
    return text


def _table(head: list[str], rows: list[list[str]], raw_cols: set[int] = frozenset()) -> str:
    cells = "".join(f"<th>{_esc(h)}</th>" for h in head)
    body = []
    for row in rows:
        tds = "".join(f"<td>{x if i in raw_cols else _esc(x)}</td>" for i, x in enumerate(row))
        body.append(f"<tr>{tds}</tr>")
    return (
        f'<div class="optdyn-table-wrap"><table class="optdyn-claims"><thead><tr>{cells}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def estimate_text(entry: Mapping) -> str:
    """``estimate [lo, hi]`` of an aggregated claim, or the single finite value with its seed count."""
    if entry.get("interval"):
        lo, hi = entry["interval"]
        return f"{_fmt(entry['estimate'])} [{_fmt(lo)}, {_fmt(hi)}]"
    finite = [v for v in entry["values"] if v is not None]
    if len(finite) == 1:
        return f"{_fmt(finite[0])} (1 seed)"
    return "—"


def summary_tables_html(summary: Mapping) -> str:
    """The verdicts over seeds: per paper claim the per-seed values, the estimate with its interval,
    the band and the verdict (reason on its own row); the checks apart."""
    seeds = summary["seeds"]
    rows = []
    for c in summary["claims"]:
        per_seed = ", ".join(_value_text(v) for v in c["values"])
        band = _esc(c["band"]["text"])
        if c.get("changed"):
            band += f"<br><small>{_esc(_changed_text(c['changed']))}</small>"
        rows.append(
            f"<tr><td>{badge(c['verdict'])}</td><td><code>{_esc(c['id'])}</code><br>{_esc(c['statement'])}"
            f"</td><td>{_esc(c['paper'])}<br><small>{_esc(c['source'])}</small></td>"
            f'<td class="optdyn-estimate">{_esc(estimate_text(c))}<br><small>seeds: {_esc(per_seed)}</small>'
            f'</td><td class="optdyn-band">{band}</td></tr>'
        )
        if c["reason"]:
            rows.append(
                f'<tr class="optdyn-reason"><td colspan="5"><small>{_esc(c["reason"])}</small></td></tr>'
            )
    head = "".join(f"<th>{h}</th>" for h in ("verdict", "claim", "paper", "estimate [90 % interval]", "band"))
    out = [
        f"<p>Seeds {_esc(', '.join(map(str, seeds)))}; {_esc(summary['interval_method'])}.</p>",
        f'<div class="optdyn-table-wrap"><table class="optdyn-claims optdyn-across"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>",
    ]
    if summary["checks"]:
        check_rows = [
            [
                badge(c["verdict"]),
                c["id"],
                c["statement"],
                ", ".join(_value_text(v) for v in c["values"]),
                c["band"]["text"],
            ]
            for c in summary["checks"]
        ]
        out.append("<p><b>Checks of our own code</b> (all seeds; never counted as replications)</p>")
        out.append(_table(["result", "check", "statement", "values", "band"], check_rows, raw_cols={0}))
    return "".join(out)
