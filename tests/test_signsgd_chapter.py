"""The signSGD chapter at the quick profile: the claims that must hold at that scale, and a clean notebook."""

import json
from pathlib import Path

import nbformat
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
def test_signsgd_high_dim_quick(quick_book):
    root, status = quick_book
    out = root / "book" / "_executed"
    assert status == 0
    claims = {c["id"]: c for c in json.loads((out / "signsgd_high_dim.claims.json").read_text())["claims"]}
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
    for c in claims.values():
        assert c["paper"] and c["rule"] and c["source"]
    nb = nbformat.read(out / "signsgd_high_dim.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 7
    assert not any(o.get("output_type") == "error" for o in outputs)
