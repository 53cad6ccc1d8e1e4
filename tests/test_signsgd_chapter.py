"""The signSGD chapter at the quick profile: the claims that must hold at that scale, and a clean notebook."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MUST_HOLD = [
    "conc-signsgd-gap",
    "conc-signsgd-shrinks",
    "conc-sgd-gap",
    "conc-sgd-shrinks",
    "lr-linear-sqrt-risk",
    "lr-floor",
    "noise-ode-floors",
    "noise-sign-linear",
    "noise-sgd-quadratic",
    "noise-cauchy",
    "noise-density-order",
    "precond-signsgd-diagonal",
    "precond-sgd-diagonal",
    "precond-signsgd-rotated",
    "reshape-ksigma",
    "reshape-sgd-scales",
]


@pytest.mark.slow
def test_signsgd_high_dim_quick(built_chapter):
    claims, figures = built_chapter("signsgd_high_dim")
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
    assert figures >= 7
