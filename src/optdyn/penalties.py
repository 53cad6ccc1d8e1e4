"""Second-order regularizers as minibatch objectives ``objective(model, X, Y) -> scalar``.

Each is passed to :func:`optdyn.train.train` as ``objective``; the optimizer then follows its gradient.
With L the softmax cross-entropy of the batch (Dauphin, Agarwala & Mobahi 2024, Sec. 3-4):

- :func:`optdyn.penalties.gradient_penalty` (their "penalty SAM", PSAM): L + ρ‖∇L‖, whose gradient is
  ∇L + ρ H ∇L/‖∇L‖ = ∇L + ρ (G + NME) ∇L/‖∇L‖, by double backpropagation;
- :func:`optdyn.penalties.weight_noise`: L(θ + ε), ε ~ N(0, σ²I), one draw per step; in expectation
  L + (σ²/2) tr(H) to second order;
- :func:`optdyn.penalties.hessian_trace_penalty`: L + (σ²/2) vᵀHv with v ~ N(0, I), an unbiased one-probe
  estimate of L + (σ²/2) tr(H) (triple backpropagation for its gradient);
- :func:`optdyn.penalties.gauss_newton_trace_penalty`: L + (σ²/2) T̂ with T̂ an unbiased one-sample
  estimate of tr(G).

Every random draw comes from a generator seeded at construction, so a run is deterministic per seed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .curvature import softmax_cross_entropy

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _check(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value}")


def gradient_penalty(rho: float, eps: float = 1e-12) -> Objective:
    """L + ρ‖∇L‖ (PSAM: the first-order Taylor expansion of SAM's L(θ + ρ∇L/‖∇L‖), same ρ units).

    Its gradient ∇L + ρ H∇L/‖∇L‖ holds the Hessian-gradient product that SAM takes by a finite
    difference; for a ReLU net autograd's H∇L has no σ'' term (σ'' = 0 almost everywhere).
    """
    _check("gradient_penalty: rho", rho)

    def objective(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        loss = softmax_cross_entropy(model(X), Y)
        if rho == 0:
            return loss
        grads = torch.autograd.grad(loss, _params(model), create_graph=True)
        norm = torch.sqrt(sum((g * g).sum() for g in grads) + eps)
        return loss + rho * norm

    return objective


def weight_noise(sigma2: float, seed: int = 0) -> Objective:
    """L(θ + ε) with a fresh ε ~ N(0, σ²I) per call; E L(θ + ε) ≈ L + (σ²/2) tr(H) (Bishop 1995)."""
    _check("weight_noise: sigma2", sigma2)
    gen = torch.Generator().manual_seed(seed)
    scale = sigma2**0.5

    def objective(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        shifted = {
            n: p + scale * torch.randn(p.shape, generator=gen, dtype=p.dtype)
            for n, p in zip(names, _params(model), strict=True)
        }
        return softmax_cross_entropy(torch.func.functional_call(model, shifted, (X,)), Y)

    return objective


def hessian_trace_penalty(sigma2: float, samples: int = 1, seed: int = 0) -> Objective:
    """L + (σ²/2)·(1/m) Σ_j v_jᵀ H v_j, v_j ~ N(0, I), m = ``samples``: E vᵀHv = tr(H) = tr(G) + tr(NME)."""
    _check("hessian_trace_penalty: sigma2", sigma2)
    if samples < 1:
        raise ValueError(f"hessian_trace_penalty: samples must be at least 1, got {samples}")
    gen = torch.Generator().manual_seed(seed)

    def objective(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        params = _params(model)
        loss = softmax_cross_entropy(model(X), Y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        quad = 0.0
        for _ in range(samples):
            v = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
            hv = torch.autograd.grad(
                sum((g * u).sum() for g, u in zip(grads, v, strict=True)), params, create_graph=True
            )
            quad = quad + sum((h * u).sum() for h, u in zip(hv, v, strict=True))
        return loss + 0.5 * sigma2 * quad / samples

    return objective


def gauss_newton_trace_penalty(sigma2: float, samples: int = 1, seed: int = 0) -> Objective:
    """L + (σ²/2) T̂ with E T̂ = tr(G), the Gauss-Newton part only ("regularize exploitation").

    For softmax cross-entropy G = (1/N) Σ_i J_iᵀ E_{ŷ~p_i}[(p_i − ŷ)(p_i − ŷ)ᵀ] J_i, so
    tr(G) = (1/N) Σ_i E_ŷ ‖∇_θ ℓ(z_i, ŷ_i)‖² with labels ŷ_i sampled from the model. With random signs
    r_i = ±1 the cross terms of ‖Σ_i r_i ∇_θ ℓ(z_i, ŷ_i)‖² vanish in expectation, so
    T̂ = (1/N)‖∇_θ Σ_i r_i ℓ(z_i, ŷ_i)‖² is unbiased at one backward pass per sample (our estimator; the
    paper samples labels too, its exact estimator we could not read). ŷ and r carry no gradient.
    """
    _check("gauss_newton_trace_penalty: sigma2", sigma2)
    if samples < 1:
        raise ValueError(f"gauss_newton_trace_penalty: samples must be at least 1, got {samples}")
    gen = torch.Generator().manual_seed(seed)

    def objective(model: nn.Module, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        params = _params(model)
        logits = model(X)
        loss = softmax_cross_entropy(logits, Y)
        log_p = torch.log_softmax(logits, dim=1)
        n = len(X)
        total = 0.0
        for _ in range(samples):
            sampled = torch.multinomial(log_p.detach().exp(), 1, generator=gen).squeeze(1)
            signs = (torch.randint(0, 2, (n,), generator=gen) * 2 - 1).to(logits.dtype)
            signed = -(signs * log_p[torch.arange(n), sampled]).sum()
            grads = torch.autograd.grad(signed, params, create_graph=True)
            total = total + sum((g * g).sum() for g in grads) / n
        return loss + 0.5 * sigma2 * total / samples

    return objective
