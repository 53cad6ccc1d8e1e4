"""Protocol of Marshall, Xiao, Agarwala & Paquette (2024), "To clip or not to clip: the dynamics of SGD with
gradient clipping in high dimensions".

Streaming least squares with K = I_d: one fresh sample x ~ N(0, I) per step, y = ⟨x, θ*⟩ + ε, θ0 = 0,
θ* ~ N(0, I/d) so R(0) ≈ ½, step η/d, time t = k/d. Clipped SGD moves along g min(1, c/‖g‖), g = r x,
with the raw threshold c = c̃ √tr K set from the dimension-free threshold c̃; c̃ = ∞ is SGD. The simulator is
the one of the signSGD chapter, :func:`optdyn.experiments.signsgd_high_dim.simulate`, with the update rule
:func:`optdyn.experiments.signsgd_high_dim.clipped_rule`, and the risk ODE is
:func:`optdyn.theory.risk_ode` with ``method="clipped"``. The statistic is the excess risk R = ½ δᵀKδ,
computed exactly from δ (finite even under Cauchy noise). One execution of the chapter is one seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import NullFormatter

from .. import claims, plotting, theory
from ..claims import at_least, at_most, within
from .profiles import profile_config
from .signsgd_high_dim import DIVERGED, clipped_rule, label_noise, simulate

#: The three label-noise laws (name in ``optdyn.theory.NOISES``, scale): N(0, 1), Student-t with 3
#: degrees of freedom and scale 1 (variance 3), standard Cauchy (no variance).
NOISES: dict[str, tuple[str, float]] = {
    "Gaussian": ("gaussian", 1.0),
    "Student-t3": ("student_t3", 1.0),
    "Cauchy": ("cauchy", 1.0),
}
COLOURS = {"Gaussian": "C0", "Student-t3": "C1", "Cauchy": "C3", "SGD": "0.35"}
CLIPS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the dimension-free thresholds c̃ = c/√tr K of the sweep
CONC = dict(eta=0.5, clip=1.0)  # the concentration runs (and SGD at the same η)
STAB = dict(eta=2.5, clips=(0.5, 1.0))  # past SGD's stability limit η = 2 (K = I)
FINAL = 0.1  # "final risk": the mean over the last 10 % of a run's time, a fixed window

PROFILES: dict[str, dict] = {
    "quick": dict(
        dims=(200, 800), t_conc=5.0, rows=2, d_sweep=400, t_sweep=6.0, etas=(0.1, 0.2, 0.5),
        d_stab=300, t_stab=4.0, n_mc=100_000,
    ),
    "default": dict(
        dims=(250, 1000, 4000), t_conc=10.0, rows=3, d_sweep=1000, t_sweep=10.0,
        etas=(0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2), d_stab=400, t_stab=6.0, n_mc=400_000,
    ),
    "full": dict(
        dims=(250, 1000, 4000, 16000), t_conc=10.0, rows=5, d_sweep=4000, t_sweep=10.0,
        etas=(0.05, 0.1, 0.15, 0.2, 0.28, 0.35, 0.5, 0.65, 0.8, 1.0, 1.2), d_stab=1000, t_stab=6.0,
        n_mc=1_000_000,
    ),
}  # fmt: skip


def config(profile: str) -> dict:
    """The sizes, horizons and grids of a profile."""
    return profile_config(PROFILES, profile)


def _noise_kw(law: str) -> dict:
    if law not in NOISES:
        raise ValueError(f"unknown noise law {law!r}; known: {', '.join(NOISES)}")
    noise, scale = NOISES[law]
    return dict(noise=noise, scale=scale)


def run_grid(
    d: int, t_max: float, law: str, etas, clips, *, seed: int, call: int = 0, common: bool = False
) -> pd.DataFrame:
    """One simulator call: one independent run per (η, c̃) pair of the equal-length ``etas``, ``clips``
    (c̃ = ∞: plain SGD, and then every ``clips`` must be ∞), K = I_d, noise ``law``; each run with the ODE
    risk (column ``ode``) started from the run's own δ0. ``call`` separates the random streams of calls
    with the same seed; with ``common`` all runs share their samples (common random numbers; two calls
    with the same ``seed``, ``call`` and d then see the same samples too). Columns: run, eta, clip, t, risk,
    ode, diverged_at, plus ``attrs`` with the
    simulation's and the ODEs' wall-clock seconds."""
    etas, clips = np.asarray(etas, float), np.asarray(clips, float)
    sgd = np.isinf(clips)
    if sgd.any() and not sgd.all():
        raise ValueError("a call runs either clipped rows or SGD rows, never both (SGD may diverge)")
    kw = _noise_kw(law)
    lam = np.ones(d)
    start = time.perf_counter()
    rule = None if sgd.all() else clipped_rule(clips * math.sqrt(lam.sum()))
    f = simulate(
        lam,
        etas,
        t_max,
        method="sgd",
        rule=rule,
        seeds=len(etas),
        seed=1000 * seed + call,
        common=common,
        **kw,
    )
    sim_seconds = time.perf_counter() - start
    delta0 = f.attrs.pop("delta0")
    f = f.rename(columns={"seed": "run"})
    f["eta"], f["clip"] = etas[f["run"]], clips[f["run"]]
    grid = np.unique(f["t"].to_numpy())
    start = time.perf_counter()
    ode = np.full(len(f), np.nan)
    for j, (eta, clip) in enumerate(zip(etas, clips, strict=True)):
        rows = (f["run"] == j).to_numpy()
        if np.isinf(clip) and eta >= 2:
            continue  # the SGD risk ODE diverges
        _, R = theory.risk_ode(lam, eta, grid, method="clipped", clip=clip, delta0=delta0[j], **kw)
        ode[rows] = np.interp(f.loc[rows, "t"].to_numpy(), grid, R)
    f["ode"] = ode
    f.attrs.update(sim_seconds=sim_seconds, ode_seconds=time.perf_counter() - start)
    return f


# ------------------------------------------------------------------------------------------ experiments
def concentration(profile: str, seed: int = 0) -> pd.DataFrame:
    """Clipped SGD (η = 0.5, c̃ = 1; ``rows`` runs) and SGD (η = 0.5, one run) at each d of the profile
    under each noise law: simulated ``risk`` and ODE ``ode`` at the logged t."""
    cfg = config(profile)
    frames = []
    for i, law in enumerate(NOISES):
        for d in cfg["dims"]:
            n = cfg["rows"]
            for method, etas, clips in (
                ("clipped", [CONC["eta"]] * n, [CONC["clip"]] * n),
                ("SGD", [CONC["eta"]], [np.inf]),
            ):
                f = run_grid(d, cfg["t_conc"], law, etas, clips, seed=seed, call=10 * i + (method == "SGD"))
                f["law"], f["d"], f["method"] = law, d, method
                frames.append(f)
    return pd.concat(frames, ignore_index=True)


def concentration_gaps(frame: pd.DataFrame, t_min: float = 0.5) -> pd.DataFrame:
    """Per (law, d, method): the median over runs of each run's median over t ≥ ``t_min`` of
    ``|R_sim/R_ode − 1|`` (NaN where the ODE is infinite, SGD under Cauchy noise)."""
    f = frame[(frame["t"] >= t_min) & np.isfinite(frame["ode"])]
    f = f.assign(gap=(f["risk"] / f["ode"] - 1).abs())
    per_run = f.groupby(["law", "d", "method", "run"], sort=False)["gap"].median()
    return per_run.groupby(["law", "d", "method"], sort=False).median().reset_index()


def final_risk(frame: pd.DataFrame, fraction: float = FINAL) -> pd.DataFrame:
    """Per run (law, eta, clip): the mean simulated and ODE risk over the last ``fraction`` of the planned
    horizon (``final``, ``final_ode``); a run that diverged has ``final`` = ∞ and its ``diverged_at``."""
    keys = [k for k in ("law", "d", "eta", "clip") if k in frame]
    t_end = frame["t"].max()
    rows = []
    for key, f in frame.groupby(keys, sort=False):
        late = f[f["t"] >= (1 - fraction) * t_end]
        diverged = bool(np.isfinite(f["diverged_at"].iloc[0]))
        rows.append(
            dict(
                zip(keys, key, strict=True),
                final=np.inf if diverged else float(late["risk"].mean()),
                final_ode=float(late["ode"].mean()) if len(late) else np.nan,
                diverged_at=f["diverged_at"].iloc[0],
                max_risk=float(f["risk"].max()),
            )
        )
    return pd.DataFrame(rows)


def threshold_sweep(profile: str, seed: int = 0) -> pd.DataFrame:
    """For each noise law at d = d_sweep: clipped SGD at every (η, c̃) of the grid (one run each, one call)
    and SGD at every η (one call), all on the same samples (common random numbers), simulated and ODE.
    Returns :func:`optdyn.experiments.clipping_high_dim.final_risk` per (law, η, c̃) with the
    simulation's and the ODEs' seconds per law (``sim_seconds``, ``ode_seconds``)."""
    cfg = config(profile)
    d, etas = cfg["d_sweep"], cfg["etas"]
    out = []
    for i, law in enumerate(NOISES):
        pairs = [(e, c) for c in CLIPS for e in etas]
        common = dict(seed=seed, call=100 + 10 * i, common=True)
        clipped = run_grid(d, cfg["t_sweep"], law, *zip(*pairs, strict=True), **common)
        sgd = run_grid(d, cfg["t_sweep"], law, etas, [np.inf] * len(etas), **common)
        for f in (clipped, sgd):
            fr = final_risk(f).assign(law=law, d=d)
            fr["sim_seconds"], fr["ode_seconds"] = f.attrs["sim_seconds"], f.attrs["ode_seconds"]
            out.append(fr)
    return pd.concat(out, ignore_index=True)


def tuned(sweep: pd.DataFrame, column: str = "final") -> pd.DataFrame:
    """Per (law, c̃): the row of the best η by ``column`` (ties to the smaller η); c̃ = ∞ is tuned SGD."""
    best = sweep.sort_values(["law", "clip", column, "eta"]).groupby(["law", "clip"], sort=False).head(1)
    return best.reset_index(drop=True)


def factors(R_values=(0.05, 0.5), clips=None) -> pd.DataFrame:
    """μ, ν, μ/ν (CSC) and μ²/ν (CCC) against c̃ for each noise law at a few risks: closed form for
    Gaussian noise, quadrature otherwise (:func:`optdyn.theory.clipping_factors`)."""
    clips = np.geomspace(0.05, 20, 60) if clips is None else np.asarray(clips, float)
    R, c = (a.ravel() for a in np.meshgrid(np.asarray(R_values, float), clips, indexing="ij"))
    frames = []
    for law in NOISES:
        kw = _noise_kw(law)
        mu, psi2 = theory.clipping_factors(R, c, **kw)
        m2 = 2 * R + theory.noise_second_moment(**kw)
        frames.append(
            pd.DataFrame(dict(law=law, R=R, clip=c, mu=mu, psi2=psi2, nu=psi2 / m2, csc=mu * m2 / psi2,
                              ccc=mu**2 * m2 / psi2))
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def gaussian_ccc_max(n: int = 400) -> dict:
    """The largest μ²/ν for Gaussian noise (s = 1) over an n × n log grid c̃ ∈ [10⁻³, 10³], R ∈ [10⁻⁵, 10³]
    (closed form, :func:`optdyn.theory.clipped_comparison_ratio`), and where it is attained."""
    c, R = np.meshgrid(np.geomspace(1e-3, 1e3, n), np.geomspace(1e-5, 1e3, n))
    ccc = theory.clipped_comparison_ratio(R, c, "gaussian", 1.0)
    i = np.unravel_index(np.argmax(ccc), ccc.shape)
    return dict(max=float(ccc[i]), clip=float(c[i]), R=float(R[i]))


def factor_accuracy(profile: str, seed: int = 0) -> pd.DataFrame:
    """μ and E[ψ²] three ways at R ∈ {0.05, 0.5}, c̃ ∈ {0.5, 2}: closed form (Gaussian), quadrature (all
    laws) and Monte Carlo with n_mc draws of u ~ N(0, 2R) and of the simulator's label noise."""
    cfg = config(profile)
    gen = torch.Generator().manual_seed(10_000 + seed)
    rows = []
    for law in NOISES:
        kw = _noise_kw(law)
        eps = label_noise(kw["noise"], kw["scale"], (cfg["n_mc"],), gen).numpy()
        z = torch.randn(cfg["n_mc"], generator=gen, dtype=torch.float64).numpy()
        for R in (0.05, 0.5):
            r = math.sqrt(2 * R) * z - eps
            for c in (0.5, 2.0):
                mu_q, psi2_q = theory.clipping_factors(R, c, quadrature=True, **kw)
                mu_c, psi2_c = theory.clipping_factors(R, c, **kw) if law == "Gaussian" else (np.nan, np.nan)
                rows.append(
                    dict(
                        law=law, R=R, clip=c, mu_closed=float(mu_c), mu_quad=float(mu_q),
                        mu_mc=float(np.mean(np.abs(r) <= c)), psi2_closed=float(psi2_c),
                        psi2_quad=float(psi2_q), psi2_mc=float(np.mean(np.minimum(r**2, c**2))),
                        n_mc=cfg["n_mc"],
                    )
                )  # fmt: skip
    return pd.DataFrame(rows)


