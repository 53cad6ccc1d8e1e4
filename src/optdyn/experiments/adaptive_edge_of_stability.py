"""Protocol of Cohen et al. (2022), "Adaptive Gradient Methods at the Edge of Stability", at CPU scale.

A tanh MLP 64→64→64→10 on scikit-learn digits (X/16, centred), square loss (1/2n)Σ‖f(x)−y‖², float64,
full batch unless stated. Every experiment returns a DataFrame with one row per (run, probe); the chapter
plots them, and :data:`CLAIMS` measures them: each record is a small function of
``data = {"gd": ..., "momentum": ..., "adam": ..., "batches": ...}``, the four experiments' frames of one
seed.

Every "plateau" or "late" statistic is taken over the last :data:`WINDOW` (40 %) of the run, a window
that does not depend on where the predicted threshold is reached (:func:`optdyn.analysis.plateau`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import analysis, claims, theory
from ..claims import Measurement, at_least, at_most, between
from ..data import digits
from ..models import mlp
from ..optim import Adam, gd, heavy_ball, nesterov
from ..train import SharpnessTracker, train
from .profiles import profile_config

WIDTHS = (64, 64, 64, 10)
#: Fraction of the run, at its end, over which plateaus and late statistics are taken.
WINDOW = 0.4
BETAS = (0.9, 0.999)
EPS = 1e-8

PROFILES: dict[str, dict] = {
    "quick": dict(
        n=500,
        every=50,
        gd_lrs=(0.45, 0.55, 0.65),
        gd_steps=600,
        heavy_ball_lr=0.5,
        nesterov_lr=0.2,
        momentum_steps=500,
        adam_lrs=(3e-3, 1.5e-2),
        adam_steps=500,
        freeze_at=300,
        low_beta1=0.5,
        batch_sizes=(500, 100, 25),
        batch_lr=3e-3,
        batch_steps=500,
    ),
    "default": dict(
        n=1000,
        every=50,
        gd_lrs=(0.4, 0.5, 0.6),
        gd_steps=1000,
        heavy_ball_lr=0.5,
        nesterov_lr=0.2,
        momentum_steps=1000,
        adam_lrs=(2e-3, 5e-3, 1e-2),
        adam_steps=1000,
        freeze_at=300,
        low_beta1=0.5,
        batch_sizes=(1000, 250, 100, 25),
        batch_lr=3e-3,
        batch_steps=1000,
    ),
    "full": dict(
        n=1797,
        every=50,
        gd_lrs=(0.2, 0.3, 0.4, 0.5, 0.6),
        gd_steps=5000,
        heavy_ball_lr=0.5,
        nesterov_lr=0.2,
        momentum_steps=4000,
        adam_lrs=(1e-3, 2e-3, 5e-3, 1e-2, 2e-2),
        adam_steps=5000,
        freeze_at=1000,
        low_beta1=0.5,
        batch_sizes=(1797, 1000, 500, 250, 100, 50, 25),
        batch_lr=2e-3,
        batch_steps=5000,
    ),
}


def config(profile: str) -> dict:
    """The sizes and step counts of a profile."""
    return profile_config(PROFILES, profile)


def _record(run: Callable, steps: int, cfg: dict, seed: int, **columns) -> pd.DataFrame:
    """Train a fresh model with ``run(params)`` as optimizer and tag the rows with ``columns``."""
    model = mlp(WIDTHS, seed=seed)
    trajectory = train(
        model,
        run(model.parameters()),
        digits(cfg["n"]),
        steps,
        every=cfg["every"],
        seed=seed,
        progress=True,
        label=" ".join(f"{k}={v}" for k, v in columns.items()),
    )
    return _tag(trajectory, **columns)


def _tag(trajectory, **columns) -> pd.DataFrame:
    frame = trajectory.frame()
    for key, value in columns.items():
        frame[key] = value
    frame["diverged_at"] = np.nan if trajectory.diverged_at is None else trajectory.diverged_at
    return frame


def gd_at_the_edge(profile: str, seed: int = 0, lr_scale: float = 1.0) -> pd.DataFrame:
    """Full-batch GD for each η of the profile: loss, accuracy, λ1(H), and the threshold 2/η."""
    cfg = config(profile)
    frames = []
    for lr in np.asarray(cfg["gd_lrs"]) * lr_scale:
        frame = _record(lambda p, lr=lr: gd(p, lr), cfg["gd_steps"], cfg, seed, method="GD", lr=lr)
        frame["threshold"] = theory.stability_threshold("gd", lr)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def momentum_at_the_edge(
    profile: str, seed: int = 0, lr_scale: float = 1.0, beta: float = 0.9
) -> pd.DataFrame:
    """Full-batch heavy ball and Nesterov (β = 0.9, PyTorch convention) with their thresholds."""
    cfg = config(profile)
    runs = {"heavy ball": (heavy_ball, "heavy_ball"), "Nesterov": (nesterov, "nesterov")}
    frames = []
    for name, (make, key) in runs.items():
        lr = cfg[f"{key}_lr"] * lr_scale
        frame = _record(
            lambda p, make=make, lr=lr: make(p, lr, beta),
            cfg["momentum_steps"],
            cfg,
            seed,
            method=name,
            lr=lr,
        )
        frame["threshold"] = theory.stability_threshold(key, lr, beta)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def adam_at_the_edge(profile: str, seed: int = 0, lr_scale: float = 1.0) -> pd.DataFrame:
    """Full-batch Adam (β1 = 0.9, β2 = 0.999, ε = 1e-8) for each η, plus two variants at the smallest η.

    ``variant`` is "adaptive" for plain Adam, "frozen" for the branch whose preconditioner is frozen at
    step ``freeze_at`` (same prefix, deep-copied), and "beta1=0.5" for Adam with β1 = 0.5, whose
    predicted plateau is 6/η instead of 38/η. ``threshold`` is (2 + 2β1)/((1 − β1)η). Per run,
    ``eps_share`` is ε / median √ν̂ at the end (how much of P is ε rather than the gradient statistics),
    and in the frozen branch ``precond_changed`` counts the entries of P that changed after the freeze.
    """
    cfg = config(profile)
    lrs = np.sort(np.asarray(cfg["adam_lrs"])) * lr_scale
    frames = [_adam_run(cfg, seed, lr, BETAS[0], "adaptive") for lr in lrs[1:]]
    frames += _adam_with_frozen_branch(cfg, seed, lrs[0])
    frames.append(_adam_run(cfg, seed, lrs[0], cfg["low_beta1"], f"beta1={cfg['low_beta1']}"))
    return pd.concat(frames, ignore_index=True)


def eps_share(optimizer: Adam) -> float:
    """ε / median over coordinates of √ν̂ (ν̂ = ν/(1 − β2^t)): small when P is set by the gradients."""
    roots = []
    for group in optimizer.param_groups:
        beta2 = group["betas"][1]
        for p in group["params"]:
            state = optimizer.state[p]
            roots.append((state["exp_avg_sq"] / (1 - beta2 ** state["step"])).sqrt().reshape(-1))
    median = float(torch.cat(roots).median())
    return EPS / median if median > 0 else float("inf")


def _adam_run(cfg: dict, seed: int, lr: float, beta1: float, variant: str) -> pd.DataFrame:
    optimizers = []

    def make(params):
        optimizers.append(Adam(params, lr, betas=(beta1, BETAS[1]), eps=EPS))
        return optimizers[-1]

    frame = _record(make, cfg["adam_steps"], cfg, seed, method="Adam", variant=variant, lr=lr, beta1=beta1)
    frame["threshold"] = theory.adam_threshold(lr, beta1)
    frame["eps_share"] = eps_share(optimizers[0])
    return frame


def _adam_with_frozen_branch(cfg: dict, seed: int, lr: float) -> list[pd.DataFrame]:
    """Adam to ``freeze_at``, then two continuations from a deep copy: adaptive and frozen P."""
    data, t0, total = digits(cfg["n"]), cfg["freeze_at"], cfg["adam_steps"]
    model = mlp(WIDTHS, seed=seed)
    optimizer = Adam(model.parameters(), lr, betas=BETAS, eps=EPS)
    tracker = SharpnessTracker()
    prefix = train(
        model,
        optimizer,
        data,
        t0,
        every=cfg["every"],
        seed=seed,
        tracker=tracker,
        progress=True,
        label=f"Adam lr={lr:g} to t0",
    )
    frames = []
    for variant in ("adaptive", "frozen"):
        m, o, tr, traj = copy.deepcopy((model, optimizer, tracker, prefix))
        at_freeze = o.preconditioner()
        if variant == "frozen":
            o.freeze_preconditioner()
        if prefix.diverged_at is None:  # a diverged prefix is recorded as it is, not continued
            traj.rows.pop()
            train(
                m,
                o,
                data,
                total - t0,
                every=cfg["every"],
                seed=seed,
                start_step=t0,
                tracker=tr,
                trajectory=traj,
                progress=True,
                label=f"Adam lr={lr:g} {variant}",
            )
        frame = _tag(traj, method="Adam", variant=variant, lr=lr, beta1=BETAS[0])
        frame["threshold"] = theory.adam_threshold(lr, BETAS[0])
        frame["freeze_at"] = t0
        frame["eps_share"] = eps_share(o)
        frame["precond_entries"] = len(at_freeze)
        frame["precond_changed"] = _changed_entries(at_freeze, o.preconditioner())
        frames.append(frame)
    return frames


def _changed_entries(before: torch.Tensor, after: torch.Tensor) -> int:
    """Entries that differ (two NaNs count as equal: a diverged prefix freezes a NaN)."""
    same = (before == after) | (before.isnan() & after.isnan())
    return int((~same).sum())


def minibatch_adam(profile: str, seed: int = 0, lr_scale: float = 1.0) -> pd.DataFrame:
    """Adam (β1 = 0.9) at one η for each batch size; sharpness always on the whole training set."""
    cfg = config(profile)
    lr = cfg["batch_lr"] * lr_scale
    frames = []
    for batch in cfg["batch_sizes"]:
        model = mlp(WIDTHS, seed=seed)
        traj = train(
            model,
            Adam(model.parameters(), lr, betas=BETAS, eps=EPS),
            digits(cfg["n"]),
            cfg["batch_steps"],
            every=cfg["every"],
            batch_size=batch,
            seed=seed,
            progress=True,
            label=f"batch={batch}",
        )
        frame = _tag(traj, method="Adam", batch_size=batch, lr=lr, beta1=BETAS[0])
        frame["threshold"] = theory.adam_threshold(lr, BETAS[0])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# -------------------------------------------------------------------------------------- summaries


def _window_median(run: pd.DataFrame, column: str) -> float:
    """Median of ``column`` itself over the last :data:`WINDOW` of the run (no threshold involved)."""
    return analysis.plateau(run, column, 1.0, fraction=WINDOW)["median"]


def plateaus(frame: pd.DataFrame, column: str, by: list[str]) -> pd.DataFrame:
    """Per run, over the last :data:`WINDOW` of the run (:func:`optdyn.analysis.plateau`):

    - ``median``, ``q25``, ``q75``, ``n``: the ratio ``column``/threshold over the window (``onset``,
      the first probe with ratio ≥ 0.9, is for information only);
    - ``level``: the median of ``column`` itself over the window, computed without the threshold;
    - ``start_ratio``: the ratio at the first probe;
    - ``rise``: median λ1(H) over the window / λ1(H) at the first probe (progressive sharpening);
    - ``at_edge``: first probe with ratio ≥ 1; ``raw_growth``: median λ1(H) over the window / λ1(H)
      at that probe (NaN if the run never reached its threshold).

    A run that diverged did not settle: every window statistic is NaN, whatever it did before.
    """
    rows = []
    frame = frame if "sharpness" in frame else frame.assign(sharpness=np.nan)
    for key, run in frame.groupby(by, sort=False):
        threshold = run["threshold"].iloc[0]
        stats = analysis.plateau(run, column, threshold, fraction=WINDOW)
        probed = run.dropna(subset=[column])
        at_edge = analysis.onset_step(probed["step"], probed[column] / threshold, 1.0)
        edge_raw = probed.loc[probed["step"] == at_edge, "sharpness"]
        raw_late = _window_median(run, "sharpness")
        first = probed[column]
        row = {
            **dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
            **stats,
            "level": _window_median(run, column),
            "threshold": threshold,
            "start_ratio": first.iloc[0] / threshold if len(first) else np.nan,
            "rise": raw_late / probed["sharpness"].iloc[0] if len(probed) else np.nan,
            "at_edge": at_edge,
            "raw_growth": raw_late / edge_raw.iloc[0] if len(edge_raw) else np.nan,
            "diverged_at": run["diverged_at"].iloc[0],
        }
        if pd.notna(row["diverged_at"]):
            row |= {k: np.nan for k in ("median", "q25", "q75", "level", "rise", "raw_growth")}
        rows.append(row)
    return pd.DataFrame(rows)


def frozen_summary(adam: pd.DataFrame) -> dict:
    """The frozen branch against the adaptive one from the same prefix (same η): λ1(H) at the freeze
    ``t0``, the medians of λ1(H) over the last :data:`WINDOW` of each run, the step where that window
    starts, and the step at which a branch diverged (NaN if neither did)."""
    frozen = adam[adam["variant"] == "frozen"]
    lr = frozen["lr"].iloc[0]
    adaptive = adam[(adam["variant"] == "adaptive") & (adam["lr"] == lr)]
    t0 = float(frozen["freeze_at"].iloc[0])
    at_t0 = frozen.loc[frozen["step"] == t0, "sharpness"]
    diverged = pd.concat([frozen["diverged_at"], adaptive["diverged_at"]]).dropna()
    return {
        "lr": lr,
        "t0": t0,
        "window_start": (1 - WINDOW) * frozen["step"].max(),
        "at_t0": float(at_t0.iloc[0]) if len(at_t0) else np.nan,
        "frozen": _window_median(frozen, "sharpness"),
        "adaptive": _window_median(adaptive, "sharpness"),
        "diverged_at": float(diverged.min()) if len(diverged) else np.nan,
    }


def frozen_sentence(s: Mapping) -> str:
    """One sentence on :func:`frozen_summary`'s numbers (plain text, no math: it is glued into the page
    as CommonMark), for the text under the figure."""
    if pd.notna(s["diverged_at"]):
        return (
            f"In this run a branch diverged (step {s['diverged_at']:.0f}), so there is no window to compare."
        )
    return (
        f"In this run λ1(H) was {s['at_t0']:.2f} at the freeze (step {s['t0']:.0f}); over the shaded "
        f"window its median is {s['frozen']:.2f} with P frozen and {s['adaptive']:.2f} with P adapting."
    )


def raw_sharpness_since_edge(gd: pd.DataFrame, adam: pd.DataFrame) -> pd.DataFrame:
    """λ1(H) / λ1(H at the edge) against steps since the edge, for GD and adaptive Adam (β1 = 0.9).

    The edge is the first probe where the quantity the method is stable in (λ1(H) for GD, λ1(P⁻¹H) for
    Adam) reaches its threshold.
    """
    sources = [
        (gd, "sharpness", "GD", "lr"),
        (adam[adam["variant"] == "adaptive"], "precond_sharpness", "Adam", "lr"),
    ]
    frames = []
    for frame, column, method, key in sources:
        for value, run in frame.groupby(key, sort=False):
            run = run.dropna(subset=[column])
            edge = analysis.onset_step(run["step"], run[column] / run["threshold"], 1.0)
            after = run[run["step"] >= edge]
            if after.empty:
                continue
            frames.append(
                pd.DataFrame(
                    {
                        "run": f"{method}, η={value:g}",
                        "method": method,
                        "steps_since_edge": after["step"] - edge,
                        "relative_sharpness": after["sharpness"] / after["sharpness"].iloc[0],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ------------------------------------------------------------------------------ measuring functions
# Each takes one seed's ``data`` and returns a Measurement; a diverged run gives a non-finite value
# with its reason, never a silently shorter list.


def _diverged(row: Mapping) -> str:
    return f"diverged at step {row['diverged_at']:.0f}" if pd.notna(row["diverged_at"]) else ""


def _window_text(row: Mapping) -> str:
    if np.isnan(row["median"]):
        return f"no plateau: {int(row['n'])} probes in the last {WINDOW:.0%} of the run"
    return f"quartiles {row['q25']:.3f}–{row['q75']:.3f} over the last {WINDOW:.0%} ({int(row['n'])} probes)"


def _plateau_of(row: Mapping, label: str) -> Measurement:
    why = _diverged(row)
    return Measurement(
        np.nan if why else row["median"], f"{label}: {_window_text(row)}", f"{label} {why}" if why else ""
    )


def _gd(data: Mapping[str, Any]) -> pd.DataFrame:
    return plateaus(data["gd"], "sharpness", ["lr"]).sort_values("lr", ignore_index=True)


def _adaptive(data: Mapping[str, Any]) -> pd.DataFrame:
    table = plateaus(data["adam"], "precond_sharpness", ["variant", "lr", "beta1"])
    return table[table["variant"] == "adaptive"].sort_values("lr", ignore_index=True)


def _over_runs(table: pd.DataFrame, column: str, pick: Callable, fmt: str = "{:.3f}") -> Measurement:
    """``pick`` (min or max) of ``column`` over every run; NaN with the reasons if any run diverged or
    has no value (a diverged run is never dropped from the summary)."""
    detail = ", ".join(f"{fmt.format(r[column])} at η={r['lr']:g}" for _, r in table.iterrows())
    whys = [f"η={r['lr']:g} {_diverged(r)}" for _, r in table.iterrows() if _diverged(r)]
    whys += [
        f"η={r['lr']:g} never reached its threshold"
        for _, r in table.iterrows()
        if not _diverged(r) and np.isnan(r[column])
    ]
    if whys:
        return Measurement(np.nan, detail, "; ".join(whys))
    return Measurement(float(pick(table[column])), detail)


def measure_gd_sharpening(data: Mapping[str, Any]) -> Measurement:
    """Smallest over η of GD's λ1(H) over the last 40 % of the run divided by λ1(H) at step 0."""
    return _over_runs(_gd(data), "rise", np.min, "{:.2f}")


