"""Protocol of Cohen et al. (2022), "Adaptive Gradient Methods at the Edge of Stability", at CPU scale.

A tanh MLP 64→64→64→10 on scikit-learn digits (X/16, centred), square loss (1/2n)Σ‖f(x)−y‖², float64,
full batch unless stated. Every function returns a DataFrame with one row per (run, probe); the chapter
plots them and judges the claims with :func:`claims_of`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pandas as pd

from .. import analysis, theory
from ..claims import ClaimSet, at_least, at_most, between
from ..data import digits
from ..models import mlp
from ..optim import Adam, gd, heavy_ball, nesterov
from ..train import SharpnessTracker, train

WIDTHS = (64, 64, 64, 10)

PROFILES: dict[str, dict] = {
    "quick": dict(
        n=500,
        every=25,
        gd_lrs=(0.45, 0.55, 0.65),
        gd_steps=600,
        heavy_ball_lr=0.5,
        nesterov_lr=0.2,
        momentum_steps=500,
        adam_lrs=(3e-3, 5e-3),
        adam_steps=500,
        freeze_at=300,
        low_beta1=0.5,
        batch_sizes=(500, 100, 25),
        batch_lr=3e-3,
        batch_steps=500,
    ),
    "default": dict(
        n=1000,
        every=25,
        gd_lrs=(0.4, 0.5, 0.6),
        gd_steps=1000,
        heavy_ball_lr=0.5,
        nesterov_lr=0.2,
        momentum_steps=1000,
        adam_lrs=(2e-3, 3e-3, 5e-3),
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
        adam_lrs=(1e-3, 2e-3, 3e-3, 5e-3),
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
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return PROFILES[profile]


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
    """Full-batch Adam (β1 = 0.9, β2 = 0.999, ε = 1e-8) for each η, plus two variants at the first η.

    ``variant`` is "adaptive" for plain Adam, "frozen" for the branch whose preconditioner is frozen at
    step ``freeze_at`` (same prefix, deep-copied), and "beta1=0.5" for Adam with β1 = 0.5, whose
    predicted plateau is 6/η instead of 38/η. ``threshold`` is (2 + 2β1)/((1 − β1)η).
    """
    cfg = config(profile)
    lrs = np.asarray(cfg["adam_lrs"]) * lr_scale
    frames = [_adam_run(cfg, seed, lr, 0.9, "adaptive") for lr in lrs[1:]]
    frames += _adam_with_frozen_branch(cfg, seed, lrs[0])
    frames.append(_adam_run(cfg, seed, lrs[0], cfg["low_beta1"], f"beta1={cfg['low_beta1']}"))
    return pd.concat(frames, ignore_index=True)


def _adam_run(cfg: dict, seed: int, lr: float, beta1: float, variant: str) -> pd.DataFrame:
    frame = _record(
        lambda p: Adam(p, lr, betas=(beta1, 0.999)),
        cfg["adam_steps"],
        cfg,
        seed,
        method="Adam",
        variant=variant,
        lr=lr,
        beta1=beta1,
    )
    frame["threshold"] = theory.adam_threshold(lr, beta1)
    return frame


def _adam_with_frozen_branch(cfg: dict, seed: int, lr: float) -> list[pd.DataFrame]:
    """Adam to ``freeze_at``, then two continuations from a deep copy: adaptive and frozen P."""
    data, t0, total = digits(cfg["n"]), cfg["freeze_at"], cfg["adam_steps"]
    model = mlp(WIDTHS, seed=seed)
    optimizer = Adam(model.parameters(), lr, betas=(0.9, 0.999))
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
        traj.rows.pop()
        if variant == "frozen":
            o.freeze_preconditioner()
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
        frame = _tag(traj, method="Adam", variant=variant, lr=lr, beta1=0.9)
        frame["threshold"] = theory.adam_threshold(lr, 0.9)
        frame["freeze_at"] = t0
        frames.append(frame)
    return frames


def minibatch_adam(profile: str, seed: int = 0, lr_scale: float = 1.0) -> pd.DataFrame:
    """Adam (β1 = 0.9) at one η for each batch size; sharpness always on the whole training set."""
    cfg = config(profile)
    lr = cfg["batch_lr"] * lr_scale
    frames = []
    for batch in cfg["batch_sizes"]:
        model = mlp(WIDTHS, seed=seed)
        traj = train(
            model,
            Adam(model.parameters(), lr),
            digits(cfg["n"]),
            cfg["batch_steps"],
            every=cfg["every"],
            batch_size=batch,
            seed=seed,
            progress=True,
            label=f"batch={batch}",
        )
        frame = _tag(traj, method="Adam", batch_size=batch, lr=lr, beta1=0.9)
        frame["threshold"] = theory.adam_threshold(lr, 0.9)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plateaus(frame: pd.DataFrame, column: str, by: list[str]) -> pd.DataFrame:
    """Per run: onset (first probe with column/threshold ≥ 0.9), median and quartiles of the ratio from
    then on, its value at step 0, and the growth of raw λ1(H) from the first probe at or above the
    threshold to the end (see :mod:`optdyn.analysis`). A run that diverged did not settle: its median,
    quartiles and growth are NaN, whatever it did before diverging."""
    rows = []
    for key, run in frame.groupby(by, sort=False):
        threshold = run["threshold"].iloc[0]
        stats = analysis.plateau(run, column, threshold)
        diverged = pd.notna(run["diverged_at"].iloc[0])
        if diverged:
            stats |= {"median": np.nan, "q25": np.nan, "q75": np.nan}
        at_edge = analysis.onset_step(
            run.dropna(subset=[column])["step"], run[column].dropna() / threshold, 1.0
        )
        key = key if isinstance(key, tuple) else (key,)
        first = run.dropna(subset=[column])[column]
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                **stats,
                "threshold": threshold,
                "start_ratio": first.iloc[0] / threshold if len(first) else np.nan,
                "at_edge": at_edge,
                "raw_growth": np.nan if diverged else analysis.growth(run, "sharpness", at_edge),
                "diverged_at": run["diverged_at"].iloc[0],
            }
        )
    return pd.DataFrame(rows)


def batch_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: median and quartiles of λ1(P^{-1}H)/(38/η) over the second half of training."""
    rows = [
        {
            "batch_size": b,
            **analysis.late_ratio(run, "precond_sharpness", run["threshold"].iloc[0]),
            **({"median": np.nan} if pd.notna(run["diverged_at"].iloc[0]) else {}),
            "diverged_at": run["diverged_at"].iloc[0],
        }
        for b, run in frame.groupby("batch_size", sort=False)
    ]
    return pd.DataFrame(rows)