def schedules(sweep: pd.DataFrame, t_max: float, n: int = 201) -> pd.DataFrame:
    """ODE risk curves (K = I, R0 = ½) per noise law: tuned constant-η SGD, tuned constant (η, c̃) clipped
    SGD (tuned on the simulations' final risk), and the best learning-rate schedule of SGD and of clipped
    SGD at that c̃ (:func:`optdyn.theory.best_schedule_risk`), with the schedules' η*(t)."""
    t = np.linspace(0, t_max, n)
    best = tuned(sweep)
    rows = []
    for law in NOISES:
        kw = _noise_kw(law)
        b = best[best["law"] == law]
        sgd = b[np.isinf(b["clip"])].iloc[0]
        clip = b[np.isfinite(b["clip"])].sort_values("final").iloc[0]
        curves = {"SGD, best schedule": theory.best_schedule_risk(t, np.inf, **kw)[1:]}
        curves[f"clipped c̃ = {clip['clip']:g}, best schedule"] = theory.best_schedule_risk(
            t, clip["clip"], **kw
        )[1:]
        for name, row in (
            (f"SGD, constant η = {sgd['eta']:g}", sgd),
            (f"clipped c̃ = {clip['clip']:g}, constant η = {clip['eta']:g}", clip),
        ):
            if np.isinf(row["clip"]) and not np.isfinite(theory.noise_second_moment(**kw)):
                R = np.full_like(t, np.inf)
            else:
                R = theory.risk_ode(np.ones(1), row["eta"], t, method="clipped", clip=row["clip"],
                                    init_scale=1.0, **kw)[1]  # fmt: skip
            curves[name] = (R, np.full_like(t, row["eta"]))
        for name, (R, eta) in curves.items():
            rows.append(pd.DataFrame(dict(law=law, curve=name, t=t, risk=R, eta=eta)))
    return pd.concat(rows, ignore_index=True)


