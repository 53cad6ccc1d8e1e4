"""Speed-limited optimization: one layer takes normalized steps of a fixed length, the others plain SGD.

Beaglehole, Mitliagkas & Agarwala (2024) raise the neural feature correlation of a chosen layer by making
that layer's weights move further than SGD would move them (a layer-wise normalization of the gradient; their
exact rule is not public). Our version: parameters in a group with ``normalized=True`` step

    W ← W − lr · ∇_W L / ‖∇_W L‖_F

(a step of length ``lr`` in Frobenius norm, whatever the gradient's size), every other group takes the plain
SGD step ``W ← W − lr · ∇_W L``. :func:`speed_limited` puts one weight matrix of a model in a normalized group
with step length ``speed · ‖W(0)‖_F`` and either leaves the rest to SGD or limits their speed to a smaller
normalized step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim import Optimizer

from .sgd import Params


class NormalizedSGD(Optimizer):
    """SGD whose groups with ``normalized=True`` take steps of length ``lr`` along −g/‖g‖_F (per tensor).

    ``decay_steps`` (per group, optional): the step length falls linearly to 0 over that many steps, so a
    normalized run can settle (normalized steps never shrink by themselves).
    """

    def __init__(self, params: Params, lr: float, normalized: bool = False, decay_steps: int | None = None):
        if not lr > 0:
            raise ValueError(f"NormalizedSGD: lr must be positive, got {lr}")
        super().__init__(params, dict(lr=lr, normalized=normalized, decay_steps=decay_steps))
        self.steps = 0

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None if closure is None else closure()
        for group in self.param_groups:
            lr = group["lr"]
            if group["decay_steps"]:
                lr *= max(0.0, 1.0 - self.steps / group["decay_steps"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["normalized"]:
                    norm = p.grad.norm()
                    if norm > 0:
                        p.add_(p.grad, alpha=-lr / float(norm))
                else:
                    p.add_(p.grad, alpha=-lr)
        self.steps += 1
        return loss


def speed_limited(
    model: nn.Module,
    target: nn.Linear,
    speed: float,
    lr: float,
    decay_steps: int | None = None,
    others: float | None = None,
) -> NormalizedSGD:
    """``target.weight`` moves ``speed · ‖W(0)‖_F`` per step along the normalized gradient. Every other
    parameter p of ``model`` takes plain SGD steps at ``lr`` (``others=None``) or normalized steps of length
    ``others · ‖p(0)‖_F`` (a speed limit on the rest of the network). ``decay_steps``: the normalized step
    lengths fall linearly to 0 over that many steps."""
    if not speed > 0 or (others is not None and not others > 0):
        raise ValueError(f"speed_limited: speeds must be positive, got {speed} and {others}")
    chosen = target.weight
    groups = [dict(params=[chosen], lr=speed * float(chosen.detach().norm()), normalized=True)]
    for p in model.parameters():
        if p is chosen:
            continue
        if others is None:
            groups.append(dict(params=[p], lr=lr, normalized=False))
        else:
            groups.append(dict(params=[p], lr=others * float(p.detach().norm()), normalized=True))
    for group in groups:
        group["decay_steps"] = decay_steps if group["normalized"] else None
    return NormalizedSGD(groups, lr=lr)
