"""The simplified model of the joint learning-rate/sharpness dynamics (Roulet et al. 2024, Sec. 2.3).

Three variables, after the self-stabilization picture of Damian et al. (2023) and Agarwala et al.: p_t, the
iterate's component along the top Hessian eigenvector; λ_t, the sharpness; η_t, the learning rate; and
y_t = η_t λ_t − 2, the normalized centred sharpness.

    p_{t+1} = −(1 + y_t) p_t                      (GD along the top direction)
    λ_{t+1} = λ_t + η_t (a − b p_{t+1}²)          (progressive sharpening a, cubic self-stabilization b)
    η_{t+1} = η (constant)   or   σ / λ_t          (a tuner that reads the current sharpness)

The paper's exact equations were not available to us; this closure is ours in two places. The sharpness
update uses the new p_{t+1}, not p_t (a symplectic-Euler step: with p_t the constant-η orbits spiral out).
And the tuner sets η_{t+1} from λ_t, the curvature measured at the step, before the step has changed it:
that one-step lag is what lets σ = 2 self-stabilize (y_{t+1} = σ λ_{t+1}/λ_t − 2 > 0 while λ rises, so p
grows and b p² stops λ).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def tuner_model(
    rule: str,
    steps: int = 2000,
    *,
    lr: float = 1.0,
    sigma: float = 2.0,
    a: float = 0.01,
    b: float = 1.0,
    sharpness0: float = 1.0,
    p0: float = 1e-3,
) -> pd.DataFrame:
    """Simulate the model above; ``rule`` is ``"constant"`` (η_t = ``lr``) or ``"tuner"`` (η_{t+1} = σ/λ_t,
    η_0 = σ/λ_0; σ = 1 is the greedy tuner, σ = 2 CDAT on the edge).

    Returns one row per step: step, p, sharpness λ, lr η, y = ηλ − 2. A non-finite state ends the run
    (the last row then holds it).
    """
    if rule not in ("constant", "tuner"):
        raise ValueError(f"tuner_model: rule must be 'constant' or 'tuner', got {rule!r}")
    if steps < 1 or not (lr > 0 and sigma > 0 and a >= 0 and b >= 0 and sharpness0 > 0):
        raise ValueError("tuner_model: need steps >= 1, lr > 0, sigma > 0, a >= 0, b >= 0, sharpness0 > 0")
    p, lam = p0, sharpness0
    eta = lr if rule == "constant" else sigma / lam
    rows = []
    for t in range(steps + 1):
        y = eta * lam - 2
        rows.append((t, p, lam, eta, y))
        if not all(math.isfinite(x) for x in (p, lam, eta)) or t == steps:
            break
        p, lam_prev = -(1 + y) * p, lam
        lam = lam + eta * (a - b * p * p)
        eta = lr if rule == "constant" else sigma / lam_prev
        if lam <= 0:
            lam = float("nan")
    return pd.DataFrame(rows, columns=["step", "p", "sharpness", "lr", "y"])


def model_regimes(steps: int = 2000, sigmas: tuple[float, ...] = (1.0, 2.0, 1.9), **kw) -> pd.DataFrame:
    """The model's regimes: constant η = ``lr`` and the tuner at each σ, stacked, with a ``run`` column."""
    runs = [tuner_model("constant", steps, **kw).assign(run="constant")]
    names = {1.0: "greedy (σ=1)"}
    for s in sigmas:
        runs.append(tuner_model("tuner", steps, sigma=s, **kw).assign(run=names.get(s, f"CDAT σ={s:g}")))
    return pd.concat(runs, ignore_index=True)


def model_summary(frame: pd.DataFrame, fraction: float = 0.5) -> dict[str, float]:
    """Over the last ``fraction`` of a model run (a fixed window): the median of y, the median of λ, and
    λ's growth across the window, the median λ over its last fifth divided by the median over its first
    fifth. Medians, because λ and y oscillate under a constant step (a single sample would pick a phase).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"model_summary: fraction must lie in (0, 1], got {fraction}")
    end = frame["step"].max()
    start = end * (1 - fraction)
    late = frame[frame["step"] >= start]
    fifth = fraction * end / 5
    first = late[late["step"] <= start + fifth]["sharpness"]
    last = late[late["step"] >= end - fifth]["sharpness"]
    return {
        "median_y": float(np.median(late["y"])),
        "median_sharpness": float(np.median(late["sharpness"])),
        "late_growth": float(np.median(last) / np.median(first)),
    }
