"""The adam_local_geometry chapter: its claims table (ids, kinds, premises, seeds), the measuring functions on
hand-made results with known answers (a diverged run gives no value and says why), and the quick build
(every paper claim finite, every check holds, the figures). No paper-claim verdict is pinned."""

from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from optdyn import claims
from optdyn.experiments import adam_local_geometry as al

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "adam_local_geometry"
PAPER = [
    "lm-adam-faster",
    "lm-gap-25",
    "lm-gap-50",
    "lm-gap-100",
    "lm-direction",
    "lm-matched-loss",
    "mlp-contrast",
]
CHECKS = ["diag-exact", "lin-closed-form"]


def test_claims_table_is_fixed_and_valid():
    claims.validate(al.CLAIMS)
    assert [s.id for s in al.CLAIMS if s.kind == "paper"] == PAPER
    assert [s.id for s in al.CLAIMS if s.kind == "check"] == CHECKS
    lm = {k: "lm-adam-faster" for k in PAPER[1:-1]}
    assert {s.id: s.given for s in al.CLAIMS if s.given} == lm | {"mlp-contrast": "lm-gap-100"}
    assert all(s.seeds == 5 for s in al.CLAIMS if s.kind == "paper")
    nb = nbformat.read(REPO / "book" / f"{CHAPTER}.ipynb", as_version=4)
    seeds = nb.metadata["optdyn"]["seeds"]
    assert len(seeds["default"]) >= max(s.seeds for s in al.CLAIMS) and seeds["quick"] == [0]


def _curves(adam, sgdm, steps=100):
    """Chosen runs' validation losses at steps 0, 10, …, ``steps``."""
    step = np.linspace(0, steps, len(adam))
    rows = []
    for opt, losses in (("adam", adam), ("sgdm", sgdm)):
        rows += [
            dict(opt=opt, lr=0.1, step=s, valid_loss=v, train_loss=v, chosen=True)
            for s, v in zip(step, losses, strict=True)
        ]
    return pd.DataFrame(rows)


def test_speedup_and_first_crossing():
    adam = np.linspace(3.0, 1.0, 11)  # reaches 2.0 at step 50
    sgdm = np.linspace(3.0, 2.0, 11)
    assert al.speedup({"lm_curves": _curves(adam, sgdm)}).value == pytest.approx(2.0)
    # SGD+M better: the reverse ratio, below 1 (SGD+M reaches Adam's final 2.0 at step 50)
    assert al.speedup({"lm_curves": _curves(sgdm, adam)}).value == pytest.approx(0.5)
    assert al.first_crossing(np.array([0, 10, 20]), np.array([3.0, 2.0, 1.0]), 1.5) == pytest.approx(15)
    assert np.isnan(al.first_crossing(np.array([0, 10]), np.array([3.0, 2.0]), 1.0))
    diverged = _curves(adam, np.r_[sgdm[:-1], np.inf])
    m = al.speedup({"lm_curves": diverged})
    assert m.value is None and "diverged" in m.why


def _rmed(values: dict, losses: dict) -> pd.DataFrame:
    """R_med rows: values[(opt, point)] = {block: r_med}; losses[(opt, point)] = training loss."""
    rows = [dict(opt=o, point=p, train_loss=losses[(o, p)], block=b, kind="inner", r_med=r)
            for (o, p), blocks in values.items() for b, r in blocks.items()]  # fmt: skip
    return pd.DataFrame(rows)


def test_gap_direction_and_matched_loss():
    values = {
        ("adam", 0.5): {"0.q": 2.0, "0.k": 4.0, "0.v": 1.0},
        ("adam", 1.0): {"0.q": 2.0, "0.k": 2.0, "0.v": 2.0},
        ("sgdm", 0.5): {"0.q": 4.0, "0.k": 4.0, "0.v": 3.0},
        ("sgdm", 1.0): {"0.q": 1.0, "0.k": 6.0, "0.v": 8.0},
    }
    losses = {("adam", 0.5): 2.0, ("adam", 1.0): 1.0, ("sgdm", 0.5): 3.0, ("sgdm", 1.0): 2.0}
    d = {"lm_rmed": _rmed(values, losses)}
    assert al.gap_at(0.5)(d).value == pytest.approx(2.0)  # ratios 2, 1, 3
    assert al.gap_at(1.0)(d).value == pytest.approx(3.0)  # ratios 0.5, 3, 4
    assert al.direction(d).value == pytest.approx(4 / 6)  # 2, 3, 3, 4 above 1; 1 and 0.5 not
    # SGD+M's last point (loss 2) matches Adam's 50 % point exactly
    ratios, where = al.matched_ratios(d["lm_rmed"])
    assert "100%" in where and ratios.to_dict() == pytest.approx({"0.q": 0.5, "0.k": 1.5, "0.v": 8.0})
    assert al.matched_loss(d).value == pytest.approx(1.5)
    # a loss between Adam's points: log R interpolated linearly in log loss (geometric mean at the midpoint)
    losses[("sgdm", 1.0)] = np.sqrt(2.0)
    ratios, _ = al.matched_ratios(_rmed(values, losses))
    assert ratios["0.k"] == pytest.approx(6.0 / np.sqrt(8.0))
    # no SGD+M loss within Adam's range: no value, and why
    losses[("sgdm", 1.0)], losses[("sgdm", 0.5)] = 5.0, 6.0
    m = al.matched_loss({"lm_rmed": _rmed(values, losses)})
    assert m.value is None and "range" in m.why


def test_a_diverged_run_gives_no_ratio():
    values = {("adam", 1.0): {"0.q": 2.0}, ("sgdm", 1.0): {"0.q": 4.0}}
    losses = {("adam", 1.0): 1.0, ("sgdm", 1.0): 2.0}
    only_adam = _rmed(values, losses).query("opt == 'adam'")
    assert al.gap_at(1.0)({"lm_rmed": only_adam}).value is None
    assert al.direction({"lm_rmed": only_adam}).value is None
    mlp = pd.DataFrame([dict(opt="adam", block="0.weight", r_med=2.0)])
    m = al.mlp_gap({"mlp_rmed": mlp})
    assert m.value is None and "diverged" in m.why
    both = pd.concat([mlp, mlp.assign(opt="sgdm", r_med=3.0)])
    assert al.mlp_gap({"mlp_rmed": both}).value == pytest.approx(1.5)


def test_linear_network_measures():
    rows = []
    for opt, r in (("gd", 6.0), ("adam", 2.0)):
        for step, loss in ((0, 1.0), (10, 0.05), (20, 0.005)):
            rows.append(dict(spread=30.0, opt=opt, step=step, loss=loss, r_w1=r, r_w2=1.0))
    lin = pd.DataFrame(rows)
    assert al.linear_gd_above_adam({"lin": lin}).value == pytest.approx(3.0)
    assert al.closed_form_error({"lin": lin}).value is None
    lin.loc[lin.index[-1], "closed_form_error"] = 1e-14
    assert al.closed_form_error({"lin": lin}).value == pytest.approx(1e-14)


@pytest.mark.slow
def test_adam_local_geometry_quick(built_chapter):
    paper, checks, figures = built_chapter(CHAPTER)
    assert list(paper) == PAPER and list(checks) == CHECKS
    assert figures >= 8
