"""Summaries of recorded trajectories: when a quantity reaches its threshold, and where it settles."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _with(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``frame`` with ``column`` present (all NaN if no probe recorded it: a run that diverged at once)."""
    return frame if column in frame else frame.assign(**{column: np.nan})


def onset_step(steps: pd.Series, ratio: pd.Series, level: float = 0.9) -> float:
    """First step at which ``ratio`` (quantity / threshold) reaches ``level``; NaN if it never does."""
    reached = np.flatnonzero(ratio.to_numpy() >= level)
    return float(steps.to_numpy()[reached[0]]) if len(reached) else float("nan")


def plateau(
    frame: pd.DataFrame,
    column: str,
    threshold: float,
    fraction: float = 0.4,
    level: float = 0.9,
    min_probes: int = 3,
    last_step: float | None = None,
) -> dict:
    """Median and quartiles of ``column / threshold`` over the last ``fraction`` of the run.

    The window is a fixed fraction of the run, steps ≥ (1 − fraction)·``last_step`` (default: the last
    probed step), never the step where the prediction is reached: a run that settles below the
    prediction shows a low plateau. ``onset`` (first probe with ratio ≥ ``level``) is reported for
    information only. Fewer than ``min_probes`` finite probes in the window give NaN.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    frame = _with(frame, column)
    end = frame["step"].max() if last_step is None else last_step
    finite = frame.dropna(subset=[column])
    ratio = finite[column] / threshold
    onset = onset_step(finite["step"], ratio, level)
    window = ratio[finite["step"] >= (1 - fraction) * end].to_numpy() if len(finite) else np.array([])
    if len(window) < min_probes:
        nan = float("nan")
        return {"onset": onset, "median": nan, "q25": nan, "q75": nan, "n": len(window)}
    q25, median, q75 = np.quantile(window, [0.25, 0.5, 0.75])
    return {"onset": onset, "median": float(median), "q25": float(q25), "q75": float(q75), "n": len(window)}


def late_ratio(frame: pd.DataFrame, column: str, threshold: float, fraction: float = 0.5) -> dict:
    """Median and quartiles of ``column / threshold`` over the last ``fraction`` of the probed steps."""
    frame = _with(frame, column).dropna(subset=[column])
    if frame.empty:
        return {"median": float("nan"), "q25": float("nan"), "q75": float("nan"), "n": 0}
    start = frame["step"].max() * (1 - fraction)
    window = (frame[column] / threshold)[frame["step"] >= start].to_numpy()
    q25, median, q75 = np.quantile(window, [0.25, 0.5, 0.75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "n": len(window)}


def growth(frame: pd.DataFrame, column: str, start: float) -> float:
    """``column`` at the last probe divided by its value at the first probe at or after ``start``."""
    frame = _with(frame, column).dropna(subset=[column])
    after = frame[frame["step"] >= start]
    if not np.isfinite(start) or len(after) < 2:
        return float("nan")
    return float(after[column].iloc[-1] / after[column].iloc[0])


def log_log_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x (−1 for y ∝ 1/x)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation of finite pairs; NaN with fewer than three."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        return float("nan")
    rx, ry = (pd.Series(v[keep]).rank().to_numpy() for v in (x, y))
    return float(np.corrcoef(rx, ry)[0, 1])
