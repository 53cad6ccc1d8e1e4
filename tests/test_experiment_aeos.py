"""The AEoS chapter's summaries and measuring functions on hand-made trajectories with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from optdyn import claims
from optdyn.experiments import adaptive_edge_of_stability as aeos


def run(ratios, threshold=4.0, diverged_at=np.nan, column="sharpness", every=25, **tags):
    """A probe table whose ``column``/threshold follows ``ratios`` (steps 0, every, 2·every, ...)."""
    steps = np.arange(len(ratios)) * every
    return pd.DataFrame(
        {
            "step": steps,
            column: np.asarray(ratios, float) * threshold,
            "threshold": threshold,
            "diverged_at": diverged_at,
            **tags,
        }
    )


def adam_run(precond, raw, lr, variant="adaptive", beta1=0.9, diverged_at=np.nan, **extra):
    """An Adam probe table: λ1(P⁻¹H) = precond·38/η (ratios) and λ1(H) = raw, 100 steps apart."""
    threshold = (2 + 2 * beta1) / ((1 - beta1) * lr)
    frame = run(precond, threshold, diverged_at, "precond_sharpness", every=100)
    frame["sharpness"] = raw
    return frame.assign(variant=variant, lr=lr, beta1=beta1, **extra)


def test_plateau_is_the_last_40_percent_and_a_diverged_run_has_none():
    settled = run([0.5, 0.8, 0.95, 1.05, 1.0, 1.1, 1.0], lr=0.5)  # steps 0..150: window from step 90
    diverged = run([0.5, 0.8, 0.95, 1.05, 1.0, 1.1, 40.0], lr=0.6, diverged_at=150)
    table = aeos.plateaus(pd.concat([settled, diverged]), "sharpness", ["lr"]).set_index("lr")
    assert table.loc[0.5, "median"] == np.median([1.0, 1.1, 1.0])
    assert table.loc[0.5, "level"] == pytest.approx(4.0 * 1.0)
    assert table.loc[0.5, "start_ratio"] == 0.5
    assert np.isnan(table.loc[0.6, "median"]) and np.isnan(table.loc[0.6, "raw_growth"])


def test_a_run_that_settles_below_its_threshold_shows_a_low_plateau():
    low = run([0.3, 0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8], lr=0.5)
    row = aeos.plateaus(low, "sharpness", ["lr"]).iloc[0]
    assert row["median"] == pytest.approx(0.8)
    assert np.isnan(row["raw_growth"])  # it never reached the edge


def test_raw_growth_is_the_window_median_over_the_value_at_the_edge():
    # ratio reaches 1 at step 50 (λ1 = 4); the window (steps ≥ 0.6·200 = 120) holds 1.2, 1.5, 1.3
    table = aeos.plateaus(run([0.5, 0.9, 1.0, 1.2, 1.5, 1.3, 1.4, 1.2, 1.3], lr=0.5), "sharpness", ["lr"])
    assert table["raw_growth"].iloc[0] == pytest.approx(np.median([1.2, 1.3, 1.4, 1.2, 1.3]) / 1.0)
    assert table["rise"].iloc[0] == pytest.approx(1.3 / 0.5)


def _data(adam, gd=None):
    gd = gd if gd is not None else run([0.5, 1.0, 1.0, 1.0, 1.0], lr=0.5)
    return {"gd": gd, "adam": adam}


def test_inverse_eta_slope_is_fitted_on_the_plateau_itself_not_on_the_threshold():
    # plateau ∝ η^-0.7: the slope must come out at -0.7 whatever the threshold column says
    lrs = [1e-3, 2e-3, 5e-3]
    frames = []
    for lr in lrs:
        level = 30.0 * lr**-0.7
        frame = adam_run([level / (38 / lr)] * 6, [10.0] * 6, lr)
        frame["threshold"] = 1.0 if lr == 2e-3 else frame["threshold"]  # a wrong threshold is ignored
        frames.append(frame)
    m = aeos.measure_aeos_inverse_eta(_data(pd.concat(frames)))
    assert m.value == pytest.approx(-0.7) and "spans 5×" in m.detail


def test_a_diverged_adam_run_is_reported_not_dropped():
    ok = adam_run([0.2, 1.0, 1.0, 1.0, 1.0, 1.0], [5.0, 8.0, 9.0, 10.0, 11.0, 12.0], 2e-3)
    bad = adam_run(
        [0.2, 1.0, 1.0, np.nan, np.nan, np.nan], [5.0, 8.0, 9.0, 1e3, np.nan, np.nan], 1e-2, diverged_at=300
    )
    data = _data(pd.concat([ok, bad]))
    for measure in (aeos.measure_adam_raw_rises, aeos.measure_aeos_inverse_eta, aeos.measure_aeos_largest_lr):
        m = measure(data)
        assert math.isnan(m.value) and "diverged at step 300" in m.why
    alone = aeos.measure_adam_raw_rises(_data(ok))
    assert alone.value == pytest.approx(np.median([10.0, 11.0, 12.0]) / 8.0)


def test_frozen_raw_stops_compares_window_medians_with_the_value_at_the_freeze():
    tags = dict(freeze_at=100)
    adaptive = adam_run([1.0] * 6, [10.0, 10.0, 11.0, 12.0, 13.0, 14.0], 2e-3, **tags)
    # frozen: rises, falls at a spike, climbs back; last probe (11.5) above the freeze value (10)
    frozen = adam_run([1.0] * 6, [10.0, 10.0, 12.0, 9.0, 10.5, 11.5], 2e-3, "frozen", **tags)
    m = aeos.measure_frozen_raw_stops(_data(pd.concat([adaptive, frozen])))
    # window: steps ≥ 300 → frozen median 10.5, adaptive median 13
    assert m.value == pytest.approx((10.5 - 10.0) / (13.0 - 10.0))
    flat = adam_run([1.0] * 6, [10.0] * 6, 2e-3, **tags)
    m = aeos.measure_frozen_raw_stops(_data(pd.concat([flat, frozen])))
    assert math.isnan(m.value) and "did not rise" in m.why


def test_minibatch_spearman_and_prefix_check():
    batches = pd.concat(
        run([0.1, r, r, r, r, r], threshold=38 / 3e-3, column="precond_sharpness", batch_size=b)
        for b, r in [(1000, 1.0), (100, 0.2), (25, 0.05)]
    )
    assert aeos.measure_minibatch_weakens({"batches": batches}).value == pytest.approx(1.0)
    tags = dict(freeze_at=200)
    adaptive = adam_run([0.5, 1.0, 1.0, 1.0], [5.0, 6.0, 7.0, 8.0], 2e-3, **tags)
    same = adam_run([0.5, 1.0, 1.0, 0.9], [5.0, 6.0, 7.0, 7.0], 2e-3, "frozen", **tags)
    assert aeos.check_frozen_prefix(_data(pd.concat([adaptive, same]))).value == 0.0
    other = adam_run([0.5, 1.0, 1.1, 0.9], [5.0, 6.0, 7.0, 7.0], 2e-3, "frozen", **tags)
    assert aeos.check_frozen_prefix(_data(pd.concat([adaptive, other]))).value > 0


def test_every_profile_declares_the_same_records():
    ids = [s.id for s in aeos.CLAIMS]
    claims.validate(aeos.CLAIMS)
    assert len(ids) == len(set(ids))
    assert {"aeos-smallest-lr", "aeos-largest-lr", "aeos-inverse-eta", "adam-raw-rises"} <= set(ids)
    assert [s.id for s in aeos.CLAIMS if s.kind == "check"] == [
        "frozen-branch-prefix",
        "frozen-p-constant",
        "eps-negligible",
    ]
    for profile in aeos.PROFILES.values():
        assert max(profile["adam_lrs"]) / min(profile["adam_lrs"]) >= 5
