"""Protocol of Dauphin, Agarwala & Mobahi (2024), "Neglected Hessian component explains mysteries in
sharpness regularization", at CPU scale.

Data: scikit-learn digits (:func:`optdyn.data.digits`, all 1,797, centred), the first 500 for training and
the other 1,297 for test, float32. Model: MLP 64→64→64→10 whose units are :class:`optdyn.models.JetActivation`
(ReLU, GELU, β-GELU x·Φ(βx), or one of them with its second derivative replaced), PyTorch's default init
from the seed, the same weights for every activation of a seed. Loss: softmax cross-entropy. Every method
takes plain minibatch SGD steps (batch 64, learning rate ``LR``, no momentum): SGD itself, SAM
(:func:`optdyn.optim.sam`, whose base step is GD), and the penalized objectives of :mod:`optdyn.penalties`
(gradient penalty PSAM, weight noise, Hessian-trace and Gauss-Newton-trace penalties) given to
:func:`optdyn.train.train` as its ``objective``. Curvature: :class:`optdyn.curvature.GaussNewtonSplit`
on a fixed probe set of the first 256 training examples (Hutchinson traces and Frobenius norms), and dense
on a small float64 net for the layer blocks. One execution of the chapter is one seed: the seed draws the
init, the minibatch order and every random draw of the penalties. ``CLAIMS`` holds the paper claims and
the checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from .. import claims, optim, penalties, plotting
from ..curvature import GaussNewtonSplit, block_slices, softmax_cross_entropy
from ..data import Dataset, digits
from ..models import JetActivation, beta_gelu_derivatives, jet_mlp
from ..train import train
from .profiles import check_seed, profile_config

LR = 0.3
BATCH = 64
N_TRAIN = 500
N_PROBE = 256
WIDTHS = (64, 64, 64, 10)
DTYPE = torch.float32
#: Test accuracy below this counts as a collapsed run.
COLLAPSED = 0.5

#: name → (kind, β, second derivative) of :class:`optdyn.models.JetActivation`.
VARIANTS: dict[str, tuple[str, float, str]] = {
    "ReLU": ("relu", 1.0, "own"),
    "GELU": ("gelu", 1.0, "own"),
    "β-GELU β=4": ("beta_gelu", 4.0, "own"),
    "β-GELU β=16": ("beta_gelu", 16.0, "own"),
    "GELU, σ'' removed": ("gelu", 1.0, "zero"),
    "ReLU + GELU's σ''": ("relu", 1.0, "gelu"),
}
#: Variants whose forward pass and first derivative are those of another: SGD and SAM see only these, so
#: their SGD and SAM runs are the other's (not rerun).
SAME_FIRST_ORDER = {"GELU, σ'' removed": "GELU", "ReLU + GELU's σ''": "ReLU"}
PENALTIES = ("weight noise", "tr(H) penalty", "tr(G) penalty")

PROFILES: dict[str, dict] = {
    "quick": dict(
        steps=200,
        every=100,
        rhos=(1.0,),
        sigma2s=(0.1,),
        variants=tuple(VARIANTS),
        probes=4,
        dense_widths=(64, 8, 8, 10),
        dense_n=64,
        many_samples=5,
    ),
    "default": dict(
        steps=1500,
        every=100,
        rhos=(0.3, 1.0),
        sigma2s=(0.03, 0.1),
        variants=tuple(VARIANTS),
        probes=10,
        dense_widths=(64, 16, 16, 10),
        dense_n=128,
        many_samples=5,
    ),
    "full": dict(
        steps=5000,
        every=250,
        rhos=(0.1, 0.3, 1.0, 2.0),
        sigma2s=(0.01, 0.03, 0.1, 0.3),
        variants=tuple(VARIANTS),
        probes=20,
        dense_widths=(64, 24, 24, 10),
        dense_n=256,
        many_samples=5,
    ),
}


def config(profile: str) -> dict:
    """Steps, probe interval, SAM/PSAM radii ρ, penalty strengths σ², variants, Hutchinson probes, the dense
    net's widths and examples, and the Monte-Carlo samples of the repeated trace-penalty run."""
    return profile_config(PROFILES, profile)


