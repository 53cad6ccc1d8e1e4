"""Trajectory summaries on hand-made series."""

import math

import numpy as np
import pandas as pd

from optdyn import analysis


def test_plateau_window_is_the_last_fraction_of_the_run():
    frame = pd.DataFrame({"step": range(0, 110, 10), "s": [1, 2, 3.6, 4, 4.4, 4, 4, 3.6, 4.4, 4, 4.0]})
    stats = analysis.plateau(frame, "s", threshold=4.0, fraction=0.4)
    assert stats["onset"] == 20 and stats["n"] == 5  # steps 60..100
    assert stats["median"] == np.median([1.0, 0.9, 1.1, 1.0, 1.0])


def test_a_low_plateau_is_measured_low_not_dropped():
    frame = pd.DataFrame({"step": range(0, 100, 10), "s": [1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]})
    stats = analysis.plateau(frame, "s", threshold=4.0)
    assert math.isnan(stats["onset"]) and stats["median"] == 0.75


def test_plateau_with_too_few_probes_is_nan():
    frame = pd.DataFrame({"step": [0, 10, 20], "s": [1.0, 1.5, np.nan]})
    assert math.isnan(analysis.plateau(frame, "s", threshold=4.0)["median"])


def test_growth_slope_and_rank_correlation():
    frame = pd.DataFrame({"step": [0, 10, 20, 30], "s": [1.0, 2.0, 3.0, 6.0]})
    assert analysis.growth(frame, "s", 10) == 3.0
    x = np.array([1e-3, 2e-3, 4e-3])
    assert math.isclose(analysis.log_log_slope(x, 38 / x), -1.0)
    assert analysis.spearman([1, 2, 3, 4], [0.1, 0.5, 0.7, 0.9]) == 1.0
    assert math.isnan(analysis.spearman([1, 2], [1, 2]))
