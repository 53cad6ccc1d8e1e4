"""Sharpness-aware minimization (SAM), normalized (Foret et al. 2021) and unnormalized (USAM).

One step from weights θ with gradient g = ∇L(θ):

    USAM:  θ ← θ − η ∇L(θ + ρ g)                 (Agarwala & Dauphin 2023, the variant of their theory)
    SAM:   θ ← θ − η ∇L(θ + ρ g / ‖g‖)           (Foret et al. 2021, with p = 2)

‖g‖ is the Euclidean norm over all parameters of all groups.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim import Optimizer

from .sgd import Params


class SAM(Optimizer):
    """SAM over full-batch or minibatch losses, with plain GD as the base step.

    ``step(closure)`` reads g = ∇L(θ) from ``p.grad`` when the caller has just evaluated the closure
    (as `optdyn.train.train` does before every step; otherwise it evaluates the closure itself), moves
    to the ascent point θ + ε with ε = ρ g (``normalized=False``) or ε = ρ g/‖g‖ (``normalized=True``),
    evaluates the closure there, restores θ and applies θ ← θ − η ∇L(θ + ε). It then clears the gradients
    (they belong to the ascent point, not to the new θ), so a later step without a fresh evaluation
    evaluates the closure itself. The norms ‖g_t‖ of the
    steps taken are kept in ``grad_norms`` (one per step, in order), since the edge of normalized SAM
    depends on them. ``rho = 0`` is GD.
    """

    needs_closure = True

    def __init__(
        self, params: Params, lr: float, rho: float, normalized: bool = False, eps: float = 1e-12
    ) -> None:
        if not lr > 0:
            raise ValueError(f"SAM: lr must be positive, got {lr}")
        if not rho >= 0:
            raise ValueError(f"SAM: rho must be non-negative, got {rho}")
        super().__init__(params, dict(lr=lr, rho=rho))
        self.normalized = normalized
        self.eps = eps
        self.grad_norms: list[float] = []

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        if closure is None:
            raise ValueError("SAM.step needs a closure that re-evaluates the loss and its gradient")
        closure = torch.enable_grad()(closure)
        loss = None
        if any(p.grad is None for p in self._params()):
            loss = closure()
        norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in self._params() if p.grad is not None))
        self.grad_norms.append(float(norm))
        scale = 1.0 / (float(norm) + self.eps) if self.normalized else 1.0
        shifts = []
        for group in self.param_groups:
            for p in group["params"]:
                e = torch.zeros_like(p) if p.grad is None else p.grad * (group["rho"] * scale)
                p.add_(e)
                shifts.append(e)
        closure()
        params = iter(shifts)
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(next(params))
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
                    p.grad = None
        return loss


def usam(params: Params, lr: float, rho: float) -> SAM:
    """Unnormalized SAM: θ ← θ − η ∇L(θ + ρ∇L(θ)) (Agarwala & Dauphin 2023)."""
    return SAM(params, lr, rho, normalized=False)


def sam(params: Params, lr: float, rho: float) -> SAM:
    """SAM of Foret et al. (2021): θ ← θ − η ∇L(θ + ρ∇L(θ)/‖∇L(θ)‖)."""
    return SAM(params, lr, rho, normalized=True)
