"""The second-order regression chapter: its claims table and the quick build.

The quick build asserts what every chapter must pass (sourced paper claims, finite on every seed, checks that
hold, no raised cell); no paper-claim verdict is pinned. The model and the reduced map are tested against
autograd, dense Hessians, GD on parameters and an ODE solver in tests/test_second_order.py.
"""

import pytest

from optdyn import claims
from optdyn.experiments import second_order_regression as sor

PAPER = {
    "linear-no-sharpening",
    "ps-two-parameter",
    "near-not-at-edge",
    "eos-oscillation",
    "highd-reaches-edge",
    "highd-stays-near-edge",
    "highd-generic",
    "sharpening-needs-q",
}
CHECKS = {
    "reduced-map",
    "function-space",
    "flattest-floor",
    "flattest-limit",
    "normal-form",
    "hessian-is-ntk-at-the-end",
    "linear-diverges-above",
}


def test_claims_table_declares_paper_claims_and_checks_apart():
    claims.validate(sor.CLAIMS)
    kinds = {spec.id: spec.kind for spec in sor.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    paper = [spec for spec in sor.CLAIMS if spec.kind == "paper"]
    assert all(spec.paper and spec.source.startswith("Agarwala, Pedregosa & Pennington") for spec in paper)


def test_profiles_and_bad_input():
    assert set(sor.PROFILES) == {"quick", "default", "full"}
    assert 0.0 in sor.QS and sor.Q_EDGE in sor.QS
    with pytest.raises(ValueError):
        sor.config("huge")
    with pytest.raises(ValueError):
        sor.two_parameter("quick", -1)


@pytest.mark.slow
def test_second_order_regression_quick(built_chapter):
    paper, checks, figures = built_chapter("second_order_regression")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 5
