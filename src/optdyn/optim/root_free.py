"""Adaptive methods without the square root (Lin, Dangel, Eschenhagen, Bae, Turner & Makhzani, ICML 2024).

Notation of the paper and the authors' code: β1 = step size (``lr``), β2 = curvature step (``lr_cov``;
Adam's β2 is 1 − lr_cov), λ = damping, α1 = momentum, κ = weight decay, B = batch size (the loss is a
mean over B examples, so B·g gᵀ estimates the empirical Fisher of the summed loss).

* :func:`sgd_momentum`: torch's SGD, heavy ball with coupled weight decay.
* :func:`adamw`: torch's AdamW (decoupled weight decay, bias correction), with β2 = 1 − lr_cov.
* :class:`RFRMSProp`: the root-free diagonal method (paper Fig. 4 right / Fig. 7; ``rfrmsprop.py``).
* :class:`IFShampoo`: the root- and inverse-free Kronecker-factored method (``ifshampoo.py``, SIRFShampoo).
* :func:`state_bytes`: the bytes held by an optimizer's state tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim import SGD, AdamW, Optimizer

from .sgd import Params, heavy_ball


def sgd_momentum(params: Params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> SGD:
    """Heavy ball with coupled weight decay (torch's SGD): v ← αv + (g + κw); w ← w − ηv."""
    optimizer = heavy_ball(params, lr, momentum)
    for group in optimizer.param_groups:
        group["weight_decay"] = weight_decay
    return optimizer


def adamw(
    params: Params,
    lr: float,
    momentum: float = 0.9,
    lr_cov: float = 1e-2,
    eps: float = 1e-8,
    weight_decay: float = 0.05,
) -> AdamW:
    """Root-based AdamW (torch's): m ← α m + (1−α) g, v ← (1−β2) v + β2 g², w ← w(1 − ηκ) − η m̂/(√v̂ + ε).

    Paper notation β2 = ``lr_cov`` (torch's beta2 = 1 − lr_cov); m̂, v̂ bias-corrected.
    """
    return AdamW(params, lr=lr, betas=(momentum, 1.0 - lr_cov), eps=eps, weight_decay=weight_decay)


def _check(name: str, value: float, lo: float, hi: float, *, open_lo: bool = False) -> None:
    if not (lo < value <= hi if open_lo else lo <= value <= hi) or not math.isfinite(value):
        raise ValueError(f"{name} must lie in {'(' if open_lo else '['}{lo}, {hi}], got {value}")


class RFRMSProp(Optimizer):
    """Root-free RMSProp with heavy-ball momentum (paper Fig. 4 right, full form Fig. 7; ``rfrmsprop.py``).

    With s₀ = 1 (all ones, not zero) and the squared mini-batch gradient scaled by the batch size B:

        s ← (1 − β2) s + β2 · B · g ⊙ g
        d ← g / (s + λ) + κ μ          (coupled weight decay, added after preconditioning)
        m ← α1 m + d;    μ ← μ − β1 m

    (S + λI)⁻¹ g is a damped Newton step with the empirical-Fisher diagonal S: no square root, hence no
    sign-descent reading. State per parameter: ``s`` and ``momentum_buffer``, same size as AdamW's.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_cov: float = 1e-2,
        damping: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        batch_size: int = 1,
        init_scale: float = 1.0,
    ) -> None:
        _check("lr", lr, 0.0, math.inf, open_lo=True)
        _check("lr_cov", lr_cov, 0.0, 1.0)
        _check("damping", damping, 0.0, math.inf)
        _check("momentum", momentum, 0.0, 1.0)
        _check("weight_decay", weight_decay, 0.0, math.inf)
        _check("init_scale", init_scale, 0.0, math.inf)
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        defaults = dict(
            lr=lr,
            lr_cov=lr_cov,
            damping=damping,
            momentum=momentum,
            weight_decay=weight_decay,
            batch_size=batch_size,
            init_scale=init_scale,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["s"] = torch.full_like(p, group["init_scale"])
                    state["momentum_buffer"] = torch.zeros_like(p)
                s, m = state["s"], state["momentum_buffer"]
                s.mul_(1.0 - group["lr_cov"]).addcmul_(g, g, value=group["lr_cov"] * group["batch_size"])
                d = g / (s + group["damping"])
                if group["weight_decay"]:
                    d.add_(p, alpha=group["weight_decay"])
                m.mul_(group["momentum"]).add_(d)
                p.add_(m, alpha=-group["lr"])
        return loss


def _as_matrix(p: torch.Tensor) -> torch.Tensor:
    """The 2-D view IF-Shampoo preconditions: (out, in·kh·kw) for a conv kernel, (1, d) for a vector."""
    return p.reshape(1, -1) if p.dim() < 2 else p.reshape(p.shape[0], -1)


class IFShampoo(Optimizer):
    """Inverse- and root-free Shampoo (the paper's IF-Shampoo; ``ifshampoo.py``, SIRFShampoo; dense factors).

    A parameter is viewed as W ∈ R^{dₒ×dᵢ} (conv kernels as (out, in·kh·kw), vectors as (1, d)) with
    gradient G, G' = √B G. The preconditioner is S⁻¹ ≈ (C Cᵀ) ⊗ (K Kᵀ), K (dᵢ×dᵢ) and C (dₒ×dₒ) start at I,
    their Riemannian momenta m_K, m_C at 0. Every T steps (before the step):

        H_K = Kᵀ (G'ᵀ C Cᵀ G' + λ tr(CᵀC) I) K / (2 dₒ) − I/2,   H_C the same with the roles swapped
        m_K ← α2 m_K + (1 − α2) H_K;    K ← K (I − β2 m_K / max(1, ‖m_K‖_F))      (and C alike)

    then D = C Cᵀ G K Kᵀ + κ W, m ← α1 m + D, W ← W − β1 m. A vector (dₒ = 1) has the factor K only.
    At a fixed point K Kᵀ ∝ (E[G'ᵀ C Cᵀ G'] + λ tr(CᵀC) I)⁻¹: a Kronecker factorisation of B E[g gᵀ] + λ I
    without a root or an inverse; only matmuls, so it runs in bfloat16. Factors take the parameter's dtype.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        lr_cov: float = 1e-2,
        damping: float = 1e-3,
        momentum: float = 0.9,
        riemannian_momentum: float = 0.5,
        weight_decay: float = 0.0,
        batch_size: int = 1,
        update_every: int = 2,
        max_dim: int = 2048,
    ) -> None:
        _check("lr", lr, 0.0, math.inf, open_lo=True)
        _check("lr_cov", lr_cov, 0.0, math.inf, open_lo=True)
        _check("damping", damping, 0.0, math.inf)
        _check("momentum", momentum, 0.0, 1.0)
        _check("riemannian_momentum", riemannian_momentum, 0.0, 1.0)
        _check("weight_decay", weight_decay, 0.0, math.inf)
        if batch_size < 1 or update_every < 1:
            raise ValueError(
                f"batch_size and update_every must be positive, got {batch_size}, {update_every}"
            )
        defaults = dict(
            lr=lr,
            lr_cov=lr_cov,
            damping=damping,
            momentum=momentum,
            riemannian_momentum=riemannian_momentum,
            weight_decay=weight_decay,
            batch_size=batch_size,
            update_every=update_every,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                rows, cols = _as_matrix(p).shape
                if max(rows, cols) > max_dim:
                    raise ValueError(
                        f"IFShampoo: a factor of size {max(rows, cols)} exceeds max_dim={max_dim}"
                    )

    @staticmethod
    def _factor_step(F: torch.Tensor, m: torch.Tensor, H: torch.Tensor, group: dict) -> None:
        """m ← α2 m + (1 − α2) H;  F ← F (I − β2 m / max(1, ‖m‖_F))."""
        m.mul_(group["riemannian_momentum"]).add_(H, alpha=1.0 - group["riemannian_momentum"])
        norm = torch.linalg.matrix_norm(m.float() if m.dtype in (torch.bfloat16, torch.float16) else m)
        scale = group["lr_cov"] / max(1.0, float(norm))
        F.sub_(F @ m, alpha=scale)

    def _update_factors(self, state: dict, G: torch.Tensor, group: dict) -> None:
        """One Riemannian step on K (and C) from G' = √B G (paper's IF-Shampoo factor update)."""
        d_out, d_in = G.shape
        Gp = G * math.sqrt(group["batch_size"])
        K, C = state["K"], state.get("C")
        lam = group["damping"]
        eye_in = torch.eye(d_in, dtype=G.dtype)
        if C is None:  # vector: one factor, C = 1
            A = Gp.T @ Gp + lam * eye_in
        else:
            CtG = C.T @ Gp  # (d_out, d_in)
            A = CtG.T @ CtG + lam * float((C * C).sum()) * eye_in
        H_K = K.T @ A @ K / (2 * d_out) - eye_in / 2
        if C is not None:
            GK = Gp @ K  # (d_out, d_in)
            eye_out = torch.eye(d_out, dtype=G.dtype)
            A_C = GK @ GK.T + lam * float((K * K).sum()) * eye_out
            H_C = C.T @ A_C @ C / (2 * d_in) - eye_out / 2
            self._factor_step(C, state["m_C"], H_C, group)
        self._factor_step(K, state["m_K"], H_K, group)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                G = _as_matrix(p.grad)
                state = self.state[p]
                if not state:
                    self._init_state(state, p, G.shape)
                if state["step"] % group["update_every"] == 0:
                    self._update_factors(state, G, group)
                state["step"] += 1
                K, C = state["K"], state.get("C")
                D = G @ K @ K.T
                if C is not None:
                    D = C @ (C.T @ D)
                D = D.reshape(p.shape)
                if group["weight_decay"]:
                    D.add_(p, alpha=group["weight_decay"])
                m = state["momentum_buffer"]
                m.mul_(group["momentum"]).add_(D)
                p.add_(m, alpha=-group["lr"])
        return loss

    @staticmethod
    def _init_state(state: dict, p: torch.Tensor, shape: tuple[int, int]) -> None:
        d_out, d_in = shape
        state["step"] = 0  # a Python int: bookkeeping, not a tensor
        state["K"] = torch.eye(d_in, dtype=p.dtype)
        state["m_K"] = torch.zeros(d_in, d_in, dtype=p.dtype)
        if d_out > 1:
            state["C"] = torch.eye(d_out, dtype=p.dtype)
            state["m_C"] = torch.zeros(d_out, d_out, dtype=p.dtype)
        state["momentum_buffer"] = torch.zeros_like(p)


def state_bytes(optimizer: Optimizer) -> int:
    """Bytes of every tensor in ``optimizer.state``: Σ numel · element_size (Python scalars count 0)."""
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                total += value.numel() * value.element_size()
    return total


def shampoo_state_bytes(params: Params, bytes_per_entry: int = 4, grafting: bool = True) -> int:
    """Bytes Shampoo would hold (an account, not a measurement): per 2-D view (dₒ, dᵢ) the statistics
    L (dₒ²), R (dᵢ²) and their inverse roots (dₒ², dᵢ²) in fp32, a momentum buffer, and, with Adam
    grafting, a second-moment vector; a vector has one factor (statistic and root)."""
    total = 0
    for p in params:
        d_out, d_in = _as_matrix(p).shape
        factors = d_in**2 + (d_out**2 if d_out > 1 else 0)
        total += bytes_per_entry * (2 * factors + p.numel() * (2 if grafting else 1))
    return total
