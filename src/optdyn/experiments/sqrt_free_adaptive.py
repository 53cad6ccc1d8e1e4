"""Protocol of Lin et al. (2024), "Can We Remove the Square-Root in Adaptive Gradient Methods?", at CPU scale.

scikit-learn digits (8×8, X/16 standardised with the training means), a fixed stratified split
960 train / 240 validation / 597 test. Models: :func:`optdyn.models.strided_cnn` and
:func:`optdyn.models.tiny_vit` (4×4 patches). Four optimizers (``optdyn.optim``): SGD with
momentum, AdamW, RF-RMSProp and IF-Shampoo, each over its own log-spaced learning-rate grid; cross-entropy,
batch 64, learning rate ×0.1 at 50% and 75% of the epochs. The learning rate is chosen on the validation
split with the base seed; the chosen one is rerun with further seeds; test accuracy is reported.
Low precision: the same runs with parameters, gradients and optimizer states in bfloat16.
Every function returns DataFrames; the chapter plots them and judges the claims with :func:`claims_of`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from ..claims import ClaimSet, at_least, at_most, within
from ..models import n_params, strided_cnn, tiny_vit
from ..optim.root_free import (
    IFShampoo,
    RFRMSProp,
    adamw,
    sgd_momentum,
    shampoo_state_bytes,
    state_bytes,
)

#: The optimizers compared, in plotting order.
OPTIMIZERS = ("SGD", "AdamW", "RF-RMSProp", "IF-Shampoo")
#: The models: :func:`optdyn.models.strided_cnn` and :func:`optdyn.models.tiny_vit`.
MODELS = ("CNN", "ViT")
BATCH = 64
#: A minibatch loss above this (or not finite) ends a run as diverged (chance-level CE is ln 10 ≈ 2.3).
DIVERGED_LOSS = 1e4
#: Fixed hyperparameters (paper notation: lr_cov = β2, damping = λ); only the learning rate is searched.
HYPER = {
    "SGD": dict(momentum=0.9, weight_decay=5e-4),
    "AdamW": dict(momentum=0.9, lr_cov=1e-2, eps=1e-8, weight_decay=0.05),
    "RF-RMSProp": dict(momentum=0.9, lr_cov=1e-2, damping=1e-4, weight_decay=5e-4),
    "IF-Shampoo": dict(momentum=0.9, lr_cov=0.1, riemannian_momentum=0.5, damping=1e-4, weight_decay=5e-4),
}
#: Four log-spaced learning rates per model and method (a shared grid would be unfair: their scales
#: differ by orders of magnitude). Set after two seed-0 pilot sweeps so that no chosen rate sat on an edge.
LR_GRIDS = {
    "CNN": {
        "SGD": (0.01, 0.03, 0.1, 0.3),
        "AdamW": (3e-3, 1e-2, 3e-2, 1e-1),
        "RF-RMSProp": (3e-3, 1e-2, 3e-2, 1e-1),
        "IF-Shampoo": (3e-4, 1e-3, 3e-3, 1e-2),
    },
    "ViT": {
        "SGD": (0.01, 0.03, 0.1, 0.3),
        "AdamW": (1e-3, 3e-3, 1e-2, 3e-2),
        "RF-RMSProp": (3e-3, 1e-2, 3e-2, 1e-1),
        "IF-Shampoo": (1e-3, 3e-3, 1e-2, 3e-2),
    },
}
#: ``full``: seven rates per method, from a third of the smallest to three times the largest.
FULL_GRIDS = {
    kind: {k: tuple(float(x) for x in np.geomspace(v[0] / 3, v[-1] * 3, 7)) for k, v in grids.items()}
    for kind, grids in LR_GRIDS.items()
}

PROFILES: dict[str, dict] = {
    "quick": dict(epochs=3, seeds=1, grids=LR_GRIDS, cnn=dict(width=8), vit=dict(width=16, depth=2)),
    "default": dict(epochs=15, seeds=3, grids=LR_GRIDS, cnn=dict(width=8), vit=dict(width=16, depth=2)),
    "full": dict(epochs=60, seeds=5, grids=FULL_GRIDS, cnn=dict(width=32), vit=dict(width=64, depth=4)),
}


def config(profile: str) -> dict:
    """The sizes, epochs, seeds and grids of a profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    return PROFILES[profile]


