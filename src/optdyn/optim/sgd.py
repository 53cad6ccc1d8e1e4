"""GD, heavy ball and Nesterov: torch's own `SGD` (PyTorch convention v ← βv + g)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim import SGD

Params = Iterable[torch.Tensor] | Iterable[dict]


def gd(params: Params, lr: float) -> SGD:
    """Gradient descent, w ← w − η ∇L."""
    return SGD(params, lr=lr)


def heavy_ball(params: Params, lr: float, momentum: float = 0.9) -> SGD:
    """Polyak momentum in PyTorch's convention: v ← βv + ∇L; w ← w − ηv."""
    return SGD(params, lr=lr, momentum=momentum)


def nesterov(params: Params, lr: float, momentum: float = 0.9) -> SGD:
    """Nesterov momentum in PyTorch's convention: v ← βv + ∇L; w ← w − η(∇L + βv)."""
    return SGD(params, lr=lr, momentum=momentum, nesterov=True)