def measure_gd_eos_smallest_lr(data: Mapping[str, Any]) -> Measurement:
    """GD at the smallest η: median λ1(H)·η/2 over the last 40 % of the run."""
    row = _gd(data).iloc[0]
    return _plateau_of(row, f"η={row['lr']:g}")


def measure_gd_eos_largest_lr(data: Mapping[str, Any]) -> Measurement:
    """GD at the largest η: median λ1(H)·η/2 over the last 40 % of the run."""
    row = _gd(data).iloc[-1]
    return _plateau_of(row, f"η={row['lr']:g}")


def _momentum(method: str) -> Callable[[Mapping[str, Any]], Measurement]:
    def measure(data: Mapping[str, Any]) -> Measurement:
        table = plateaus(data["momentum"], "sharpness", ["method", "lr"])
        row = table[table["method"] == method].iloc[0]
        return _plateau_of(row, f"{method}, η={row['lr']:g}, threshold {row['threshold']:.3g}")

    measure.__name__ = f"measure_{method.lower().replace(' ', '_')}_eos"
    measure.__doc__ = f"{method} (β = 0.9): median λ1(H)/threshold over the last 40 % of the run."
    return measure


def measure_aeos_smallest_lr(data: Mapping[str, Any]) -> Measurement:
    """Adam at the smallest η: median λ1(P⁻¹H)/(38/η) over the last 40 % of the run."""
    row = _adaptive(data).iloc[0]
    return _plateau_of(row, f"η={row['lr']:g}")


