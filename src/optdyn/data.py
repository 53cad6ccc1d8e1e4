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


# --- adam_local_geometry chapter: character-level text that ships with Python ---------------------------

#: Standard-library modules whose source is the chapter's text corpus (about 0.8 M characters; no download:
#: the files ship with every CPython). Their exact text, hence every number measured on it, depends on the
#: Python version; :func:`python_source` reports which.
STDLIB_MODULES = (
    "argparse", "ast", "calendar", "configparser", "csv", "dataclasses", "difflib", "fractions",
    "functools", "heapq", "inspect", "pprint", "shlex", "statistics", "string", "textwrap",
)  # fmt: skip
#: Character vocabulary: newline, the 95 printable ASCII characters, and one id for everything else.
CHAR_VOCAB = 97


def encode_chars(text: str) -> np.ndarray:
    """Character ids: 0 for a newline, 1..95 for printable ASCII (space..~), 96 for any other character."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    ids = np.where((codes >= 32) & (codes < 127), codes - 31, CHAR_VOCAB - 1)
    return np.where(codes == 10, 0, ids)


def decode_chars(ids) -> str:
    """Inverse of :func:`encode_chars` (96 becomes ``¤``)."""
    return "".join("\n" if i == 0 else "¤" if i == CHAR_VOCAB - 1 else chr(int(i) + 31) for i in ids)


@dataclass(frozen=True)
class CharCorpus:
    """Character ids of a text split into train / validation / test (contiguous thirds of the tail).

    ``train`` is sampled by random windows; ``valid`` and ``test`` are cut into fixed, non-overlapping
    windows (:meth:`windows`). ``source`` says where the text came from.
    """

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    source: str

    def windows(
        self, split: str, context: int, limit: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-overlapping (inputs, next characters) windows of ``context`` characters of a split."""
        ids = getattr(self, split)
        n = (len(ids) - 1) // context
        n = n if limit is None else min(n, limit)
        x = ids[: n * context].reshape(n, context)
        y = ids[1 : n * context + 1].reshape(n, context)
        return x, y

    def sample(self, rng: np.random.Generator, batch: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` random training windows (inputs, next characters)."""
        starts = torch.as_tensor(rng.integers(0, len(self.train) - context - 1, batch))
        idx = starts[:, None] + torch.arange(context + 1)
        seqs = self.train[idx]
        return seqs[:, :-1], seqs[:, 1:]


def python_source(modules: tuple[str, ...] = STDLIB_MODULES, held_out: float = 0.1) -> CharCorpus:
    """The source code of standard-library ``modules`` of the running Python, as character ids.

    The concatenated text is split: the first 1 − 2·``held_out`` for training, then validation, then
    test (whole stretches of code the model never trained on).
    """
    import importlib
    import inspect
    import sys

    if not 0 < held_out < 0.5:
        raise ValueError(f"python_source: held_out must lie in (0, 0.5), got {held_out}")
    text = "".join(inspect.getsource(importlib.import_module(m)) for m in modules)
    ids = torch.as_tensor(encode_chars(text))
    n = len(ids)
    a, b = int(n * (1 - 2 * held_out)), int(n * (1 - held_out))
    version = ".".join(map(str, sys.version_info[:3]))
    source = f"{len(modules)} standard-library modules of Python {version}, {n:,} characters"
    return CharCorpus(ids[:a], ids[a:b], ids[b:], source)
