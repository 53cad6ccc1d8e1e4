"""The adam_local_geometry chapter at quick: claims that must hold at that scale, a clean notebook."""

import pytest

MUST_HOLD = ["lm-adam-faster", "mlp-contrast"]


@pytest.mark.slow
def test_adam_local_geometry_quick(built_chapter):
    claims, figures = built_chapter("adam_local_geometry")
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
    assert len(claims) == 8
    assert all(c["verdict"] == "inconclusive" or c["measured"] is not None for c in claims.values())
    assert figures >= 5
