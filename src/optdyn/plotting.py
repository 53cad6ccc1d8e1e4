"""The house plot theme and the figures that recur across chapters."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

#: One colour per method family across the book, from the Okabe–Ito colour-blind-safe palette. A name
#: belongs to the first family whose key it contains (case-insensitive); see :func:`method_colours`.
METHOD_COLOURS: dict[str, str] = {
    "cdat": "#D55E00",
    "greedy": "#009E73",
    "armijo": "#E69F00",
    "polyak": "#CC79A7",
    "adam": "#56B4E9",
    "sam": "#D55E00",
    "sign": "#009E73",
    "constant": "#0072B2",
    "sgd": "#0072B2",
    "gd": "#0072B2",
}
_OTHER_COLOURS = ("#000000", "#F0E442", "#999999", "#882255", "#44AA99")


def use_theme() -> None:
    """One theme for the whole book: white grid, colour-blind palette, legible at page width."""
    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": 11, "legend.fontsize": 9})


def method_family(name: str) -> str | None:
    """The key of :data:`METHOD_COLOURS` that ``name`` belongs to, or None."""
    lowered = name.lower()
    return next((family for family in METHOD_COLOURS if family in lowered), None)


def method_colours(names: list[str]) -> dict[str, str]:
    """Name → colour for a figure's runs: each method family in its book-wide colour; several runs of one
    family (three constant steps, two CDAT scales) in shades of it, from light to the full colour in the
    order given; names of no family in further colours, in order."""
    families: dict[str | None, list[str]] = {}
    for name in dict.fromkeys(names):
        families.setdefault(method_family(name), []).append(name)
    colours = {name: colour for name, colour in zip(families.pop(None, []), _OTHER_COLOURS * 4, strict=False)}
    for family, members in families.items():
        base = to_rgb(METHOD_COLOURS[family])
        for i, name in enumerate(members):
            mix = 0.55 * (len(members) - 1 - i) / max(len(members) - 1, 1)
            colours[name] = to_hex(tuple(c + (1 - c) * mix for c in base))
    return colours


def _runs(frame: pd.DataFrame, by: list[str]):
    for key, run in frame.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        yield ", ".join(_label(k, v) for k, v in zip(by, key, strict=True)), run


def _label(key: str, value) -> str:
    """A legend entry: strings as they are, numbers as key=value."""
    if isinstance(value, str):
        return value
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def curve_with_threshold(
    ax: Axes,
    frame: pd.DataFrame,
    column: str,
    by: list[str],
    *,
    ylabel: str,
    log: bool = False,
    clip_at: float | None = None,
) -> None:
    """``column`` against step, one line per run, each with its own threshold as a dashed line.

    With ``clip_at``, a run that leaves the range ``clip_at`` × the largest threshold (a divergence) is drawn
    up to the edge of that range and marked there with a triangle, so it does not stretch the axis."""
    ceiling = clip_at * frame["threshold"].max() if clip_at is not None else None
    clipped = False
    for (label, run), colour in zip(_runs(frame, by), sns.color_palette(), strict=False):
        run = run.dropna(subset=[column])
        steps, values = run["step"].to_numpy(), run[column].to_numpy()
        if ceiling is not None and (values > ceiling).any():
            first = int((values > ceiling).argmax())
            steps, values = steps[: first + 1], values[: first + 1].clip(max=ceiling)
            ax.plot(steps[-1], ceiling, marker="^", ms=8, color=colour, clip_on=False)
            clipped = True
        ax.plot(steps, values, color=colour, label=label)
        ax.axhline(run["threshold"].iloc[0], color=colour, ls="--", lw=1)
        if pd.notna(run["diverged_at"].iloc[0]):
            ax.axvline(run["diverged_at"].iloc[0], color=colour, ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if clipped:
        ax.set_ylim(top=ceiling)
    ax.legend()


def loss_curves(ax: Axes, frame: pd.DataFrame, by: list[str]) -> None:
    """Training loss (log scale) against step, one line per run."""
    for label, run in _runs(frame, by):
        ax.plot(run["step"], run["loss"], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (1/2n) Σ‖f(x)−y‖²")
    ax.set_yscale("log")
    ax.legend()


def panels(n: int, width: float = 4.6, height: float = 3.4) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` panels, each ``width`` × ``height`` inches, at most two per row so that tick labels
    stay legible at the book's content width (a third panel starts a second row; unused cells are removed)."""
    if n < 1:
        raise ValueError(f"panels: n must be at least 1, got {n}")
    cols, rows = min(n, 2), -(-n // 2)
    size = (width * cols, height * rows)
    fig, grid = plt.subplots(rows, cols, figsize=size, constrained_layout=True, squeeze=False)
    axes = list(grid.flat)
    for spare in axes[n:]:
        spare.remove()
    return fig, axes[:n]


def table(frame: pd.DataFrame, missing: str = "—", digits: int = 4):
    """``frame`` for display: missing values (NaN, None: e.g. 'did not diverge') as ``missing``, floats to
    ``digits`` significant digits, the index hidden. A pandas Styler; the data are not changed."""
    formatter = _significant(frame, digits, missing)
    return frame.style.format(formatter, na_rep=missing, precision=digits).hide(axis="index")


def _significant(frame: pd.DataFrame, digits: int, missing: str) -> dict:
    """Per column a formatter: floats to ``digits`` significant digits, ±inf as ±∞ (a diverged or
    unbounded value), NaN and None as ``missing``; other values as they are."""

    def fmt(x) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return missing
        if isinstance(x, float) and math.isinf(x):
            return "∞" if x > 0 else "−∞"
        return f"{x:.{digits}g}" if isinstance(x, float) else str(x)

    return {c: fmt for c in frame.columns}


_VERDICT_COLOURS = {"replicated": "#1b7837", "not replicated": "#b2182b", "inconclusive": "#8c6d1f"}


def band_position(x: float, lo: float | None, hi: float | None) -> float:
    """Where ``x`` lies relative to a band, on an axis where the band's edges sit at 0 and 1.

    Two-sided band [lo, hi]: (x − lo)/(hi − lo). One-sided band ``≥ lo``: (x − lo)/s, so the edge is at 0
    and the band runs to the right; ``≤ hi``: 1 + (x − hi)/s, edge at 1, band to the left;
    s = ``|edge|`` (1 if the edge is 0).
    """
    if lo is not None and hi is not None:
        return (x - lo) / (hi - lo) if hi > lo else (0.5 if x == lo else (x - lo) / abs(lo or 1) + 0.5)
    if lo is not None:
        return (x - lo) / (abs(lo) or 1.0)
    if hi is not None:
        return 1 + (x - hi) / (abs(hi) or 1.0)
    return 0.5


def interval_vs_band(claims: list[dict], title: str = "") -> Figure:
    """One row per paper claim: the band shaded, the estimate and its 90 % interval over seeds drawn on the
    band's own scale (:func:`band_position`: edges at 0 and 1), coloured by verdict. Points beyond the
    axis are clipped to its edge with an arrow."""
    lim = (-1.5, 2.5)
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(claims) + 1.5))
    for row, c in enumerate(claims):
        lo, hi = c["band"]["lo"], c["band"]["hi"]
        left = 0 if lo is not None else lim[0]
        right = 1 if hi is not None else lim[1]
        ax.barh(row, right - left, left=left, height=0.6, color="#d9ead3", edgecolor="none")
        finite = [v for v in c["values"] if v is not None]
        colour = _VERDICT_COLOURS[c["verdict"]]
        if c.get("interval"):
            a, b = (band_position(v, lo, hi) for v in c["interval"])
            ax.plot([max(a, lim[0]), min(b, lim[1])], [row, row], color=colour, lw=2.5)
        if finite:
            point = band_position(c["estimate"] if c.get("estimate") is not None else finite[0], lo, hi)
            marker = ">" if point > lim[1] else "<" if point < lim[0] else "o"
            ax.plot(min(max(point, lim[0]), lim[1]), row, marker=marker, color=colour, ms=6)
    ax.set_yticks(range(len(claims)), [c["id"] for c in claims], fontsize=8)
    ax.set_ylim(len(claims) - 0.5, -0.5)
    ax.set_xlim(*lim)
    ax.set_xticks([0, 1], ["band edge", "band edge"], fontsize=8)
    ax.set_xlabel("estimate and 90 % interval, on each claim's band scale (band shaded)", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2.5, label=v) for v, c in _VERDICT_COLOURS.items()]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