def stability(profile: str, seed: int = 0) -> pd.DataFrame:
    """Gaussian noise, η = 2.5 (past SGD's limit 2): SGD (one run) and clipped SGD at c̃ ∈ {0.5, 1} (one run
    each), on the same samples, with the clipped runs' ODE; d = d_stab."""
    cfg = config(profile)
    eta, clips = STAB["eta"], STAB["clips"]
    kw = dict(seed=seed, call=200, common=True)
    sgd = run_grid(cfg["d_stab"], cfg["t_stab"], "Gaussian", [eta], [np.inf], **kw)
    clipped = run_grid(cfg["d_stab"], cfg["t_stab"], "Gaussian", [eta] * len(clips), clips, **kw)
    return pd.concat([sgd, clipped], ignore_index=True).assign(d=cfg["d_stab"])


# ------------------------------------------------------------------------------------------ figures
def _panels(n: int) -> tuple[plt.Figure, list]:
    """``n`` panels, two per row (``optdyn.plotting.panels`` for one row); unused axes removed."""
    if n <= 2:
        return plotting.panels(n)
    rows = math.ceil(n / 2)
    fig, axes = plt.subplots(rows, 2, figsize=(10.0, 3.6 * rows), constrained_layout=True)
    axes = list(axes.ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def figure_concentration(conc: pd.DataFrame, gaps: pd.DataFrame) -> plt.Figure:
    """Risk against t for each law at the largest d (simulated runs solid, ODE dashed, SGD grey), and the
    median gap against d (log-log) with a d^{-1/2} reference."""
    laws = list(NOISES)
    fig, axes = _panels(len(laws) + 1)
    d_max = conc["d"].max()
    for ax, law in zip(axes, laws, strict=False):
        f = conc[(conc["law"] == law) & (conc["d"] == d_max)]
        for (method, run), g in f.groupby(["method", "run"], sort=False):
            colour = COLOURS["SGD"] if method == "SGD" else COLOURS[law]
            label = ("SGD η = 0.5" if method == "SGD" else "clipped c̃ = 1, η = 0.5") if run == 0 else None
            ax.plot(g["t"], g["risk"], color=colour, lw=0.8, label=label)
            if run == 0 and np.isfinite(g["ode"]).any():
                ax.plot(g["t"], g["ode"], "k--", lw=1, label="ODE" if method != "SGD" else None)
        ax.set(yscale="log", xlabel="time t = k/d", ylabel="excess risk R", title=f"{law} noise, d = {d_max}")
        if law == "Cauchy":
            ax.set_ylim(top=max(10.0, f[f["method"] != "SGD"]["risk"].max() * 20))
        ax.legend(fontsize=8)
    ax = axes[len(laws)]
    g = gaps[gaps["method"] == "clipped"]
    for law, h in g.groupby("law", sort=False):
        ax.plot(h["d"], h["gap"], "o-", color=COLOURS[law], label=law)
    d = np.array(sorted(g["d"].unique()), float)
    ax.plot(d, g[g["d"] == d[0]]["gap"].max() * np.sqrt(d[0] / d), "k:", label="∝ d^{-1/2}")
    ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="median |R_sim/R_ODE − 1|, t ≥ 0.5",
           title="clipped SGD: gap to the ODE")  # fmt: skip
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(d, [f"{int(x)}" for x in d])
    ax.legend(fontsize=8)
    return fig


