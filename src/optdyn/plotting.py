"""The house plot theme and the figures that recur across chapters."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def use_theme() -> None:
    """One theme for the whole book: white grid, colour-blind palette, legible at page width."""
    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": 11, "legend.fontsize": 9})


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
    ax: Axes, frame: pd.DataFrame, column: str, by: list[str], *, ylabel: str, log: bool = False
) -> None:
    """``column`` against step, one line per run, each with its own threshold as a dashed line."""
    for (label, run), colour in zip(_runs(frame, by), sns.color_palette(), strict=False):
        run = run.dropna(subset=[column])
        ax.plot(run["step"], run[column], color=colour, label=label)
        ax.axhline(run["threshold"].iloc[0], color=colour, ls="--", lw=1)
        if pd.notna(run["diverged_at"].iloc[0]):
            ax.axvline(run["diverged_at"].iloc[0], color=colour, ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend()


def loss_curves(ax: Axes, frame: pd.DataFrame, by: list[str]) -> None:
    """Training loss (log scale) against step, one line per run."""
    for label, run in _runs(frame, by):
        ax.plot(run["step"], run["loss"], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (1/2n) Σ‖f(x)−y‖²")
    ax.set_yscale("log")
    ax.legend()


def panels(n: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), constrained_layout=True)
    return fig, list(axes) if n > 1 else [axes]


def table(frame: pd.DataFrame, missing: str = "—", digits: int = 4):
    """``frame`` for display: missing values (NaN, None: e.g. 'did not diverge') as ``missing``, floats to
    ``digits`` significant digits, the index hidden. A pandas Styler; the data are not changed."""
    formatter = _significant(frame, digits, missing)
    return frame.style.format(formatter, na_rep=missing, precision=digits).hide(axis="index")


def _significant(frame: pd.DataFrame, digits: int, missing: str) -> dict:
    def fmt(x) -> str:
        return missing if pd.isna(x) else f"{x:.{digits}g}"

    return {c: fmt for c in frame.columns if pd.api.types.is_float_dtype(frame[c])}
