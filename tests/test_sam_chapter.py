"""The SAM edge-of-stability chapter: its claims table (ids, kinds, premises), the measuring functions on
hand-made trajectories with known answers (a low or late plateau is measured low, a diverged run gives no
value and says why), the quick build (every paper claim finite, every check holds, the figures), a clean
notebook and a parameter error before any compute."""

from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from optdyn import claims, runner
from optdyn.experiments import sam_edge_of_stability as sam

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "sam_edge_of_stability"
PAPER = [
    "toy-gd-edge",
    "toy-usam-edge",
    "mlp-gd-edge",
    "mlp-usam-edge",
    "cnn-gd-edge",
    "cnn-usam-edge",
    "plateau-falls-with-rho",
    "below-gd-edge",
    "far-from-home",
    "normalized-sam-edge",
]
CHECKS = ["toy-flow-past-gd-edge", "toy-starts-below-edges", "edge-identity"]


def test_claims_table_is_fixed_and_valid():
    claims.validate(sam.CLAIMS)
    assert [s.id for s in sam.CLAIMS if s.kind == "paper"] == PAPER
    assert [s.id for s in sam.CLAIMS if s.kind == "check"] == CHECKS
    assert all(s.paper and s.source for s in sam.CLAIMS if s.kind == "paper")
    assert {s.id: s.given for s in sam.CLAIMS if s.given} == {"far-from-home": "mlp-usam-edge"}
    nb = nbformat.read(REPO / "book" / f"{CHAPTER}.ipynb", as_version=4)
    seeds = nb.metadata["optdyn"]["seeds"]
    assert len(seeds["default"]) >= max(s.seeds for s in sam.CLAIMS) and seeds["quick"] == [0]


def _run(sharpness, *, lr=0.4, rho=0.0, threshold=5.0, model="mlp", steps=None, loss=None, diverged=np.nan):
    """A hand-made probed trajectory, one probe every 10 steps."""
    sharpness = np.asarray(sharpness, float)
    step = np.arange(len(sharpness)) * 10
    loss = 1 / (1 + step) if loss is None else loss
    frame = pd.DataFrame({"step": step, "sharpness": sharpness, "loss": loss, "threshold": threshold})
    planned = step[-1] if steps is None else steps
    return frame.assign(model=model, lr=lr, rho=rho, steps=planned, diverged_at=diverged, grad_norm=1.0)


def test_plateau_is_taken_over_the_last_40_percent_whatever_the_prediction():
    settles_at_edge = _run(np.r_[np.linspace(2, 5, 8), np.full(12, 5.0)])
    settles_low = _run(np.r_[np.linspace(2, 4, 8), np.full(12, 4.0)])  # never reaches 0.9 of the edge
    late = _run(np.linspace(2, 5, 20))  # reaches the edge only at the last probe
    p = sam.plateaus(pd.concat([settles_at_edge, settles_low.assign(rho=0.1), late.assign(rho=0.2)]))
    # window: steps ≥ 0.6·190 = 114, i.e. probes 12..19; the late run's median is the mean of probes 15, 16
    late_median = (2 + 3 * 15.5 / 19) / 5
    assert p["median"].tolist() == pytest.approx([1.0, 0.8, late_median]) and late_median < 0.9
    assert np.isnan(p["onset"].iloc[1]) and p["onset"].iloc[0] == 60 and p["n"].iloc[0] == 8
    # the low run fails a band around 1: it is measured, not dropped
    low = sam.farthest_from_one(p)
    assert low.value == pytest.approx(0.8) and not claims.between(0.85, 1.15).contains(low.value)
    assert "never reached 90% of its edge" in low.detail


def test_window_is_the_planned_run_not_the_probed_one():
    """A run whose probes stop early is judged on the last 40 % of its planned steps."""
    short = _run(np.r_[np.linspace(2, 5, 8), np.full(2, 5.0)], steps=200)  # probes up to step 90 of 200
    assert np.isnan(sam.plateaus(short)["median"].iloc[0])


