"""The tuners chapter: its claims table, the quick build, and the estimators its claims rest on, against
hand-made series with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from optdyn import claims
from optdyn.experiments import curvature_aware_tuners as ct

PAPER = {
    "short-win", "long-loss", "snowball-sharpness", "snowball-lr", "const-edge-0.5", "const-edge-1",
    "tuners-below-edge", "cdat-edge", "cdat-warmup", "cdat-vs-constant", "cdat-vs-greedy", "polyak-edge",
    "polyak-vs-armijo", "polyak-vs-constant", "minibatch-sigma", "minibatch-ema", "minibatch-armijo",
    "deep-snowball-sharpness", "deep-cdat-edge", "deep-cdat-vs-constant", "deep-polyak-vs-armijo",
    "adam-cdat-vs-constant", "adam-cdat-vs-warmup",
}  # fmt: skip
CHECKS = {
    "cdat-directional", "model-constant", "model-greedy", "model-greedy-sqrt", "model-greedy-vs-constant",
    "model-cdat2", "model-cdat2-flat", "model-cdat19",
}  # fmt: skip


@pytest.mark.slow
def test_curvature_aware_tuners_quick(built_chapter):
    paper, checks, figures = built_chapter("curvature_aware_tuners")
    assert set(paper) == PAPER and set(checks) == CHECKS
    assert figures >= 7


def test_claims_table_kinds_and_seeds():
    claims.validate(ct.CLAIMS)
    kinds = {s.id: s.kind for s in ct.CLAIMS}
    assert {k for k, v in kinds.items() if v == "paper"} == PAPER
    assert {k for k, v in kinds.items() if v == "check"} == CHECKS
    close = {
        "cdat-vs-constant",
        "cdat-vs-greedy",
        "deep-cdat-vs-constant",
        *(k for k in PAPER if "adam" in k),
    }
    assert all(s.seeds == 5 for s in ct.CLAIMS if s.id in close)
    assert next(s for s in ct.CLAIMS if s.id == "minibatch-ema").given == "minibatch-sigma"


def test_profiles_are_complete_and_the_quick_one_is_small():
    keys = set(ct.PROFILES["default"])
    assert all(set(p) == keys for p in ct.PROFILES.values())
    quick, default = ct.config("quick"), ct.config("default")
    assert quick["n"] * quick["steps"] <= default["n"] * default["steps"]
    assert default["steps"] >= 3000 and default["every"] == 100
    for cfg in ct.PROFILES.values():
        assert {0.5, 1.0} <= set(cfg["lrs"]) and {1.0, 2.0} <= set(cfg["sigmas"])
        assert {1.0, 2.0} <= set(cfg["batch_sigmas"]) and cfg["batch_steps"] <= cfg["steps"]
    assert max(default["lrs"]) > 1  # the grid reaches past η = 1, where the best constant sat


def test_probes_alternate_between_even_and_odd_steps():
    steps = sorted(ct.probe_steps(1000, 100))
    assert steps[:4] == [0, 101, 200, 301] and steps[-1] == 1000
    late = [s for s in steps if s >= 600]
    assert sum(s % 2 for s in late) in (len(late) // 2, (len(late) + 1) // 2)


def _period_two(steps: int, level, ratio: float = 3.0, flip_at: int | None = None) -> pd.DataFrame:
    """η_t = level(t)·√ratio at even t and level(t)/√ratio at odd t (phases swapped after ``flip_at``)."""
    t = np.arange(steps + 1)
    phase = np.where(t % 2 == 0, 1.0, -1.0)
    if flip_at is not None:
        phase[t >= flip_at] *= -1
    lr = np.array([level(s) for s in t]) * np.sqrt(ratio) ** phase
    return pd.DataFrame({"step": t, "lr": lr})


def test_phase_matched_ratio_of_a_period_two_series_is_known():
    # the level falls from 1 to 0.25; single samples at steps 100 and 2999 read opposite phases
    run = _period_two(2999, lambda t: 1.0 if t < 1000 else 0.25, ratio=9.0)
    single = run["lr"].iloc[-1] / run["lr"].iloc[100]
    assert single == pytest.approx(0.25 / 9)  # phase mismatch: 9× too small
    assert ct.phase_ratio(run, "lr", 2999, 100) == pytest.approx(0.25, rel=1e-12)
    level = ct.phase_level(run, "lr", 100)
    assert (level["upper"], level["lower"], level["level"]) == pytest.approx((3.0, 1 / 3, 1.0))
    # a phase slip on the way does not change it
    slipped = _period_two(3000, lambda t: 1.0 if t < 1000 else 0.25, ratio=9.0, flip_at=1501)
    assert ct.phase_ratio(slipped, "lr", 3000, 100) == pytest.approx(0.25, rel=1e-12)
    # windows are moved inside the run: the level at step 0 uses steps 0-20
    assert ct.phase_level(run, "lr", 0)["level"] == pytest.approx(1.0)


def test_late_median_of_an_oscillating_sharpness_is_known():
    # λ swings between 1.5 and 2.5 (period 2). Probed at alternating parity, the late window (last 40%)
    # holds 7 probes of one phase and 6 of the other: a plain median reads one phase, 2.5, and so does the
    # last probe; the phase-balanced median is √(1.5 · 2.5) on any window.
    steps = sorted(ct.probe_steps(3000, 100))
    frame = pd.DataFrame({"step": steps, "sharpness": [2.0 + 0.5 * (-1) ** s for s in steps]})
    assert ct.late_median(frame, "sharpness") == pytest.approx(math.sqrt(1.5 * 2.5))
    late = frame[frame["step"] >= 1800]
    assert late["sharpness"].median() == 2.5 and frame["sharpness"].iloc[-1] == 2.5
    assert ct.late_median(frame.iloc[:-1], "sharpness") == pytest.approx(math.sqrt(1.5 * 2.5))
    # the window is the last 40% of the run: a rise before it does not count
    rising = pd.DataFrame({"step": range(0, 1001, 10), "sharpness": [1.0] * 60 + [3.0] * 41})
    assert ct.late_median(rising, "sharpness") == 3.0


def test_balanced_median_by_hand():
    assert ct.balanced_median([0, 1, 2, 3, 4], [4.0, 1.0, 4.0, 1.0, 4.0]) == pytest.approx(2.0)
    assert ct.balanced_median([0, 2, 4], [1.0, 3.0, 2.0]) == 2.0  # one parity only: its median
    assert ct.balanced_median([0, 1], [-1.0, 3.0]) == 1.0  # a sign change: the mean of the two medians
    assert math.isnan(ct.balanced_median([], []))


def test_final_and_early_loss_are_medians_over_fixed_windows():
    t = np.arange(1001)
    loss = np.where(t % 2 == 0, 2.0, 1.0) * np.where(t >= 900, 0.1, 1.0)
    frame = pd.DataFrame({"step": t, "loss": loss, "stopped": ""})
    assert ct.final_loss(frame) == pytest.approx(math.sqrt(0.2 * 0.1))  # steps 900-1000 alternate 0.2/0.1
    assert ct.early_loss(frame) == pytest.approx(math.sqrt(2.0))  # steps 10-30 alternate 2/1
    assert ct.final_loss(frame, until=500) == pytest.approx(math.sqrt(2.0))
    assert math.isnan(ct.final_loss(frame.assign(stopped="step 5: loss 1e7")))


def _batch_frame(values: dict) -> pd.DataFrame:
    """A minibatch frame with, per (batch, run), a loss going from 1 to ``values[(batch, run)]``."""
    rows = []
    for (b, run), end in values.items():
        tuner = "cdat" if run.startswith(("CDAT", "greedy")) else run.split(" ")[0]
        sigma = 1.0 if run.startswith("greedy") else (2.0 if "σ=2" in run else 1.0)
        beta = 0.9 if "beta=0.9" in run else 0.0
        for step, loss in ((0, 1.0), (90, end), (95, end), (100, end)):
            rows.append(
                dict(step=step, loss=loss, batch_size=b, run=run, tuner=tuner, sigma=sigma, beta=beta)
            )
    return pd.DataFrame(rows).assign(stopped="")


def test_minibatch_contrasts_by_hand():
    v = {
        (16, "greedy (σ=1)"): 0.01, (16, "CDAT σ=2"): 0.1, (16, "CDAT σ=1 (beta=0.9)"): 0.01,
        (16, "CDAT σ=2 (beta=0.9)"): 0.02, (16, "armijo"): 0.04, (16, "constant η=0.5"): 0.02,
        (256, "greedy (σ=1)"): 0.01, (256, "CDAT σ=2"): 0.01, (256, "CDAT σ=1 (beta=0.9)"): 0.01,
        (256, "CDAT σ=2 (beta=0.9)"): 0.01, (256, "armijo"): 0.08, (256, "constant η=0.5"): 0.02,
    }  # fmt: skip
    data = {"batch": _batch_frame(v)}
    assert ct.minibatch_sigma(data).value == pytest.approx(1.0)  # log10(10) − log10(1)
    assert ct.minibatch_ema(data).value == pytest.approx(math.log10(2) - 1.0)
    assert ct.minibatch_armijo(data).value == pytest.approx((0.04 / 0.02) / (0.08 / 0.02))
    table = ct.sigma_contrast(ct.minibatch_table(data["batch"]))
    assert table["log10 L(σ=2)/L(σ=1)"].tolist() == pytest.approx([1.0, 0.0, math.log10(2), 0.0])


def test_a_stopped_run_is_reported_not_dropped():
    t = np.arange(0, 101)
    ok = pd.DataFrame({"step": t, "loss": 1.0, "lr": 0.5, "run": "armijo", "stopped": ""})
    bad = ok[ok["step"] <= 7].assign(run="greedy (σ=1)", stopped="step 7: loss 2e6")
    const = ok.assign(run="constant η=0.5")
    frame = pd.concat([ok, bad, const], ignore_index=True).assign(
        sharpness=np.nan, eta_lambda=np.nan, eta_dir=np.nan
    )
    m = ct.long_loss({"full": frame})
    assert m.value is None and "greedy (σ=1) stopped (step 7" in m.why


def test_adam_claims_pick_the_best_baseline_of_each_kind():
    rows = []
    for run, end in {
        "Adam: constant η=0.003": 0.004, "Adam: constant η=0.01": 0.002, "Adam: constant η=0.03": 0.003,
        "Adam: constant η=0.003 (warmup=100)": 0.005, "Adam: constant η=0.01 (warmup=100)": 0.001,
        "Adam: constant η=0.03 (warmup=100)": 0.0008, "Adam: CDAT σ=2": 0.0016,
    }.items():  # fmt: skip
        rows += [
            dict(step=t, loss=1.0 if t < 900 else end, lr=0.01, run=run, stopped="") for t in range(1001)
        ]
    frame = pd.DataFrame(rows).assign(sharpness=np.nan, eta_lambda=np.nan, eta_dir=np.nan)
    data = {"adam": frame}
    assert ct.adam_cdat_vs_constant(data).value == pytest.approx(0.8)
    warm = ct.adam_cdat_vs_warmup(data)
    assert warm.value == pytest.approx(2.0) and "an end of the grid" in warm.detail


def test_model_checks_hold_on_the_chapter_model():
    data = {"model": ct.model_runs()}
    for spec in ct.CLAIMS:
        if spec.id.startswith("model-"):
            record = claims.measure_one(spec, data)
            assert record.inside, (spec.id, record.value, str(spec.band))