def measure_aeos_largest_lr(data: Mapping[str, Any]) -> Measurement:
    """Adam at the largest η: median λ1(P⁻¹H)/(38/η) over the last 40 % of the run."""
    row = _adaptive(data).iloc[-1]
    return _plateau_of(row, f"η={row['lr']:g}")


def measure_aeos_inverse_eta(data: Mapping[str, Any]) -> Measurement:
    """Least-squares slope of log(plateau) against log η over the β1 = 0.9 runs, where the plateau is
    the median of λ1(P⁻¹H) itself over the last 40 % of the run: neither the window nor the value
    uses the predicted threshold. A diverged run makes the slope NaN."""
    table = _adaptive(data)
    measured = _over_runs(table, "level", np.min, "{:.4g}")
    if measured.why:
        return measured
    slope = analysis.log_log_slope(table["lr"].to_numpy(), table["level"].to_numpy())
    span = table["lr"].max() / table["lr"].min()
    products = ", ".join(f"η·plateau={r.lr * r.level:.1f} at η={r.lr:g}" for r in table.itertuples())
    return Measurement(slope, f"{products} (η spans {span:.0f}×)")


def measure_aeos_beta1(data: Mapping[str, Any]) -> Measurement:
    """Adam with the low β1: median λ1(P⁻¹H)/((2+2β1)/((1−β1)η)) over the last 40 % of the run."""
    table = plateaus(data["adam"], "precond_sharpness", ["variant", "lr", "beta1"])
    row = table[table["variant"].str.startswith("beta1")].iloc[0]
    return _plateau_of(row, f"β1={row['beta1']:g}, η={row['lr']:g}, threshold {row['threshold']:.0f}")