def test_a_diverged_run_gives_no_value_and_the_reason():
    ok = _run(np.full(20, 5.0))
    blown = _run(np.full(20, 5.0), rho=0.1, diverged=150.0)
    m = sam.farthest_from_one(sam.plateaus(pd.concat([ok, blown])))
    assert m.value is None and "diverged at step 150" in m.why
    assert sam.below_gd_edge({"mlp": blown, "cnn": ok.assign(model="cnn")}).value is None


def test_farthest_from_one_keeps_the_sign():
    p = pd.DataFrame({"median": [1.02, 0.93, 1.05], "q25": 0.0, "q75": 0.0, "onset": 0.0, "n": 8})
    p = p.assign(lr=0.4, rho=[0.0, 0.1, 0.2], diverged_at=np.nan)
    assert sam.farthest_from_one(p).value == pytest.approx(0.93)


def test_ordering_spike_and_far_from_home_measures():
    # three radii at one η: plateaus 5, 4, 3 (ordered), the GD run spikes to 1.2·(2/η) once
    gd = _run(np.r_[np.full(10, 4.0), 6.0, np.full(9, 5.0)], loss=np.linspace(1, 0.1, 20))
    rho1 = _run(
        np.r_[np.linspace(2, 4, 5), np.full(15, 4.0)], rho=0.1, threshold=4.0, loss=np.linspace(1, 0.1, 20)
    )
    rho2 = _run(
        np.r_[np.linspace(2, 3, 5), np.full(15, 3.0)], rho=0.2, threshold=3.0, loss=np.linspace(1, 0.1, 20)
    )
    cnn = _run(np.full(20, 5.0), model="cnn")
    data = {"mlp": pd.concat([gd, rho1, rho2]), "cnn": cnn}
    assert sam.plateau_falls_with_rho(data).value == pytest.approx(-1.0)
    swapped = {"mlp": pd.concat([gd, rho1.assign(rho=0.3), rho2]), "cnn": cnn}
    assert sam.plateau_falls_with_rho(swapped).value == pytest.approx(-0.5)  # ranks (1, 3, 2) vs (3, 2, 1)
    # USAM runs only: the GD spike does not count; USAM tops are 4·0.2 and 3·0.2
    assert sam.below_gd_edge(data).value == pytest.approx(0.8)
    # onset at the probe with λ1 ≥ 0.9 λ*: index 4 for both runs (loss 1 − 4·0.9/19), final loss 0.1
    onset_loss = np.linspace(1, 0.1, 20)[4]
    assert sam.far_from_home(data).value == pytest.approx(onset_loss / 0.1)


def test_checks_on_the_simplified_model_at_quick():
    toy = sam.simplified_model("quick", seed=0)
    data = {"toy": toy, "mlp": toy.iloc[:0], "cnn": toy.iloc[:0], "normalized": toy.iloc[:0]}
    assert sam.toy_flow_past_gd_edge(data).value >= 1.1
    assert sam.toy_starts_below_edges(data).value <= 0.95
    assert sam.toy_gd_edge(data).value == pytest.approx(0.99, abs=0.01)


@pytest.mark.slow
def test_sam_chapter_quick(built_chapter):
    paper, checks, figures = built_chapter(CHAPTER)
    assert list(paper) == PAPER and list(checks) == CHECKS
    assert figures >= 6


def test_sam_chapter_source_is_clean():
    nb = nbformat.read(REPO / "book" / f"{CHAPTER}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    declared = runner.declared_parameters(REPO / "book" / f"{CHAPTER}.ipynb")
    assert set(declared) == {"profile", "seed"}


def test_sam_chapter_rejects_a_bad_profile(tmp_path, capsys):
    status = runner.main(["--root", str(REPO), "run", CHAPTER, "--out", str(tmp_path), "--profile", "huge"])
    assert status != 0
    assert not (tmp_path / f"{CHAPTER}.ipynb").exists()
