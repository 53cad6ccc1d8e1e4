"""Protocol of Agarwala, Pedregosa & Pennington (2023), "Second-order regression models exhibit progressive
sharpening to the edge of stability", at CPU scale.

Two experiments, both with full-batch GD on L = ½‖z‖² (no 1/D factor: the edge is η λ_max(J Jᵀ) = 2):

- the two-parameter model reduced to its exact two-variable map in (u, s) = (ηωz, ηλ) with c = ηωz_c
  conserved (:mod:`optdyn.theory.second_order`): starts near the saddle (s0 ∈ :data:`SADDLE_S0`, u0 = c +
  (s0/2) cos 2φ with the angle φ drawn from the seed) for every c of :data:`SADDLE_C`, and starts just past
  the edge (s0 = 2 + y0, small u0, drawn from the seed) for every c of :data:`EDGE_C`;
- random second-order models (:func:`optdyn.models.second_order_regression`, D outputs, P parameters) at
  every quadratic scale q of :data:`QS` (q = 0 is the linearized model of the same instance), ``draws``
  instances per seed, η = :data:`S0`/λ_max(J₀J₀ᵀ); and the same instances at η = :data:`S0_ABOVE`/λ_max for
  q ∈ :data:`QS_ABOVE`. The NTK eigenvalue is exact (eigvalsh of the D × D matrix J Jᵀ) at every step; the
  loss Hessian's top eigenvalue comes from Lanczos on Hessian-vector products
  (:func:`optdyn.curvature.sharpness`) at a few probe steps of the first instance.

One execution of the chapter is one seed. ``CLAIMS`` declares the paper claims and the checks of our code.
Windows are fixed fractions of the run: s_∞ is the mean of s over the last :data:`FINAL` of the steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .. import claims, curvature, plotting, theory
from ..models import SecondOrderRegression, ntk_top_eigenvalue, second_order_regression, two_parameter_model
from .profiles import profile_config

#: c = ηωz_c of the saddle starts; c > 1 has no stable minimum (every zero-loss point has s ≥ ``2|c|`` > 2).
SADDLE_C = (0.3, 0.5, 0.7, 0.9, 0.95, 1.0, 1.1)
#: s0 = ηλ0 of the saddle starts (small: the start is near the saddle, where the NTK vanishes).
SADDLE_S0 = (0.05, 0.2)
#: c of the starts just past the edge, three starts each with y0 = s0 − 2 ~ U(0, 0.1), u0 ~ U(−0.05, 0.05).
EDGE_C = (0.3, 0.5, 0.7, 0.9)
#: Starts past the edge per c.
EDGE_STARTS = 3
#: c at which the small-amplitude prediction s_∞ = 2 − √E is checked (its range of validity is ours to state).
NORMAL_FORM_C = (0.3, 0.5)
#: Quadratic scales of the random models; q = 0 is the linearized (constant-NTK) model.
QS = (0.0, 0.5, 1.0, 1.5, 2.0)
#: η λ_max(J₀J₀ᵀ) of the random models' runs.
S0 = 0.5
#: η λ_max(J₀J₀ᵀ) of the runs started past the edge …
S0_ABOVE = 2.2
#: … and the q at which they run.
QS_ABOVE = (0.0, 1.0)
#: The q whose converged draws are judged for the edge of stability.
Q_EDGE = 1.0
#: s_∞: mean over the last 10 % of the steps.
FINAL = 0.1
#: A run diverged when its loss is non-finite or exceeds this multiple of its initial loss.
BLOW_UP = 1e6
#: Converged: ``|u_T| + |u_{T−1}|`` (reduced map) or ‖z_T‖ (random models) below this.
CONVERGED = 1e-8

PROFILES: dict[str, dict] = {
    "quick": dict(map_steps=5000, outputs=10, params=64, draws=4, steps=3000, probes=6),
    "default": dict(map_steps=20000, outputs=10, params=64, draws=10, steps=10000, probes=12),
    "full": dict(map_steps=100000, outputs=50, params=300, draws=50, steps=50000, probes=20),
}


def config(profile: str) -> dict:
    """Map steps; outputs D, parameters P, instances per q, GD steps, Hessian probes of the random models."""
    return profile_config(PROFILES, profile)


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 1000:
        raise ValueError(f"seed must lie in [0, 1000), got {seed}")


# ------------------------------------------------------------------------------ two-parameter model


def _final_mean(x: np.ndarray) -> float:
    tail = x[-max(1, int(FINAL * len(x))) :]
    return float(np.mean(tail)) if np.all(np.isfinite(tail)) else math.nan


def _summarise_map(u: np.ndarray, s: np.ndarray, c: float) -> dict:
    """s_∞, max s, convergence, first crossing of s = 2 and the share of sign flips of u after it."""
    finite = bool(np.all(np.isfinite(s)))
    crossing = np.flatnonzero(s > 2)
    first = int(crossing[0]) if len(crossing) else -1
    flips = math.nan
    if first >= 0:
        after = u[first:]
        after = after[np.isfinite(after) & (np.abs(after) > 1e-10)]
        if len(after) > 1:
            flips = float(np.mean(np.sign(after[1:]) != np.sign(after[:-1])))
    loss = 0.5 * u**2
    return dict(
        s_max=float(np.nanmax(s)),
        s_final=_final_mean(s),
        converged=finite and abs(u[-1]) + abs(u[-2]) < CONVERGED,
        diverged=not finite,
        crossed_at=first,
        flip_share=flips,
        loss_rises=int(np.sum(np.diff(loss[np.isfinite(loss)]) > 0)),
        flattest=theory.flattest_sharpness(c),
    )


def _keep(steps: int) -> np.ndarray:
    """Steps stored for the figures: every step up to 2,000, then pairs (t, t + 1) with t a multiple of
    10, so that a period-two oscillation stays visible."""
    t = np.arange(steps + 1)
    return t[(t < 2000) | (t % 10 <= 1) | (t == steps)]


def two_parameter(profile: str, seed: int) -> dict[str, pd.DataFrame]:
    """The reduced map from the saddle starts and the starts past the edge (see the module text).

    Returns ``summary`` (one row per start: kind, c, s0, u0, s_max, s_final, converged, crossing step, share
    of sign flips of u after it, loss rises, flattest 2·abs(c), the normal-form prediction for edge
    starts) and ``curves`` (u_t, s_t at every step up to 2,000, then every 10th and the one after).
    """
    _check_seed(seed)
    steps = config(profile)["map_steps"]
    rng = np.random.default_rng(seed)
    starts = []
    for c in SADDLE_C:
        for s0 in SADDLE_S0:
            starts.append(("saddle", c, c + 0.5 * s0 * math.cos(2 * rng.uniform(0, math.pi)), s0))
    for c in EDGE_C:
        for _ in range(EDGE_STARTS):
            u0, y0 = rng.uniform(-0.05, 0.05), rng.uniform(0.0, 0.1)
            starts.append(("edge", c, u0, 2.0 + y0))
    rows, curves, keep = [], [], _keep(steps)
    for i, (kind, c, u0, s0) in enumerate(starts):
        u, s = theory.reduced_map(u0, s0, c, steps)
        predicted = theory.normal_form_limit(u0, s0, c) if kind == "edge" else math.nan
        rows.append(
            dict(start=i, kind=kind, c=c, u0=u0, s0=s0, predicted=predicted, **_summarise_map(u, s, c))
        )
        curves.append(pd.DataFrame(dict(start=i, kind=kind, c=c, s0=s0, step=keep, u=u[keep], s=s[keep])))
    return dict(summary=pd.DataFrame(rows), curves=pd.concat(curves, ignore_index=True))


def reduced_map_error(seed: int, steps: int = 200) -> float:
    """Largest abs(Δu) + abs(Δs) between the reduced map and GD on the two parameters of a random
    instance (ω, g, z0
    and the rotation of Q drawn from the seed; η so that the start has s0 = 0.5): a check of the reduction."""
    rng = np.random.default_rng(10_000 + seed)
    omega, g, z0, angle = rng.uniform(0.5, 2), rng.normal(size=2), rng.normal(), rng.uniform(0, math.pi)
    model = two_parameter_model(omega, g, z0, angle)
    theta = torch.zeros(2, dtype=torch.float64)
    J0 = model.jacobian(theta)[0]
    lr = 0.5 / float(J0 @ J0)
    z_c = theory.saddle_value(z0, g, model.Q[0].numpy())
    u0, s0, c = theory.reduced_variables(float(model.residual(theta)[0]), float(J0 @ J0), z_c, omega, lr)
    us, ss = theory.reduced_map(u0, s0, c, steps)
    worst = 0.0
    for t in range(steps + 1):
        z, J = model.residual(theta)[0], model.jacobian(theta)[0]
        u, s, _ = theory.reduced_variables(float(z), float(J @ J), z_c, omega, lr)
        worst = max(worst, abs(u - us[t]) + abs(s - ss[t]))
        theta = theta - lr * z * J
    return worst


# --------------------------------------------------------------------------- random high-D models


def simulate(
    model: SecondOrderRegression, s0: float, steps: int, probe_steps: tuple[int, ...] = ()
) -> dict[str, Any]:
    """GD with η = s0/λ_max(J₀J₀ᵀ) from θ = 0, iterated in function space
    (:meth:`optdyn.models.SecondOrderRegression.gd_step`) with θ tracked beside it.

    Returns ``lr``; arrays ``s`` (η λ_max(J_t J_tᵀ)) and ``loss`` (½‖z_t‖²) for t = 0 … steps (NaN after a
    divergence); ``diverged_at`` (None if it did not); ``hessian`` ({step: η λ_max(∇²L(θ_t))} by Lanczos at
    ``probe_steps``); ``mismatch`` (max abs(z_T − z(θ_T)) + max abs(J_T − J(θ_T)) at the end, finite
    runs only).
    """
    z, J = model.z0.clone(), model.G.T.clone()
    lr = s0 / ntk_top_eigenvalue(J)
    theta = torch.zeros(model.params, dtype=torch.float64)
    s = np.full(steps + 1, np.nan)
    loss = np.full(steps + 1, np.nan)
    hessian, diverged = {}, None
    limit = BLOW_UP * max(0.5 * float(z @ z), 1e-300)
    for t in range(steps + 1):
        loss_t = 0.5 * float(z @ z)
        if not loss_t <= limit:
            diverged = t
            break
        loss[t], s[t] = loss_t, lr * ntk_top_eigenvalue(J)
        if t in probe_steps:
            p = theta.clone().requires_grad_(True)
            hessian[t] = lr * curvature.sharpness(lambda p=p: model.loss(p), [p], tol=1e-6)
        if t == steps:
            break
        theta = theta - lr * (J.T @ z)
        z, J = model.gd_step(z, J, lr)
    mismatch = math.nan
    if diverged is None:
        with torch.no_grad():
            mismatch = float(
                (z - model.residual(theta)).abs().max() + (J - model.jacobian(theta)).abs().max()
            )
    return dict(lr=lr, s=s, loss=loss, diverged_at=diverged, hessian=hessian, mismatch=mismatch)


def _instance(cfg: dict, q: float, seed: int, draw: int) -> SecondOrderRegression:
    return second_order_regression(cfg["outputs"], cfg["params"], q, seed=1000 * seed + draw)


def _run_row(run: dict, q: float, s0: float, draw: int) -> dict:
    s, loss = run["s"], run["loss"]
    finite = run["diverged_at"] is None
    crossing = np.flatnonzero(s > 2)
    return dict(
        q=q,
        s0=s0,
        draw=draw,
        lr=run["lr"],
        diverged=not finite,
        diverged_at=math.nan if finite else run["diverged_at"],
        s_max=float(np.nanmax(s)),
        s_final=_final_mean(s) if finite else math.nan,
        s_change=float(np.nanmax(np.abs(s - s[0]))) if finite else math.nan,
        loss_ratio=float(loss[-1] / loss[0]) if finite else math.nan,
        converged=finite and math.sqrt(2 * loss[-1]) < CONVERGED,
        crossed_at=int(crossing[0]) if len(crossing) else -1,
        loss_rises=int(np.sum(np.diff(loss[np.isfinite(loss)]) > 0)),
        mismatch=run["mismatch"],
    )


def random_models(profile: str, seed: int) -> dict[str, pd.DataFrame]:
    """GD on ``draws`` random instances at every q of :data:`QS` (s0 = :data:`S0`) and of :data:`QS_ABOVE`
    (s0 = :data:`S0_ABOVE`); instance k of seed σ is drawn from 1000σ + k, the same G and z0 at every q.

    Returns ``runs`` (one row per run: q, s0, draw, η, divergence, s_max, s_final, largest abs(s_t −
    s_0), loss
    ratio, convergence, first crossing of 2, loss rises, function-space/parameter mismatch), ``curves``
    (s_t and loss_t of every run at s0 = :data:`S0`; every step up to 2,000, then every 10th and the one
    after) and ``probes``
    (η λ_max of the loss Hessian beside the NTK's at the probe steps of draw 0 at each q).
    """
    _check_seed(seed)
    cfg = config(profile)
    steps = cfg["steps"]
    probe_steps = tuple(int(x) for x in np.linspace(0, steps, cfg["probes"]))
    rows, curves, probes, keep = [], [], [], _keep(steps)
    for s0, qs in ((S0, QS), (S0_ABOVE, QS_ABOVE)):
        for q in qs:
            for draw in range(cfg["draws"]):
                asked = probe_steps if (draw == 0 and s0 == S0) else ()
                run = simulate(_instance(cfg, q, seed, draw), s0, steps, asked)
                rows.append(_run_row(run, q, s0, draw))
                if s0 == S0:
                    curves.append(
                        pd.DataFrame(
                            dict(q=q, draw=draw, step=keep, s=run["s"][keep], loss=run["loss"][keep])
                        )
                    )
                for t, h in run["hessian"].items():
                    probes.append(
                        dict(q=q, step=t, hessian=h, ntk=float(run["s"][t]), loss=float(run["loss"][t]))
                    )
    return dict(
        runs=pd.DataFrame(rows), curves=pd.concat(curves, ignore_index=True), probes=pd.DataFrame(probes)
    )


def by_scale(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (s0, q): draws, share diverged, and over the converged draws the median s_max, s_final and rise
    s_max − s0."""
    rows = []
    for (s0, q), g in runs.groupby(["s0", "q"]):
        ok = g[g["converged"]]
        rows.append(
            dict(
                s0=s0,
                q=q,
                draws=len(g),
                diverged=float(g["diverged"].mean()),
                converged=int(len(ok)),
                median_s_max=float(ok["s_max"].median()) if len(ok) else math.nan,
                median_s_final=float(ok["s_final"].median()) if len(ok) else math.nan,
                median_rise=float((ok["s_max"] - s0).median()) if len(ok) else math.nan,
            )
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------- figures

COLOURS = dict(zip(QS, ("#4d4d4d", "#4393c3", "#d6604d", "#762a83", "#1b7837"), strict=True))


def figure_saddle(two: Mapping[str, pd.DataFrame]) -> Figure:
    """Left: s_t from the saddle starts (s0 = 0.05) for every c (faint: c > 1), the edge 2 and each flattest
    2·abs(c). Right: abs(u_t) of the same runs (log)."""
    curves = two["curves"]
    runs = curves[(curves["kind"] == "saddle") & (curves["s0"] == SADDLE_S0[0])]
    fig, (ax_s, ax_u) = plotting.panels(2)
    cmap = plt.get_cmap("viridis")
    for i, (c, run) in enumerate(runs.groupby("c")):
        colour = cmap(i / max(1, len(SADDLE_C) - 1))
        faint = dict(lw=0.5, alpha=0.4, zorder=1) if c > 1 else dict(lw=1.2, zorder=2)
        ax_s.plot(run["step"] + 1, run["s"], color=colour, label=f"c = {c:g}", **faint)
        ax_s.axhline(theory.flattest_sharpness(c), color=colour, ls=":", lw=1)
        ax_u.plot(run["step"] + 1, np.abs(run["u"]), color=colour, lw=0.8)
    ax_s.axhline(2, color="black", ls="--", lw=1, label="edge s = 2")
    ax_s.set(xscale="log", xlabel="step t + 1", ylabel="s = ηλ (NTK)", title="from the saddle; dotted: 2|c|")
    ax_u.set(xscale="log", yscale="log", xlabel="step t + 1", ylabel="|u| = ηω|z|", ylim=(1e-14, 10))
    ax_s.legend(fontsize=8, ncol=2)
    return fig


def figure_phase(two: Mapping[str, pd.DataFrame]) -> Figure:
    """Left: the (u, s) phase plane with the saddle starts (s0 = 0.05) and the edge starts, the fixed line
    u = 0 and the edge s = 2. Right: s_∞ against c for every saddle start, with 2·abs(c) and 2."""
    curves, summary = two["curves"], two["summary"]
    fig, (ax_p, ax_c) = plotting.panels(2)
    cmap = plt.get_cmap("viridis")
    for _, run in curves[(curves["kind"] == "saddle") & (curves["s0"] == SADDLE_S0[0])].groupby("c"):
        c = run["c"].iloc[0]
        ax_p.plot(run["u"], run["s"], lw=0.6, color=cmap(SADDLE_C.index(c) / (len(SADDLE_C) - 1)))
    for _, run in curves[curves["kind"] == "edge"].groupby("start"):
        ax_p.plot(run["u"], run["s"], lw=0.5, color="#d6604d", alpha=0.7)
    ax_p.axvline(0, color="grey", lw=1)
    ax_p.axhline(2, color="black", ls="--", lw=1)
    ax_p.set(
        xlim=(-0.6, 1.2),
        ylim=(0, 2.6),
        xlabel="u = ηωz",
        ylabel="s = ηλ",
        title="phase plane (red: edge starts)",
    )
    saddle = summary[summary["kind"] == "saddle"]
    for s0, marker in zip(SADDLE_S0, "os", strict=True):
        rows = saddle[saddle["s0"] == s0]
        ok = rows[rows["converged"]]
        ax_c.plot(ok["c"], ok["s_final"], marker, ms=6, mfc="none", label=f"s∞, s0 = {s0:g}")
        bad = rows[~rows["converged"]]
        ax_c.plot(
            bad["c"], bad["s_final"], marker, ms=6, color="#b2182b", label=f"not converged, s0 = {s0:g}"
        )
    grid = np.linspace(0, max(SADDLE_C) + 0.05, 50)
    ax_c.plot(grid, 2 * grid, "k:", lw=1, label="flattest minimum 2|c|")
    ax_c.axhline(2, color="black", ls="--", lw=1, label="edge 2")
    ax_c.set(xlabel="c = ηωz_c", ylabel="final s (last 10 %)", title="where the sharpening stops")
    ax_c.legend(fontsize=8)
    return fig


def figure_normal_form(two: Mapping[str, pd.DataFrame]) -> Figure:
    """Offset 2 − s_∞ measured against the small-amplitude prediction √E, for the starts past the edge."""
    edge = two["summary"][two["summary"]["kind"] == "edge"]
    fig, (ax,) = plotting.panels(1, width=5.5)
    for c, rows in edge.groupby("c"):
        ax.plot(2 - rows["predicted"], 2 - rows["s_final"], "o", label=f"c = {c:g}")
    top = float(np.nanmax([(2 - edge["predicted"]).max(), (2 - edge["s_final"]).max()])) * 1.1
    line = np.linspace(0, top, 10)
    ax.plot(line, line, "k--", lw=1, label="measured = predicted")
    ax.fill_between(line, 0.8 * line, 1.2 * line, color="grey", alpha=0.15, label="±20 %")
    ax.set(xlabel="predicted offset √E", ylabel="measured offset 2 − s∞", title="starts just past the edge")
    ax.legend(fontsize=8)
    return fig


def figure_random(rand: Mapping[str, pd.DataFrame]) -> Figure:
    """Left: η λ_max(J Jᵀ) against step for every draw at every q ≤ :data:`Q_EDGE` (s0 = :data:`S0`),
    Lanczos η λ_max(∇²L) of draw 0 as crosses. Right: the loss of the same runs (log)."""
    curves, probes = rand["curves"], rand["probes"]
    curves, probes = curves[curves["q"] <= Q_EDGE], probes[probes["q"] <= Q_EDGE]
    fig, (ax_s, ax_l) = plotting.panels(2)
    for q, g in curves.groupby("q"):
        for draw, run in g.groupby("draw"):
            kw = dict(
                color=COLOURS.get(q, "black"), lw=1.4 if draw == 0 else 0.5, alpha=1 if draw == 0 else 0.6
            )
            ax_s.plot(run["step"] + 1, run["s"], label=f"q = {q:g}" if draw == 0 else None, **kw)
            ax_l.plot(run["step"] + 1, run["loss"], **kw)
    for q, g in probes.groupby("q"):
        ax_s.plot(g["step"] + 1, g["hessian"], "x", color=COLOURS.get(q, "black"), ms=7)
    ax_s.axhline(2, color="black", ls="--", lw=1, label="edge 2")
    ax_s.set(
        xscale="log",
        ylim=(0, 3.2),
        xlabel="step t + 1",
        ylabel="η λ_max (NTK; ×: Hessian)",
        title=f"random models, s0 = {S0:g}",
    )
    ax_l.set(xscale="log", yscale="log", ylim=(1e-25, 1e3), xlabel="step t + 1", ylabel="loss ½‖z‖²")
    ax_s.legend(fontsize=8)
    return fig


def figure_scale(runs: pd.DataFrame) -> Figure:
    """Left: s_max and s_∞ of every converged draw against q (s0 = :data:`S0`), with the share
    diverged written above. Right: the same instances started past the edge (s0 = 2.2): share diverged
    per q."""
    fig, (ax, ax_a) = plotting.panels(2)
    base = runs[runs["s0"] == S0]
    for i, (q, g) in enumerate(base.groupby("q")):
        ok = g[g["converged"]]
        jitter = np.linspace(-0.08, 0.08, max(1, len(ok)))
        ax.plot(
            i + jitter,
            ok["s_max"],
            "^",
            color=COLOURS.get(q, "black"),
            mfc="none",
            label="max s" if i == 0 else None,
        )
        ax.plot(
            i + jitter, ok["s_final"], "o", color=COLOURS.get(q, "black"), label="final s" if i == 0 else None
        )
        ax.annotate(f"{g['diverged'].mean():.0%} div.", (i, 3.05), ha="center", fontsize=8)
    ax.axhline(2, color="black", ls="--", lw=1)
    ax.set(xticks=range(len(QS)), xticklabels=[f"{q:g}" for q in QS], ylim=(0, 3.3))
    ax.set(
        xlabel="quadratic scale q (0: linearized)",
        ylabel="η λ_max(J Jᵀ)",
        title=f"converged draws, s0 = {S0:g}",
    )
    ax.legend(fontsize=8, loc="lower right")
    above = runs[runs["s0"] == S0_ABOVE].groupby("q")["diverged"].mean()
    ax_a.bar(
        [f"q = {q:g}" for q in above.index],
        above.to_numpy(),
        color=[COLOURS.get(q, "k") for q in above.index],
    )
    ax_a.set(
        ylim=(0, 1.05), ylabel="share of draws diverged", title=f"started past the edge, s0 = {S0_ABOVE:g}"
    )
    return fig


# ------------------------------------------------------------------------------- measuring functions


def _saddle(data: Mapping[str, Any]) -> pd.DataFrame:
    s = data["two"]["summary"]
    return s[s["kind"] == "saddle"]


def saddle_rise(data: Mapping[str, Any]) -> claims.Measurement:
    """Smallest s_max − s0 over the saddle starts with 0.5 ≤ c < 1."""
    s = _saddle(data)
    s = s[(s["c"] >= 0.5) & (s["c"] < 1)]
    rise = s["s_max"] - s["s0"]
    detail = ", ".join(f"c={r.c:g}/s0={r.s0:g}: {r.s_max - r.s0:.3f}" for r in s.itertuples())
    return claims.Measurement(float(rise.min()), detail=detail)


def edge_offset(data: Mapping[str, Any]) -> claims.Measurement:
    """Mean of 2 − s_∞ over the saddle starts with 0.9 ≤ c < 1 that crossed s = 2 and converged."""
    s = _saddle(data)
    s = s[(s["c"] >= 0.9) & (s["c"] < 1)]
    ok = s[(s["crossed_at"] >= 0) & s["converged"]]
    detail = ", ".join(
        f"c={r.c:g}/s0={r.s0:g}: max {r.s_max:.3f}, final {r.s_final:.5f}" for r in s.itertuples()
    )
    why = "" if len(ok) else "no start with 0.9 ≤ c < 1 crossed 2 and converged"
    return claims.Measurement(float((2 - ok["s_final"]).mean()) if len(ok) else None, detail=detail, why=why)


def edge_flips(data: Mapping[str, Any]) -> claims.Measurement:
    """Smallest share of steps at which u changes sign after s first exceeds 2, over the starts that
    crossed."""
    summ = data["two"]["summary"]
    crossed = summ[(summ["crossed_at"] >= 0) & summ["flip_share"].notna() & (summ["c"] < 1)]
    rises = crossed["loss_rises"]
    detail = f"{len(crossed)} starts crossed; loss rises per start: {rises.min()}–{rises.max()}"
    return claims.Measurement(float(crossed["flip_share"].min()) if len(crossed) else None, detail=detail)


def _converged_at(data: Mapping[str, Any], q: float) -> pd.DataFrame:
    runs = data["random"]["runs"]
    return runs[(runs["s0"] == S0) & (runs["q"] == q) & runs["converged"]]


def linear_change(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest abs(η λ_max(J_t J_tᵀ) − s_0) over every step of every q = 0 run at s0 = :data:`S0`."""
    runs = data["random"]["runs"]
    lin = runs[(runs["q"] == 0) & (runs["s0"] == S0)]
    return claims.Measurement(float(lin["s_change"].max()), detail=f"{len(lin)} runs")


def highd_peak(data: Mapping[str, Any]) -> claims.Measurement:
    """Median over the converged draws at q = :data:`Q_EDGE` of max_t η λ_max(J_t J_tᵀ)."""
    ok = _converged_at(data, Q_EDGE)
    detail = f"{len(ok)} converged draws; per draw " + ", ".join(f"{x:.2f}" for x in ok["s_max"])
    return claims.Measurement(float(ok["s_max"].median()) if len(ok) else None, detail=detail)


def highd_final(data: Mapping[str, Any]) -> claims.Measurement:
    """Median over the converged draws at q = :data:`Q_EDGE` of s_∞ (mean of the last 10 % of steps)."""
    ok = _converged_at(data, Q_EDGE)
    detail = "per draw " + ", ".join(f"{x:.3f}" for x in ok["s_final"])
    return claims.Measurement(float(ok["s_final"].median()) if len(ok) else None, detail=detail)


def highd_generic(data: Mapping[str, Any]) -> claims.Measurement:
    """Share of all draws at q = :data:`Q_EDGE` that converge after max_t s_t ≥ 1.8 (a diverged draw
    counts no)."""
    runs = data["random"]["runs"]
    g = runs[(runs["s0"] == S0) & (runs["q"] == Q_EDGE)]
    yes = g["converged"] & (g["s_max"] >= 1.8)
    return claims.Measurement(
        float(yes.mean()), detail=f"{int(yes.sum())} of {len(g)}; diverged {int(g['diverged'].sum())}"
    )


def rise_growth(data: Mapping[str, Any]) -> claims.Measurement:
    """Smallest increase of the median rise s_max − s0 between consecutive q among the q at which no draw
    diverged (where some diverge, the survivors are a selected sample)."""
    table = by_scale(data["random"]["runs"])
    table = table[(table["s0"] == S0) & (table["diverged"] == 0)].sort_values("q")
    detail = ", ".join(
        f"q={r.q:g}: {r.median_rise:.3f} (div {r.diverged:.0%})"
        for r in by_scale(data["random"]["runs"]).itertuples()
        if r.s0 == S0
    )
    if len(table) < 2:
        return claims.Measurement(None, detail=detail, why="fewer than two q without a diverged draw")
    return claims.Measurement(float(np.diff(table["median_rise"].to_numpy()).min()), detail=detail)


def map_error(data: Mapping[str, Any]) -> claims.Measurement:
    """The value of :func:`reduced_map_error` stored in ``data``."""
    return claims.Measurement(float(data["map_error"]))


def function_space_error(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest mismatch between the function-space iterate (z_T, J_T) and the model at the tracked θ_T."""
    runs = data["random"]["runs"]
    return claims.Measurement(
        float(runs["mismatch"].max()), detail=f"{int(runs['mismatch'].notna().sum())} finite runs"
    )


def floor_margin(data: Mapping[str, Any]) -> claims.Measurement:
    """Smallest s_∞ − 2·abs(c) over every converged start of the reduced map."""
    summ = data["two"]["summary"]
    ok = summ[summ["converged"]]
    return claims.Measurement(
        float((ok["s_final"] - ok["flattest"]).min()), detail=f"{len(ok)} converged starts"
    )


def flattest_gap(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest abs(s_∞ − 2·abs(c)) over the saddle starts with c < 1."""
    s = _saddle(data)
    s = s[s["c"] < 1]
    return claims.Measurement(float((s["s_final"] - s["flattest"]).abs().max()), detail=f"{len(s)} starts")


def normal_form_error(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest abs((2 − s_∞) − √E) / √E over the edge starts at c ∈ :data:`NORMAL_FORM_C`."""
    summ = data["two"]["summary"]
    e = summ[(summ["kind"] == "edge") & summ["c"].isin(NORMAL_FORM_C)]
    rel = ((2 - e["s_final"]) - (2 - e["predicted"])).abs() / (2 - e["predicted"])
    return claims.Measurement(float(rel.max()), detail=", ".join(f"{x:.3f}" for x in rel))


def hessian_gap(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest abs(η λ_max(∇²L) − η λ_max(J Jᵀ)) at the last probe of the converged draw-0 runs."""
    probes, runs = data["random"]["probes"], data["random"]["runs"]
    ok = set(runs[(runs["s0"] == S0) & (runs["draw"] == 0) & runs["converged"]]["q"])
    last = probes[probes["q"].isin(ok)].sort_values("step").groupby("q").tail(1)
    return claims.Measurement(float((last["hessian"] - last["ntk"]).abs().max()), detail=f"q: {sorted(ok)}")


def linear_above(data: Mapping[str, Any]) -> claims.Measurement:
    """Share of the q = 0 draws started at s0 = :data:`S0_ABOVE` that diverge."""
    runs = data["random"]["runs"]
    return claims.Measurement(float(runs[(runs["s0"] == S0_ABOVE) & (runs["q"] == 0)]["diverged"].mean()))


# ------------------------------------------------------------------------------------------ the table
SRC = "Agarwala, Pedregosa & Pennington 2023"
ABSTRACT = f"{SRC}, abstract (ICML version)"
TWO_D = f"{SRC}, abstract (two-parameter result; its section, theorem and formula not read)"
HIGH_D = f"{SRC}, abstract (high-dimensional models; the paper's section, sizes and scales not read)"

CLAIMS: list[claims.Spec] = [
    claims.paper_claim(
        "linear-no-sharpening",
        "In the constant-NTK (linearized, q = 0) model nothing sharpens: largest |η λ_max(J_t J_tᵀ) − s_0| "
        "over every step of every draw",
        paper="no PS or EoS in the constant-NTK regime",
        source=ABSTRACT,
        band=claims.at_most(1e-9),
        measure=linear_change,
    ),
    claims.paper_claim(
        "ps-two-parameter",
        "Two-parameter model: from near the saddle the NTK eigenvalue sharpens (smallest rise max_t s_t − s0 "
        "over "
        "the saddle starts with 0.5 ≤ c < 1)",
        paper="progressive sharpening",
        source=TWO_D,
        band=claims.at_least(0.5),
        measure=saddle_rise,
    ),
    claims.paper_claim(
        "near-not-at-edge",
        "… towards a value slightly different from the edge: for 0.9 ≤ c < 1 the sharpening crosses s = 2, "
        "then "
        "converges at 2 − s_∞ (mean over those starts) small but non-zero",
        paper="differs slightly from 2/η (closed form not read)",
        source=TWO_D,
        band=claims.between(0.001, 0.25),
        measure=edge_offset,
    ),
    claims.paper_claim(
        "eos-oscillation",
        "Past the edge the residual oscillates: share of steps with a sign flip of u after s first exceeds 2 "
        "(smallest over the starts that crossed, c < 1)",
        paper="period-2 oscillation at the edge of stability",
        source=TWO_D,
        band=claims.at_least(0.8),
        measure=edge_flips,
    ),
    claims.paper_claim(
        "highd-reaches-edge",
        f"Random models (q = {Q_EDGE:g}, s0 = {S0:g}): the NTK eigenvalue sharpens to the edge "
        "(within 10 %): median "
        "over converged draws of max_t η λ_max(J_t J_tᵀ)",
        paper="PS to the edge of stability, generically",
        source=HIGH_D,
        band=claims.at_least(1.8),
        measure=highd_peak,
    ),
    claims.paper_claim(
        "highd-stays-near-edge",
        f"… and converges near, not above, the edge: median over converged draws (q = {Q_EDGE:g}) of s_∞",
        paper="stabilizes near 2/η",
        source=HIGH_D,
        band=claims.between(1.7, 2.05),
        measure=highd_final,
    ),
    claims.paper_claim(
        "highd-generic",
        f"… generically: share of all draws at q = {Q_EDGE:g} that converge after sharpening to s ≥ 1.8",
        paper="generic (no network structure)",
        source=HIGH_D,
        band=claims.at_least(0.5),
        measure=highd_generic,
    ),
    claims.paper_claim(
        "sharpening-needs-q",
        "Sharpening comes from the quadratic term: the median rise max_t s_t − s0 grows with q (smallest "
        "increase between consecutive q at which no draw diverged, q = 0 included)",
        paper="PS is a non-linear effect",
        source=ABSTRACT,
        band=claims.at_least(0.1),
        measure=rise_growth,
    ),
    claims.check(
        "reduced-map",
        "The reduced map (u, s) equals GD on the two parameters of a random instance (largest |Δu| + |Δs| "
        "over 200 steps)",
        band=claims.at_most(1e-9),
        measure=map_error,
    ),
    claims.check(
        "function-space",
        "The function-space iterate (z_T, J_T) equals the model evaluated at the GD parameters θ_T "
        "(largest error)",
        band=claims.at_most(1e-8),
        measure=function_space_error,
    ),
    claims.check(
        "flattest-floor",
        "Every converged start of the reduced map ends at s_∞ ≥ 2|c| (our bound from z_c's conservation): "
        "smallest s_∞ − 2|c|",
        band=claims.at_least(-1e-9),
        measure=floor_margin,
    ),
    claims.check(
        "flattest-limit",
        "Saddle starts with c < 1 end near the flattest minimum (our prediction s_∞ ≈ 2|c|): "
        "largest |s_∞ − 2|c||",
        band=claims.at_most(0.05),
        measure=flattest_gap,
    ),
    claims.check(
        "normal-form",
        "Starts just past the edge at c ∈ {0.3, 0.5} end at our prediction s_∞ = 2 − √E: largest relative "
        "error of the offset",
        band=claims.at_most(0.2),
        measure=normal_form_error,
    ),
    claims.check(
        "hessian-is-ntk-at-the-end",
        "At convergence the loss Hessian's top eigenvalue (Lanczos on HVPs) equals the NTK's: "
        "largest |difference| of η λ_max",
        band=claims.at_most(1e-3),
        measure=hessian_gap,
    ),
    claims.check(
        "linear-diverges-above",
        f"The linearized model started at s0 = {S0_ABOVE:g} diverges (share of draws)",
        band=claims.at_least(1.0),
        measure=linear_above,
    ),
]


def claims_data(
    two: Mapping[str, pd.DataFrame], rand: Mapping[str, pd.DataFrame], seed: int
) -> dict[str, Any]:
    """The mapping the measuring functions read: ``two`` (:func:`two_parameter`), ``random``
    (:func:`random_models`) and ``map_error`` (:func:`reduced_map_error`)."""
    return dict(two=two, random=rand, map_error=reduced_map_error(seed))
