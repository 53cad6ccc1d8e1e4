"""The adam_local_geometry chapter at quick: claims that must hold at that scale, a clean notebook."""

import json

import nbformat
import pytest

MUST_HOLD = ["lm-adam-faster", "mlp-contrast"]


@pytest.mark.slow
def test_adam_local_geometry_quick(quick_book):
    root, status = quick_book
    out = root / "book" / "_executed"
    assert status == 0
    claims = {c["id"]: c for c in json.loads((out / "adam_local_geometry.claims.json").read_text())["claims"]}
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
    assert len(claims) == 8
    for c in claims.values():
        assert c["paper"] and c["rule"] and c["source"]
        assert c["verdict"] == "inconclusive" or c["measured"] is not None
    nb = nbformat.read(out / "adam_local_geometry.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    assert not any(o.get("output_type") == "error" for o in outputs)
