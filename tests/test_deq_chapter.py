"""The DEQ-initialization chapter: its claims table, its profiles, its measuring functions on hand-made
data, and the quick build (no paper-claim verdict is pinned). The layer and solvers: tests/test_deq.py."""

import pandas as pd
import pytest

from optdyn import claims
from optdyn.experiments import deq_initialization as di

PAPER = {
    "second-moment-not-enough",
    "orthogonal-solves-further",
    "symmetric-solves-further",
    "orthogonal-trains-wider",
    "symmetric-trains-wider",
    "spectrum-predicts-training",
}
CHECKS = {"implicit-gradient", "float32-backward", "untied-families-agree", "gaussian-mean-field"}


def test_claims_table_declares_paper_claims_and_checks_apart():
    claims.validate(di.CLAIMS)
    kinds = {spec.id: spec.kind for spec in di.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    paper = [spec for spec in di.CLAIMS if spec.kind == "paper"]
    assert all(spec.paper and spec.source.startswith("Agarwala & Schoenholz 2022") for spec in paper)
    assert all(spec.seeds == 3 for spec in paper)


def test_profiles():
    assert set(di.PROFILES) == {"quick", "default", "full"}
    for cfg in di.PROFILES.values():
        assert set(cfg["train_families"]) >= set(di.FAMILIES) or cfg is di.PROFILES["quick"]
        assert min(cfg["sigmas"]) <= 1.0 and max(cfg["sigmas"]) >= 2.5
    with pytest.raises(ValueError):
        di.config("huge")
    with pytest.raises(ValueError, match="seed"):
        di.init_sweep("quick", -1)


def test_critical_sigma_interpolates_and_censors():
    frame = pd.DataFrame(
        dict(
            family=["a"] * 4 + ["b"] * 2,
            sigma=[1.0, 2.0, 3.0, 4.0, 1.0, 2.0],
            conv_damped=[1, 0.9, 0.3, 0, 1, 0.8],
        )
    )
    assert di.critical_sigma(frame, "a") == pytest.approx(2.0 + 0.4 / 0.6)
    assert di.critical_sigma(frame, "b") == 2.0  # never below 1/2: the grid's end


def test_budget_radius_and_mechanism_measure():
    assert di.budget_radius(100) == pytest.approx(1e-4**0.01)
    t = pd.DataFrame(
        dict(
            family=["gaussian", "gaussian", "symmetric", "symmetric"],
            sigma=[0.5, 2.0, 0.5, 2.0],
            rho_damped=[0.7, 1.1, 0.95, 0.8],
            budget_radius=[0.912] * 4,
            success=[True, False, False, True],
        )
    )
    assert di.spectrum_predicts_success({"training": t}).value == 1.0
    assert di.wider_range({"training": t}, "symmetric").value == 0


@pytest.mark.slow
def test_deq_initialization_quick(built_chapter):
    paper, checks, figures = built_chapter("deq_initialization")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 7
