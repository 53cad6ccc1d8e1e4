"""The clipping chapter: its claims table, its measuring functions on hand-made data, and the quick build.

The quick build asserts what every chapter must pass (sourced paper claims, finite on every seed, checks
that hold, no raised cell); no paper-claim verdict is pinned.
"""

import math

import numpy as np
import pandas as pd
import pytest

from optdyn import claims
from optdyn.experiments import clipping_high_dim as ch

PAPER = {
    "ode-gap-gaussian",
    "ode-gap-t3",
    "ode-gap-cauchy",
    "ode-gap-shrinks",
    "cauchy-sgd-fails",
    "gaussian-ccc-bound",
    "gaussian-no-gain",
    "t3-ccc",
    "t3-tuned-gain",
    "t3-beats-schedules",
    "gaussian-csc",
    "csc-stability-run",
}
CHECKS = {"factors-quadrature-closed", "factors-quadrature-mc", "ode-floor", "best-schedule-optimal"}


def test_claims_table_declares_paper_claims_and_checks_apart():
    claims.validate(ch.CLAIMS)
    kinds = {spec.id: spec.kind for spec in ch.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    assert all(
        spec.paper and spec.source.startswith("Marshall et al.") for spec in ch.CLAIMS if spec.kind == "paper"
    )
    assert all(spec.seeds == 3 for spec in ch.CLAIMS if spec.kind == "paper")


def test_profiles_grow_and_unknown_profile_is_rejected():
    q, d, f = (ch.config(p) for p in ("quick", "default", "full"))
    assert max(q["dims"]) < max(d["dims"]) < max(f["dims"])
    assert len(q["etas"]) < len(d["etas"]) < len(f["etas"])
    assert 0.05 in d["etas"] and max(d["etas"]) < 2  # η below SGD's optimum, all below SGD's limit
    with pytest.raises(ValueError, match="unknown profile"):
        ch.config("tiny")


def _sweep(law, finals):
    """Hand-made sweep: ``finals`` maps (η, c̃) to a final risk."""
    return pd.DataFrame(
        [
            dict(law=law, eta=e, clip=c, final=v, final_ode=v, diverged_at=np.nan, max_risk=v)
            for (e, c), v in finals.items()
        ]
    )


def test_tuned_ratio_and_cauchy_measure_on_hand_made_sweeps():
    sweep = _sweep(
        "Student-t3", {(0.1, np.inf): 0.2, (0.2, np.inf): 0.15, (0.1, 1.0): 0.12, (0.2, 1.0): 0.13}
    )
    m = ch.tuned_ratio({"sweep": sweep}, "Student-t3")
    assert m.value == pytest.approx(0.12 / 0.15)
    cauchy = _sweep("Cauchy", {(0.1, np.inf): 1e9, (0.1, 2.0): 0.2})
    cauchy.loc[0, "diverged_at"] = 3.0
    m = ch.cauchy_log_ratio({"sweep": cauchy})
    assert m.value == pytest.approx(math.log10(ch.DIVERGED / 0.2))  # a diverged run counts as 10⁶
    assert "1/1 η diverged" in m.detail


def test_gap_measures_on_hand_made_concentration():
    rows = []
    for law, gaps in (("Gaussian", (0.2, 0.05)), ("Cauchy", (0.1, 0.08))):
        for d, gap in zip((250, 1000), gaps, strict=True):
            for t in np.linspace(0.5, 2, 4):
                rows.append(dict(law=law, d=d, method="clipped", run=0, t=t, risk=1 + gap, ode=1.0))
    data = {"conc": pd.DataFrame(rows)}
    assert ch.gap_at(data, "Gaussian").value == pytest.approx(0.05)
    assert ch.gap_ratio(data).value == pytest.approx(0.8)  # the worst law


def test_final_risk_uses_the_last_tenth_and_marks_divergence():
    t = np.linspace(0, 10, 101)
    f = pd.DataFrame(
        dict(eta=0.1, clip=1.0, t=t, risk=np.where(t >= 9, 2.0, 5.0), ode=1.0, diverged_at=np.nan)
    )
    out = ch.final_risk(f)
    assert out["final"].iloc[0] == pytest.approx(2.0) and out["final_ode"].iloc[0] == 1.0
    f["diverged_at"] = 4.0
    assert np.isinf(ch.final_risk(f)["final"].iloc[0])


@pytest.mark.slow
def test_clipping_high_dim_quick(built_chapter):
    paper, checks, figures = built_chapter("clipping_high_dim")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 5
