"""Cost of R_med on the adam_local_geometry chapter's language model (tiny causal LM, 48 sequences, float64).

1. One Hessian-diagonal entry (an HVP through a reused gradient graph) / one gradient.
2. Seconds for one checkpoint at each profile's coordinates per block (16, 24, all), and the exact diagonal
   of the whole model as HVP count.

Run: .venv/bin/python benchmarks/bench_local_geometry.py  (report `uptime`'s load beside the numbers)
"""

from __future__ import annotations

import time

import torch

from optdyn import data, local_geometry, models
from optdyn.experiments import adam_local_geometry as al
from optdyn.train import set_threads


def main() -> None:
    set_threads(1)
    model = models.tiny_lm(**al.LM, seed=0)
    ds = data.markov_tokens(48, al.LM["context"], al.LM["vocab"], al.BRANCHING, seed=1)
    crit = torch.nn.CrossEntropyLoss()

    def loss():
        return crit(model(ds.X).reshape(-1, al.LM["vocab"]), ds.Y.reshape(-1))

    start = time.perf_counter()
    for _ in range(20):
        torch.autograd.grad(loss(), list(model.parameters()))
    grad_s = (time.perf_counter() - start) / 20
    blocks = local_geometry.weight_blocks(model)
    total = sum(p.numel() for p in blocks.values())
    for per_block in (16, 24):
        subsets = local_geometry.coordinate_subsets(blocks, per_block)
        start = time.perf_counter()
        local_geometry.layer_r_med(loss, blocks, subsets)
        took = time.perf_counter() - start
        n = per_block * len(blocks)
        print(f"{per_block} per block: {took:.2f} s per checkpoint, {took / n / grad_s:.2f}× a gradient each")
    print(f"exact diagonal of all {len(blocks)} weight matrices: {total} HVPs ≈ {total * took / n:.0f} s")


if __name__ == "__main__":
    main()
