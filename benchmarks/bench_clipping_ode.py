"""Budget: the ODE's prediction of a whole clipped-SGD risk curve vs the simulation it predicts (≥ 100×).

K = I, d = 4000, clipped SGD with c̃ = c/√tr K = 1 and η = 0.5, t ∈ [0, 10] (40,000 streaming steps, one run,
torch float64, one thread), under Gaussian, Student-t3 and Cauchy label noise; the ODE is
:func:`optdyn.theory.risk_ode` (``method="clipped"``) on the simulation's logged times. For the heavy-tailed
laws the ODE's first call also builds its quadrature table of μ and E[ψ²] (once per threshold and law, then
cached): we report that first call and the best of 3 later ones. The budget is judged on the later calls.

Run: .venv/bin/python benchmarks/bench_clipping_ode.py  (prints one line per law; exits 1 if over budget)
"""

from __future__ import annotations

import sys
import time

import numpy as np

from optdyn import theory, train
from optdyn.experiments import clipping_high_dim as ch
from optdyn.experiments import signsgd_high_dim as sg

D, T, ETA, CLIP = 4000, 10.0, 0.5, 1.0


def main() -> int:
    train.set_threads(1)
    lam = np.ones(D)
    ok = True
    for law, (noise, scale) in ch.NOISES.items():
        start = time.perf_counter()
        cpu = time.process_time()
        sim = sg.simulate(
            lam, ETA, T, rule=sg.clipped_rule(CLIP * np.sqrt(D)), seeds=1, noise=noise, scale=scale
        )
        simulation, sim_cpu = time.perf_counter() - start, time.process_time() - cpu
        t = sim["t"].to_numpy()
        kw = dict(method="clipped", clip=CLIP, noise=noise, scale=scale, delta0=sim.attrs["delta0"][0])
        times = []
        for _ in range(4):
            start = time.perf_counter()
            _, R = theory.risk_ode(lam, ETA, t, **kw)
            times.append(time.perf_counter() - start)
        first, ode = times[0], min(times[1:])
        gap = np.median(np.abs(sim["risk"].to_numpy()[5:] / R[5:] - 1))
        ratio = simulation / ode
        ok &= ratio >= 100
        print(
            f"{law}: d={D}, t≤{T:g}: simulation {simulation:.2f} s ({sim_cpu:.2f} s CPU), "
            f"ODE {ode * 1e3:.1f} ms (first call {first * 1e3:.0f} ms), speed-up {ratio:.0f}x "
            f"(budget ≥ 100x; {simulation / first:.0f}x with the first call), median relative gap {gap:.3f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
