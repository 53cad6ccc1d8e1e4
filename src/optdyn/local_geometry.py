"""The local-geometry statistic R_med of Jiang, Malik & Li (2023) along an optimizer's trajectory.

For one parameter block (a weight tensor flattened to d coordinates) at iterate θ_t, let
h_i = [∇²L(θ_t)]_ii be the diagonal of the Hessian block of that tensor. The paper's statistic is

    R_med(θ_t) = max_i abs(h_i) / median_i abs(h_i),

a "robust condition number" λ_max/λ_median read off the diagonal (median instead of min because the
Hessian is degenerate), reported per layer (Jiang et al. 2023, Sec. 3; its computation as the diagonal
ratio per layer is confirmed by Ahn et al. 2024, Sec. 2.3). Ours, stated in the chapter: absolute values
and dropping exact zeros (the sign convention and zero handling of the paper are not confirmed).

Each diagonal entry is e_iᵀ H e_i, one Hessian-vector product of :class:`optdyn.curvature.HessianOperator`
restricted to the block (the exact diagonal block needs d products; ``coords`` picks a subset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
    loss_fn: LossFn, param: torch.Tensor, coords: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """[∇²_{θ_B} L]_ii for the block θ_B = ``param`` (flattened), at the coordinates ``coords`` (all if None).

    One HVP H e_i per coordinate through a single gradient graph (:class:`optdyn.curvature.HessianOperator`):
    exact, cost len(coords) backward passes.
    """
    op = HessianOperator(loss_fn, [param])
    d = param.numel()
    idx = np.arange(d) if coords is None else np.asarray(coords, dtype=int)
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise ValueError(f"hessian_diagonal: coordinates must lie in [0, {d}), got {idx.min()}..{idx.max()}")
    out = np.empty(idx.size)
    e = np.zeros(d)
    for n, i in enumerate(idx):
        e[i] = 1.0
        out[n] = op.matvec(e)[i]
        e[i] = 0.0
    return out


def coordinate_subsets(
    named: dict[str, torch.Tensor], per_block: int | None, seed: int = 0
) -> dict[str, np.ndarray | None]:
    """A fixed random subset of ``per_block`` coordinates per block (None: all), the same for every run.

    Subsampling makes max over the subset a lower bound of the block's max, so R_med is underestimated;
    using one subset for both optimizers keeps the comparison fair.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray | None] = {}
    for name, p in named.items():
        d = p.numel()
        out[name] = None if per_block is None or per_block >= d else np.sort(rng.choice(d, per_block, False))
    return out


def layer_r_med(
    loss_fn: LossFn, named: dict[str, torch.Tensor], subsets: dict[str, np.ndarray | None] | None = None
) -> dict[str, dict]:
    """Per block: R_med (abs), signed R_med, the fraction of negative entries, and the diagonal itself."""
    out = {}
    for name, p in named.items():
        diag = hessian_diagonal(loss_fn, p, None if subsets is None else subsets[name])
        out[name] = dict(
            r_med=r_med(diag),
            r_med_signed=r_med(diag, absolute=False),
            negative=float(np.mean(diag < 0)),
            diagonal=diag,
        )
    return out


def weight_blocks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weight matrices (≥ 2-D tensors): biases and LayerNorm gains are left out (zero-heavy)."""
    return {name: p for name, p in model.named_parameters() if p.dim() >= 2}
