"""Learning-rate tuners around a base direction: Armijo, Polyak, quadratically greedy, CDAT.

Roulet et al. (2024, "Stepping on the edge", Sec. 2-3) and Roulet, Agarwala & Pedregosa (2023). The base
optimizer gives a direction u_t (GD: u = −g; Adam: u = −m̂/(√v̂ + ε), Adam with a unit learning rate), the tuner
a learning rate η_t, and w_{t+1} = w_t + η_t u_t. Every tuner is a `torch.optim.Optimizer` with
``needs_closure = True``: `optdyn.train.train` and :func:`batch_closure` hand it the closure of the batch.

Every step records, in ``optimizer.last``: the learning rate η, the loss f(w_t), gᵀu, uᵀu and (when it was
measured) the directional curvature uᵀHu/uᵀu. A proposed η that is not finite or is negative is not taken:
the step leaves the weights unchanged and ``optimizer.stopped`` holds the reason.

Curvature uᵀHu: when the closure has a ``loss`` attribute (the same batch's loss, which :func:`batch_closure`
provides), the step builds the gradient once with its graph and takes uᵀHu by one more backward pass through
it (double backward, as `optdyn.curvature.hvp`, without recomputing the gradient). A plain closure (train's)
has no ``loss`` attribute; then uᵀHu is a central difference of closure gradients,
(g(w+hu) − g(w−hu))ᵀu/(2h), exact on a quadratic up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim import Optimizer

from ..curvature import unflatten_like
from .sgd import Params

DIRECTIONS = ("gd", "adam")


def batch_closure(model: nn.Module, optimizer: Optimizer, loss_fn, X: torch.Tensor, Y: torch.Tensor):
    """The step closure (zero grads, L(batch), backward, return L) with ``closure.loss``: L(batch) alone,
    graph kept, for exact Hessian-vector products on the same batch."""

    def loss() -> torch.Tensor:
        return loss_fn(model(X), Y)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = loss()
        value.backward()
        return value

    closure.loss = loss
    return closure


class Tuner(Optimizer):
    """A base direction u_t and a rule for η_t; subclasses implement ``propose``.

    ``direction`` is ``"gd"`` (u = −g) or ``"adam"`` (u = −m̂_t/(√v̂_t + ε), Kingma & Ba 2015, unit learning
    rate: the moments are updated once per step, never by the tuner's extra evaluations).
    ``measure_curvature`` asks for uᵀHu on every step even when the rule does not need it (for logging).
    """

    needs_closure = True
    needs_curvature = False
    #: Whether ``propose`` moves the weights (a line search does); ``step`` then restores w_t first.
    moves_weights = False

    def __init__(
        self,
        params: Params,
        direction: str = "gd",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        measure_curvature: bool = False,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(
                f"{type(self).__name__}: direction must be one of {DIRECTIONS}, got {direction!r}"
            )
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(direction=direction, betas=betas, eps=eps))
        self.measure_curvature = measure_curvature
        self.last: dict[str, float] = {}
        self.stopped: str | None = None
        self.n_steps = 0
        self._adam: dict = {}

    # the flat view of the parameters -----------------------------------------------------------
    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _flat_grad(self) -> torch.Tensor:
        return torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self._params()]
        ).detach()

    def _add(self, vector: torch.Tensor, scale: float) -> None:
        start = 0
        with torch.no_grad():
            for p in self._params():
                p.add_(vector[start : start + p.numel()].view_as(p), alpha=scale)
                start += p.numel()

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        group = self.param_groups[0]
        if group["direction"] == "gd":
            return -g
        beta1, beta2 = group["betas"]
        state = self._adam
        if not state:
            state.update(t=0, m=torch.zeros_like(g), v=torch.zeros_like(g))
        state["t"] += 1
        state["m"].mul_(beta1).add_(g, alpha=1 - beta1)
        state["v"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        m_hat = state["m"] / (1 - beta1 ** state["t"])
        v_hat = state["v"] / (1 - beta2 ** state["t"])
        state["precond"] = v_hat.sqrt() + group["eps"]
        return -m_hat / state["precond"]

    def preconditioner(self) -> torch.Tensor | None:
        """The diagonal P = √v̂ + ε the Adam direction divides by (None for GD or before a step)."""
        return self._adam.get("precond")

    # curvature and trial losses -----------------------------------------------------------------
    def _gradient(self, closure, graph: bool) -> tuple[torch.Tensor, tuple | None]:
        """L(w_t) with the gradient in ``p.grad``; with ``graph`` and a closure that has ``loss``, also the
        gradient tensors with their graph (for uᵀHu by one more backward pass), else None."""
        if not (graph and hasattr(closure, "loss")):
            with torch.enable_grad():
                return closure(), None
        params = self._params()
        with torch.enable_grad():
            loss_t = closure.loss()
            grads = torch.autograd.grad(loss_t, params, create_graph=True, allow_unused=True)
        grads = tuple(torch.zeros_like(p) if gr is None else gr for p, gr in zip(params, grads, strict=True))
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr.detach().clone()
        return loss_t.detach(), grads

    def _curvature(self, closure, u: torch.Tensor, grads: tuple | None) -> float:
        """uᵀHu: one backward pass through ``grads`` (built with their graph), else a central difference of
        closure gradients."""
        params = self._params()
        if grads is not None:
            with torch.enable_grad():
                dot = sum((gr * v).sum() for gr, v in zip(grads, unflatten_like(u, params), strict=True))
                hv = torch.autograd.grad(dot, params, allow_unused=True)
            flat = torch.cat(
                [
                    (torch.zeros_like(p) if h is None else h).reshape(-1)
                    for p, h in zip(params, hv, strict=True)
                ]
            )
            return float(u @ flat)
        h = 1e-4 / max(float(u.norm()), 1e-300)
        grads = []
        for sign in (1.0, -1.0):
            self._add(u, sign * h)
            with torch.enable_grad():
                closure()
            grads.append(self._flat_grad())
            self._add(u, -sign * h)
        return float((grads[0] - grads[1]) @ u / (2 * h))

    def _loss_at(self, closure, w: torch.Tensor, u: torch.Tensor, eta: float) -> float:
        """f(w + η u) on the closure's batch; the weights are set to w + η u and left there."""
        self._set(w + eta * u)
        if hasattr(closure, "loss"):
            with torch.no_grad():
                return float(closure.loss())
        with torch.enable_grad():
            return float(closure())

    def _set(self, vector: torch.Tensor) -> None:
        start = 0
        with torch.no_grad():
            for p in self._params():
                p.copy_(vector[start : start + p.numel()].view_as(p))
                start += p.numel()

    def _flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params()]).clone()

    # the step -----------------------------------------------------------------------------------
    def propose(self, closure, loss: float, g: torch.Tensor, u: torch.Tensor, uhu: float | None) -> float:
        """The learning rate η_t for loss f(w_t), flat gradient g, direction u and uᵀHu (None if not
        measured). It may move the weights (a line search does); ``step`` puts back w_t before stepping."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):  # type: ignore[override]
        """One step w ← w + η u; a non-finite or negative η is refused and recorded in ``stopped``."""
        if closure is None:
            raise RuntimeError(f"{type(self).__name__} needs the closure: call step(closure)")
        if self.stopped is not None:
            return None
        wants = self.needs_curvature or self.measure_curvature
        loss_t, grads = self._gradient(closure, graph=wants)
        loss = float(loss_t)
        g = self._flat_grad()
        u = self._direction(g)
        # w_t is kept where the weights move before the step: a line search's trials, or the central
        # difference of a plain closure (whose ±h u moves do not come back exactly, nor at all from NaN)
        restore = self.moves_weights or (wants and grads is None)
        w = self._flat_params() if restore else None
        uhu = self._curvature(closure, u, grads) if wants else None
        del grads
        uu, gu = float(u @ u), float(g @ u)
        eta = self.propose(closure, loss, g, u, uhu) if math.isfinite(loss) else float("nan")
        if w is not None:
            self._set(w)
        self.last = dict(lr=eta, loss=loss, gu=gu, uu=uu, dir_curvature=_ratio(uhu, uu))
        if not math.isfinite(eta) or eta < 0:
            self.stopped = f"step {self.n_steps}: proposed learning rate {eta!r} (loss {loss:.4g})"
            return loss_t
        self._add(u, eta)
        self.n_steps += 1
        return loss_t


def _ratio(uhu: float | None, uu: float) -> float:
    return float("nan") if uhu is None or uu == 0 else uhu / uu


class ConstantStep(Tuner):
    """η_t = η, after an optional linear warm-up η_t = η·(t + 1)/``warmup`` for t < ``warmup``: the constant
    (or warm-up + constant) baseline in the same wrapper, so it logs uᵀHu/uᵀu too."""

    def __init__(self, params: Params, lr: float, warmup: int = 0, **base) -> None:
        if not lr > 0:
            raise ValueError(f"ConstantStep: learning rate must be positive, got {lr}")
        if warmup < 0:
            raise ValueError(f"ConstantStep: warmup must be >= 0 steps, got {warmup}")
        super().__init__(params, **base)
        self.lr, self.warmup = lr, warmup

    def propose(self, closure, loss, g, u, uhu) -> float:
        if self.n_steps < self.warmup:
            return self.lr * (self.n_steps + 1) / self.warmup
        return self.lr


class CDAT(Tuner):
    """Curvature Dynamics Aware Tuning (Roulet et al. 2024, Sec. 3): η_t = min(σ n̄_t / d̄_t, η_cap),

    n_t = max(−gᵀu, 0),  d_t = abs(uᵀHu) + ε,  n̄_t = β n̄_{t−1} + (1−β) n_t,  d̄_t = β d̄_{t−1} + (1−β) d_t,

    both averages started at 0 (their bias cancels in the ratio). σ = 1, β = 0 is the quadratically greedy
    step −gᵀu/uᵀHu, the minimiser of q(η) = f + η gᵀu + ½η² uᵀHu; σ = 2 puts the step "on the edge",
    where q(η) = f. One Hessian-vector product per step. ε and the cap are our choices (the papers' values
    are not known to us); ``capped`` counts the steps where the cap bound.
    """

    needs_curvature = True

    def __init__(
        self,
        params: Params,
        sigma: float = 2.0,
        beta: float = 0.0,
        eps: float = 1e-12,
        max_lr: float = 100.0,
        **base,
    ) -> None:
        if not sigma > 0:
            raise ValueError(f"CDAT: sigma must be positive, got {sigma}")
        if not 0 <= beta < 1:
            raise ValueError(f"CDAT: beta must lie in [0, 1), got {beta}")
        if not (eps >= 0 and max_lr > 0):
            raise ValueError(f"CDAT: need eps >= 0 and max_lr > 0, got {eps}, {max_lr}")
        super().__init__(params, **base)
        self.sigma, self.beta, self.eps, self.max_lr = sigma, beta, eps, max_lr
        self.num = self.den = 0.0
        self.capped = 0

    def propose(self, closure, loss, g, u, uhu) -> float:
        self.num = self.beta * self.num + (1 - self.beta) * max(-float(g @ u), 0.0)
        self.den = self.beta * self.den + (1 - self.beta) * (abs(uhu) + self.eps)
        eta = self.sigma * self.num / self.den if self.den > 0 else float("inf")
        if eta > self.max_lr:
            self.capped += 1
            return self.max_lr
        return eta


def greedy(params: Params, **kwargs) -> CDAT:
    """The quadratically greedy tuner η_t = −gᵀu / uᵀHu (Roulet et al. 2024, Sec. 2): CDAT, σ = 1, β = 0."""
    return CDAT(params, sigma=1.0, beta=0.0, **kwargs)


class Armijo(Tuner):
    """Backtracking line search with the jaxopt `ArmijoSGD` defaults (after Vaswani et al. 2019).

    Trial η⁰ = min(c_inc η_{t−1}, η_max) (η_max on the first step), multiplied by c_dec until the sufficient
    decrease f(w + η u) ≤ f(w) + c η gᵀu holds (for GD: f(w) − c η ‖g‖²), with at most ``max_backtracks``
    trials in all; if no trial passes, the last trial evaluated is the step taken. Defaults c = 0.1,
    c_dec = 0.8, c_inc = 1.5, η_max = 1.
    ``n_evals`` counts the trial losses; ``last["accepted"]`` says whether the condition held.
    """

    moves_weights = True

    def __init__(
        self,
        params: Params,
        c: float = 0.1,
        decrease: float = 0.8,
        increase: float = 1.5,
        max_lr: float = 1.0,
        max_backtracks: int = 15,
        **base,
    ) -> None:
        if not (0 < c < 1 and 0 < decrease < 1 and increase >= 1 and max_lr > 0 and max_backtracks >= 1):
            raise ValueError(
                "Armijo: need 0 < c < 1, 0 < decrease < 1, increase >= 1, max_lr > 0, max_backtracks >= 1"
            )
        super().__init__(params, **base)
        self.c, self.decrease, self.increase, self.max_lr = c, decrease, increase, max_lr
        self.max_backtracks = max_backtracks
        self.prev_lr: float | None = None
        self.n_evals = 0
        self.accepted = True

    def propose(self, closure, loss, g, u, uhu) -> float:
        w, gu = self._flat_params(), float(g @ u)
        eta = self.max_lr if self.prev_lr is None else min(self.increase * self.prev_lr, self.max_lr)
        for k in range(self.max_backtracks):
            self.n_evals += 1
            trial = self._loss_at(closure, w, u, eta)
            self.accepted = trial <= loss + self.c * eta * gu
            if self.accepted or k == self.max_backtracks - 1:
                break  # accepted, or the last trial: it is the step taken (it was evaluated)
            eta *= self.decrease
        self.prev_lr = eta
        return eta

    def step(self, closure=None):  # type: ignore[override]
        out = super().step(closure)
        self.last["accepted"] = float(self.accepted)
        return out


class Polyak(Tuner):
    """SPS_max (Loizou et al. 2021), the Polyak tuner of Roulet et al. (2023):

    η_t = min((f(w_t) − f*) / (c · (−gᵀu)), η_max), which for GD is (f − f*)/(c‖g‖²).

    Defaults as optax `polyak_sgd`: f* = 0, c = 1, η_max = 1. A direction with −gᵀu ≤ 0 takes η_max
    (for GD only when g = 0); f < f* gives a negative η, which stops the run.
    """

    def __init__(
        self, params: Params, f_star: float = 0.0, c: float = 1.0, max_lr: float = 1.0, **base
    ) -> None:
        if not (c > 0 and max_lr > 0):
            raise ValueError(f"Polyak: need c > 0 and max_lr > 0, got {c}, {max_lr}")
        super().__init__(params, **base)
        self.f_star, self.c, self.max_lr = f_star, c, max_lr

    def propose(self, closure, loss, g, u, uhu) -> float:
        slope = -float(g @ u)
        if loss < self.f_star:
            return (loss - self.f_star) / (self.c * max(slope, 1e-300))
        if slope <= 0:
            return self.max_lr
        return min((loss - self.f_star) / (self.c * slope), self.max_lr)