def measure_adam_raw_rises(data: Mapping[str, Any]) -> Measurement:
    """Smallest over η of Adam's median λ1(H) over the last 40 % divided by λ1(H) at the first probe
    with λ1(P⁻¹H) ≥ 38/η; NaN, with the reason, if any run diverged or never reached its edge."""
    return _over_runs(_adaptive(data), "raw_growth", np.min, "{:.2f}")


def measure_gd_raw_flat(data: Mapping[str, Any]) -> Measurement:
    """Largest over η of GD's median λ1(H) over the last 40 % divided by λ1(H) at the first probe with
    λ1(H) ≥ 2/η; NaN, with the reason, if any run diverged or never reached its edge."""
    return _over_runs(_gd(data), "raw_growth", np.max, "{:.2f}")


def measure_frozen_precond_eos(data: Mapping[str, Any]) -> Measurement:
    """The frozen-P branch: median λ1(P⁻¹H)/(38/η) over the last 40 % of the run."""
    table = plateaus(data["adam"], "precond_sharpness", ["variant", "lr"])
    row = table[table["variant"] == "frozen"].iloc[0]
    return _plateau_of(row, f"P frozen at step {int(data['adam']['freeze_at'].dropna().iloc[0])}")


def measure_frozen_raw_stops(data: Mapping[str, Any]) -> Measurement:
    """(median λ1(H) over the last 40 % − λ1(H) at the freeze), frozen branch / adaptive branch.

    Window medians, not the last probe: the frozen branch's λ1(H) need not be monotone (it can rise,
    fall at a loss spike and climb back), and a single endpoint would pick one phase of that."""
    s = frozen_summary(data["adam"])
    detail = (
        f"λ1(H) at the freeze (step {s['t0']:.0f}) {s['at_t0']:.2f}; median over the last {WINDOW:.0%}: "
        f"frozen {s['frozen']:.2f}, adaptive {s['adaptive']:.2f}"
    )
    if pd.notna(s["diverged_at"]):
        return Measurement(np.nan, detail, f"a branch diverged at step {s['diverged_at']:.0f}")
    rise = s["adaptive"] - s["at_t0"]
    if not rise > 0:
        return Measurement(np.nan, detail, "the adaptive branch did not rise after the freeze")
    return Measurement((s["frozen"] - s["at_t0"]) / rise, detail)


