"""Adam written out, so that its preconditioner is exposed exactly as the update uses it and can be frozen."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .sgd import Params


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Alg. 1), bias-corrected, ε outside the square root, as `torch.optim.Adam`.

    m_t = β1 m_{t−1} + (1−β1) g_t,   ν_t = β2 ν_{t−1} + (1−β2) g_t²,
    w_t = w_{t−1} − η P_t^{-1} m_t,   P_t = (1 − β1^t) · diag(sqrt(ν_t / (1 − β2^t)) + ε)

    (Cohen et al. 2022). With β1 = 0 this is RMSProp with bias correction. After
    :meth:`freeze_preconditioner`, ν and the bias corrections stop changing: P stays P_{t0} and the
    method is EMA-momentum GD preconditioned by a fixed P ("frozen Adam").
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Adam: learning rate must be positive, got {lr}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"Adam: eps must be non-negative, got {eps}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, frozen=False))

    def _state(self, p: torch.Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        return state

    @staticmethod
    def _diag(state: dict, beta1: float, beta2: float, eps: float) -> torch.Tensor:
        t = state["step"]
        second = (state["exp_avg_sq"] / (1 - beta2**t)).sqrt() + eps
        return (1 - beta1**t) * second

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state(p)
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                if not group["frozen"]:
                    state["step"] += 1
                    state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                    state["precond"] = self._diag(state, beta1, beta2, group["eps"])
                p.addcdiv_(state["exp_avg"], state["precond"], value=-group["lr"])
        return loss

    def freeze_preconditioner(self) -> None:
        """Keep P = P_{t0} from now on; m and w keep updating."""
        if not all("precond" in self.state[p] for g in self.param_groups for p in g["params"]):
            raise RuntimeError("Adam: take at least one step before freezing the preconditioner")
        for group in self.param_groups:
            group["frozen"] = True

    def preconditioner(self) -> torch.Tensor | None:
        """The flat diagonal of P_t, the exact divisor of the last update; None before the first step."""
        states = [self.state.get(p, {}) for g in self.param_groups for p in g["params"]]
        if not all("precond" in s for s in states):
            return None
        return torch.cat([s["precond"].reshape(-1) for s in states])


def preconditioner_of(optimizer: Optimizer) -> torch.Tensor | None:
    """The diagonal preconditioner an optimizer divides by, or None for a non-adaptive method."""
    return optimizer.preconditioner() if isinstance(optimizer, Adam) else None
