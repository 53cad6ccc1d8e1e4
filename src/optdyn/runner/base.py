"""What every part of the runner shares: lazily imported modules, the package folder, the tags of the
cells the runner adds, the one-line error and how values are shown in messages.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path


class _Lazy:
    """A module imported on first use: ``optdyn`` answers (and is interruptible) before scipy and
    nbformat load, which takes seconds on a busy machine."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


nbformat = _Lazy("nbformat")
_claims = _Lazy("optdyn.claims")

#: The installed ``optdyn`` package (the folder above this one), which the chapters' kernels import; its
#: files are in the cache key.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: The tags of the cells the runner adds, also their cell ids (fixed, so that a cache hit rewrites no page).
FAILURE_TAG = "optdyn-failure"
REPRODUCE_TAG = "optdyn-reproduce"
CLAIMS_TAG = "optdyn-claims"
ACROSS_TAG = "optdyn-across-seeds"
_TMP_PREFIX = ".running-"
#: Values echoed in messages are cut to this many characters.
SHOWN = 80


class ParameterError(ValueError):
    """A bad chapter name, parameter or option, reported as one line before anything runs."""


def shown(value: object, limit: int = SHOWN, *, literal: bool = True) -> str:
    """``repr(value)`` (``str`` if not ``literal``) for a message, cut to ``limit`` characters: a
    100,000-character value is not echoed back."""
    text = repr(value) if literal else str(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def _number(x: float) -> str:
    """A declared bound as written: integers exactly (2147483647, not 2.14748e+09), ``inf``, else repr."""
    if x != x or x in (float("inf"), float("-inf")):
        return repr(x)
    return str(int(x)) if float(x).is_integer() else repr(x)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def one_line(error: BaseException) -> str:
    if hasattr(error, "ename") and hasattr(error, "evalue"):  # papermill's PapermillExecutionError
        text = f"{error.ename}: {error.evalue} (cell {getattr(error, 'exec_count', '?')})"
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."