def measure_minibatch_weakens(data: Mapping[str, Any]) -> Measurement:
    """Spearman ρ between batch size and the median λ1(P⁻¹H)/(38/η) over the last 40 % of the run
    (λ1 on the whole training set); NaN if any run diverged."""
    table = plateaus(data["batches"], "precond_sharpness", ["batch_size"])
    detail = ", ".join(f"{r['median']:.2f} at batch {int(r['batch_size'])}" for _, r in table.iterrows())
    whys = [f"batch {int(r['batch_size'])} {_diverged(r)}" for _, r in table.iterrows() if _diverged(r)]
    if whys:
        return Measurement(np.nan, detail, "; ".join(whys))
    return Measurement(analysis.spearman(table["batch_size"], table["median"]), detail)


def check_frozen_prefix(data: Mapping[str, Any]) -> Measurement:
    """Largest difference between the frozen and adaptive branches at the probes up to the freeze
    (loss, λ1(H), λ1(P⁻¹H)): zero if branching deep-copies model, optimizer and Lanczos state."""
    adam = data["adam"]
    t0 = adam["freeze_at"].dropna().iloc[0]
    lr = adam.loc[adam["variant"] == "frozen", "lr"].iloc[0]
    cols = ["step", "loss", "sharpness", "precond_sharpness"]
    a, f = (
        adam[(adam["variant"] == v) & (adam["lr"] == lr) & (adam["step"] <= t0)].reindex(columns=cols)
        for v in ("adaptive", "frozen")
    )
    if a.shape != f.shape or not np.array_equal(a["step"], f["step"]):
        return Measurement(np.inf, why="the branches probed different steps before the freeze")
    diff = (a.to_numpy() - f.to_numpy())[~(np.isnan(a.to_numpy()) & np.isnan(f.to_numpy()))]
    largest = float(np.abs(diff).max()) if diff.size else 0.0
    return Measurement(largest, f"{len(a)} probes up to step {t0:.0f}")