def figure_factors(fac: pd.DataFrame, R: float = 0.05) -> plt.Figure:
    """μ²/ν (CCC, left) and μ/ν (CSC, right) against c̃ at risk R for the laws with finite variance, line
    at 1."""
    fig, (ax_c, ax_s) = plotting.panels(2)
    f = fac[fac["R"] == R]
    for law, g in f.groupby("law", sort=False):
        if np.isfinite(g["ccc"]).all():  # Cauchy: ν = 0, both ratios infinite
            ax_c.plot(g["clip"], g["ccc"], color=COLOURS[law], label=law)
            ax_s.plot(g["clip"], g["csc"], color=COLOURS[law], label=law)
    for ax, name in ((ax_c, "μ²/ν (comparison, CCC)"), (ax_s, "μ/ν (stability, CSC)")):
        ax.axhline(1, color="k", lw=0.8, ls=":")
        ax.set(xscale="log", yscale="log", xlabel="threshold c̃ = c/√tr K", ylabel=name, title=f"R = {R:g}")
        ax.legend(fontsize=8)
    ax_c.set_ylim(0.05, 20)
    return fig


def figure_sweep(sweep: pd.DataFrame, schedule: pd.DataFrame) -> plt.Figure:
    """Final risk at the tuned η against c̃ per law: simulation (markers) and ODE (line, tuned on the ODE),
    with tuned SGD (simulated: grey band ±10 %; ODE: grey dashed) and SGD's best schedule (black dotted)."""
    laws = list(NOISES)
    fig, axes = _panels(len(laws))
    sim, ode = tuned(sweep, "final"), tuned(sweep, "final_ode")
    for ax, law in zip(axes, laws, strict=False):
        s, o = sim[sim["law"] == law], ode[ode["law"] == law]
        sc, oc = s[np.isfinite(s["clip"])], o[np.isfinite(o["clip"])]
        ax.plot(oc["clip"], oc["final_ode"], "-", color=COLOURS[law], label="clipped, ODE")
        ax.plot(sc["clip"], sc["final"], "o", color=COLOURS[law], label="clipped, simulated")
        sgd_sim = float(s[np.isinf(s["clip"])]["final"].iloc[0])
        sgd_ode = float(o[np.isinf(o["clip"])]["final_ode"].iloc[0])
        lo, hi = sc["clip"].min() / 1.5, sc["clip"].max() * 1.5
        if np.isfinite(sgd_sim):
            ax.fill_between([lo, hi], 0.9 * sgd_sim, 1.1 * sgd_sim, color=COLOURS["SGD"], alpha=0.25,
                            label="tuned SGD, simulated ±10%")  # fmt: skip
        else:
            ax.text(0.03, 0.95, "SGD diverges at every η", transform=ax.transAxes, va="top", fontsize=8)
        if np.isfinite(sgd_ode):
            ax.hlines(sgd_ode, lo, hi, color=COLOURS["SGD"], ls="--", label="tuned SGD, ODE")
        best = schedule[(schedule["law"] == law) & (schedule["curve"] == "SGD, best schedule")]["risk"].iloc[
            -1
        ]
        ax.hlines(best, lo, hi, color="k", ls=":", label="SGD, best schedule (ODE)")
        ax.set(xscale="log", yscale="log", xlabel="threshold c̃ = c/√tr K",
               ylabel="final risk at the tuned η", title=f"{law} noise")  # fmt: skip
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(list(CLIPS), [f"{c:g}" for c in CLIPS])
        ax.legend(fontsize=7)
    return fig


