"""The training loop: full-batch or minibatch steps, with curvature probes every k steps.

Deterministic per seed (minibatch order comes from a seeded generator); a non-finite loss ends the run
and is recorded as divergence rather than raised.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.optim import Optimizer
from tqdm import tqdm

from .curvature import HessianOperator, top_eigenpairs
from .data import Dataset
from .optim import preconditioner_of


def set_threads(n: int = 1) -> None:
    """Torch's CPU threads. One is the fastest for the book's small models (300 Adam steps with probes on
    1,000 digits: 2.9 s with 1 thread, 3.5 s with 2) and cannot be oversubscribed when chapters run in
    parallel or beside other work (2 threads on a busy 2-core machine ran 10-100x slower)."""
    torch.set_num_threads(n)


def half_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L = (1/2n) Σ_i ‖f(x_i) − y_i‖², the square loss of Cohen et al. (2021)."""
    return 0.5 * ((outputs - targets) ** 2).sum() / len(outputs)


@dataclass
class SharpnessTracker:
    """Top eigenvalues of H and P^{-1/2} H P^{-1/2}, warm-started from the previous eigenvectors."""

    tol: float = 1e-3
    maxiter: int = 400
    _v0: dict = field(default_factory=dict)
    n_products: int = 0

    def top(self, kind: str, operator: HessianOperator) -> float:
        values, vectors = top_eigenpairs(
            operator, 1, v0=self._v0.get(kind), tol=self.tol, maxiter=self.maxiter
        )
        self._v0[kind] = vectors[:, 0]
        self.n_products += operator.n_products
        return float(values[0])


@dataclass
class Trajectory:
    """What a run recorded: one row per probe, and the step at which it diverged (None if it did not)."""

    rows: list[dict] = field(default_factory=list)
    diverged_at: int | None = None

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _evaluate(model: nn.Module, data: Dataset, loss_fn) -> dict:
    with torch.no_grad():
        out = model(data.X)
        accuracy = (out.argmax(1) == data.labels).double().mean()
        return {"loss": float(loss_fn(out, data.Y)), "accuracy": float(accuracy)}


def _curvature(model: nn.Module, optimizer: Optimizer, data: Dataset, loss_fn, tracker) -> dict:
    """λ1(H) and, for an adaptive optimizer, λ1(P^{-1}H) with P read from its state, on the whole set."""
    params = [p for p in model.parameters() if p.requires_grad]

    def full_loss() -> torch.Tensor:
        return loss_fn(model(data.X), data.Y)

    row = {"sharpness": tracker.top("raw", HessianOperator(full_loss, params))}
    P = preconditioner_of(optimizer)
    if P is not None:
        P = _aligned(P, optimizer, params)
        row["precond_sharpness"] = tracker.top("precond", HessianOperator(full_loss, params, P.rsqrt()))
    return row


def _aligned(P: torch.Tensor, optimizer: Optimizer, params: list[torch.Tensor]) -> torch.Tensor:
    """The optimizer's flat preconditioner, which follows its param groups (any order), reordered to follow
    ``params`` (the model's order) by parameter identity; raises ValueError if the optimizer leaves out
    a trained parameter."""
    pieces, start = {}, 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            pieces[id(p)] = P[start : start + p.numel()]
            start += p.numel()
    missing = sum(id(p) not in pieces for p in params)
    if missing or start != P.numel():
        raise ValueError(
            f"train: the optimizer does not hold {missing} of the model's {len(params)} trained parameters; "
            "the preconditioned sharpness needs P for every one"
        )
    return torch.cat([pieces[id(p)] for p in params])


def train(
    model: nn.Module,
    optimizer: Optimizer,
    data: Dataset,
    steps: int,
    *,
    loss_fn=half_mse,
    every: int = 25,
    batch_size: int | None = None,
    seed: int = 0,
    start_step: int = 0,
    tracker: SharpnessTracker | None = None,
    trajectory: Trajectory | None = None,
    progress: bool = False,
    label: str = "",
    divergence_loss: float = 1e6,
    curvature: bool = True,
    probe: Callable[[nn.Module], dict] | None = None,
    objective: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Trajectory:
    """Take ``steps`` optimizer steps and probe loss, accuracy and sharpness every ``every`` steps.

    Probes use the whole training set (the Hessian of exactly the trained loss), also in minibatch
    runs. Rows are appended to ``trajectory`` (a new one if None) so a branched run can continue it;
    ``start_step`` numbers the steps of such a continuation. A loss that is non-finite or above
    ``divergence_loss`` stops the run and sets ``diverged_at``. An optimizer with ``needs_closure = True``
    is stepped as ``optimizer.step(closure)``, the closure recomputing the same minibatch's loss and gradient.
    ``curvature=False`` skips the sharpness probes; ``probe(model)``, if given, adds its dict to every probe's
    row (other statistics of the weights, e.g. :func:`optdyn.features.nfa_stats`). ``objective(model, X, Y)``,
    if given, is the minibatch objective whose gradient the optimizer follows (a penalized loss, e.g. from
    :mod:`optdyn.penalties`) in place of ``loss_fn(model(X), Y)``; probes still report ``loss_fn``.
    """
    if steps < 1:
        raise ValueError(f"train: steps must be at least 1, got {steps}")
    if every < 1:
        raise ValueError(f"train: every must be at least 1, got {every}")
    if batch_size is not None and not 1 <= batch_size <= len(data):
        raise ValueError(f"train: batch_size must lie in [1, {len(data)}], got {batch_size}")
    tracker = tracker or SharpnessTracker()
    trajectory = trajectory or Trajectory()
    batches = _minibatches(len(data), batch_size, seed)
    bar = tqdm(
        range(start_step, start_step + steps + 1),
        desc=label or "train",
        disable=not progress,
        file=sys.stderr,
        mininterval=5.0,
    )
    for step in bar:
        if step % every == 0 or step == start_step + steps:
            row = {"step": step, **_evaluate(model, data, loss_fn)}
            trajectory.rows.append(row)
            if not row["loss"] <= divergence_loss:
                trajectory.diverged_at = step
                break
            if curvature:
                row.update(_curvature(model, optimizer, data, loss_fn, tracker))
            if probe is not None:
                row.update(probe(model))
        if step == start_step + steps:
            break
        idx = next(batches)
        closure = _batch_closure(model, optimizer, loss_fn, data.X[idx], data.Y[idx], objective)
        loss = closure()
        if not loss.item() <= divergence_loss:
            trajectory.rows.append({"step": step, "loss": loss.item()})
            trajectory.diverged_at = step
            break
        if getattr(optimizer, "needs_closure", False):
            optimizer.step(closure)
        else:
            optimizer.step()
    return trajectory


def _batch_closure(
    model: nn.Module, optimizer: Optimizer, loss_fn, X: torch.Tensor, Y: torch.Tensor, objective=None
):
    """The closure of `torch.optim.Optimizer.step`: zero the gradients, L(batch) (or
    ``objective(model, X, Y)``), backward, return it.

    Called once before every step; an optimizer whose class sets ``needs_closure = True`` (SAM, a line
    search) receives it and may call it again at other weights."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), Y) if objective is None else objective(model, X, Y)
        loss.backward()
        return loss

    return closure


def _minibatches(n: int, batch_size: int | None, seed: int):
    """Index sets: the whole set forever, or seeded reshuffled epochs of ``batch_size``."""
    if batch_size is None or batch_size == n:
        everything = slice(None)
        while True:
            yield everything
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            yield torch.as_tensor(order[i : i + batch_size])
