"""Data sets that need no download: scikit-learn's digits and synthetic problems."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits


@dataclass(frozen=True)
class Dataset:
    """Inputs X (n, …) and targets Y (n, classes one-hot, or n for labels) on one dtype."""

    X: torch.Tensor
    Y: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.X)


def digits(n: int = 1000, image: bool = False, dtype: torch.dtype = torch.float64) -> Dataset:
    """The first ``n`` of scikit-learn's 1,797 8×8 digits: X/16 centred per pixel, one-hot targets.

    ``image=True`` gives X shaped (n, 1, 8, 8) for a CNN, else (n, 64).
    """
    if not 1 <= n <= 1797:
        raise ValueError(f"digits: n must lie in [1, 1797], got {n}")
    raw = load_digits()
    X = raw.data[:n] / 16.0
    X = X - X.mean(axis=0, keepdims=True)
    labels = raw.target[:n]
    Y = np.eye(10)[labels]
    X_t = torch.tensor(X, dtype=dtype)
    if image:
        X_t = X_t.reshape(n, 1, 8, 8)
    return Dataset(X_t, torch.tensor(Y, dtype=dtype), torch.tensor(labels))


def gaussian_teacher(
    n: int, d: int, classes: int = 10, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Dataset:
    """Gaussian inputs labelled by a random linear teacher (argmax of W x), one-hot targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    labels = (X @ rng.standard_normal((d, classes))).argmax(axis=1)
    Y = np.eye(classes)[labels]
    return Dataset(torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype), torch.tensor(labels))
