"""The conservative-sharpening chapter: its claims table, its profiles and the quick build.

The quick build asserts what every chapter must pass (sourced paper claims, finite on every seed, checks that
hold, no raised cell); no paper-claim verdict is pinned. The shared functions are tested against independent
ground truth in tests/test_noise_kernel.py.
"""

import pytest

from optdyn import claims
from optdyn.experiments import conservative_sharpening as cs

PAPER = {
    "model-conservative",
    "linear-below-edge",
    "linear-above-edge",
    "net-conservative",
    "net-ordered",
    "seos-slope",
    "seos-trace",
    "seos-below-eos",
    "eos-saturation",
    "crossover",
}
CHECKS = {"trace-loop", "trace-closed-form", "linear-far-from-eos"}


def test_claims_table_declares_paper_claims_and_checks_apart():
    claims.validate(cs.CLAIMS)
    kinds = {spec.id: spec.kind for spec in cs.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    paper = [spec for spec in cs.CLAIMS if spec.kind == "paper"]
    assert all(spec.paper and spec.source.startswith("Agarwala & Pennington 2024") for spec in paper)
    assert all(spec.seeds == 3 for spec in paper)


def test_profiles_compare_gd_with_smaller_batches():
    assert set(cs.PROFILES) == {"quick", "default", "full"}
    for cfg in cs.PROFILES.values():
        assert max(cfg["mlp_batches"]) == 1797 and min(cfg["mlp_batches"]) < 1797
        assert min(cfg["edge_batches"]) <= cs.SMALL_B < max(cfg["edge_batches"])
        assert sum(b <= cs.SMALL_B for b in cfg["edge_batches"]) >= 2
    with pytest.raises(ValueError):
        cs.config("huge")


@pytest.mark.slow
def test_conservative_sharpening_quick(built_chapter):
    paper, checks, figures = built_chapter("conservative_sharpening")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 4