def _iqr(row) -> str:
    if np.isnan(row["median"]):
        return f"no plateau to measure ({int(row['n'])} probes after the onset)"
    window = f"over {int(row['n'])} probes from step {row['onset']:.0f}"
    return f"quartiles {row['q25']:.3f}–{row['q75']:.3f} {window}"


def _diverged(row) -> str:
    return f"diverged at step {row['diverged_at']:.0f}" if pd.notna(row["diverged_at"]) else ""


def claims_of(
    gd: pd.DataFrame, momentum: pd.DataFrame, adam: pd.DataFrame, batches: pd.DataFrame
) -> ClaimSet:
    """Judge the chapter's claims on the four experiments' data (criteria fixed in the chapter text)."""
    card = ClaimSet("adaptive_edge_of_stability")
    g = plateaus(gd, "sharpness", ["lr"])
    card.record(
        "gd-sharpening",
        "Progressive sharpening: GD starts well below 2/η (largest λ1(H)·η/2 at step 0)",
        paper="< 1 (sharpness rises to 2/η)",
        source="Cohen et al. 2021, Fig. 1",
        measured=g["start_ratio"].max(),
        rule=at_most(0.8),
    )
    for _, row in g.iterrows():
        card.record(
            f"gd-eos-lr{row['lr']:g}",
            f"GD, η={row['lr']:g}: λ1(H) hovers at 2/η (median λ1·η/2 after onset)",
            paper=1.0,
            source="Cohen et al. 2021, Fig. 1",
            measured=row["median"],
            rule=between(0.95, 1.2),
            detail=_iqr(row),
            why=_diverged(row),
        )
    for _, row in plateaus(momentum, "sharpness", ["method", "lr"]).iterrows():
        card.record(
            f"{row['method'].lower().replace(' ', '-')}-eos",
            f"{row['method']} (β=0.9, η={row['lr']:g}): λ1(H) hovers at its threshold {row['threshold']:.3g}",
            paper=1.0,
            source="Cohen et al. 2021, Fig. 2",
            measured=row["median"],
            rule=between(0.95, 1.2),
            detail=_iqr(row),
            why=_diverged(row),
        )
    a = plateaus(adam, "precond_sharpness", ["variant", "lr", "beta1"])
    adaptive = a[(a["variant"] == "adaptive")]
    for _, row in adaptive.iterrows():
        card.record(
            f"aeos-lr{row['lr']:g}",
            f"Adam, η={row['lr']:g}: λ1(P⁻¹H) hovers at 38/η (median ratio after onset)",
            paper=1.0,
            source="Cohen et al. 2022, Fig. 1",
            measured=row["median"],
            rule=between(0.85, 1.15),
            detail=_iqr(row),
            why=_diverged(row),
        )
    slope = analysis.log_log_slope(adaptive["lr"], adaptive["median"] * adaptive["threshold"])
    card.record(
        "aeos-inverse-eta",
        "The plateau of λ1(P⁻¹H) scales as 1/η (log-log slope against η)",
        paper=-1.0,
        source="Cohen et al. 2022, Fig. 1",
        measured=slope,
        rule=between(-1.15, -0.85),
        detail=", ".join(
            f"η·plateau={r['lr'] * r['median'] * r['threshold']:.1f} at η={r['lr']:g}"
            for _, r in adaptive.iterrows()
        ),
    )
    low = a[a["variant"].str.startswith("beta1")].iloc[0]
    card.record(
        "aeos-beta1",
        f"Adam with β1={low['beta1']:g}: λ1(P⁻¹H) hovers at (2+2β1)/((1−β1)η) = {low['threshold']:.0f}",
        paper=1.0,
        source="Cohen et al. 2022, Fig. 1 (β1 sweep)",
        measured=low["median"],
        rule=between(0.85, 1.15),
        detail=_iqr(low),
        why=_diverged(low),
    )
    card.record(
        "adam-raw-rises",
        "At the AEoS, Adam's raw λ1(H) keeps rising (smallest end/at-threshold ratio over η)",
        paper="> 1, keeps rising",
        source="Cohen et al. 2022, Sec. on raw sharpness",
        measured=adaptive["raw_growth"].min(),
        rule=at_least(1.3),
        detail=", ".join(f"{r['raw_growth']:.2f} at η={r['lr']:g}" for _, r in adaptive.iterrows()),
    )
    card.record(
        "gd-raw-flat",
        "At the EoS, GD's λ1(H) stays put (largest end/at-threshold ratio over η)",
        paper="≈ 1",
        source="Cohen et al. 2021, Fig. 1",
        measured=g["raw_growth"].max(),
        why="; ".join(f"η={r['lr']:g} {_diverged(r)}" for _, r in g.iterrows() if _diverged(r)),
        rule=at_most(1.15),
        detail=", ".join(f"{r['raw_growth']:.2f} at η={r['lr']:g}" for _, r in g.iterrows()),
    )
    _frozen_claims(card, adam)
    b = batch_ratios(batches)
    card.record(
        "minibatch-weakens",
        "Minibatch Adam: λ1(P⁻¹H)/(38/η) is lower for smaller batches "
        "(Spearman ρ between batch size and late median ratio)",
        paper="nearer 38/η as batch grows",
        source="Cohen et al. 2022, abstract",
        measured=analysis.spearman(b["batch_size"], b["median"]),
        rule=at_least(0.8),
        detail=", ".join(f"{r['median']:.2f} at batch {int(r['batch_size'])}" for _, r in b.iterrows()),
    )
    return card


