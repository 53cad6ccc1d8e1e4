"""Budget: the ODE's prediction of a whole signSGD risk curve vs the simulation it predicts (≥ 100× faster).

d = 4000, geometric spectrum (κ = 100), Gaussian label noise s = 0.5, η = 0.5, t ∈ [0, 10] (40,000 streaming
steps, one seed, torch float64, one thread); the ODE is :func:`optdyn.theory.risk_ode` on the same 101
times. Also SGD. Best of 3 for the ODE, one simulation.

Run: .venv/bin/python benchmarks/bench_signsgd_ode.py  (prints one line per method; exits 1 if over budget)
"""

from __future__ import annotations

import sys
import time

import numpy as np

from optdyn import theory, train
from optdyn.experiments import signsgd_high_dim as sg

D, T, ETA, NOISE = 4000, 10.0, 0.5, dict(noise="gaussian", scale=0.5)


def main() -> int:
    train.set_threads(1)
    lam = sg.geometric_spectrum(D)
    t = np.linspace(0, T, 101)
    ok = True
    for method in ("signsgd", "sgd"):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            _, R = theory.risk_ode(lam, ETA, t, method=method, **NOISE)
            times.append(time.perf_counter() - start)
        ode = min(times)
        start = time.perf_counter()
        sim = sg.simulate(lam, ETA, T, method=method, seeds=1, **NOISE)
        simulation = time.perf_counter() - start
        gap = np.max(np.abs(sim["risk"].to_numpy()[5:] / R[5:] - 1))
        ratio = simulation / ode
        ok &= ratio >= 100
        print(
            f"{method}: d={D}, t≤{T:g}: ODE {ode * 1e3:.1f} ms, simulation {simulation:.2f} s, "
            f"speed-up {ratio:.0f}x (budget ≥ 100x), max relative gap {gap:.3f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