def figure_schedules(schedule: pd.DataFrame) -> plt.Figure:
    """ODE risk curves of tuned constant-η SGD and clipped SGD and of the best schedules, per law."""
    laws = list(NOISES)
    fig, axes = _panels(len(laws))
    for ax, law in zip(axes, laws, strict=False):
        for name, g in schedule[schedule["law"] == law].groupby("curve", sort=False):
            if name.startswith("SGD"):
                colour, ls = ("k", ":") if "best" in name else (COLOURS["SGD"], "--")
            else:
                colour, ls = COLOURS[law], "-" if "constant" in name else "-."
            if np.isfinite(g["risk"]).all():
                ax.plot(g["t"], g["risk"], color=colour, ls=ls, label=name)
        ax.set(yscale="log", xlabel="time t", ylabel="excess risk R (ODE)", title=f"{law} noise")
        ax.legend(fontsize=7)
    return fig


def figure_stability(stab: pd.DataFrame) -> plt.Figure:
    """η = 2.5, Gaussian noise: SGD and clipped SGD risk against t, with the clipped ODEs (dashed)."""
    fig, (ax,) = plotting.panels(1, width=6.0)
    for (clip, _), g in stab.groupby(["clip", "run"], sort=False):
        label = "SGD" if np.isinf(clip) else f"clipped c̃ = {clip:g}"
        ax.plot(g["t"], g["risk"], lw=1, label=f"{label}, simulated")
        if np.isfinite(clip):
            ax.plot(g["t"], g["ode"], "k--", lw=1)
    ax.set(
        yscale="log", xlabel="time t", ylabel="excess risk R", title="η = 2.5, Gaussian noise (dashed: ODE)"
    )
    ax.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------------------------------ measures
def _gaps(data, method: str = "clipped") -> pd.DataFrame:
    g = concentration_gaps(data["conc"])
    return g[g["method"] == method]


def gap_at(data: Mapping[str, Any], law: str) -> claims.Measurement:
    """``law``: the clipped runs' median gap to the ODE at the d closest to 1000."""
    g = _gaps(data)
    g = g[g["law"] == law]
    d = g["d"].iloc[int(np.argmin(np.abs(np.log(g["d"] / 1000))))]
    detail = ", ".join(f"d={int(r.d)}: {r.gap:.3g}" for r in g.itertuples())
    return claims.Measurement(float(g[g["d"] == d]["gap"].iloc[0]), detail=f"at d = {d}; {detail}")


