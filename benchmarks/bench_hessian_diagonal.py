"""Cost of the exact Hessian diagonal of every weight matrix (adam_local_geometry chapter).

For the chapter's causal transformer on its character-level text, one Hessian-batch of ``--sequences``
windows, in float64: products per second of the batched Hessian-vector products of
:meth:`optdyn.curvature.HessianOperator.products` (``chunk`` basis vectors per backward pass) for each
weight matrix, and the seconds one exact diagonal of all matrices takes at the best chunk size.

Run: .venv/bin/python benchmarks/bench_hessian_diagonal.py [--width 32 --depth 2 ...]
(report `uptime`'s load beside the numbers; the machine's other work slows every figure).
"""

from __future__ import annotations

import argparse
import time

import torch

from optdyn import data, local_geometry, models
from optdyn.train import set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--sequences", type=int, default=4, help="windows in the Hessian batch")
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--sample", type=int, default=128, help="coordinates timed per matrix and chunk")
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args()
    set_threads(1)
    dtype = getattr(torch, args.dtype)
    corpus = data.python_source()
    X, Y = corpus.windows("valid", args.context, limit=args.sequences)
    model = models.tiny_lm(
        data.CHAR_VOCAB, args.context, args.width, args.depth, args.heads, args.hidden, seed=0, dtype=dtype
    )

    def loss() -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(X).reshape(-1, data.CHAR_VOCAB), Y.reshape(-1))

    start = time.process_time()
    for _ in range(5):
        torch.autograd.grad(loss(), list(model.parameters()))
    grad_s = (time.process_time() - start) / 5
    print(f"model {sum(p.numel() for p in model.parameters()):,} parameters; Hessian batch {X.numel()} "
          f"characters; one gradient {grad_s * 1e3:.1f} ms")  # fmt: skip
    total = 0.0
    for name, p in local_geometry.weight_blocks(model).items():
        rates = {}
        for chunk in args.chunks:
            coords = range(min(args.sample, p.numel()))
            start = time.process_time()
            local_geometry.hessian_diagonal(loss, p, coords, chunk=chunk)
            rates[chunk] = len(coords) / (time.process_time() - start)
        best = max(rates, key=rates.get)
        total += p.numel() / rates[best]
        text = ", ".join(f"chunk {c}: {r:.0f}/s" for c, r in rates.items())
        print(
            f"{name:<22} {p.numel():>5} coordinates | {text} | exact diagonal {p.numel() / rates[best]:.1f} s"
        )
    print(f"exact diagonal of every weight matrix at the best chunk: {total:.0f} s")


if __name__ == "__main__":
    main()
