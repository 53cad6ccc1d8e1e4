"""Protocol of Jiang, Malik & Li (2023), "How does adaptive optimization impact local neural network
geometry?".

Two networks trained from the same initialisation with Adam and with SGD + momentum (heavy ball, μ = 0.9),
each at the best learning rate of a small grid (tuned on seed 0 by the final training loss): a tiny causal
transformer language model on synthetic Markov-chain "text" (:func:`optdyn.data.markov_tokens`) and a tanh
MLP on digits (the contrast case). At a few checkpoints per run, the statistic R_med of every weight matrix
(:func:`optdyn.local_geometry.r_med`) is computed from exact Hessian-diagonal entries (HVPs) on a fixed
evaluation batch, on a fixed random subset of coordinates per block (the same subset for both optimizers).
Third, the two-layer linear network of the paper's theory (:mod:`optdyn.theory.linear_network`), trained
full-batch by GD and by Adam at three input-scale spreads, with the closed-form Hessian diagonal.
Every function returns a DataFrame; :func:`claims_of` judges the claims.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import data, local_geometry, models, theory
from ..claims import ClaimSet, at_least, at_most, between
from ..optim import Adam, heavy_ball

PROFILES: dict[str, dict] = {
    "quick": dict(
        seeds=1, lm_steps=300, mlp_steps=300, tune_steps=100, checkpoints=3, coords=16, lm_n=512,
        eval_n=32, lin_steps=400, lin_every=20, spreads=(1.0, 30.0),
    ),
    "default": dict(
        seeds=3, lm_steps=600, mlp_steps=600, tune_steps=200, checkpoints=4, coords=24, lm_n=1024,
        eval_n=48, lin_steps=1500, lin_every=25, spreads=(1.0, 10.0, 30.0),
    ),
    "full": dict(
        seeds=5, lm_steps=5000, mlp_steps=3000, tune_steps=1500, checkpoints=10, coords=None, lm_n=8192,
        eval_n=256, lin_steps=20000, lin_every=100, spreads=(1.0, 3.0, 10.0, 30.0, 100.0),
    ),
}  # fmt: skip

GRIDS = {
    "adam": (3e-3, 1e-2, 3e-2, 1e-1),
    "sgdm": (0.03, 0.1, 0.3, 1.0),
}  # learning-rate grids, tuned on seed 0  # learning-rate grids, tuned on seed 0
LIN_GRIDS = {"adam": (1e-3, 3e-3, 1e-2), "gd": (0.1, 0.2, 0.4, 0.8)}  # GD: in units of 1/spread²
LM = dict(vocab=128, context=16, width=16, depth=1, heads=2, hidden=32)
BRANCHING = 8  # successors per token of the Markov chain
BATCH = 32
MOMENTUM = 0.9
DIVERGED = 1e3
OPTIMIZERS = ("adam", "sgdm")


def config(profile: str) -> dict:
    """The sizes and step counts of a profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return PROFILES[profile]


def _check(arch: str, seed: int) -> None:
    if arch not in ("lm", "mlp"):
        raise ValueError(f"unknown architecture {arch!r}; known: lm, mlp")
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must lie in [0, 2**31), got {seed}")


def _setup(arch: str, cfg: dict, seed: int):
    """Model (init from ``seed``), training inputs/targets, a loss on a batch, and the Hessian batch."""
    if arch == "lm":
        model = models.tiny_lm(**LM, seed=seed)
        ds = data.markov_tokens(cfg["lm_n"], LM["context"], LM["vocab"], BRANCHING, seed=1)
        X, Y = ds.X, ds.Y
        crit = nn.CrossEntropyLoss()

        def loss(out, y):
            return crit(out.reshape(-1, LM["vocab"]), y.reshape(-1))

        hess = slice(0, cfg["eval_n"])
    else:
        model = models.mlp([64, 64, 64, 10], "tanh", seed=seed)
        ds = data.digits(1000)
        X, Y = ds.X, ds.labels
        loss = nn.CrossEntropyLoss()
        hess = slice(0, 4 * cfg["eval_n"])
    return model, X, Y, loss, hess