def gap_ratio(data: Mapping[str, Any]) -> claims.Measurement:
    """The largest over the three laws of gap(d_max)/gap(d_min) (clipped runs)."""
    g = _gaps(data)
    ratios = {}
    for law, h in g.groupby("law", sort=False):
        h = h.sort_values("d")
        ratios[law] = float(h["gap"].iloc[-1] / h["gap"].iloc[0])
    d = sorted(g["d"].unique())
    detail = f"d {d[0]} → {d[-1]} (√ ratio {math.sqrt(d[0] / d[-1]):.2f}): " + ", ".join(
        f"{k} {v:.2f}" for k, v in ratios.items()
    )
    return claims.Measurement(max(ratios.values()), detail=detail)


def _best(sweep: pd.DataFrame, law: str, clipped: bool, column: str = "final") -> pd.Series:
    s = sweep[(sweep["law"] == law) & (np.isfinite(sweep["clip"]) == clipped)]
    return s.sort_values([column, "eta"]).iloc[0]


def cauchy_log_ratio(data: Mapping[str, Any]) -> claims.Measurement:
    """Cauchy noise: log10 of tuned SGD's final risk (a diverged run counts as the threshold 10⁶, a lower
    bound) over the best clipped final risk."""
    sweep = data["sweep"]
    s = sweep[(sweep["law"] == "Cauchy") & np.isinf(sweep["clip"])]
    sgd = float(np.minimum(s["final"], DIVERGED).min())
    c = _best(sweep, "Cauchy", True)
    n_div = int(np.isfinite(s["diverged_at"]).sum())
    detail = f"SGD best {sgd:.3g} ({n_div}/{len(s)} η diverged); clipped {c['final']:.3g} "
    detail += f"(η = {c['eta']:g}, c̃ = {c['clip']:g})"
    return claims.Measurement(math.log10(sgd / c["final"]), detail=detail)


def tuned_ratio(data: Mapping[str, Any], law: str) -> claims.Measurement:
    """Best clipped final risk over the (η, c̃) grid / tuned SGD's final risk (simulated)."""
    sweep = data["sweep"]
    c, s = _best(sweep, law, True), _best(sweep, law, False)
    detail = (
        f"clipped {c['final']:.4g} (η = {c['eta']:g}, c̃ = {c['clip']:g}), SGD {s['final']:.4g} "
        f"(η = {s['eta']:g}); ODE: {_best(sweep, law, True, 'final_ode')['final_ode']:.4g} vs "
        f"{_best(sweep, law, False, 'final_ode')['final_ode']:.4g}"
    )
    return claims.Measurement(float(c["final"] / s["final"]), detail=detail)


def schedule_ratio(data: Mapping[str, Any], law: str) -> claims.Measurement:
    """Best clipped final risk (simulated, constant η and c̃) / SGD's risk at the end under its best
    learning-rate schedule (ODE)."""
    sch = data["schedule"]
    best = sch[(sch["law"] == law) & (sch["curve"] == "SGD, best schedule")]["risk"].iloc[-1]
    c = _best(data["sweep"], law, True)
    detail = f"clipped {c['final']:.4g} (η = {c['eta']:g}, c̃ = {c['clip']:g}); SGD best schedule {best:.4g}"
    return claims.Measurement(float(c["final"] / best), detail=detail)