def _frozen_claims(card: ClaimSet, adam: pd.DataFrame) -> None:
    """Frozen P after t0: λ1(P⁻¹H) still at 38/η, and λ1(H) grows less than half as much as unfrozen."""
    runs = {v: adam[(adam["variant"] == v)] for v in ("adaptive", "frozen")}
    t0 = runs["frozen"]["freeze_at"].iloc[0]
    lr = runs["frozen"]["lr"].iloc[0]
    runs["adaptive"] = runs["adaptive"][runs["adaptive"]["lr"] == lr]
    after = runs["frozen"][runs["frozen"]["step"] > t0].dropna(subset=["precond_sharpness"])
    ratio = after["precond_sharpness"] / after["threshold"]
    diverged = runs["frozen"]["diverged_at"].iloc[0]
    why = f"frozen run diverged at step {diverged:.0f}" if pd.notna(diverged) else ""
    card.record(
        "frozen-precond-eos",
        f"Adam with P frozen at step {int(t0)}: λ1(P⁻¹H) still hovers at 38/η",
        paper=1.0,
        source="Cohen et al. 2022, frozen-preconditioner experiment",
        measured=ratio.median() if len(ratio) >= 3 and not why else None,
        rule=between(0.85, 1.15),
        detail=f"quartiles {ratio.quantile(0.25):.3f}–{ratio.quantile(0.75):.3f} after step {int(t0)}",
        why=why,
    )
    growth = {v: analysis.growth(r, "sharpness", t0) - 1 for v, r in runs.items()}
    card.record(
        "frozen-raw-stops",
        "With P frozen, λ1(H) grows less than half as much as with P adapting "
        "(growth after t0, frozen / adaptive)",
        paper="raw sharpness stops rising",
        source="Cohen et al. 2022, frozen-preconditioner experiment",
        measured=growth["frozen"] / growth["adaptive"] if growth["adaptive"] > 0 and not why else None,
        rule=at_most(0.5),
        detail=f"λ1(H) growth after t0: adaptive {growth['adaptive']:+.1%}, frozen {growth['frozen']:+.1%}",
        why=why,
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
    return pd.concat(frames, ignore_index=True)
