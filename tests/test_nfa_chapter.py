"""The feature-learning chapter: its claims table and the quick build.

The quick build asserts what every chapter must pass (sourced paper claims, finite on every seed, checks that
hold, no raised cell); no paper-claim verdict is pinned. The measuring functions are tested on hand-made data
in tests/test_features.py.
"""

import pytest

from optdyn import claims
from optdyn.experiments import nfa_alignment as na

PAPER = {
    "nfa-rises-deeper",
    "nfa-rises-first",
    "cnfa-high-early",
    "cnfa-above-uc",
    "alignment-not-chance",
    "early-from-data",
    "slo-raises-nfa",
    "slo-sharper-features",
}
CHECKS = {"agop-identity", "alignment-form", "first-step"}


def test_claims_table_declares_paper_claims_and_checks_apart():
    claims.validate(na.CLAIMS)
    kinds = {spec.id: spec.kind for spec in na.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    paper = [spec for spec in na.CLAIMS if spec.kind == "paper"]
    assert all(spec.paper and spec.source.startswith("Beaglehole et al.") for spec in paper)
    assert all(spec.seeds == 3 for spec in paper)


def test_profiles_share_the_claims_and_keep_three_hidden_layers_or_more():
    assert set(na.PROFILES) == {"quick", "default", "full"}
    assert all(cfg["depth"] >= 3 and cfg["epochs"] >= 40 for cfg in na.PROFILES.values())
    with pytest.raises(ValueError):
        na.config("huge")


@pytest.mark.slow
def test_nfa_alignment_quick(built_chapter):
    paper, checks, figures = built_chapter("nfa_alignment")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 6
