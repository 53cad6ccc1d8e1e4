"""The neglected-Hessian-component chapter: its claims table, its profiles and the quick build.

The quick build asserts what every chapter must pass (sourced paper claims, finite on every seed, checks that
hold, no raised cell); no paper-claim verdict is pinned. The shared machinery is tested against dense
matrices in tests/test_nme_split.py.
"""

import pytest

from optdyn import claims
from optdyn.experiments import nme_hessian_component as nme

PAPER = {
    "nme-sizeable-early",
    "nme-follows-residual",
    "beta-gelu-curvature-sparse",
    "psam-gelu-tracks-sam",
    "psam-relu-below-sam",
    "removing-sigma2-hurts",
    "adding-sigma2-helps",
    "psam-gain-shrinks-with-beta",
    "gn-trace-beats-hessian-trace",
    "gn-trace-beats-weight-noise",
    "gap-survives-more-samples",
    "trace-h-goes-negative",
    "gn-trace-comparable-to-psam",
}
CHECKS = {
    "split-matches-dense",
    "nme-two-routes",
    "relu-same-layer-zero",
    "gelu-same-layer-nonzero",
    "trace-g-nonnegative",
}


def test_claims_table_declares_paper_claims_and_checks_apart():
    claims.validate(nme.CLAIMS)
    kinds = {spec.id: spec.kind for spec in nme.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    paper = [spec for spec in nme.CLAIMS if spec.kind == "paper"]
    assert all(spec.paper and spec.source.startswith("Dauphin et al. 2024") for spec in paper)
    assert all(spec.seeds == 3 for spec in paper)


def test_profiles_compare_every_variant_and_penalty():
    assert set(nme.PROFILES) == {"quick", "default", "full"}
    for cfg in nme.PROFILES.values():
        assert set(cfg["variants"]) == set(nme.VARIANTS)
        assert cfg["many_samples"] == 5 and cfg["steps"] >= 200
    with pytest.raises(ValueError):
        nme.config("huge")
    with pytest.raises(ValueError):
        nme.model_of("swish", 0)


@pytest.mark.slow
def test_nme_hessian_component_quick(built_chapter):
    paper, checks, figures = built_chapter("nme_hessian_component")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 5