def gaussian_ccc(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest Gaussian μ²/ν over the closed-form grid of
    :func:`optdyn.experiments.clipping_high_dim.gaussian_ccc_max`."""
    g = data["ccc_max"]
    return claims.Measurement(g["max"], detail=f"at c̃ = {g['clip']:.3g}, R = {g['R']:.3g}")


def t3_ccc(data: Mapping[str, Any]) -> claims.Measurement:
    """Student-t3: the largest μ²/ν over c̃ of the factor table at R = 0.05 (quadrature)."""
    f = data["factors"]
    f = f[(f["law"] == "Student-t3") & (f["R"] == 0.05)]
    row = f.loc[f["ccc"].idxmax()]
    above = f[f["ccc"] > 1]["clip"]
    detail = f"at c̃ = {row['clip']:.3g}; μ²/ν > 1 for c̃ in [{above.min():.3g}, {above.max():.3g}]"
    return claims.Measurement(float(row["ccc"]), detail=detail)


def gaussian_csc(data: Mapping[str, Any]) -> claims.Measurement:
    """Gaussian noise, c̃ = 0.5: the smallest μ/ν over R ∈ [10⁻³, 10²] (closed form)."""
    R = np.geomspace(1e-3, 1e2, 200)
    csc = theory.clipped_stability_ratio(R, 0.5, "gaussian", 1.0)
    ccc = theory.clipped_comparison_ratio(R, 0.5, "gaussian", 1.0)
    return claims.Measurement(float(csc.min()), detail=f"while μ²/ν ≤ {ccc.max():.3g} there")


def stability_log_ratio(data: Mapping[str, Any]) -> claims.Measurement:
    """η = 2.5: log10 of SGD's largest risk (capped at the divergence threshold) over the clipped runs'
    largest risk (the worst threshold)."""
    st = final_risk(data["stab"])
    sgd = float(min(st[np.isinf(st["clip"])]["max_risk"].iloc[0], DIVERGED))
    clipped = st[np.isfinite(st["clip"])]
    worst = float(clipped["max_risk"].max())
    detail = f"SGD {sgd:.3g}; clipped " + ", ".join(
        f"c̃ = {r.clip:g}: max {r.max_risk:.3g}, final {r.final:.3g}" for r in clipped.itertuples()
    )
    return claims.Measurement(math.log10(sgd / worst), detail=detail)


def quadrature_vs_closed(data: Mapping[str, Any]) -> claims.Measurement:
    """Gaussian noise: largest relative difference of quadrature and closed form, μ and E[ψ²]."""
    f = data["accuracy"]
    g = f[f["law"] == "Gaussian"]
    err = np.concatenate(
        [(g["mu_quad"] / g["mu_closed"] - 1).abs(), (g["psi2_quad"] / g["psi2_closed"] - 1).abs()]
    )
    return claims.Measurement(float(err.max()))


def quadrature_vs_mc(data: Mapping[str, Any]) -> claims.Measurement:
    """All laws: largest ``|quadrature − MC|`` / MC standard error over μ and E[ψ²] (a z-score)."""
    f = data["accuracy"]
    n = f["n_mc"]
    z_mu = (f["mu_quad"] - f["mu_mc"]).abs() / np.sqrt(f["mu_quad"] * (1 - f["mu_quad"]) / n)
    sd_psi2 = f["clip"] ** 2 / np.sqrt(n)  # ψ² ∈ [0, c̃²]: a bound on its standard error
    z_psi2 = (f["psi2_quad"] - f["psi2_mc"]).abs() / sd_psi2
    rel_mu, rel_psi2 = (
        (f["mu_quad"] / f["mu_mc"] - 1).abs().max(),
        (f["psi2_quad"] / f["psi2_mc"] - 1).abs().max(),
    )
    detail = f"largest relative error: μ {rel_mu:.2g}, E[ψ²] {rel_psi2:.2g}"
    return claims.Measurement(float(max(z_mu.max(), z_psi2.max())), detail=detail)


def ode_floor_ratio(data: Mapping[str, Any]) -> claims.Measurement:
    """The K = I clipped ODE run to t = 60 (η = 0.5, c̃ = 1, each law) ends at the root of
    4μR = ηE[ψ²] (:func:`optdyn.theory.isotropic_clipped_floor`): worst ratio."""
    t = np.linspace(0, 60, 61)
    ratios = []
    for law in NOISES:
        kw = _noise_kw(law)
        R = theory.risk_ode(np.ones(1), 0.5, t, method="clipped", clip=1.0, **kw)[1][-1]
        ratios.append(R / theory.isotropic_clipped_floor(0.5, 1.0, **kw))
    worst = max(ratios, key=lambda r: abs(r - 1))
    return claims.Measurement(float(worst), detail=", ".join(f"{r:.5f}" for r in ratios))


def best_schedule_beats_constant(data: Mapping[str, Any]) -> claims.Measurement:
    """Gaussian and Student-t3: the smallest ratio of a constant-η SGD ODE's final risk (η of the grid) to
    the best-schedule ODE's (≥ 1 if the schedule is optimal, as the comparison principle says)."""
    sch, sweep = data["schedule"], data["sweep"]
    ratios = []
    for law in ("Gaussian", "Student-t3"):
        t = sch[sch["law"] == law]["t"].unique()
        best = sch[(sch["law"] == law) & (sch["curve"] == "SGD, best schedule")]["risk"].iloc[-1]
        for eta in sorted(sweep["eta"].unique()):
            R = theory.risk_ode(np.ones(1), eta, t, method="clipped", clip=np.inf, **_noise_kw(law))[1][-1]
            ratios.append(R / best)
    return claims.Measurement(float(min(ratios)))


# ------------------------------------------------------------------------------------------ the table
SRC = "Marshall et al. 2024"

CLAIMS: list[claims.Spec] = [
    *[
        claims.paper_claim(
            f"ode-gap-{key}",
            f"Clipped SGD (η = 0.5, c̃ = 1) lies on the risk ODE under {law} noise: median relative gap "
            "|R_sim/R_ODE − 1| over t ≥ 0.5 at d ≈ 1000",
            paper="→ 0 as d → ∞ (our band: < 10 % at d ≈ 1000)",
            source=f"{SRC}, Thm 1, Fig. 1",
            band=at_most(0.10),
            measure=partial(gap_at, law=law),
        )
        for key, law in (("gaussian", "Gaussian"), ("t3", "Student-t3"), ("cauchy", "Cauchy"))
    ],
    claims.paper_claim(
        "ode-gap-shrinks",
        "The gap shrinks with d: gap at the largest d / gap at the smallest d (the worst of the three laws)",
        paper="→ 0 (rate O(log d / √d))",
        source=f"{SRC}, Thm 1",
        band=at_most(0.8),
        measure=gap_ratio,
    ),
    claims.paper_claim(
        "cauchy-sgd-fails",
        "Cauchy noise: SGD does not converge at any η of the grid while clipped SGD does (log10 of tuned "
        "SGD's final risk / the best clipped final risk)",
        paper="SGD fails, clipped SGD converges (our band: ratio ≥ 100)",
        source=f"{SRC}, Fig. 1",
        band=at_least(2.0),
        measure=cauchy_log_ratio,
    ),
    claims.paper_claim(
        "gaussian-ccc-bound",
        "Gaussian noise: μ²/ν ≤ 1 at every threshold and risk (largest value on a 400 × 400 grid, closed "
        "form)",
        paper="≤ 1",
        source=f"{SRC}, Thm 4 (theorem number unconfirmed)",
        band=at_most(1 + 1e-9),
        measure=gaussian_ccc,
    ),
    claims.paper_claim(
        "gaussian-no-gain",
        "Gaussian noise: the best clipped final risk over the (η, c̃) grid is no better than tuned SGD's "
        "(ratio, simulated)",
        paper="≥ 1 (clipping never helps)",
        source=f"{SRC}, Thm 4 and abstract",
        band=at_least(0.97),
        measure=partial(tuned_ratio, law="Gaussian"),
    ),
    claims.paper_claim(
        "t3-ccc",
        "Student-t3 noise: μ²/ν exceeds 1 on an interval of thresholds (largest value at R = 0.05)",
        paper="> 1 (heavy tails)",
        source=f"{SRC}, Sec. 5",
        band=at_least(1.2),
        measure=t3_ccc,
    ),
    claims.paper_claim(
        "t3-tuned-gain",
        "Student-t3 noise: a tuned threshold beats tuned SGD (best clipped final risk / tuned SGD's, "
        "simulated)",
        paper="< 1",
        source=f"{SRC}, Sec. 5 (figures unconfirmed)",
        band=at_most(0.85),
        measure=partial(tuned_ratio, law="Student-t3"),
    ),
    claims.paper_claim(
        "t3-beats-schedules",
        "Student-t3 noise: no learning-rate schedule of SGD recovers the gain (best clipped final risk at a "
        "constant η, simulated / SGD under its best schedule, ODE)",
        paper="< 1 (clipping is not a learning-rate schedule)",
        source=f"{SRC}, abstract of v1 ('cannot be recovered by SGD under any schedule') and Thm 3 (number "
        "unconfirmed); the best-schedule bound is our derivation",
        band=at_most(0.95),
        measure=partial(schedule_ratio, law="Student-t3"),
    ),
    claims.paper_claim(
        "gaussian-csc",
        "Gaussian noise, c̃ = 0.5: μ/ν > 1 at every risk, so clipping enlarges the stable learning rates "
        "while μ²/ν ≤ 1 (smallest μ/ν over R ∈ [10⁻³, 10²])",
        paper="> 1",
        source=f"{SRC}, Sec. 3 (CSC) and Fig. 2",
        band=at_least(1.0),
        measure=gaussian_csc,
    ),
    claims.paper_claim(
        "csc-stability-run",
        "Past SGD's limit (η = 2.5, Gaussian noise) SGD diverges while clipped SGD (c̃ = 0.5, 1) stays "
        "bounded "
        "(log10 of SGD's largest risk / the clipped runs' largest risk)",
        paper="SGD unstable, clipped SGD stable (our band: ratio ≥ 100)",
        source=f"{SRC}, Sec. 3 (CSC); the experiment is ours, the paper has none",
        band=at_least(2.0),
        measure=stability_log_ratio,
    ),
    claims.check(
        "factors-quadrature-closed",
        "Gaussian noise: the quadrature of μ and E[ψ²] equals the closed form (largest relative difference)",
        band=at_most(1e-6),
        measure=quadrature_vs_closed,
    ),
    claims.check(
        "factors-quadrature-mc",
        "All three laws: quadrature of μ and E[ψ²] against Monte Carlo from the simulator's noise sampler "
        "(largest |difference| / standard error, 24 comparisons)",
        band=at_most(4.5),
        measure=quadrature_vs_mc,
    ),
    claims.check(
        "ode-floor",
        "Our clipped risk ODE (K = I) settles at our closed-form fixed point 4μR = ηE[ψ²] (worst ratio)",
        band=within(1.0, 1e-3),
        measure=ode_floor_ratio,
    ),
    claims.check(
        "best-schedule-optimal",
        "Our best-schedule ODE ends below every constant-η SGD ODE of the grid (smallest ratio constant / "
        "best, Gaussian and Student-t3)",
        band=at_least(1.0),
        measure=best_schedule_beats_constant,
    ),
]