def check_frozen_p_constant(data: Mapping[str, Any]) -> Measurement:
    """Entries of P that changed in the frozen branch after the freeze (0 if the freeze holds)."""
    frozen = data["adam"][data["adam"]["variant"] == "frozen"]
    entries = int(frozen["precond_entries"].iloc[0])
    return Measurement(float(frozen["precond_changed"].iloc[0]), f"of {entries} entries")


def check_eps_negligible(data: Mapping[str, Any]) -> Measurement:
    """Largest ε / median √ν̂ at the end of the full-batch Adam runs that finished: P is set by the
    gradient statistics, not by ε (if ε dominated, Adam would be momentum GD with step η/ε)."""
    adam = data["adam"]
    runs = adam.groupby(["variant", "lr", "beta1"], sort=False).first()
    finished = runs[runs["diverged_at"].isna()]
    if finished.empty:
        return Measurement(np.nan, why="every full-batch Adam run diverged")
    detail = ", ".join(f"{v} η={lr:g}: {s:.1e}" for (v, lr, _), s in finished["eps_share"].items())
    return Measurement(float(finished["eps_share"].max()), detail)


_COHEN_2021_FIG1 = "Cohen et al. 2021, Fig. 1"
_COHEN_2022_FIG1 = "Cohen et al. 2022, Fig. 1"
_FROZEN = "Cohen et al. 2022, frozen-preconditioner experiment"