@dataclass(frozen=True)
class Split:
    """Train / validation / test images (N, 1, 8, 8) and labels."""

    X: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]

    def to(self, dtype: torch.dtype) -> Split:
        return Split({k: v.to(dtype) for k, v in self.X.items()}, self.y)


def digits_split(split_seed: int = 0) -> Split:
    """Stratified 960 / 240 / 597 split of the 1,797 digits; X/16 minus the training pixel means."""
    raw = load_digits()
    X, y = raw.data / 16.0, raw.target
    idx_trval, idx_test = train_test_split(
        np.arange(len(y)), test_size=597, stratify=y, random_state=split_seed
    )
    idx_train, idx_val = train_test_split(
        idx_trval, test_size=240, stratify=y[idx_trval], random_state=split_seed
    )
    mean = X[idx_train].mean(axis=0)
    parts = {"train": idx_train, "val": idx_val, "test": idx_test}
    images = {
        k: torch.tensor(X[i] - mean, dtype=torch.float32).reshape(-1, 1, 8, 8) for k, i in parts.items()
    }
    return Split(images, {k: torch.tensor(y[i]) for k, i in parts.items()})


def make_model(kind: str, cfg: dict, seed: int, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The profile's CNN or ViT, initialised from ``seed``."""
    if kind == "CNN":
        return strided_cnn(seed=seed, dtype=dtype, **cfg["cnn"])
    if kind == "ViT":
        return tiny_vit(seed=seed, dtype=dtype, **cfg["vit"])
    raise ValueError(f"unknown model {kind!r}; known: {', '.join(MODELS)}")


def make_optimizer(name: str, params, lr: float, batch_size: int = BATCH) -> torch.optim.Optimizer:
    """One of :data:`OPTIMIZERS` with the fixed hyperparameters of :data:`HYPER` and learning rate ``lr``."""
    hp = HYPER.get(name)
    if hp is None:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    if not lr > 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if name == "SGD":
        return sgd_momentum(params, lr, **hp)
    if name == "AdamW":
        return adamw(params, lr, **hp)
    if name == "RF-RMSProp":
        return RFRMSProp(params, lr, batch_size=batch_size, **hp)
    return IFShampoo(params, lr, batch_size=batch_size, update_every=2, **hp)


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def train_run(
    kind: str,
    optimizer: str,
    lr: float,
    seed: int,
    cfg: dict,
    data: Split,
    dtype: torch.dtype = torch.float32,
) -> tuple[dict, pd.DataFrame]:
    """Train once; return the summary (val/test accuracy, state bytes, divergence, time) and per-epoch curves.

    A minibatch loss that is not finite or exceeds :data:`DIVERGED_LOSS` stops the run: ``diverged`` is
    True and the accuracies are NaN. (A run whose ReLUs all die stays finite and is recorded at chance.)
    """
    data = data.to(dtype)
    model = make_model(kind, cfg, seed, dtype)
    opt = make_optimizer(optimizer, model.parameters(), lr)
    epochs = cfg["epochs"]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [epochs // 2, (3 * epochs) // 4], gamma=0.1)
    rng = np.random.default_rng(seed)
    Xtr, ytr = data.X["train"], data.y["train"]
    curves, diverged, start = [], False, time.perf_counter()
    for epoch in range(epochs):
        losses = []
        order = torch.as_tensor(rng.permutation(len(ytr)))
        for i in range(0, len(ytr) - BATCH + 1, BATCH):
            b = order[i : i + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(Xtr[b]), ytr[b])
            if not float(loss.detach()) <= DIVERGED_LOSS:
                diverged = True
                break
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        if diverged:
            break
        sched.step()
        curves.append(
            dict(
                epoch=epoch + 1,
                train_loss=float(np.mean(losses)),
                test_acc=_accuracy(model, data.X["test"], data.y["test"]),
            )
        )
    nan = float("nan")
    summary = dict(
        model=kind,
        optimizer=optimizer,
        lr=lr,
        seed=seed,
        dtype=str(dtype).removeprefix("torch."),
        val_acc=nan if diverged else _accuracy(model, data.X["val"], data.y["val"]),
        test_acc=nan if diverged else curves[-1]["test_acc"],
        diverged=diverged,
        state_bytes=state_bytes(opt),
        seconds=time.perf_counter() - start,
    )
    frame = pd.DataFrame(curves).assign(
        model=kind, optimizer=optimizer, lr=lr, seed=seed, dtype=summary["dtype"]
    )
    return summary, frame


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= 990:
        raise ValueError(f"seed must lie in [0, 990] (seeds seed … seed+4 are used), got {seed}")


@dataclass
class Study:
    """The learning-rate sweep (base seed, validation accuracy), the chosen rates, the seed repeats
    (test accuracy) and the per-epoch curves of every run."""

    sweep: pd.DataFrame
    chosen: dict[tuple[str, str], float]
    runs: pd.DataFrame
    curves: pd.DataFrame


def lr_sweep(profile: str, seed: int, data: Split | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model × optimizer × grid learning rate at the base seed, fp32: one row per run, and curves."""
    _check_seed(seed)
    cfg, data = config(profile), data or digits_split()
    rows, curves = [], []
    for kind in MODELS:
        for name in OPTIMIZERS:
            for lr in cfg["grids"][kind][name]:
                row, frame = train_run(kind, name, float(lr), seed, cfg, data)
                rows.append(row)
                curves.append(frame)
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def select_lr(sweep: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Per (model, optimizer) the grid rate with the best validation accuracy (diverged runs never win;
    ties go to the smaller rate). NaN when every rate diverged."""
    chosen = {}
    for (kind, name), g in sweep.groupby(["model", "optimizer"], sort=False):
        ok = g[~g["diverged"]].sort_values("lr")
        chosen[(kind, name)] = float(ok.loc[ok["val_acc"].idxmax(), "lr"]) if len(ok) else float("nan")
    return chosen


def accuracy_study(profile: str, seed: int) -> Study:
    """Sweep at ``seed``, choose each rate on validation, rerun it at seeds seed+1 … (fp32)."""
    cfg, data = config(profile), digits_split()
    sweep, sweep_curves = lr_sweep(profile, seed, data)
    chosen = select_lr(sweep)
    runs, curves = _at_chosen(sweep, sweep_curves, chosen, seed, cfg, data)
    return Study(sweep, chosen, runs, curves)


def _at_chosen(sweep, sweep_curves, chosen, seed, cfg, data):
    """The base-seed run at the chosen rate (reused from the sweep) plus the extra seeds."""
    rows, curves = [], []
    for (kind, name), lr in chosen.items():
        if math.isnan(lr):
            continue
        pick = (sweep["model"] == kind) & (sweep["optimizer"] == name) & (sweep["lr"] == lr)
        rows.append(sweep[pick].iloc[0].to_dict())
        pick_c = (
            (sweep_curves["model"] == kind) & (sweep_curves["optimizer"] == name) & (sweep_curves["lr"] == lr)
        )
        curves.append(sweep_curves[pick_c])
        for s in range(seed + 1, seed + cfg["seeds"]):
            row, frame = train_run(kind, name, lr, s, cfg, data)
            rows.append(row)
            curves.append(frame)
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def low_precision(
    profile: str, seed: int, chosen: dict[tuple[str, str], float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chosen-rate runs again with parameters, gradients and optimizer states in bfloat16."""
    _check_seed(seed)
    cfg, data = config(profile), digits_split()
    rows, curves = [], []
    for (kind, name), lr in chosen.items():
        if math.isnan(lr):
            continue
        for s in range(seed, seed + cfg["seeds"]):
            row, frame = train_run(kind, name, lr, s, cfg, data, torch.bfloat16)
            rows.append(row)
            curves.append(frame)
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy (%) per model × optimizer × dtype: mean, std over seeds, runs, diverged runs."""
    g = runs.assign(acc=100 * runs["test_acc"]).groupby(["model", "optimizer", "dtype"], sort=False)
    out = g.agg(lr=("lr", "first"), mean=("acc", "mean"), std=("acc", "std"), runs=("acc", "size"))
    out["diverged"] = g["diverged"].sum()
    return out.reset_index()


def memory(profile: str) -> pd.DataFrame:
    """Optimizer-state bytes measured from the state tensors after one step, per model × optimizer × dtype,
    with the parameter count and Shampoo's account (:func:`optdyn.optim.shampoo_state_bytes`)."""
    cfg, data = config(profile), digits_split()
    rows = []
    for kind in MODELS:
        for dtype in (torch.float32, torch.bfloat16):
            for name in OPTIMIZERS:
                model = make_model(kind, cfg, 0, dtype)
                opt = make_optimizer(name, model.parameters(), 1e-3)
                loss = nn.functional.cross_entropy(
                    model(data.X["train"][:BATCH].to(dtype)), data.y["train"][:BATCH]
                )
                loss.backward()
                opt.step()
                rows.append(_memory_row(kind, name, dtype, model, opt))
            rows.append(
                dict(
                    model=kind,
                    optimizer="Shampoo (account, fp32)",
                    dtype="float32",
                    params=n_params(model),
                    state_bytes=shampoo_state_bytes(model.parameters()),
                )
            )
    frame = pd.DataFrame(rows).drop_duplicates(["model", "optimizer", "dtype"])
    frame["bytes_per_param"] = frame["state_bytes"] / frame["params"]
    return frame


def _memory_row(kind: str, name: str, dtype: torch.dtype, model: nn.Module, opt) -> dict:
    return dict(
        model=kind,
        optimizer=name,
        dtype=str(dtype).removeprefix("torch."),
        params=n_params(model),
        state_bytes=state_bytes(opt),
    )


# ------------------------------------------------------------------------------------ sign descent toy


def toy_problem(seed: int, n: int = 64, d: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares l(w) = (1/2n)‖Xw − y‖², X (n × d) Gaussian, y = X w* + noise (float64)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.randn(d, generator=g, dtype=torch.float64) + 0.1 * torch.randn(
        n, generator=g, dtype=torch.float64
    )
    return X, y


def _update(name: str, X, y, w0, lr, beta, eps, scale=1.0, steps=1) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``steps`` full-batch steps; return (last update Δw, last gradient). Adam: torch Adam with
    β1 = β2' = beta (torch's β2 = 1 − lr_cov); RF: RFRMSProp with lr_cov = 1 − beta, damping = eps."""
    w = w0.clone().requires_grad_(True)
    if name == "Adam":
        opt = torch.optim.Adam([w], lr=lr, betas=(beta, beta), eps=eps)
    else:
        opt = RFRMSProp([w], lr=lr, lr_cov=1 - beta, damping=eps, momentum=beta, batch_size=len(y))
    for _ in range(steps):
        opt.zero_grad()
        loss = scale * 0.5 * ((X @ w - y) ** 2).mean()
        loss.backward()
        before = w.detach().clone()
        opt.step()
    return (w.detach() - before), w.grad.detach()


def sign_descent(seed: int, lr: float = 1e-2) -> dict[str, pd.DataFrame]:
    """Adam vs root-free at β → 0, ε → 0 on the toy problem.

    ``ratios``: ``|Δw_j|/lr`` per coordinate at β = 0, ε = λ = 0 (Adam: 1 = sign descent; RF: ``1/(B|g_j|)``).
    ``scale``: ‖Δw‖ under the loss c·l for c ∈ {0.1, 1, 10} (Adam invariant, RF ∝ 1/c).
    ``limit``: ``max_j |−Δw_j/lr − sign(g_j)|`` after 20 steps as β and ε shrink (0 for sign descent).
    """
    _check_seed(seed)
    X, y = toy_problem(seed)
    w0 = torch.zeros(X.shape[1], dtype=torch.float64)
    rows = []
    for name in ("Adam", "RF"):
        dw, g = _update(name, X, y, w0, lr, 0.0, 0.0)
        rows += [
            dict(method=name, coord=j, ratio=float(r), inv_Bg=float(1 / (len(y) * abs(gj))))
            for j, (r, gj) in enumerate(zip(dw.abs() / lr, g, strict=True))
        ]
    scale = [
        dict(method=name, c=c, update_norm=float(_update(name, X, y, w0, lr, 0.0, 0.0, scale=c)[0].norm()))
        for name in ("Adam", "RF")
        for c in (0.1, 1.0, 10.0)
    ]
    limit = []
    for name in ("Adam", "RF"):
        for eps in (1e-2, 1e-4, 1e-8, 0.0):
            for beta in (0.9, 0.5, 0.1, 0.0):
                dw, g = _update(name, X, y, w0, lr, beta, eps, steps=20)
                limit.append(
                    dict(method=name, eps=eps, beta=beta, deviation=float((-dw / lr - g.sign()).abs().max()))
                )
    return dict(ratios=pd.DataFrame(rows), scale=pd.DataFrame(scale), limit=pd.DataFrame(limit))


def bf16_root_fails() -> bool:
    """Whether an eigendecomposition (Shampoo's inverse root) refuses a bfloat16 matrix on this machine."""
    A = torch.eye(4, dtype=torch.bfloat16)
    try:
        torch.linalg.eigh(A)
    except RuntimeError:
        return True
    return False


# ------------------------------------------------------------------------------------------------ claims


def _gap(s: pd.DataFrame, kind: str, a: str, b: str, dtype: str = "float32") -> tuple[float, float, str]:
    """mean(a) − mean(b) in pp, the larger seed std of the two, and a detail string."""
    pick = s[(s["model"] == kind) & (s["dtype"] == dtype)].set_index("optimizer")
    ra, rb = pick.loc[a], pick.loc[b]
    std = float(np.nanmax([ra["std"], rb["std"], 0.0]))
    detail = (
        f"{a} {ra['mean']:.2f} ± {ra['std']:.2f}%, {b} {rb['mean']:.2f} ± {rb['std']:.2f}% "
        f"({int(ra['runs'])} seeds)"
    )
    return float(ra["mean"] - rb["mean"]), std, detail


def claims_of(
    study: Study, low: pd.DataFrame, mem: pd.DataFrame, sign: dict[str, pd.DataFrame], root_fails: bool
) -> ClaimSet:
    """Judge the chapter's claims (criteria fixed in the chapter text before the runs)."""
    card = ClaimSet("sqrt_free_adaptive")
    s = summary(pd.concat([study.runs, low], ignore_index=True))
    _accuracy_claims(card, s)
    _precision_claims(card, s)
    _memory_claims(card, mem, root_fails)
    _sign_claims(card, sign)
    return card


def _accuracy_claims(card: ClaimSet, s: pd.DataFrame) -> None:
    src = "Lin et al. 2024, Fig. 1 (CIFAR-100 CNNs; accuracies plotted, not tabulated)"
    gap, std, detail = _gap(s, "CNN", "SGD", "AdamW")
    card.record(
        "cnn-adamw-below-sgd",
        "CNN: AdamW's test accuracy is below SGD's (gap, pp)",
        paper="AdamW below SGD by several pp (plotted)",
        source=src,
        measured=gap,
        rule=at_least(1.0),
        detail=detail,
        why="SGD − AdamW is under 1 pp (see detail): at this scale there is little or no gap to close",
    )
    gap, std, detail = _gap(s, "CNN", "RF-RMSProp", "SGD")
    tol = max(1.0, 2 * std)
    card.record(
        "cnn-rf-closes-gap",
        "CNN: RF-RMSProp's test accuracy is within noise of SGD's (|gap|, pp)",
        paper="RF ≈ SGD, RF ≥ AdamW",
        source=src,
        measured=abs(gap),
        rule=at_most(tol),
        detail=f"{detail}; tolerance max(1, 2 std) = {tol:.2f} pp",
    )
    gap, std, detail = _gap(s, "ViT", "RF-RMSProp", "AdamW")
    tol = max(1.5, 2 * std)
    card.record(
        "vit-rf-matches-adamw",
        "ViT: RF-RMSProp's test accuracy matches AdamW's (|gap|, pp)",
        paper="RF ≈ AdamW",
        source="Lin et al. 2024, Fig. 1 (ImageWoof-10 Swin-T, FocalNet, GC-ViT)",
        measured=abs(gap),
        rule=at_most(tol),
        detail=f"{detail}; tolerance max(1.5, 2 std) = {tol:.2f} pp",
    )
    for kind in MODELS:
        best = max(("SGD", "AdamW", "RF-RMSProp"), key=lambda n: _gap(s, kind, n, "IF-Shampoo")[0])
        gap, std, detail = _gap(s, kind, best, "IF-Shampoo")
        tol = max(1.5, 2 * std)
        card.record(
            f"{kind.lower()}-ifshampoo",
            f"{kind}: IF-Shampoo is within noise of (or above) the best other method (best − IF, pp)",
            paper="IF-Shampoo matches or beats AdamW and Shampoo",
            source="Lin et al. 2024, IF-Shampoo figure (numbers unconfirmed)",
            measured=gap,
            rule=at_most(tol),
            detail=f"{detail}; tolerance {tol:.2f} pp",
        )


def _drop(s: pd.DataFrame, kind: str, name: str) -> tuple[float, float, str]:
    """fp32 − bf16 mean test accuracy (pp), the larger seed std, and a detail string."""
    fp = s[(s["model"] == kind) & (s["optimizer"] == name)].set_index("dtype")
    f32, b16 = fp.loc["float32"], fp.loc["bfloat16"]
    std = float(np.nanmax([f32["std"], b16["std"], 0.0]))
    detail = (
        f"{name}: fp32 {f32['mean']:.2f}%, bf16 {b16['mean']:.2f}% "
        f"({int(b16['diverged'])} of {int(b16['runs'])} bf16 runs diverged)"
    )
    return float(f32["mean"] - b16["mean"]), std, detail


def _precision_claims(card: ClaimSet, s: pd.DataFrame) -> None:
    src = "Lin et al. 2024, abstract and IF-Shampoo bf16 figure; authors' README"
    for kind in MODELS:
        for name in ("RF-RMSProp", "IF-Shampoo"):
            drop, std, detail = _drop(s, kind, name)
            tol = max(1.0, 2 * std)
            card.record(
                f"{kind.lower()}-bf16-{name.split('-')[0].lower()}",
                f"{kind}: {name} trained in bfloat16 loses at most noise (fp32 − bf16, pp)",
                paper="trains in bf16 as well as fp32",
                source=src,
                measured=drop,
                rule=at_most(tol),
                detail=f"{detail}; tolerance {tol:.2f} pp",
                why="see the detail for diverged runs",
            )
        drop_rf, std, detail_rf = _drop(s, kind, "RF-RMSProp")
        drop_adam, std_adam, detail_adam = _drop(s, kind, "AdamW")
        tol = max(1.0, 2 * max(std, std_adam))
        card.record(
            f"{kind.lower()}-bf16-rf-vs-adamw",
            f"{kind}: in bfloat16 RF-RMSProp loses no more than AdamW (drop RF − drop AdamW, pp)",
            paper="RF trains better than root-based methods in low precision",
            source=src,
            measured=drop_rf - drop_adam,
            rule=at_most(tol),
            detail=f"{detail_rf}; {detail_adam}; tolerance {tol:.2f} pp",
        )


def _memory_claims(card: ClaimSet, mem: pd.DataFrame, root_fails: bool) -> None:
    src = "Lin et al. 2024, Sec. on memory/low precision; authors' README (numbers unconfirmed)"
    m = mem.set_index(["model", "optimizer", "dtype"])["state_bytes"]
    for kind in MODELS:
        ratio = m[(kind, "RF-RMSProp", "float32")] / m[(kind, "AdamW", "float32")]
        card.record(
            f"{kind.lower()}-mem-rf-adamw",
            f"{kind}: RF-RMSProp's state bytes / AdamW's (fp32)",
            paper="1 (two vectors each)",
            source=src,
            measured=ratio,
            rule=within(1.0, 0.01),
            detail=f"RF {m[(kind, 'RF-RMSProp', 'float32')]:,} B, AdamW {m[(kind, 'AdamW', 'float32')]:,} B",
        )
        ratio = m[(kind, "IF-Shampoo", "bfloat16")] / m[(kind, "Shampoo (account, fp32)", "float32")]
        card.record(
            f"{kind.lower()}-mem-if-shampoo",
            f"{kind}: IF-Shampoo's bf16 state bytes / Shampoo's fp32 state (account)",
            paper="≤ 0.5 (bf16 factors vs fp32 statistics and roots)",
            source=src,
            measured=ratio,
            rule=at_most(0.5),
            detail=(
                f"IF-Shampoo bf16 {m[(kind, 'IF-Shampoo', 'bfloat16')]:,} B, "
                f"Shampoo fp32 {m[(kind, 'Shampoo (account, fp32)', 'float32')]:,} B"
            ),
        )
    card.record(
        "shampoo-root-bf16",
        "An eigendecomposition (Shampoo's inverse root) cannot run on a bfloat16 matrix (1 = refused)",
        paper="Shampoo needs fp32 for its root",
        source="Lin et al. 2024, authors' README",
        measured=float(root_fails),
        rule=at_least(1.0),
    )


def _sign_claims(card: ClaimSet, sign: dict[str, pd.DataFrame]) -> None:
    src = "Lin et al. 2024, Sec. 2 / Fig. 4 (sign-descent reading of Adam)"
    r = sign["ratios"]
    adam, rf = r[r["method"] == "Adam"], r[r["method"] == "RF"]
    card.record(
        "sign-adam",
        "Adam at β = 0, ε = 0: |Δw_j|/lr = 1 on every coordinate (max |ratio − 1|)",
        paper="0 (sign descent)",
        source=src,
        measured=float((adam["ratio"] - 1).abs().max()),
        rule=at_most(1e-9),
    )
    card.record(
        "sign-rf",
        "Root-free at β = 0, λ = 0: |Δw_j|/lr = 1/(B|g_j|) (max relative error)",
        paper="0 (Newton-like, not sign)",
        source=src,
        measured=float(((rf["ratio"] - rf["inv_Bg"]) / rf["inv_Bg"]).abs().max()),
        rule=at_most(1e-9),
        detail=f"RF ratios span {rf['ratio'].min():.3g} … {rf['ratio'].max():.3g}",
    )
    sc = sign["scale"].set_index(["method", "c"])["update_norm"]
    card.record(
        "scale-adam",
        "Adam: ‖Δw‖ under loss 10·l / under l",
        paper="1 (scale invariant)",
        source=src,
        measured=sc[("Adam", 10.0)] / sc[("Adam", 1.0)],
        rule=within(1.0, 1e-6),
    )
    card.record(
        "scale-rf",
        "Root-free: ‖Δw‖ under loss 10·l / under l",
        paper="0.1 (scales as 1/c)",
        source=src,
        measured=sc[("RF", 10.0)] / sc[("RF", 1.0)],
        rule=within(0.1, 1e-6),
    )
    lim = sign["limit"].set_index(["method", "eps", "beta"])["deviation"]
    card.record(
        "limit-rf-not-sign",
        "Root-free at β = 0, λ = 0 after 20 steps: max_j |−Δw_j/lr − sign(g_j)|",
        paper="> 0 (no sign-descent limit)",
        source=src,
        measured=lim[("RF", 0.0, 0.0)],
        rule=at_least(0.5),
        detail=f"Adam's at β = ε = 0: {lim[('Adam', 0.0, 0.0)]:.2g}",
    )