def _optimizer(name: str, params, lr: float):
    if name == "adam":
        return Adam(params, lr=lr)
    if name == "sgdm":
        return heavy_ball(params, lr=lr, momentum=MOMENTUM)
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def run(arch: str, opt: str, lr: float, cfg: dict, seed: int, steps: int, probe: bool) -> list[dict]:
    """Train one run; rows of (step, loss) every steps/checkpoints steps, with per-layer R_med if ``probe``.

    ``loss`` is the training loss on the whole training set. A non-finite or exploding loss stops the run
    (the row gets ``diverged = True``).
    """
    _check(arch, seed)
    model, X, Y, loss_fn, hess = _setup(arch, cfg, seed)
    optimizer = _optimizer(opt, model.parameters(), lr)
    blocks = local_geometry.weight_blocks(model)
    subsets = local_geometry.coordinate_subsets(blocks, cfg["coords"], seed=12345)
    marks = set(np.linspace(0, steps, cfg["checkpoints"] + 1).round().astype(int).tolist())
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for step in range(steps + 1):
        if step in marks:
            with torch.no_grad():
                full = float(loss_fn(model(X), Y))
            row = dict(arch=arch, opt=opt, lr=lr, seed=seed, step=step, loss=full, diverged=False)
            if not full < DIVERGED:
                rows.append({**row, "diverged": True})
                break
            if probe:
                stats = local_geometry.layer_r_med(lambda: loss_fn(model(X[hess]), Y[hess]), blocks, subsets)
                for layer, s in stats.items():
                    rows.append({**row, "layer": layer, **{k: v for k, v in s.items() if k != "diagonal"}})
                    rows[-1]["diagonal"] = s["diagonal"]
            else:
                rows.append(row)
        if step == steps:
            break
        idx = torch.as_tensor(rng.choice(len(X), BATCH, replace=False))
        optimizer.zero_grad(set_to_none=True)
        batch_loss = loss_fn(model(X[idx]), Y[idx])
        if not batch_loss.item() < DIVERGED:
            rows.append(dict(arch=arch, opt=opt, lr=lr, seed=seed, step=step, loss=math.inf, diverged=True))
            break
        batch_loss.backward()
        optimizer.step()
    return rows


def tune(arch: str, profile: str) -> pd.DataFrame:
    """Final training loss of each (optimizer, lr) of ``GRIDS`` on seed 0; ``best`` marks the chosen."""
    cfg = config(profile)
    rows = []
    for opt, grid in GRIDS.items():
        for lr in grid:
            last = run(arch, opt, lr, cfg, 0, cfg["tune_steps"], probe=False)[-1]
            final = last["loss"] if not last["diverged"] else math.inf
            rows.append(dict(arch=arch, opt=opt, lr=lr, final_loss=final))
    frame = pd.DataFrame(rows)
    frame["best"] = frame.groupby("opt")["final_loss"].transform("min") == frame["final_loss"]
    return frame


