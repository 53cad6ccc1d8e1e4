"""Small models for CPU-scale replications."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


def mlp(
    widths: Sequence[int], activation: str = "tanh", seed: int = 0, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """Fully connected net widths[0] → … → widths[-1], PyTorch's default init drawn from ``seed``.

    The brief's digits model is ``mlp([64, 64, 64, 10])``: 8,970 parameters.
    """
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ValueError(f"mlp: need at least two positive widths, got {list(widths)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers).to(dtype)


def small_cnn(
    in_channels: int = 1,
    side: int = 8,
    classes: int = 10,
    width: int = 16,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> nn.Sequential:
    """Two 3×3 conv layers (tanh), global average pooling, a linear head. Input (N, C, side, side)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(width, width, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, classes),
    )
    return model.to(dtype)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