#: The chapter's records, registered before its first ``default`` run (see the chapter's claims section).
CLAIMS: list[claims.Spec] = [
    claims.paper_claim(
        "gd-sharpening",
        "Progressive sharpening: GD's λ1(H) rises from its initial value to 2/η (λ1(H) over the last "
        "40 % / λ1(H) at step 0, smallest over η)",
        paper="rises to 2/η",
        source=_COHEN_2021_FIG1,
        band=at_least(1.25),
        measure=measure_gd_sharpening,
    ),
    claims.paper_claim(
        "gd-eos-smallest-lr",
        "GD at the smallest η: λ1(H) hovers at 2/η (median λ1·η/2 over the last 40 %)",
        paper=1.0,
        source=_COHEN_2021_FIG1,
        band=between(0.95, 1.2),
        measure=measure_gd_eos_smallest_lr,
    ),
    claims.paper_claim(
        "gd-eos-largest-lr",
        "GD at the largest η: λ1(H) hovers at 2/η (median λ1·η/2 over the last 40 %)",
        paper=1.0,
        source=_COHEN_2021_FIG1,
        band=between(0.95, 1.2),
        measure=measure_gd_eos_largest_lr,
    ),
    claims.paper_claim(
        "heavy-ball-eos",
        "Heavy ball (β = 0.9): λ1(H) hovers at (2+2β)/η (median ratio over the last 40 %)",
        paper=1.0,
        source="Cohen et al. 2021, Fig. 2",
        band=between(0.95, 1.2),
        measure=_momentum("heavy ball"),
    ),
    claims.paper_claim(
        "nesterov-eos",
        "Nesterov (β = 0.9): λ1(H) hovers at (2+2β)/((1+2β)η) (median ratio over the last 40 %)",
        paper=1.0,
        source="Cohen et al. 2021, Fig. 2",
        band=between(0.95, 1.2),
        measure=_momentum("Nesterov"),
    ),
    claims.paper_claim(
        "aeos-smallest-lr",
        "Adam at the smallest η: λ1(P⁻¹H) hovers at 38/η (median ratio over the last 40 %)",
        paper=1.0,
        source=_COHEN_2022_FIG1,
        band=between(0.85, 1.15),
        measure=measure_aeos_smallest_lr,
    ),
    claims.paper_claim(
        "aeos-largest-lr",
        "Adam at the largest η: λ1(P⁻¹H) hovers at 38/η (median ratio over the last 40 %)",
        paper=1.0,
        source=_COHEN_2022_FIG1,
        band=between(0.85, 1.15),
        measure=measure_aeos_largest_lr,
    ),
    claims.paper_claim(
        "aeos-inverse-eta",
        "The plateau of λ1(P⁻¹H) scales as 1/η (log-log slope of its median over the last 40 % "
        "against η, at least a 5× span of η)",
        paper=-1.0,
        source=_COHEN_2022_FIG1,
        band=between(-1.15, -0.85),
        measure=measure_aeos_inverse_eta,
    ),
    claims.paper_claim(
        "aeos-beta1",
        "Adam with β1 = 0.5: λ1(P⁻¹H) hovers at (2+2β1)/((1−β1)η) = 6/η (median ratio over the last 40 %)",
        paper=1.0,
        source="Cohen et al. 2022, Fig. 1 (β1 sweep)",
        band=between(0.85, 1.15),
        measure=measure_aeos_beta1,
    ),
    claims.paper_claim(
        "adam-raw-rises",
        "At the AEoS, Adam's raw λ1(H) keeps rising (median over the last 40 % / value at the edge, "
        "smallest over η)",
        paper="> 1, keeps rising",
        source="Cohen et al. 2022, Sec. on raw sharpness",
        band=at_least(1.3),
        measure=measure_adam_raw_rises,
    ),
    claims.paper_claim(
        "gd-raw-flat",
        "At the EoS, GD's λ1(H) stays put (median over the last 40 % / value at the edge, largest over η)",
        paper="≈ 1",
        source=_COHEN_2021_FIG1,
        band=at_most(1.15),
        measure=measure_gd_raw_flat,
    ),
    claims.paper_claim(
        "frozen-precond-eos",
        "Adam with P frozen part-way: λ1(P⁻¹H) still hovers at 38/η (median ratio over the last 40 %)",
        paper=1.0,
        source=_FROZEN,
        band=between(0.85, 1.15),
        measure=measure_frozen_precond_eos,
    ),
    claims.paper_claim(
        "frozen-raw-stops",
        "With P frozen, λ1(H) rises less than half as much as with P adapting (median over the last "
        "40 % minus the value at the freeze, frozen / adaptive)",
        paper="raw sharpness stops rising",
        source=_FROZEN,
        band=at_most(0.5),
        measure=measure_frozen_raw_stops,
    ),
    claims.paper_claim(
        "minibatch-weakens",
        "Minibatch Adam: λ1(P⁻¹H)/(38/η) is lower for smaller batches (Spearman ρ between batch size "
        "and the median ratio over the last 40 %)",
        paper="nearer 38/η as batch grows",
        source="Cohen et al. 2022, abstract",
        band=at_least(0.8),
        measure=measure_minibatch_weakens,
    ),
    claims.check(
        "frozen-branch-prefix",
        "The frozen and adaptive branches are identical up to the freeze (largest difference in loss, "
        "λ1(H), λ1(P⁻¹H))",
        band=at_most(0.0),
        measure=check_frozen_prefix,
    ),
    claims.check(
        "frozen-p-constant",
        "After the freeze, no entry of the frozen branch's P changes",
        band=at_most(0.0),
        measure=check_frozen_p_constant,
    ),
    claims.check(
        "eps-negligible",
        "ε is negligible in P: ε / median √ν̂ at the end of each full-batch Adam run (largest)",
        band=at_most(0.01),
        measure=check_eps_negligible,
    ),
]
