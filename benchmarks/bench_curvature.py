"""Curvature budgets on the chapter's model (tanh MLP 64-64-64-10 on 1,000 digits, float64).

1. Hessian-vector product time / gradient time, for double backward and forward-over-reverse (budget ≤ 2.5×).
2. Products needed to reach the top eigenvalue to 1e-4 relative: Lanczos vs power iteration (budget ≥ 3×
   fewer), the exact value from a tight Lanczos solve.

Run: .venv/bin/python benchmarks/bench_curvature.py  (prints one line per figure)
"""

from __future__ import annotations

import time

import numpy as np
import torch

from optdyn import curvature, optim
from optdyn.data import digits
from optdyn.models import mlp
from optdyn.train import half_mse, train


def trained_problem(steps: int = 300):
    data = digits(1000)
    model = mlp([64, 64, 64, 10])
    train(model, optim.gd(model.parameters(), 0.5), data, steps, every=10**9)
    return model, data


def seconds_per_call(fn, repeats: int = 50) -> float:
    fn()
    best = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        best.append((time.perf_counter() - start) / repeats)
    return min(best)


def hvp_forward_over_reverse(model, data, v):
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach() for n, p in model.named_parameters()}
    tangents = dict(zip(names, curvature.unflatten_like(v, list(params.values())), strict=True))

    def loss(p):
        return half_mse(torch.func.functional_call(model, p, (data.X,)), data.Y)

    return torch.func.jvp(torch.func.grad(loss), (params,), (tangents,))[1]


def main() -> None:
    torch.set_num_threads(2)
    model, data = trained_problem()
    params = list(model.parameters())

    def loss_fn():
        return half_mse(model(data.X), data.Y)

    v = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)
    t_grad = seconds_per_call(lambda: torch.autograd.grad(loss_fn(), params))
    t_hvp = seconds_per_call(lambda: curvature.hvp(loss_fn, params, v))
    operator = curvature.HessianOperator(loss_fn, params)
    vv = v.numpy()
    t_reuse = seconds_per_call(lambda: operator.matvec(vv))
    t_fwd = seconds_per_call(lambda: hvp_forward_over_reverse(model, data, v))
    print(
        f"gradient {t_grad * 1e3:.2f} ms | HVP double backward {t_hvp * 1e3:.2f} ms ({t_hvp / t_grad:.2f}x) "
        f"| HVP forward-over-reverse {t_fwd * 1e3:.2f} ms ({t_fwd / t_grad:.2f}x) "
        f"| HVP in HessianOperator, graph reused {t_reuse * 1e3:.2f} ms ({t_reuse / t_grad:.2f}x)"
    )

    exact = curvature.top_eigenpairs(curvature.HessianOperator(loss_fn, params), tol=1e-12)[0][0]
    op = curvature.HessianOperator(loss_fn, params)
    lanczos = curvature.top_eigenpairs(op)[0][0]
    n_lanczos = op.n_products
    n_power, value = power_products_to(curvature.HessianOperator(loss_fn, params), exact, 1e-4)
    print(
        f"top eigenvalue {exact:.6f} | Lanczos {n_lanczos} products "
        f"(rel. error {abs(lanczos / exact - 1):.1e}) "
        f"| power iteration {n_power} products (rel. error {abs(value / exact - 1):.1e}) "
        f"| ratio {n_power / n_lanczos:.1f}x"
    )


def power_products_to(operator, exact: float, rel: float, limit: int = 5000) -> tuple[int, float]:
    """Products power iteration needs until its Rayleigh quotient is within ``rel`` of ``exact``."""
    x = np.random.default_rng(0).standard_normal(operator.shape[0])
    x /= np.linalg.norm(x)
    for n in range(1, limit + 1):
        y = operator.matvec(x)
        value = float(x @ y)
        if abs(value / exact - 1) <= rel:
            return n, value
        x = y / np.linalg.norm(y)
    return limit, value


if __name__ == "__main__":
    main()