def split(dtype: torch.dtype = DTYPE) -> tuple[Dataset, Dataset]:
    """The first ``N_TRAIN`` digits for training, the rest for test."""
    d = digits(1797, dtype=dtype)
    train_set = Dataset(d.X[:N_TRAIN], d.Y[:N_TRAIN], d.labels[:N_TRAIN])
    test_set = Dataset(d.X[N_TRAIN:], d.Y[N_TRAIN:], d.labels[N_TRAIN:])
    return train_set, test_set


def model_of(variant: str, seed: int, widths=WIDTHS, dtype: torch.dtype = DTYPE) -> nn.Sequential:
    """The MLP of one variant of ``VARIANTS``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    kind, beta, curvature = VARIANTS[variant]
    return jet_mlp(widths, kind, beta, curvature, seed=seed, dtype=dtype)


# ---------------------------------------------------------------------------------------------- measures


def _pre_activations(model: nn.Sequential, X: torch.Tensor) -> list[torch.Tensor]:
    """The inputs of every :class:`optdyn.models.JetActivation` of ``model`` on X."""
    out, h = [], X
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, JetActivation):
                out.append(h)
            h = layer(h)
    return out


def dead_fraction(model: nn.Sequential, X: torch.Tensor) -> float:
    """Fraction of hidden units whose pre-activation is ≤ 0 on every input of X (dead for ReLU)."""
    dead = [(x <= 0).all(dim=0) for x in _pre_activations(model, X)]
    return float(torch.cat(dead).double().mean())


def curvature_fraction(model: nn.Sequential, X: torch.Tensor, beta: float) -> float:
    """Fraction of (input, unit) pre-activations x where the β-GELU's ``|σ''_β(x)|`` exceeds 1 % of its
    peak 2βφ(0) (our threshold; the paper's is not known to us)."""
    peak = 2.0 * beta / math.sqrt(2.0 * math.pi)
    hits = [beta_gelu_derivatives(x, beta)[2].abs() > 0.01 * peak for x in _pre_activations(model, X)]
    return float(torch.cat([h.reshape(-1) for h in hits]).double().mean())


def accuracy(model: nn.Module, data: Dataset) -> float:
    with torch.no_grad():
        return float((model(data.X).argmax(1) == data.labels).double().mean())


def _split_probe(model: nn.Module, data: Dataset, probes: int, seed: int) -> dict:
    """Hutchinson traces and Frobenius norms of H, G, NME on the probe set, and the residual's size."""
    split_ = GaussNewtonSplit(model, data.X[:N_PROBE], data.Y[:N_PROBE])
    est = split_.hutchinson(probes, seed)
    row = {f"{k}_{part}": v for part, d in est.items() for k, v in d.items()}
    row["residual"] = float(split_.residual.norm() * math.sqrt(N_PROBE))  # ‖p − y‖_F/√N
    return row


# ---------------------------------------------------------------------------------------------- experiments


def nme_blocks(profile: str, seed: int) -> dict[str, Any]:
    """Dense H, G, NME (float64) of a small net on the first ``dense_n`` training digits at its init, for ReLU
    and GELU: max ``|entry|`` of every layer×layer block of the NME (weights and biases of a layer together),
    the split's identities, and GELU-vs-``nn.GELU`` agreement. Returns ``{"blocks": DataFrame, "identity":
    float, "direct": float}``."""
    check_seed(seed)
    cfg = config(profile)
    train_set, _ = split(torch.float64)
    X, Y = train_set.X[: cfg["dense_n"]], train_set.Y[: cfg["dense_n"]]
    rows, identity, direct = [], 0.0, 0.0
    gen = torch.Generator().manual_seed(seed)
    for variant in ("ReLU", "GELU"):
        model = model_of(variant, seed, cfg["dense_widths"], torch.float64)
        split_ = GaussNewtonSplit(model, X, Y)
        dense = split_.dense()
        for _ in range(3):
            v = torch.randn(split_.dim, generator=gen, dtype=torch.float64)
            hv = split_.hessian(v)
            scale = float(hv.norm())
            identity = max(
                identity,
                float((dense["hessian"] @ v - hv).norm()) / scale,
                float((dense["gauss_newton"] @ v - split_.gauss_newton(v)).norm()) / scale,
            )
            direct = max(direct, float((split_.nme(v) - split_.nme_direct(v)).norm()) / scale)
        layers: dict[str, list[slice]] = {}
        for name, sl in block_slices(model).items():
            layers.setdefault(f"layer {int(name.split('.')[0]) // 2 + 1}", []).append(sl)
        nme = dense["nme"].abs()
        top = float(nme.max())
        for a, sa in layers.items():
            for b, sb in layers.items():
                m = max(float(nme[x, y].max()) for x in sa for y in sb)
                rows.append(dict(activation=variant, row=a, col=b, max_abs=m, relative=m / top))
    return {"blocks": pd.DataFrame(rows), "identity": identity, "direct": direct}


def sizes_along_training(profile: str, seed: int) -> pd.DataFrame:
    """SGD with ReLU and GELU; every ``every`` steps the training loss, the residual ‖p − y‖_F/√N and the
    Hutchinson traces and Frobenius norms of H, G and NME on the probe set."""
    check_seed(seed)
    cfg = config(profile)
    train_set, _ = split()
    frames = []
    for variant in ("ReLU", "GELU"):
        model = model_of(variant, seed)
        traj = train(
            model,
            optim.gd(model.parameters(), LR),
            train_set,
            cfg["steps"],
            loss_fn=softmax_cross_entropy,
            every=cfg["every"],
            batch_size=BATCH,
            seed=seed,
            curvature=False,
            probe=lambda m: _split_probe(m, train_set, cfg["probes"], seed),
        )
        frames.append(traj.frame().assign(activation=variant))
    frame = pd.concat(frames, ignore_index=True)
    frame["ratio"] = frame["frobenius_nme"] / frame["frobenius_gauss_newton"]
    return frame


def _one_run(variant: str, method: str, strength: float, seed: int, cfg: dict, samples: int = 1, probe=None):
    """Train one variant with one method; returns (model, trajectory)."""
    train_set, _ = split()
    model = model_of(variant, seed)
    optimizer = (
        optim.sam(model.parameters(), LR, strength) if method == "SAM" else optim.gd(model.parameters(), LR)
    )
    objective = {
        "SGD": None,
        "SAM": None,
        "PSAM": penalties.gradient_penalty(strength) if method == "PSAM" else None,
        "weight noise": penalties.weight_noise(strength, seed) if method == "weight noise" else None,
        "tr(H) penalty": penalties.hessian_trace_penalty(strength, samples, seed)
        if method == "tr(H) penalty"
        else None,
        "tr(G) penalty": penalties.gauss_newton_trace_penalty(strength, samples, seed)
        if method == "tr(G) penalty"
        else None,
    }[method]
    traj = train(
        model,
        optimizer,
        train_set,
        cfg["steps"],
        loss_fn=softmax_cross_entropy,
        every=cfg["every"] if probe else cfg["steps"],
        batch_size=BATCH,
        seed=seed,
        curvature=False,
        objective=objective,
        probe=probe,
    )
    return model, traj


def _summary(variant, method, strength, model, traj, samples: int = 1) -> dict:
    train_set, test_set = split()
    diverged = traj.diverged_at is not None
    return dict(
        variant=variant,
        method=method,
        strength=strength,
        samples=samples,
        test_accuracy=math.nan if diverged else accuracy(model, test_set),
        train_loss=traj.rows[-1]["loss"],
        dead_fraction=dead_fraction(model, train_set.X),
        diverged=diverged,
    )


def psam_vs_sam(profile: str, seed: int) -> pd.DataFrame:
    """Test accuracy after SGD, SAM and PSAM at each ρ of the profile for every variant (SGD and SAM only
    where the variant's first-order behaviour is its own, see ``SAME_FIRST_ORDER``), with the final
    training loss, the dead-unit fraction and, for β-GELU units, the fraction of pre-activations with
    non-negligible σ''_β before and after training
    (:func:`optdyn.experiments.nme_hessian_component.curvature_fraction`)."""
    check_seed(seed)
    cfg = config(profile)
    train_set, _ = split()
    rows = []
    for variant in cfg["variants"]:
        kind, beta, _ = VARIANTS[variant]
        runs = [("PSAM", rho) for rho in cfg["rhos"]]
        if variant not in SAME_FIRST_ORDER:
            runs = [("SGD", 0.0)] + [("SAM", rho) for rho in cfg["rhos"]] + runs
        before = curvature_fraction(model_of(variant, seed), train_set.X, beta)
        for method, rho in runs:
            model, traj = _one_run(variant, method, rho, seed, cfg)
            row = _summary(variant, method, rho, model, traj)
            if kind != "relu":
                row.update(
                    beta=beta,
                    curvature_before=before,
                    curvature_after=curvature_fraction(model, train_set.X, beta),
                )
            rows.append(row)
    frame = pd.DataFrame(rows)
    for variant, base in SAME_FIRST_ORDER.items():
        if variant in cfg["variants"] and base in cfg["variants"]:
            shared = frame[(frame["variant"] == base) & frame["method"].isin(["SGD", "SAM"])]
            frame = pd.concat([frame, shared.assign(variant=variant)], ignore_index=True)
    return frame


def trace_penalties(profile: str, seed: int) -> dict[str, pd.DataFrame]:
    """GELU nets under weight noise, the Hessian-trace and the Gauss-Newton-trace penalties at each σ² (one
    Monte-Carlo sample per step), plus both trace penalties with ``many_samples`` samples at the largest σ²;
    tr(H) and tr(G) on the probe set every ``every`` steps. Returns ``{"runs", "traces"}``."""
    check_seed(seed)
    cfg = config(profile)
    train_set, _ = split()
    runs, traces = [], []
    top = max(cfg["sigma2s"])
    plan = [(m, s2, 1) for s2 in cfg["sigma2s"] for m in PENALTIES]
    plan += [(m, top, cfg["many_samples"]) for m in PENALTIES[1:]]
    for method, s2, samples in plan:
        model, traj = _one_run(
            "GELU",
            method,
            s2,
            seed,
            cfg,
            samples,
            probe=lambda m: _split_probe(m, train_set, cfg["probes"], seed),
        )
        runs.append(_summary("GELU", method, s2, model, traj, samples))
        traces.append(traj.frame().assign(method=method, strength=s2, samples=samples))
    return {"runs": pd.DataFrame(runs), "traces": pd.concat(traces, ignore_index=True)}


def run_all(profile: str, seed: int) -> dict[str, Any]:
    """Every experiment of the chapter: the data the claims are measured on."""
    return {
        "blocks": nme_blocks(profile, seed),
        "sizes": sizes_along_training(profile, seed),
        "psam": psam_vs_sam(profile, seed),
        "penalties": trace_penalties(profile, seed),
    }


# ---------------------------------------------------------------------------------------------- measuring


def _acc(frame: pd.DataFrame, variant: str, method: str, strength: float) -> float:
    rows = frame[
        (frame["variant"] == variant) & (frame["method"] == method) & np.isclose(frame["strength"], strength)
    ]
    if rows.empty:
        return math.nan
    return float(rows["test_accuracy"].iloc[0])


def _top_rho(data: Mapping) -> float:
    return float(data["psam"].loc[data["psam"]["method"] == "PSAM", "strength"].max())


def psam_minus_sam(data: Mapping, variant: str) -> float:
    """acc(PSAM) − acc(SAM) of a variant at the largest ρ (a collapsed or diverged run counts as measured)."""
    f, rho = data["psam"], _top_rho(data)
    return _acc(f, variant, "PSAM", rho) - _acc(f, variant, "SAM", rho)


def psam_minus(data: Mapping, variant: str, other: str) -> float:
    """acc(PSAM, variant) − acc(PSAM, other) at the largest ρ."""
    f, rho = data["psam"], _top_rho(data)
    return _acc(f, variant, "PSAM", rho) - _acc(f, other, "PSAM", rho)


def psam_gain(data: Mapping, variant: str) -> float:
    """acc(PSAM) − acc(SGD) of a variant at the largest ρ."""
    f, rho = data["psam"], _top_rho(data)
    return _acc(f, variant, "PSAM", rho) - _acc(f, variant, "SGD", 0.0)


def curvature_fraction_ratio(data: Mapping) -> float:
    """After SGD: the fraction of pre-activations with non-negligible σ''_β at β = 16 over that at β = 1."""
    f = data["psam"]
    sgd = f[f["method"] == "SGD"].set_index("variant")["curvature_after"]
    return float(sgd["β-GELU β=16"] / sgd["GELU"])


def early_ratio(data: Mapping) -> float:
    """The smaller over ReLU and GELU of the median ‖NME‖_F/‖G‖_F over probes after step 0 where the training
    loss is still ≥ 0.1."""
    f = data["sizes"]
    early = f[(f["step"] > 0) & (f["loss"] >= 0.1)]
    if early.empty:
        return math.nan
    return float(early.groupby("activation")["ratio"].median().min())


def nme_follows_residual(data: Mapping) -> float:
    """The smaller over ReLU and GELU of the Spearman correlation between ‖NME‖_F and the residual
    ‖p − y‖_F/√N over the probes after step 0."""
    f = data["sizes"]
    f = f[f["step"] > 0]
    return float(
        min(stats.spearmanr(g["frobenius_nme"], g["residual"])[0] for _, g in f.groupby("activation"))
    )


def _penalty_acc(data: Mapping, method: str, samples: int = 1) -> float:
    runs = data["penalties"]["runs"]
    top = runs["strength"].max()
    rows = runs[(runs["method"] == method) & (runs["samples"] == samples) & np.isclose(runs["strength"], top)]
    return float(rows["test_accuracy"].iloc[0]) if len(rows) else math.nan


def _many(data: Mapping) -> int:
    return int(data["penalties"]["runs"]["samples"].max())


def min_trace_under_trh(data: Mapping) -> float:
    """The lowest Hutchinson tr(H) on the probe set after step 0 of the one-sample tr(H)-penalty run at the
    largest σ²."""
    t = data["penalties"]["traces"]
    rows = t[
        (t["method"] == "tr(H) penalty")
        & (t["samples"] == 1)
        & np.isclose(t["strength"], t["strength"].max())
        & (t["step"] > 0)
    ]
    return float(rows["trace_hessian"].min())


def min_gauss_newton_trace(data: Mapping) -> float:
    """The lowest Hutchinson tr(G) estimate over every probe of every penalty run (G is PSD, so each
    Rademacher term rᵀGr ≥ 0)."""
    return float(data["penalties"]["traces"]["trace_gauss_newton"].min())


def relu_same_layer(data: Mapping) -> float:
    """ReLU: the largest same-layer NME block entry relative to the largest NME entry."""
    b = data["blocks"]["blocks"]
    same = b[(b["activation"] == "ReLU") & (b["row"] == b["col"])]
    return float(same["relative"].max())


def gelu_hidden_same_layer(data: Mapping) -> float:
    """GELU: the smaller relative size of the same-layer NME blocks of the two hidden layers' weights
    (layers 1 and 2; the last layer's own block is zero for every activation)."""
    b = data["blocks"]["blocks"]
    same = b[(b["activation"] == "GELU") & (b["row"] == b["col"]) & b["row"].isin(["layer 1", "layer 2"])]
    return float(same["relative"].min())


# ---------------------------------------------------------------------------------------------- claims

_SRC = "Dauphin et al. 2024"

CLAIMS: list[claims.Spec] = [
    claims.paper_claim(
        "nme-sizeable-early",
        "Before the training loss is small (≥ 0.1), ‖NME‖_F is a non-negligible fraction (≥ 0.1, ours) of "
        "‖G‖_F, for ReLU and GELU.",
        paper="NME not negligible during training (no number)",
        source=f"{_SRC}, Sec. 2-3",
        band=claims.at_least(0.1),
        measure=early_ratio,
    ),
    claims.paper_claim(
        "nme-follows-residual",
        "‖NME‖_F falls with the residual ‖p − y‖: Spearman correlation over training ≥ 0.7 (ours), "
        "ReLU and GELU.",
        paper="NME is weighted by the residual and vanishes only at interpolation",
        source=f"{_SRC}, Sec. 2",
        band=claims.at_least(0.7),
        measure=nme_follows_residual,
    ),
    claims.paper_claim(
        "beta-gelu-curvature-sparse",
        "After training, the fraction of β-GELU pre-activations with non-negligible σ''_β at β = 16 is "
        "at most half of that at β = 1.",
        paper="fraction of non-zero σ'' falls as β grows",
        source=f"{_SRC}, appendix p. 17",
        band=claims.at_most(0.5),
        measure=curvature_fraction_ratio,
    ),
    claims.paper_claim(
        "psam-gelu-tracks-sam",
        "With GELU, PSAM's test accuracy is within 0.5 point of SAM's at the largest ρ.",
        paper="SAM and PSAM-GELU track each other",
        source=f"{_SRC}, Fig. 1",
        band=claims.between(-0.005, 0.005),
        measure=lambda d: psam_minus_sam(d, "GELU"),
    ),
    claims.paper_claim(
        "psam-relu-below-sam",
        "With ReLU, PSAM's test accuracy is at least 0.5 point below SAM's at the largest ρ.",
        paper="PSAM-ReLU drops well below SAM at large ρ",
        source=f"{_SRC}, Fig. 1",
        band=claims.at_most(-0.005),
        measure=lambda d: psam_minus_sam(d, "ReLU"),
    ),
    claims.paper_claim(
        "removing-sigma2-hurts",
        "PSAM with GELU beats PSAM with GELU whose σ'' is removed by at least 0.5 point at the largest ρ.",
        paper="GELU with activation NME ablated loses the PSAM gain",
        source=f"{_SRC}, Fig. 2",
        band=claims.at_least(0.005),
        measure=lambda d: psam_minus(d, "GELU", "GELU, σ'' removed"),
    ),
    claims.paper_claim(
        "adding-sigma2-helps",
        "PSAM with ReLU given GELU's σ'' beats PSAM with plain ReLU by at least 0.5 point at the largest ρ.",
        paper="ReLU with synthetic NME regains accuracy",
        source=f"{_SRC}, Fig. 3",
        band=claims.at_least(0.005),
        measure=lambda d: psam_minus(d, "ReLU + GELU's σ''", "ReLU"),
    ),
    claims.paper_claim(
        "psam-gain-shrinks-with-beta",
        "PSAM's gain over SGD at β = 1 exceeds its gain at β = 16 by at least 0.5 point (largest ρ).",
        paper="PSAM gain over SGD shrinks and turns negative as β grows",
        source=f"{_SRC}, appendix p. 17",
        band=claims.at_least(0.005),
        measure=lambda d: psam_gain(d, "GELU") - psam_gain(d, "β-GELU β=16"),
    ),
    claims.paper_claim(
        "gn-trace-beats-hessian-trace",
        "At the largest σ², the tr(G) penalty's test accuracy beats the tr(H) penalty's by at least "
        "0.5 point.",
        paper="GN-trace penalty consistently better than Hessian-trace penalty",
        source=f"{_SRC}, Fig. 4",
        band=claims.at_least(0.005),
        measure=lambda d: _penalty_acc(d, "tr(G) penalty") - _penalty_acc(d, "tr(H) penalty"),
    ),
    claims.paper_claim(
        "gn-trace-beats-weight-noise",
        "At the largest σ², the tr(G) penalty's test accuracy beats weight noise by at least 0.5 point.",
        paper="GN-trace penalty consistently better than weight noise",
        source=f"{_SRC}, Fig. 4",
        band=claims.at_least(0.005),
        measure=lambda d: _penalty_acc(d, "tr(G) penalty") - _penalty_acc(d, "weight noise"),
    ),
    claims.paper_claim(
        "gap-survives-more-samples",
        "With 5 Monte-Carlo samples per step, the tr(G) penalty still beats the tr(H) penalty by at least "
        "0.5 point at the largest σ².",
        paper="Hessian-trace penalty stays unstable with 5 Hutchinson samples",
        source=f"{_SRC}, Fig. 5",
        band=claims.at_least(0.005),
        measure=lambda d: (
            _penalty_acc(d, "tr(G) penalty", _many(d)) - _penalty_acc(d, "tr(H) penalty", _many(d))
        ),
    ),
    claims.paper_claim(
        "trace-h-goes-negative",
        "Under the tr(H) penalty at the largest σ², tr(H) on the probe set falls below 0 during training.",
        paper="tr(H) driven to large negative values",
        source=f"{_SRC}, Fig. 6",
        band=claims.at_most(0.0),
        measure=min_trace_under_trh,
    ),
    claims.paper_claim(
        "gn-trace-comparable-to-psam",
        "The tr(G) penalty (largest σ²) and PSAM with GELU (largest ρ) reach test accuracies within 1 point.",
        paper="regularizing exploitation only performs comparably to gradient penalties",
        source=f"{_SRC}, abstract",
        band=claims.between(-0.01, 0.01),
        measure=lambda d: _penalty_acc(d, "tr(G) penalty") - _acc(d["psam"], "GELU", "PSAM", _top_rho(d)),
    ),
    claims.check(
        "split-matches-dense",
        "H v (jvp of grad) and G v (jvp, H_z, vjp) equal the dense float64 H and G times v (relative error).",
        band=claims.at_most(1e-10),
        measure=lambda d: d["blocks"]["identity"],
    ),
    claims.check(
        "nme-two-routes",
        "NME v = Hv − Gv equals the HVP of Σ c·z with the residual c frozen (relative error).",
        band=claims.at_most(1e-10),
        measure=lambda d: d["blocks"]["direct"],
    ),
    claims.check(
        "relu-same-layer-zero",
        "ReLU: every same-layer NME block is zero (largest entry relative to the largest NME entry).",
        band=claims.at_most(1e-10),
        measure=relu_same_layer,
    ),
    claims.check(
        "gelu-same-layer-nonzero",
        "GELU: the hidden layers' same-layer NME blocks are not zero (relative size ≥ 0.01).",
        band=claims.at_least(0.01),
        measure=gelu_hidden_same_layer,
    ),
    claims.check(
        "trace-g-nonnegative",
        "Every Hutchinson estimate of tr(G) is ≥ 0 (G is PSD).",
        band=claims.at_least(0.0),
        measure=min_gauss_newton_trace,
    ),
]


# ---------------------------------------------------------------------------------------------- figures

COLOURS = {
    "SGD": "#4c72b0",
    "SAM": "#55a868",
    "PSAM": "#c44e52",
    "weight noise": "#8172b2",
    "tr(H) penalty": "#dd8452",
    "tr(G) penalty": "#64b5cd",
    "ReLU": "#c44e52",
    "GELU": "#4c72b0",
}


def figure_sizes(sizes: pd.DataFrame):
    """Left: ‖G‖_F and ‖NME‖_F against the training loss; right: ‖NME‖_F against the residual."""
    fig, (ax_l, ax_r) = plotting.panels(2)
    for act, g in sizes[sizes["step"] > 0].groupby("activation"):
        c = COLOURS[act]
        ax_l.plot(g["loss"], g["frobenius_gauss_newton"], "o-", color=c, label=f"{act}: ‖G‖_F")
        ax_l.plot(g["loss"], g["frobenius_nme"], "s--", color=c, label=f"{act}: ‖NME‖_F")
        ax_r.plot(g["residual"], g["frobenius_nme"], "s--", color=c, label=act)
    ax_l.set(xscale="log", yscale="log", xlabel="training loss", ylabel="Frobenius norm (probe set)")
    ax_l.invert_xaxis()
    ax_r.set(xscale="log", yscale="log", xlabel="residual ‖p − y‖_F/√N", ylabel="‖NME‖_F")
    ax_r.invert_xaxis()
    ax_l.legend(fontsize=8)
    ax_r.legend()
    return fig


def figure_blocks(blocks: pd.DataFrame):
    """Heat maps of the largest ``|NME|`` entry per layer×layer block, ReLU and GELU (log colour scale)."""
    import seaborn as sns
    from matplotlib.colors import LogNorm

    fig, axes = plotting.panels(2, width=4.6, height=3.8)
    floor = 1e-6 * blocks["max_abs"].max()
    for ax, (act, g) in zip(axes, blocks.groupby("activation", sort=False), strict=True):
        raw = g.pivot(index="row", columns="col", values="max_abs")
        heat = raw.clip(lower=floor)
        sns.heatmap(
            heat,
            ax=ax,
            annot=raw,
            fmt=".1e",
            norm=LogNorm(vmin=floor, vmax=blocks["max_abs"].max()),
            cbar=False,
        )
        ax.set(title=f"{act}: max |NME entry| per block", xlabel="layer", ylabel="layer")
    return fig


def figure_psam(psam: pd.DataFrame):
    """Test accuracy against ρ for SGD (ρ = 0), SAM and PSAM; one panel per activation (ReLU, GELU), mean
    of this seed's runs."""
    fig, axes = plotting.panels(2)
    for ax, variant in zip(axes, ("ReLU", "GELU"), strict=True):
        f = psam[psam["variant"] == variant]
        sgd = f[f["method"] == "SGD"]["test_accuracy"]
        for method in ("SAM", "PSAM"):
            g = f[f["method"] == method].sort_values("strength")
            ax.plot(
                [0.0, *g["strength"]],
                [float(sgd.iloc[0]), *g["test_accuracy"]],
                "o-",
                color=COLOURS[method],
                label=method,
            )
        ax.axhline(float(sgd.iloc[0]), color=COLOURS["SGD"], ls=":", label="SGD")
        ax.set(title=variant, xlabel="radius ρ", ylabel="test accuracy")
        ax.legend()
    return fig


def figure_ablations(psam: pd.DataFrame):
    """PSAM's test accuracy minus SGD's at each ρ for every variant (ReLU, GELU, β-GELU, and the two σ''
    interventions); the dead-unit fraction of each PSAM run beside it."""
    fig, (ax_g, ax_d) = plotting.panels(2)
    sgd = psam[psam["method"] == "SGD"].set_index("variant")["test_accuracy"]
    p = psam[psam["method"] == "PSAM"]
    variants = list(dict.fromkeys(p["variant"]))
    width = 0.8 / max(1, p["strength"].nunique())
    for i, (rho, g) in enumerate(p.groupby("strength")):
        g = g.set_index("variant").reindex(variants)
        x = np.arange(len(variants)) + i * width
        ax_g.bar(x, g["test_accuracy"] - sgd.reindex(variants).to_numpy(), width, label=f"ρ = {rho:g}")
        ax_d.bar(x, g["dead_fraction"], width, label=f"ρ = {rho:g}")
    for ax in (ax_g, ax_d):
        ax.set_xticks(
            np.arange(len(variants)) + 0.4 - width / 2, variants, rotation=35, ha="right", fontsize=8
        )
        ax.legend()
    ax_g.axhline(0, color="black", lw=0.8)
    ax_g.set(ylabel="PSAM − SGD test accuracy", title="gain of the gradient penalty")
    ax_d.set(ylabel="fraction of dead units", title="dead units after PSAM (control)")
    return fig


def figure_penalties(pen: Mapping[str, pd.DataFrame]):
    """Left: test accuracy against σ² for the three penalties; right: tr(H) (solid) and tr(G) (dashed) on
    the probe set along training under each one-sample penalty at the largest σ²."""
    fig, (ax_a, ax_t) = plotting.panels(2)
    runs = pen["runs"]
    for method, g in runs[runs["samples"] == 1].groupby("method"):
        g = g.sort_values("strength")
        ax_a.plot(g["strength"], g["test_accuracy"], "o-", color=COLOURS[method], label=method)
    many = runs[runs["samples"] > 1]
    for _, r in many.iterrows():
        ax_a.plot(
            r["strength"],
            r["test_accuracy"],
            "*",
            ms=12,
            color=COLOURS[r["method"]],
            label=f"{r['method']}, {r['samples']} samples",
        )
    ax_a.set(xscale="log", xlabel="σ²", ylabel="test accuracy")
    ax_a.legend(fontsize=8)
    t = pen["traces"]
    top = t[(t["samples"] == 1) & np.isclose(t["strength"], t["strength"].max())]
    for method, g in top.groupby("method"):
        ax_t.plot(g["step"], g["trace_hessian"], "-", color=COLOURS[method], label=f"{method}: tr(H)")
        ax_t.plot(g["step"], g["trace_gauss_newton"], "--", color=COLOURS[method], label=f"{method}: tr(G)")
    ax_t.axhline(0, color="black", lw=0.8)
    ax_t.set(xlabel="step", ylabel="trace (probe set)", title=f"σ² = {t['strength'].max():g}")
    ax_t.legend(fontsize=7)
    return fig