def trajectories(arch: str, profile: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tune, then train Adam and SGD+M at their best lr for each seed with R_med probes.

    Returns (rows per (opt, seed, step, layer) with r_med, r_med_signed, negative, diagonal, loss; the grid).
    """
    _check(arch, seed)
    cfg = config(profile)
    grid = tune(arch, profile)
    rows = []
    for opt in OPTIMIZERS:
        lr = float(grid[(grid["opt"] == opt) & grid["best"]]["lr"].iloc[0])
        for s in range(seed, seed + cfg["seeds"]):
            rows += run(arch, opt, lr, cfg, s, cfg[f"{arch}_steps"], probe=True)
    return pd.DataFrame(rows), grid


def layer_ratios(traj: pd.DataFrame, late: float = 0.5) -> pd.DataFrame:
    """R^SGD_med / R^Adam_med per (seed, step, layer) at checkpoints after the first ``late`` of training."""
    probes = traj.dropna(subset=["layer"])
    probes = probes[probes["step"] >= late * probes["step"].max()]
    wide = probes.pivot_table(index=["seed", "step", "layer"], columns="opt", values="r_med")
    wide = wide.dropna().reset_index()
    wide["ratio"] = wide["sgdm"] / wide["adam"]
    return wide


def median_over_layers(traj: pd.DataFrame) -> pd.DataFrame:
    """Per (opt, seed, step): the training loss and the median over layers of R_med."""
    probes = traj.dropna(subset=["layer"])
    return probes.groupby(["opt", "seed", "step"], as_index=False).agg(
        loss=("loss", "first"), r_med=("r_med", "median")
    )


def matched_loss_ratio(traj: pd.DataFrame, levels: int = 3) -> pd.DataFrame:
    """R^SGD/R^Adam (median over layers) at matched training loss, per seed.

    For each seed, loss levels are placed geometrically between the larger of the two runs' final losses
    and the smaller of their losses after the first checkpoint; each run's log R_med is interpolated
    linearly in log loss at those levels.
    """
    med = median_over_layers(traj)
    med = med[med["step"] > 0]
    rows = []
    for seed, g in med.groupby("seed"):
        runs = {o: r.sort_values("step") for o, r in g.groupby("opt")}
        if set(runs) != set(OPTIMIZERS):
            continue
        lo = max(r["loss"].min() for r in runs.values())
        hi = min(r["loss"].max() for r in runs.values())
        if not lo < hi:
            continue
        for level in np.geomspace(lo, hi, levels):
            r = {
                o: _interp_log(level, run["loss"].to_numpy(), run["r_med"].to_numpy())
                for o, run in runs.items()
            }
            rows.append(
                dict(seed=seed, loss=level, adam=r["adam"], sgdm=r["sgdm"], ratio=r["sgdm"] / r["adam"])
            )
    return pd.DataFrame(rows, columns=["seed", "loss", "adam", "sgdm", "ratio"])


def _interp_log(level: float, loss: np.ndarray, value: np.ndarray) -> float:
    order = np.argsort(loss)
    return float(np.exp(np.interp(np.log(level), np.log(loss[order]), np.log(value[order]))))


# --- the two-layer linear network -------------------------------------------------------------------------


def _linear_run(spread: float, opt: str, lr: float, cfg: dict, seed: int) -> list[dict]:
    """Full-batch GD (heavy ball, μ = 0) or Adam on (LN-1); closed-form Hessian diagonal every lin_every."""
    problem = theory.linear_net_problem(spread=spread, seed=seed)
    W1, W2 = theory.linear_net_init(problem.X.shape[1], 32, problem.Y.shape[1], seed=seed)
    optimizer = Adam([W1, W2], lr=lr) if opt == "adam" else heavy_ball([W1, W2], lr=lr, momentum=0.0)
    balanced = theory.balanced_r_med(problem.X)
    rows = []
    for step in range(cfg["lin_steps"] + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = theory.linear_net_loss(W1, W2, problem.X, problem.Y)
        if step % cfg["lin_every"] == 0 or step == cfg["lin_steps"] or not math.isfinite(loss.item()):
            h1, h2 = theory.linear_net_hessian_diagonal(W1, W2, problem.X)
            rows.append(
                dict(spread=spread, opt=opt, lr=lr, seed=seed, step=step, loss=loss.item(),
                     r_w1=local_geometry.r_med(h1), r_w2=local_geometry.r_med(h2), balanced=balanced,
                     imbalance=theory.unit_imbalance(W2))
            )  # fmt: skip
            if not math.isfinite(loss.item()) or loss.item() > 1e6:
                break
        if step == cfg["lin_steps"]:
            break
        loss.backward()
        optimizer.step()
    return rows


def linear_network(profile: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GD vs Adam on the two-layer linear network at each input-scale spread; lr tuned on seed 0 per spread.

    Returns (trajectory rows: loss, R_med of W1 and W2, the balanced reference (LN-3), unit imbalance;
    the tuning grid with the final losses).
    """
    if not 0 <= seed < 2**31:
        raise ValueError(f"seed must lie in [0, 2**31), got {seed}")
    cfg = config(profile)
    rows, grid = [], []
    for spread in cfg["spreads"]:
        for opt, lrs in LIN_GRIDS.items():
            best = (math.inf, lrs[0], [])
            for base in lrs:
                lr = base if opt == "adam" else base / spread**2
                trial = _linear_run(spread, opt, lr, cfg, seed)
                final = trial[-1]["loss"] if math.isfinite(trial[-1]["loss"]) else math.inf
                grid.append(dict(spread=spread, opt=opt, lr=lr, final_loss=final))
                best = min(best, (final, lr, trial), key=lambda b: b[0])
            rows += best[2]  # the tuning run at the chosen lr is the first seed's run
            for s in range(seed + 1, seed + cfg["seeds"]):
                rows += _linear_run(spread, opt, best[1], cfg, s)
    return pd.DataFrame(rows), pd.DataFrame(grid)


def linear_matched(lin: pd.DataFrame, fractions=(1e-1, 1e-2, 1e-3)) -> pd.DataFrame:
    """R^GD_med / R^Adam_med of W1 and W2 at the first checkpoint where loss ≤ fraction × initial loss."""
    rows = []
    for (spread, seed), g in lin.groupby(["spread", "seed"]):
        first = g[g["step"] == 0]["loss"].iloc[0]
        for f in fractions:
            hit = {o: r[r["loss"] <= f * first].sort_values("step").head(1) for o, r in g.groupby("opt")}
            if any(len(h) == 0 for h in hit.values()) or len(hit) < 2:
                continue
            gd, ad = hit["gd"].iloc[0], hit["adam"].iloc[0]
            rows.append(dict(spread=spread, seed=seed, fraction=f, gd_step=gd["step"], adam_step=ad["step"],
                             ratio_w1=gd["r_w1"] / ad["r_w1"], ratio_w2=gd["r_w2"] / ad["r_w2"]))  # fmt: skip
    return pd.DataFrame(rows)


# --- claims ---------------------------------------------------------------------------------------------


def claims_of(lm: pd.DataFrame, mlp: pd.DataFrame, lin: pd.DataFrame) -> ClaimSet:
    """Judge the chapter's claims; rules were fixed before the first run (see the chapter)."""
    card = ClaimSet("adam_local_geometry")
    ratios = layer_ratios(lm)
    per_layer = ratios.groupby("layer", sort=False)["ratio"].median()
    layers = "per-layer medians: " + ", ".join(
        f"{k.removesuffix('.weight')} {v:.2g}" for k, v in per_layer.items()
    )
    finals = lm.dropna(subset=["layer"]).groupby(["opt", "seed"])["loss"].last().unstack("opt")
    card.record(
        "lm-adam-faster", "Adam reaches a lower training loss than SGD+M at equal steps (transformer LM)",
        paper="Adam faster on language models", source="abstract; training curves",
        measured=float((finals["sgdm"] / finals["adam"]).median()), rule=at_least(1.0),
        detail=f"final loss SGD+M/Adam per seed: {_fmt((finals['sgdm'] / finals['adam']).tolist())}",
        why="SGD+M matched Adam on this tiny model and synthetic data",
    )  # fmt: skip
    card.record(
        "lm-direction", "R^SGD_med > R^Adam_med for most (layer, seed, late checkpoint) of the transformer",
        paper="Adam's R_med below SGD+M's in every reported layer",
        source="table (via Ahn et al. 2024, Sec. 2.3)",
        measured=float((ratios["ratio"] > 1).mean()), rule=at_least(0.6),
        detail=f"{len(ratios)} comparisons", why=layers,
    )  # fmt: skip
    card.record(
        "lm-margin", "median R^SGD_med / R^Adam_med over layers, seeds and late checkpoints (transformer)",
        paper="1.43–3.54 (mean per layer; std 0.5–1.2)", source="table (via Ahn et al. 2024, Sec. 2.3)",
        measured=float(ratios["ratio"].median()), rule=between(1.4, 3.6),
        detail=_spread(ratios["ratio"]), why=layers,
    )  # fmt: skip
    matched = matched_loss_ratio(lm)
    card.record(
        "lm-matched-loss",
        "the gap persists at matched training loss (median over layers, seeds, loss levels)",
        paper="gap along the trajectory (our reading)", source="brief claim 2 (unconfirmed in the paper)",
        measured=float(matched["ratio"].median()) if len(matched) else None, rule=at_least(1.0),
        detail=_spread(matched["ratio"]) if len(matched) else "no common loss range",
        why="at equal loss SGD+M's iterates are not worse conditioned",
    )  # fmt: skip
    mlp_ratios = layer_ratios(mlp)
    card.record(
        "mlp-contrast", "no large gap on a non-transformer image model (tanh MLP on digits)",
        paper="gap absent for CNNs on images", source="via Ahn et al. 2024, Sec. 2.3",
        measured=float(mlp_ratios["ratio"].median()), rule=at_most(1.4), detail=_spread(mlp_ratios["ratio"]),
        why="the MLP shows a gap as large as the paper's transformer gap",
    )  # fmt: skip
    lm_ = linear_matched(lin)
    last = lin.sort_values("step").groupby(["spread", "opt", "seed"]).last()["imbalance"]
    unit = last.groupby(["spread", "opt"]).median()
    top, low = lm_["spread"].max(), lm_["spread"].min()
    at_top = lm_[lm_["spread"] == top]["ratio_w1"].median()
    card.record(
        "lin-ratio", f"linear net, spread {top:g}: R^GD_med(W1)/R^Adam_med(W1) at matched loss",
        paper="R^GD_med ≫ R^Adam_med (theorem; constants unconfirmed)", source="theorem (linear network)",
        measured=float(at_top), rule=at_least(2.0), detail=_spread(lm_[lm_["spread"] == top]["ratio_w1"]),
        why=f"unit imbalance at the end: GD {unit[(top, 'gd')]:.2g}, Adam {unit[(top, 'adam')]:.2g}",
    )  # fmt: skip

    def gap(spread: float) -> float:
        return unit[(spread, "gd")] / unit[(spread, "adam")]

    at_low = lm_[lm_["spread"] == low]["ratio_w1"].median()
    card.record(
        "lin-grows", f"the GD/Adam ratio grows with the input non-uniformity (spread {top:g} vs {low:g})",
        paper="R^GD_med grows with non-uniformity", source="theorem (linear network)",
        measured=float(at_top / at_low), rule=at_least(1.0),
        detail=f"ratio {at_low:.3g} at spread {low:g}, {at_top:.3g} at spread {top:g}",
        why=f"end unit imbalance, GD/Adam: {gap(low):.2g} at spread {low:g}, {gap(top):.2g} at {top:g}",
    )  # fmt: skip
    adam_unit = last.xs("adam", level="opt").median()
    end = lin[lin["opt"] == "adam"].sort_values("step").groupby(["spread", "seed"]).last()
    card.record(
        "lin-adam-balanced", "Adam ends within 2× of the balanced-network value (LN-3), worst spread",
        paper="R^Adam_med = O(1)", source="theorem (linear network)",
        measured=float((end["r_w1"] / end["balanced"]).max()), rule=at_most(2.0),
        detail=_fmt((end["r_w1"] / end["balanced"]).tolist()),
        why=f"Adam's unit imbalance at the end is {adam_unit:.2g}, not 1",
    )  # fmt: skip
    return card


def _fmt(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def _spread(x: pd.Series) -> str:
    q = np.quantile(x, [0.25, 0.75]) if len(x) else [math.nan, math.nan]
    return f"n = {len(x)}, quartiles {q[0]:.3g}–{q[1]:.3g}"
