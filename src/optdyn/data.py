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


# --- adam_local_geometry chapter: synthetic token sequences for a tiny language model ---------------------


def markov_tokens(
    n: int, context: int = 16, vocab: int = 32, branching: int = 4, zipf: float = 1.2, seed: int = 0
) -> Dataset:
    """Sequences of ``context`` + 1 tokens from a random sparse Markov chain (synthetic "text").

    Each token has ``branching`` successors with Zipf-like probabilities ∝ rank^(−zipf); the successors
    are drawn with a Zipfian preference for low token ids, so token frequencies are heavy-tailed as in
    text. X holds tokens 0..context−1 (long), Y the next tokens 1..context; ``labels`` repeats Y.
    """
    if min(n, context, vocab, branching) < 1 or branching > vocab:
        raise ValueError("markov_tokens: need positive n, context, vocab and 1 <= branching <= vocab")
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, vocab + 1) ** zipf
    popularity /= popularity.sum()
    successors = np.stack([rng.choice(vocab, branching, replace=False, p=popularity) for _ in range(vocab)])
    weights = 1.0 / np.arange(1, branching + 1) ** zipf
    weights /= weights.sum()
    seqs = np.empty((n, context + 1), dtype=np.int64)
    seqs[:, 0] = rng.choice(vocab, n, p=popularity)
    for t in range(context):
        pick = rng.choice(branching, n, p=weights)
        seqs[:, t + 1] = successors[seqs[:, t], pick]
    X, Y = torch.as_tensor(seqs[:, :-1]), torch.as_tensor(seqs[:, 1:])
    return Dataset(X, Y, Y)
