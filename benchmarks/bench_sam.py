"""Costs of the SAM chapter on its digits MLP (tanh 64-64-64-10, 256 digits, float64, one thread).

1. Seconds per optimizer step: GD, USAM and normalized SAM, each stepped as `optdyn.train.train` steps it
   (closure evaluated once before the step). SAM needs one extra gradient: at most about 2× GD (the loop
   has fixed costs too).
2. Hessian-vector products per sharpness probe along a USAM trajectory, warm-started from the previous
   eigenvector (as `SharpnessTracker` does) against cold starts.

Run: .venv/bin/python benchmarks/bench_sam.py  (prints one line per figure; report `uptime` beside it)
"""

from __future__ import annotations

import time

from optdyn.curvature import HessianOperator, top_eigenpairs
from optdyn.data import digits
from optdyn.models import mlp
from optdyn.optim import gd, sam, usam
from optdyn.train import SharpnessTracker, half_mse, set_threads, train


def step_seconds(make, steps: int = 200) -> float:
    data = digits(256)
    model = mlp([64, 64, 64, 10])
    optimizer = make(model.parameters())
    start = time.perf_counter()
    train(model, optimizer, data, steps, every=10**9)
    return (time.perf_counter() - start) / steps


def products_per_probe(probes: int = 10, every: int = 20) -> tuple[float, float]:
    data = digits(256)
    model = mlp([64, 64, 64, 10])
    optimizer = usam(model.parameters(), 0.4, 0.1)
    warm = SharpnessTracker()
    params = list(model.parameters())
    cold_products = 0

    def loss():
        return half_mse(model(data.X), data.Y)

    for _ in range(probes):
        train(model, optimizer, data, every, every=10**9)
        warm.top("raw", HessianOperator(loss, params))
        operator = HessianOperator(loss, params)
        top_eigenpairs(operator, 1, tol=warm.tol, maxiter=warm.maxiter)
        cold_products += operator.n_products
    return warm.n_products / probes, cold_products / probes


def main() -> None:
    set_threads(1)
    gd_s = step_seconds(lambda p: gd(p, 0.4))
    for name, make in (("USAM", lambda p: usam(p, 0.4, 0.1)), ("SAM", lambda p: sam(p, 0.4, 0.02))):
        s = step_seconds(make)
        ratio = s / gd_s
        print(f"{name} step: {s * 1e3:.2f} ms, GD step {gd_s * 1e3:.2f} ms, ratio {ratio:.2f} (at most ≈ 2)")
    warm, cold = products_per_probe()
    gain = cold / warm
    print(f"HVPs per sharpness probe: warm-started {warm:.0f}, cold {cold:.0f} ({gain:.1f}× fewer warm)")


if __name__ == "__main__":
    main()
