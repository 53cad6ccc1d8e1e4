"""Per-step cost of the four optimizers of the sqrt_free_adaptive chapter, fp32 and bf16, on its CNN and ViT.

One training step (forward, backward, optimizer step) on a batch of 64 digits, best of 5 repeats of 30 steps,
one torch thread; also the optimizer step alone, and one fp32 eigendecomposition of a 256×256 matrix
(Shampoo's inverse root for the CNN's head) against one 256×256 bf16 matmul (IF-Shampoo's operation).
Timings on a shared machine are inflated by other load: the script prints the load average beside them.

Run: .venv/bin/python benchmarks/bench_root_free.py
"""

from __future__ import annotations

import os
import time

import torch

from optdyn.experiments import sqrt_free_adaptive as sf
from optdyn.train import set_threads


def best_of(fn, repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        times.append((time.perf_counter() - start) / repeats)
    return min(times)


def step_times(kind: str, name: str, dtype: torch.dtype) -> tuple[float, float]:
    data = sf.digits_split().to(dtype)
    X, y = data.X["train"][: sf.BATCH], data.y["train"][: sf.BATCH]
    model = sf.make_model(kind, sf.config("default"), 0, dtype)
    opt = sf.make_optimizer(name, model.parameters(), 1e-3)

    def full() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()

    full()
    return best_of(full), best_of(opt.step)


def main() -> None:
    set_threads(1)
    print(f"load average {os.getloadavg()}")
    for kind in sf.MODELS:
        for dtype in (torch.float32, torch.bfloat16):
            for name in sf.OPTIMIZERS:
                total, step = step_times(kind, name, dtype)
                label = f"{kind} {str(dtype)[6:]:8s} {name:10s}"
                print(f"{label}: {1e3 * total:6.2f} ms/step, optimizer {1e3 * step:6.2f} ms")
    A = torch.randn(256, 256)
    A = A @ A.T + torch.eye(256)
    B = A.bfloat16()
    eig, mm = best_of(lambda: torch.linalg.eigh(A), 10), best_of(lambda: B @ B, 10)
    print(
        f"eigh fp32 256x256 {1e3 * eig:.2f} ms, matmul bf16 256x256 {1e3 * mm:.3f} ms, ratio {eig / mm:.0f}x"
    )
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
