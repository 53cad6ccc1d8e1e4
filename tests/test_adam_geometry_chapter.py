"""The adam_local_geometry chapter at quick: claims that must hold at that scale, a clean notebook."""

import json

import nbformat
import pytest

from optdyn import runner

MUST_HOLD = ["lm-adam-faster", "mlp-contrast"]


@pytest.mark.slow
def test_adam_local_geometry_quick(tmp_path):
    status = runner.main(
        ["run", "adam_local_geometry", "--force", "--out", str(tmp_path), "--profile", "quick"]
    )
    assert status == 0
    claims = {
        c["id"]: c for c in json.loads((tmp_path / "adam_local_geometry.claims.json").read_text())["claims"]
    }
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
    assert len(claims) == 8
    for c in claims.values():
        assert c["paper"] and c["rule"] and c["source"]
        assert c["verdict"] == "inconclusive" or c["measured"] is not None
    nb = nbformat.read(tmp_path / "adam_local_geometry.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 5
    assert not any(o.get("output_type") == "error" for o in outputs)
