"""Protocol of Beaglehole, Mitliagkas & Agarwala (2024), "Feature learning as alignment", at CPU scale.

Two tasks: scikit-learn digits (the 61 pixels that are not constant, standardized; 1,536 train / 261 test;
targets one-hot − 1/10 as in the authors' code) and a synthetic low-rank target (x ~ N(0, I_32),
y = relu(u₁·x)(u₂·x) standardized, 1,024 train / 512 test, U = [u₁ u₂] a random orthonormal pair). Model: a
bias-free ReLU MLP with ``depth`` hidden layers of ``width`` units and a bias-free readout, PyTorch's default
init (:func:`optdyn.models.mlp`). Loss (1/2n)Σ‖f(x) − y‖² (:func:`optdyn.train.half_mse`), minibatch 128.

As in the authors' code, a warm-up epoch at learning rate 1e-4 comes first; its end is "epoch 0". Then
either plain SGD at learning rate 0.4 (the authors' 2.0·C/10 on the mean-squared error over n·C entries is
0.4 on our loss, for every C) or our speed-limited optimization (SLO, :func:`optdyn.optim.speed_limited`):
layer 1 takes normalized steps of length :data:`SPEED`·‖W₁(0)‖_F, every other weight matrix normalized steps
of :data:`SLOW`·‖W(0)‖_F, both falling linearly to 0 over the run.

Statistics (:mod:`optdyn.features`) at log-spaced epochs plus a few late ones: UC-NFA, C-NFA (both
correlation conventions) and ‖ΔW‖/‖W‖ per hidden layer, with K_l on a fixed subset of the training inputs.
One execution of the chapter is one seed: the seed draws the init, the minibatch order and the synthetic
data. ``CLAIMS`` declares the paper claims and the checks of our code with their bands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import claims, features, optim
from ..data import Dataset, digits
from ..models import mlp
from ..train import half_mse, train
from .profiles import check_seed, profile_config

#: Learning rate of SGD and of SLO's other layers (the authors' 2.0·C/10 on their loss, see above).
LR = 0.4
#: The authors' warm-up epoch ("epoch 0") learning rate.
WARMUP_LR = 1e-4
BATCH = 128
#: SLO: layer 1 moves this fraction of ‖W₁(0)‖_F per step (at the start; the step falls linearly to 0) …
SPEED = 0.05
#: … and every other weight matrix this fraction of its own initial norm (the speed limit). Changed after the
#: first default run: with plain SGD at :data:`LR` on the other layers and no decay, the low-rank SLO run of
#: seed 1 diverged (layer 1's growing norm raised the curvature the other layers saw).
SLOW = 0.01
#: The equal-loss comparison of SGD and SLO is made where the training loss first falls to this level
#: (the initial loss is about 0.46 on both tasks).
EQUAL_LOSS = 0.02
#: "Late": the last 40 % of the epochs.
LATE = 0.4
TASKS = ("digits", "low-rank")
OPTIMIZERS = ("SGD", "SLO")
DTYPE = torch.float32

PROFILES: dict[str, dict] = {
    "quick": dict(width=64, depth=3, epochs=40, probes=10, k_points=256, draws=10),
    "default": dict(width=128, depth=3, epochs=200, probes=16, k_points=512, draws=20),
    "full": dict(width=256, depth=5, epochs=150, probes=30, k_points=1024, draws=50),
}


def config(profile: str) -> dict:
    """Width, depth, epochs, number of log-spaced probes, size of the K subset, control draws."""
    return profile_config(PROFILES, profile)


# ---------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """Train and test sets; ``pixels`` (digits) the 8×8 positions of the kept inputs; ``relevant`` (low-rank)
    the d × 2 orthonormal basis of the directions the target depends on."""

    name: str
    train: Dataset
    test: Dataset
    pixels: np.ndarray | None = None
    relevant: torch.Tensor | None = None

    @property
    def d(self) -> int:
        return self.train.X.shape[1]

    @property
    def classes(self) -> int:
        return self.train.Y.shape[1]


def digits_task(n_train: int = 1536) -> Task:
    """Digits: constant pixels dropped, the rest standardized with the training mean and std; targets
    one-hot − 1/10; the first ``n_train`` images train (12 minibatches of 128), the rest test."""
    raw = digits(1797, dtype=torch.float64)
    X, labels = raw.X.numpy(), raw.labels.numpy()
    mean, std = X[:n_train].mean(0), X[:n_train].std(0)
    keep = std > 1e-8
    X = (X[:, keep] - mean[keep]) / std[keep]
    Y = np.eye(10)[labels] - 0.1
    parts = [slice(0, n_train), slice(n_train, None)]
    sets = [
        Dataset(torch.tensor(X[s], dtype=DTYPE), torch.tensor(Y[s], dtype=DTYPE), torch.as_tensor(labels[s]))
        for s in parts
    ]
    return Task("digits", sets[0], sets[1], pixels=np.flatnonzero(keep))


def low_rank_task(seed: int, n_train: int = 1024, n_test: int = 512, d: int = 32) -> Task:
    """x ~ N(0, I_d), y = relu(u₁·x)(u₂·x) standardized with the training mean and std (one output)."""
    rng = np.random.default_rng(10_000 + seed)
    U = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    X = rng.standard_normal((n_train + n_test, d))
    z = X @ U
    y = np.maximum(z[:, 0], 0.0) * z[:, 1]
    y = (y - y[:n_train].mean()) / y[:n_train].std()
    parts = [slice(0, n_train), slice(n_train, None)]
    sets = [
        Dataset(
            torch.tensor(X[s], dtype=DTYPE),
            torch.tensor(y[s, None], dtype=DTYPE),
            torch.zeros(len(y[s]), dtype=torch.long),
        )
        for s in parts
    ]
    return Task("low-rank", sets[0], sets[1], relevant=torch.tensor(U, dtype=torch.float64))


def make_task(name: str, seed: int) -> Task:
    if name == "digits":
        return digits_task()
    if name == "low-rank":
        return low_rank_task(seed)
    raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")


def make_model(task: Task, cfg: dict, seed: int) -> nn.Sequential:
    """The bias-free ReLU MLP d → width × depth → classes, default init from ``seed``."""
    widths = [task.d, *[cfg["width"]] * cfg["depth"], task.classes]
    return mlp(widths, "relu", seed=seed, dtype=DTYPE, bias=False)


def probe_epochs(epochs: int, probes: int) -> list[int]:
    """Epochs after which the statistics are taken: ``probes`` log-spaced from 1 to ``epochs`` and four evenly
    spaced over the last 40 % (so the late window always has probes)."""
    log = np.geomspace(1, epochs, probes)
    late = np.linspace((1 - LATE) * epochs, epochs, 4)
    return sorted({int(round(e)) for e in np.concatenate([log, late])} | {1, epochs})


# ------------------------------------------------------------------------------------------- training


def subspace_share(M: torch.Tensor, basis: torch.Tensor) -> float:
    """tr(P M)/tr(M) with P the projector on span(``basis``): the share of a PSD matrix in a subspace."""
    M = M.to(torch.float64)
    return float(torch.trace(basis.T @ M @ basis) / torch.trace(M))


def _probe(task: Task, initial: list[torch.Tensor], k_points: int):
    """Statistics added to each probe's row: per layer ``<stat>_<l>`` from :func:`optdyn.features.nfa_stats`,
    the test loss, and for the low-rank task the share of F₁ and of ΔW₁ᵀΔW₁ in span(U)."""
    XK = task.train.X[:k_points]

    def probe(model: nn.Module) -> dict:
        row = {}
        for stats in features.nfa_stats(model, initial, XK):
            row.update({f"{k}_{stats['layer']}": v for k, v in stats.items() if k != "layer"})
        with torch.no_grad():
            row["test_loss"] = float(half_mse(model(task.test.X), task.test.Y))
        if task.relevant is not None:
            W = features.weights(model)[0]
            dW = W - initial[0]
            row["share"] = subspace_share(W.T @ W, task.relevant)
            row["c_share"] = subspace_share(dW.T @ dW, task.relevant) if float(dW.norm()) > 0 else math.nan
        return row

    return probe


@dataclass
class Run:
    """One training run: ``frame`` (one row per probe: epoch, loss, test loss, per-layer statistics), the
    weights at init and at the end, and the trained model."""

    task: str
    optimizer: str
    frame: pd.DataFrame
    initial: list[torch.Tensor]
    model: nn.Sequential = field(repr=False)
    diverged_at: float = math.nan


def train_run(task: Task, optimizer: str, cfg: dict, seed: int) -> Run:
    """Warm-up epoch at :data:`WARMUP_LR`, then ``cfg["epochs"]`` epochs of SGD or SLO; statistics at
    epoch 0 (before and after the warm-up: rows ``epoch`` −1 and 0) and at :func:`probe_epochs`.

    Training goes through :func:`optdyn.train.train` in segments that end at the probe epochs (each segment
    probes only at its end; its minibatch order is drawn from the seed and the segment's index).
    """
    model = make_model(task, cfg, seed)
    initial = features.weights(model)
    probe = _probe(task, initial, cfg["k_points"])
    per_epoch = len(task.train) // BATCH
    never = 10**9  # `every` larger than any run: a segment probes at its end only
    run = dict(curvature=False, probe=probe, batch_size=BATCH, every=never)
    warm = torch.optim.SGD(model.parameters(), lr=WARMUP_LR)
    traj = train(model, warm, task.train, per_epoch, seed=1000 * seed, **run)
    if optimizer == "SGD":
        opt = torch.optim.SGD(model.parameters(), lr=LR)
    elif optimizer == "SLO":
        total = cfg["epochs"] * per_epoch
        first = features.hidden_linears(model)[0]
        opt = optim.speed_limited(model, first, SPEED, LR, decay_steps=total, others=SLOW)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    done = 0
    for i, epoch in enumerate(probe_epochs(cfg["epochs"], cfg["probes"])):
        steps = (epoch - done) * per_epoch
        train(model, opt, task.train, steps, seed=1000 * seed + 1 + i, start_step=(done + 1) * per_epoch,
              trajectory=traj, **run)  # fmt: skip
        done = epoch
        if traj.diverged_at is not None:
            break
    frame = traj.frame()
    frame.insert(0, "epoch", frame["step"] // per_epoch - 1)
    frame = frame.drop(columns=["step", "accuracy"] if task.classes == 1 else ["step"])
    diverged = math.nan if traj.diverged_at is None else traj.diverged_at / per_epoch - 1
    return Run(
        task.name, optimizer, frame.assign(task=task.name, optimizer=optimizer), initial, model, diverged
    )


@dataclass
class Study:
    """The four runs (task × optimizer) of one seed and the tasks."""

    runs: dict[tuple[str, str], Run]
    tasks: dict[str, Task]
    cfg: dict
    seed: int

    def frame(self) -> pd.DataFrame:
        """All probes of all runs, one row per probe (wide: ``uc_nfa_1``, ``c_nfa_1``, …)."""
        return pd.concat([r.frame for r in self.runs.values()], ignore_index=True)


def training_study(profile: str, seed: int) -> Study:
    """SGD and SLO on both tasks (four runs) at the profile's sizes."""
    check_seed(seed)
    cfg = config(profile)
    tasks = {name: make_task(name, seed) for name in TASKS}
    runs = {(t, o): train_run(tasks[t], o, cfg, seed) for t in TASKS for o in OPTIMIZERS}
    return Study(runs, tasks, cfg, seed)


def per_layer(study: Study) -> pd.DataFrame:
    """Long form of the probes: one row per (task, optimizer, epoch, layer) with ``uc_nfa``, ``c_nfa``,
    ``uc_cos``, ``c_cos``, ``rel_dw`` (‖ΔW‖/‖W‖) and ``dw_w0`` (‖ΔW‖/‖W(0)‖); epoch −1 is the init."""
    wide = study.frame()
    stats = ("uc_nfa", "c_nfa", "uc_cos", "c_cos", "rel_dw", "dw_w0")
    rows = []
    for layer in range(1, study.cfg["depth"] + 1):
        cols = {f"{s}_{layer}": s for s in stats}
        part = wide[["task", "optimizer", "epoch", "loss", *cols]].rename(columns=cols)
        rows.append(part.assign(layer=layer))
    return pd.concat(rows, ignore_index=True).sort_values(["task", "optimizer", "layer", "epoch"])


def losses(study: Study) -> pd.DataFrame:
    """Training and test loss at every probe of every run (and the low-rank task's subspace shares)."""
    cols = ["task", "optimizer", "epoch", "loss", "test_loss", "share", "c_share"]
    wide = study.frame()
    return wide[[c for c in cols if c in wide]]


# ------------------------------------------------------------------------------ alignment and its control


def alignment(study: Study, task: str = "digits", optimizer: str = "SGD") -> pd.DataFrame:
    """At the end of one run, per hidden layer: the UC-NFA with the true K_l and with K_l's spectrum on
    Haar-random eigenvectors (mean and std over ``draws``); the cosine UC-NFA; the direct AGOP's relative
    distance to Wᵀ K W; the alignment form of the cosine (SVD of W); the K-energy of the top left singular
    vector; and the participation ratio of K, at the end and at init (:func:`participation_ratio`)."""
    run = study.runs[(task, optimizer)]
    X = study.tasks[task].train.X[: study.cfg["k_points"]]
    Ks = [K.to(torch.float64) for K in features.ptk_covariances(run.model, X)]
    init = make_model(study.tasks[task], study.cfg, study.seed)
    K0s = [K.to(torch.float64) for K in features.ptk_covariances(init, X)]
    Gs = [G.to(torch.float64) for G in features.agops(run.model, X)]
    Ws = [W.to(torch.float64) for W in features.weights(run.model)]
    gen = torch.Generator().manual_seed(study.seed)
    rows = []
    for layer, (W, K, G, K0) in enumerate(zip(Ws, Ks, Gs, K0s, strict=True), start=1):
        control = [features.nfa(W, features.random_eigenvectors(K, gen)) for _ in range(study.cfg["draws"])]
        S, energy = features.alignment_spectrum(W, K)
        rows.append(
            dict(
                layer=layer,
                uc_nfa=features.nfa(W, K),
                control_mean=float(np.mean(control)),
                control_std=float(np.std(control, ddof=1)),
                uc_cos=features.nfa(W, K, "cosine"),
                identity_error=float((G - W.T @ K @ W).norm() / G.norm()),
                alignment_form=alignment_form(W, K),
                top_energy=float(energy[0]),
                k_rank=participation_ratio(K),
                k_rank_init=participation_ratio(K0),
            )
        )
    return pd.DataFrame(rows)


def participation_ratio(K: torch.Tensor) -> float:
    """(tr K)²/‖K‖_F² = (Σλ)²/Σλ²: the number of directions K's spectrum is spread over (k for an isotropic
    k × k matrix, 1 for rank one)."""
    return float(torch.trace(K) ** 2 / (K * K).sum())


def alignment_form(W: torch.Tensor, K: torch.Tensor) -> float:
    """tr(S⁴ Uᵀ K U) / (‖S²‖_F ‖S Uᵀ K U S‖_F) with W = U S Vᵀ: the cosine ρ(WᵀW, WᵀKW) written through the
    left singular vectors of W only."""
    U, S, _ = torch.linalg.svd(W, full_matrices=False)
    M = U.T @ K @ U
    num = torch.sum(S**4 * torch.diagonal(M))
    return float(num / ((S**2).norm() * (S[:, None] * M * S[None, :]).norm()))


def _final_and_initial(study: Study, task: str) -> dict[str, nn.Sequential]:
    """The network at init (rebuilt from the seed) and at the end of the SGD and SLO runs on ``task``."""
    nets = {"init": make_model(study.tasks[task], study.cfg, study.seed)}
    nets.update({o: study.runs[(task, o)].model for o in OPTIMIZERS})
    return nets


def spectra(study: Study, task: str = "digits", layer: int = 1) -> pd.DataFrame:
    """K-energy u_jᵀ K u_j/(tr K/k) of W_l's left singular vectors u_j, by singular value, at init and at the
    end of SGD and of SLO (:func:`optdyn.features.alignment_spectrum`); K_l at the same weights."""
    X = study.tasks[task].train.X[: study.cfg["k_points"]]
    rows = []
    for state, net in _final_and_initial(study, task).items():
        K = features.ptk_covariances(net, X)[layer - 1].to(torch.float64)
        W = features.weights(net)[layer - 1].to(torch.float64)
        S, energy = features.alignment_spectrum(W, K)
        rows += [
            dict(state=state, index=j + 1, singular_value=float(s), energy=float(e))
            for j, (s, e) in enumerate(zip(S, energy, strict=True))
        ]
    return pd.DataFrame(rows)


def top_features(study: Study, count: int = 4) -> dict[str, np.ndarray]:
    """The top ``count`` eigenvectors of F₁ = W₁ᵀW₁ on digits at init and after SGD and SLO, as 8×8 images
    (the dropped constant pixels are 0), each with the sign that makes its largest entry positive."""
    pixels = study.tasks["digits"].pixels
    images = {}
    for state, net in _final_and_initial(study, "digits").items():
        W = features.weights(net)[0].to(torch.float64)
        _, vectors = torch.linalg.eigh(W.T @ W)
        top = vectors[:, -count:].flip(1).T.numpy()
        top *= np.sign(top[np.arange(count), np.abs(top).argmax(1)])[:, None]
        full = np.zeros((count, 64))
        full[:, pixels] = top
        images[state] = full.reshape(count, 8, 8)
    return images


# ------------------------------------------------------------------------------------------ early time


def early_time(study: Study) -> pd.DataFrame:
    """Early-time centered NFA per task and hidden layer: measured after the warm-up epoch (the SGD run's
    epoch 0), predicted from the first full-batch gradient at init (the network at init, no training),
    and, for layer 1, predicted from the inputs and labels alone
    (:func:`optdyn.features.predicted_first_layer` with residual −Y and the infinite-width kernel)."""
    rows = []
    for name, task in study.tasks.items():
        model = make_model(task, study.cfg, study.seed)
        XK = task.train.X[: study.cfg["k_points"]]
        Ks = features.ptk_covariances(model, XK)
        update = features.first_step_update(model, task.train.X, task.train.Y, half_mse)
        X64, Y64 = task.train.X.to(torch.float64), task.train.Y.to(torch.float64)
        nfm, agop = features.predicted_first_layer(X64, -Y64, study.cfg["depth"], XK.to(torch.float64))
        kernel = features.correlation(nfm, agop)
        frame = study.runs[(name, "SGD")].frame
        measured = frame[frame["epoch"] == 0].iloc[0]
        for layer, (dW, K) in enumerate(zip(update, Ks, strict=True), start=1):
            rows.append(
                dict(
                    task=name,
                    layer=layer,
                    measured=float(measured[f"c_nfa_{layer}"]),
                    first_step=features.nfa(dW.to(torch.float64), K.to(torch.float64)),
                    kernel=kernel if layer == 1 else math.nan,
                )
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- summaries


def late(frame: pd.DataFrame, fraction: float = LATE) -> pd.DataFrame:
    """Rows with epoch ≥ (1 − ``fraction``)·(last epoch): a fixed fraction of the run."""
    return frame[frame["epoch"] >= (1 - fraction) * frame["epoch"].max()]


def at_loss(frame: pd.DataFrame, column: str, level: float = EQUAL_LOSS) -> float:
    """``column`` where the training loss first falls to ``level``, linearly interpolated in log(loss)
    between the two probes around the crossing; NaN if the loss never gets there."""
    f = frame[frame["epoch"] >= 0].sort_values("epoch")
    loss, value = f["loss"].to_numpy(), f[column].to_numpy()
    below = np.flatnonzero(loss <= level)
    if not len(below):
        return math.nan
    i = below[0]
    if i == 0:
        return float(value[0])
    a, b = math.log(loss[i - 1]), math.log(loss[i])
    w = (a - math.log(level)) / (a - b)
    return float(value[i - 1] + w * (value[i] - value[i - 1]))


def comparison(study: Study) -> pd.DataFrame:
    """SGD against SLO per task: layer-1 UC-NFA at the equal training loss :data:`EQUAL_LOSS` and over the
    late window, the late ‖ΔW₁‖/‖W₁‖, the other layers' late UC-NFA, the final test loss and (low-rank) the
    late share of F₁ in span(U)."""
    rows = []
    for (name, optimizer), run in study.runs.items():
        f, tail = run.frame, late(run.frame)
        others = [f"uc_nfa_{layer}" for layer in range(2, study.cfg["depth"] + 1)]
        rows.append(
            dict(
                task=name,
                optimizer=optimizer,
                uc_at_loss=at_loss(f, "uc_nfa_1"),
                uc_late=float(tail["uc_nfa_1"].mean()),
                c_late=float(tail["c_nfa_1"].mean()),
                rel_dw_late=float(tail["rel_dw_1"].mean()),
                others_uc_late=float(tail[others].to_numpy().mean()),
                test_loss=float(f["test_loss"].iloc[-1]),
                share_late=float(tail["share"].mean()) if "share" in f else math.nan,
                diverged_at=run.diverged_at,
            )
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- measuring functions


def _runs_of(data: Mapping[str, Any], optimizer: str) -> pd.DataFrame:
    layers = data["layers"]
    return layers[layers["optimizer"] == optimizer]


def _diverged(data: Mapping[str, Any]) -> str:
    comp = data["comparison"]
    bad = comp[comp["diverged_at"].notna()]
    return "; ".join(f"{r.task} {r.optimizer} diverged at epoch {r.diverged_at:g}" for r in bad.itertuples())


def nfa_rise(data: Mapping[str, Any], first: bool) -> claims.Measurement:
    """SGD: late UC-NFA (mean over the last 40 % of epochs) minus the UC-NFA at init, per task and hidden
    layer; the smallest over both tasks of layer 1 (``first``) or of the deeper layers."""
    sgd = _runs_of(data, "SGD")
    rises = {}
    for (task, layer), g in sgd.groupby(["task", "layer"]):
        if (layer == 1) != first:
            continue
        init = float(g.loc[g["epoch"] == -1, "uc_nfa"].iloc[0])
        rises[(task, layer)] = float(late(g)["uc_nfa"].mean()) - init
    detail = ", ".join(f"{t} L{l}: {v:+.3f}" for (t, l), v in rises.items())
    return claims.Measurement(min(rises.values()) if rises else None, detail=detail, why=_diverged(data))


def cnfa_after_one_epoch(data: Mapping[str, Any]) -> claims.Measurement:
    """SGD: the smallest C-NFA over tasks and hidden layers after the first epoch at the full rate."""
    one = _runs_of(data, "SGD")
    one = one[one["epoch"] == 1]
    detail = ", ".join(f"{r.task} L{r.layer}: {r.c_nfa:.3f}" for r in one.itertuples())
    return claims.Measurement(float(one["c_nfa"].min()), detail=detail, why=_diverged(data))


def centered_above(data: Mapping[str, Any]) -> claims.Measurement:
    """SGD: the fraction of probes from epoch 1 on (all tasks, hidden layers) where C-NFA ≥ UC-NFA."""
    f = _runs_of(data, "SGD")
    f = f[f["epoch"] >= 1]
    above = (f["c_nfa"] >= f["uc_nfa"]).to_numpy()
    per_task = ", ".join(f"{t}: {(g['c_nfa'] >= g['uc_nfa']).mean():.2f}" for t, g in f.groupby("task"))
    return claims.Measurement(float(above.mean()), detail=f"{per_task} (of {len(f)} probes)")


def control_drop(data: Mapping[str, Any]) -> claims.Measurement:
    """End of SGD on digits: the smallest over hidden layers of UC-NFA − (mean UC-NFA with K's spectrum on
    random eigenvectors)."""
    a = data["alignment"]
    drop = a["uc_nfa"] - a["control_mean"]
    detail = ", ".join(f"L{r.layer}: {r.uc_nfa:.3f} vs {r.control_mean:.3f}" for r in a.itertuples())
    return claims.Measurement(float(drop.min()), detail=detail)


def kernel_gap(data: Mapping[str, Any]) -> claims.Measurement:
    """Layer 1: the absolute difference between the C-NFA predicted from inputs and labels and the C-NFA
    measured after the warm-up, largest over the tasks."""
    e = data["early"]
    e = e[e["layer"] == 1]
    gap = (e["kernel"] - e["measured"]).abs()
    detail = ", ".join(f"{r.task}: {r.kernel:.3f} vs {r.measured:.3f}" for r in e.itertuples())
    return claims.Measurement(float(gap.max()), detail=detail)


def first_step_gap(data: Mapping[str, Any]) -> claims.Measurement:
    """The absolute difference between the C-NFA of the first full-batch gradient at init and the C-NFA
    measured after the warm-up, largest over tasks and layers."""
    e = data["early"]
    return claims.Measurement(float((e["first_step"] - e["measured"]).abs().max()))


def _num(x: float) -> str:
    """A value for a detail line: three decimals, or "—" where it is not finite."""
    return f"{x:.3f}" if np.isfinite(x) else "—"


def slo_gain(data: Mapping[str, Any], column: str) -> claims.Measurement:
    """SLO − SGD of ``column`` of :func:`comparison`, the smaller over the tasks where it is finite."""
    c = data["comparison"].set_index(["task", "optimizer"])[column]
    gains = {t: c[(t, "SLO")] - c[(t, "SGD")] for t in TASKS}
    finite = [v for v in gains.values() if np.isfinite(v)]
    detail = ", ".join(f"{t}: SGD {_num(c[(t, 'SGD')])}, SLO {_num(c[(t, 'SLO')])}" for t in TASKS)
    why = _diverged(data) or ("" if finite else f"no finite {column}")
    return claims.Measurement(min(finite) if finite else None, detail=detail, why=why)


def identity_error(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest relative Frobenius distance between the direct AGOP and Wᵀ K W over hidden layers."""
    return claims.Measurement(float(data["alignment"]["identity_error"].max()))


def alignment_form_error(data: Mapping[str, Any]) -> claims.Measurement:
    """Largest absolute difference between the alignment form and the cosine ρ(WᵀW, WᵀKW) over hidden
    layers."""
    a = data["alignment"]
    return claims.Measurement(float((a["alignment_form"] - a["uc_cos"]).abs().max()))


def claims_data(study: Study) -> dict[str, Any]:
    """The frames the measuring functions read: ``layers``, ``comparison``, ``alignment``, ``early``."""
    return dict(
        layers=per_layer(study),
        comparison=comparison(study),
        alignment=alignment(study),
        early=early_time(study),
    )


# ------------------------------------------------------------------------------------------ the table
SRC = "Beaglehole et al. 2024"
ABSTRACT = f"{SRC}, abstract (arXiv v3/v4)"


CLAIMS: list[claims.Spec] = [
    claims.paper_claim(
        "nfa-rises-deeper",
        "The neural feature matrix and the AGOP become correlated during training: SGD raises the UC-NFA "
        "of the hidden layers above layer 1 (late mean − init, smallest over layers and both tasks)",
        paper="rises (NFA develops in training)",
        source=f"{ABSTRACT}; authors' code MLP/main.py",
        band=claims.at_least(0.0),
        measure=partial(nfa_rise, first=False),
    ),
    claims.paper_claim(
        "nfa-rises-first",
        "… and of the first layer (late mean − init, smaller over both tasks)",
        paper="rises (NFA develops in training)",
        source=f"{ABSTRACT}; authors' code MLP/main.py",
        band=claims.at_least(0.0),
        measure=partial(nfa_rise, first=True),
    ),
    claims.paper_claim(
        "cnfa-high-early",
        "The centered NFA is high from the start of training: C-NFA after one epoch of SGD at the full "
        "rate (smallest over hidden layers and both tasks)",
        paper="high early (NFA driven by the centered correlation)",
        source=f"{ABSTRACT}; HiLD 2024 abstract",
        band=claims.at_least(0.8),
        measure=cnfa_after_one_epoch,
    ),
    claims.paper_claim(
        "cnfa-above-uc",
        "The centered NFA exceeds the uncentered one during training: fraction of probes from epoch 1 on "
        "(SGD, all hidden layers, both tasks) with C-NFA ≥ UC-NFA",
        paper="C-NFA ≥ UC-NFA",
        source=f"{ABSTRACT}; HiLD 2024 abstract",
        band=claims.at_least(0.8),
        measure=centered_above,
    ),
    claims.paper_claim(
        "alignment-not-chance",
        "The NFA is alignment of W's left singular vectors with K: with K's spectrum on random "
        "eigenvectors the UC-NFA drops (end of SGD on digits, smallest drop over hidden layers)",
        paper="NFA ⇔ alignment with the PTK features",
        source=f"{ABSTRACT} (the control is ours)",
        band=claims.at_least(0.1),
        measure=control_drop,
    ),
    claims.paper_claim(
        "early-from-data",
        "At early times the C-NFA is set by input and label statistics: layer-1 C-NFA predicted from X and "
        "Y alone (our infinite-width formula) vs measured after the warm-up epoch (largest |gap| over tasks)",
        paper="predicted from input/label statistics",
        source=f"{ABSTRACT}; HiLD 2024 abstract (formula ours)",
        band=claims.at_most(0.05),
        measure=kernel_gap,
    ),
    claims.paper_claim(
        "slo-raises-nfa",
        "Speed-limited optimization of layer 1 raises that layer's UC-NFA over SGD, compared at equal "
        "training loss (SLO − SGD, smaller over both tasks; SLO's rule is our reconstruction)",
        paper="dramatically increases the NFA of the chosen layer",
        source=ABSTRACT,
        band=claims.at_least(0.1),
        measure=partial(slo_gain, column="uc_at_loss"),
    ),
    claims.paper_claim(
        "slo-sharper-features",
        "… and improves the learned features: on the low-rank task the share of F₁ = W₁ᵀW₁ in the "
        "relevant 2-dimensional subspace (late mean), SLO − SGD",
        paper="improves the quality of the features",
        source=ABSTRACT,
        band=claims.at_least(0.05),
        measure=partial(slo_gain, column="share_late"),
    ),
    claims.check(
        "agop-identity",
        "The AGOP from per-example input Jacobians equals Wᵀ K W (largest relative Frobenius error over "
        "hidden layers, float32, end of SGD on digits)",
        band=claims.at_most(1e-4),
        measure=identity_error,
    ),
    claims.check(
        "alignment-form",
        "The alignment form tr(S⁴UᵀKU)/(‖S²‖‖SUᵀKUS‖) equals the cosine ρ(WᵀW, WᵀKW) (largest |difference|)",
        band=claims.at_most(1e-6),
        measure=alignment_form_error,
    ),
    claims.check(
        "first-step",
        "After the warm-up epoch (lr 1e-4) the C-NFA equals that of the first full-batch gradient at init "
        "(largest |difference| over tasks and layers)",
        band=claims.at_most(0.01),
        measure=first_step_gap,
    ),
]
