"""The sqrt_free_adaptive chapter: its claims table, its measuring functions on hand-made data, and the
quick build (every paper claim finite, every check holding; paper-claim verdicts are not pinned)."""

import math
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from optdyn import claims, runner
from optdyn.experiments import sqrt_free_adaptive as sf

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "sqrt_free_adaptive"
PAPER = {
    "cnn-adamw-below-sgd",
    "cnn-rf-closes-gap",
    "vit-rf-matches-adamw",
    "cnn-ifshampoo",
    "vit-ifshampoo",
    "cnn-bf16-rf",
    "cnn-bf16-if",
    "cnn-bf16-rf-vs-adamw",
    "vit-bf16-rf",
    "vit-bf16-if",
    "vit-bf16-rf-vs-adamw",
}
CHECKS = {
    "cnn-mem-rf-adamw",
    "vit-mem-rf-adamw",
    "cnn-mem-if-shampoo",
    "vit-mem-if-shampoo",
    "shampoo-root-bf16",
    "sign-adam",
    "sign-rf",
    "scale-adam",
    "scale-rf",
    "limit-rf-not-sign",
}


def test_source_notebook_is_clean_and_declares_five_default_seeds():
    nb = nbformat.read(REPO / "book" / f"{CHAPTER}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
    )
    assert nb.metadata["optdyn"]["seeds"]["default"] == [0, 1, 2, 3, 4]
    declared = runner.declared_parameters(REPO / "book" / f"{CHAPTER}.ipynb")
    assert set(declared) == {"profile", "seed"}
    with pytest.raises(runner.ParameterError):
        declared["seed"].check(991)


def test_claims_table_kinds_bands_and_premise():
    claims.validate(sf.CLAIMS)
    specs = {s.id: s for s in sf.CLAIMS}
    assert {k for k, s in specs.items() if s.kind == "paper"} == PAPER
    assert {k for k, s in specs.items() if s.kind == "check"} == CHECKS
    assert all(specs[k].seeds == 5 for k in PAPER)
    assert specs["cnn-rf-closes-gap"].given == "cnn-adamw-below-sgd"
    for k in ("cnn-rf-closes-gap", "vit-rf-matches-adamw"):
        assert (specs[k].band.lo, specs[k].band.hi) == (-1.0, 1.0)


def test_default_grids_have_five_points_spanning_100x_and_quick_takes_the_middle_three():
    for kind, grids in sf.config("default")["grids"].items():
        for name, grid in grids.items():
            assert len(grid) == 5 and list(grid) == sorted(grid), (kind, name)
            assert grid[-1] / grid[0] == pytest.approx(100, rel=0.01)
            assert sf.config("quick")["grids"][kind][name] == grid[1:-1]


def _data(acc: dict, low: dict | None = None, lr: float = 0.01, grid=(0.001, 0.01, 0.1)) -> dict:
    """Hand-made data: fp32 test accuracies (fractions) per (model, optimizer); bf16 ones in ``low``
    (``None`` marks a diverged run); one chosen rate for all."""

    def frame(values: dict) -> pd.DataFrame:
        return pd.DataFrame(
            [
                dict(model=k, optimizer=n, lr=lr, test_acc=math.nan if a is None else a, diverged=a is None)
                for (k, n), a in values.items()
            ]
        )

    edge = "low" if lr == min(grid) else "high" if lr == max(grid) else ""
    chosen = pd.DataFrame(
        [dict(model=k, optimizer=n, lr=lr, grid_edge=edge) for (k, n) in acc],
    )
    return dict(runs=frame(acc), low=frame(low or {}), chosen=chosen)


def test_accuracy_gap_is_a_paired_difference_in_pp_with_edges_reported():
    data = _data({("CNN", "SGD"): 0.97, ("CNN", "AdamW"): 0.955}, lr=0.1)
    m = sf.accuracy_gap(data, "CNN", "SGD", "AdamW")
    assert m.value == pytest.approx(1.5)
    assert "SGD float32 97.00%" in m.detail and "high edge" in m.detail and m.why == ""


def test_bf16_drop_and_its_difference_to_adamw():
    acc = {("ViT", "RF-RMSProp"): 0.93, ("ViT", "AdamW"): 0.94}
    data = _data(acc, {("ViT", "RF-RMSProp"): 0.92, ("ViT", "AdamW"): 0.935})
    assert sf.bf16_drop(data, "ViT", "RF-RMSProp").value == pytest.approx(1.0)
    assert sf.bf16_drop_vs_adamw(data, "ViT").value == pytest.approx(0.5)


def test_a_diverged_run_gives_no_value_and_says_why():
    acc = {("ViT", "RF-RMSProp"): 0.93, ("ViT", "AdamW"): 0.94}
    data = _data(acc, {("ViT", "RF-RMSProp"): None, ("ViT", "AdamW"): 0.935})
    m = sf.bf16_drop_vs_adamw(data, "ViT")
    assert math.isnan(m.value) and "diverged" in m.why
    record = claims.measure_one(next(s for s in sf.CLAIMS if s.id == "vit-bf16-rf"), data)
    assert record.value is None and "bfloat16 run diverged" in record.why


def test_every_rate_diverged_gives_no_value():
    data = _data({("CNN", "SGD"): 0.97, ("CNN", "AdamW"): 0.9})
    data["chosen"].loc[data["chosen"]["optimizer"] == "AdamW", "lr"] = math.nan
    m = sf.accuracy_gap(data, "CNN", "SGD", "AdamW")
    assert math.isnan(m.value) and "every grid rate of AdamW diverged" in m.why


def test_chosen_rates_flags_grid_edges():
    grid = sf.LR_GRIDS["CNN"]["SGD"]
    sweep = pd.DataFrame(
        [
            dict(model="CNN", optimizer="SGD", lr=lr, val_acc=v, test_acc=v, diverged=False)
            for lr, v in zip(grid, (0.5, 0.6, 0.7, 0.8, 0.9), strict=True)
        ]
    )
    chosen = sf.select_lr(sweep)
    assert chosen == {("CNN", "SGD"): grid[-1]}
    study = sf.Study(sweep, chosen, sweep[sweep["lr"] == grid[-1]], pd.DataFrame())
    table = sf.chosen_rates(study, "default")
    assert table["grid_edge"].tolist() == ["high"] and table["test_acc"].iloc[0] == pytest.approx(90)


@pytest.mark.slow
def test_sqrt_free_adaptive_quick(built_chapter):
    paper, checks, figures = built_chapter(CHAPTER)
    assert set(paper) == PAPER
    assert set(checks) == CHECKS
    assert paper["cnn-rf-closes-gap"]["given"] == "cnn-adamw-below-sgd"
    assert figures >= 6
