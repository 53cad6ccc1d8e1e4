"""The local-geometry statistic R_med of Jiang, Malik & Li (2023) along an optimizer's trajectory.

For one parameter block (a weight tensor flattened to d coordinates) at iterate θ_t, let
h_i = [∇²L(θ_t)]_ii be the diagonal of the Hessian block of that tensor. The paper's statistic is

    R_med(θ_t) = max_i abs(h_i) / median_i abs(h_i),

a "robust condition number" λ_max/λ_median read off the diagonal (median instead of min because the
Hessian is degenerate), reported per layer (Jiang et al. 2023, Sec. 3; its computation as the diagonal
ratio per layer is confirmed by Ahn et al. 2024, Sec. 2.3). Ours, stated in the chapter: absolute values
and dropping exact zeros (the sign convention and zero handling of the paper are not confirmed).

Each diagonal entry is e_iᵀ H e_i, one Hessian-vector product of :class:`optdyn.curvature.HessianOperator`
restricted to the block; the products are batched, ``chunk`` basis vectors per backward pass. The exact
diagonal block needs d products; ``coords`` picks a subset (an estimate whose error the chapter measures
against the exact diagonal). A :class:`Block` can be a band of rows of one parameter, so that a fused
query-key-value matrix yields the Q, K and V blocks separately (the diagonal of a sub-block of the Hessian
is the corresponding part of the parameter's diagonal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .curvature import HessianOperator

LossFn = Callable[[], torch.Tensor]


def r_med(diagonal: np.ndarray | torch.Tensor, absolute: bool = True, drop_zeros: bool = True) -> float:
    """R_med = max_i abs(h_i) / median_i abs(h_i) of a Hessian diagonal h (Jiang et al. 2023, Sec. 3).

    ``absolute=False`` uses the signed entries (max h / median h; meaningless when the median is ≤ 0,
    then NaN). ``drop_zeros`` removes exact zeros (dead units, unused embedding rows) before the median.
    """
    h = np.asarray(diagonal.detach().cpu() if isinstance(diagonal, torch.Tensor) else diagonal, float)
    h = h.reshape(-1)
    if absolute:
        h = np.abs(h)
    if drop_zeros:
        h = h[h != 0]
    if h.size == 0:
        return float("nan")
    med = float(np.median(h))
    return float(h.max() / med) if med > 0 else float("nan")


def hessian_diagonal(
    loss_fn: LossFn,
    param: torch.Tensor,
    coords: Sequence[int] | np.ndarray | None = None,
    chunk: int = 32,
) -> np.ndarray:
    """[∇²_{θ_B} L]_ii for the block θ_B = ``param`` (flattened), at the coordinates ``coords`` (all if None).

    Exact: the products H e_i of :class:`optdyn.curvature.HessianOperator` restricted to the block (its
    gradient graph built once), ``chunk`` basis vectors per batched backward pass
    (:meth:`~optdyn.curvature.HessianOperator.products`); cost len(coords) products.
    """
    if chunk < 1:
        raise ValueError(f"hessian_diagonal: chunk must be at least 1, got {chunk}")
    op = HessianOperator(loss_fn, [param])
    d = param.numel()
    idx = np.arange(d) if coords is None else np.asarray(coords, dtype=int)
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise ValueError(f"hessian_diagonal: coordinates must lie in [0, {d}), got {idx.min()}..{idx.max()}")
    out = np.empty(idx.size)
    for start in range(0, idx.size, chunk):
        part = torch.as_tensor(idx[start : start + chunk])
        rows = torch.arange(len(part))
        basis = torch.zeros(len(part), d, dtype=param.dtype)
        basis[rows, part] = 1.0
        out[start : start + len(part)] = op.products(basis)[rows, part].to(torch.float64).numpy()
    return out


def weight_blocks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weight matrices (≥ 2-D tensors): biases and LayerNorm gains are left out (zero-heavy)."""
    return {name: p for name, p in model.named_parameters() if p.dim() >= 2}


@dataclass(frozen=True)
class Block:
    """A weight block for R_med: rows ``rows`` (all if None) of the parameter named ``param``.

    ``kind`` groups blocks for reporting (e.g. "inner", "embedding", "head").
    """

    label: str
    param: str
    kind: str
    rows: tuple[int, int] | None = None

    def indices(self, shape: torch.Size) -> np.ndarray:
        """Flat indices of the block's coordinates in its (row-major) parameter."""
        if self.rows is None:
            return np.arange(int(np.prod(shape)))
        lo, hi = self.rows
        per_row = int(np.prod(shape[1:]))
        if not 0 <= lo < hi <= shape[0]:
            raise ValueError(f"{self.label}: rows {self.rows} outside a parameter with {shape[0]} rows")
        return np.arange(lo * per_row, hi * per_row)


def block_diagonals(
    loss_fn: LossFn,
    model: torch.nn.Module,
    blocks: Sequence[Block],
    per_block: int | None = None,
    seed: int = 0,
    chunk: int = 16,
) -> dict[str, np.ndarray]:
    """The Hessian diagonal of every block: exact (``per_block`` None) or at ``per_block`` coordinates drawn
    per block from ``seed`` (the same for any model of the same shapes). One pass of
    :func:`hessian_diagonal` per parameter, over the union of its blocks' coordinates."""
    params = dict(model.named_parameters())
    rng = np.random.default_rng(seed)
    chosen: dict[str, np.ndarray] = {}
    for b in blocks:
        idx = b.indices(params[b.param].shape)
        if per_block is not None and per_block < idx.size:
            idx = np.sort(rng.choice(idx, per_block, replace=False))
        chosen[b.label] = idx
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(b.param for b in blocks):
        mine = [b for b in blocks if b.param == name]
        union = np.unique(np.concatenate([chosen[b.label] for b in mine]))
        diag = hessian_diagonal(loss_fn, params[name], union, chunk=chunk)
        for b in mine:
            out[b.label] = diag[np.searchsorted(union, chosen[b.label])]
    return out


def summary(diagonal: np.ndarray) -> dict[str, float]:
    """R_med (absolute values), signed R_med, the fraction of negative and of exactly zero entries."""
    h = np.asarray(diagonal, dtype=float)
    return dict(
        r_med=r_med(h),
        r_med_signed=r_med(h, absolute=False),
        negative=float(np.mean(h < 0)),
        zeros=float(np.mean(h == 0)),
        coordinates=int(h.size),
    )
