"""The AEoS protocol's summaries on hand-made trajectories, where the right verdict is known."""

import numpy as np
import pandas as pd

from optdyn.experiments import adaptive_edge_of_stability as aeos


def run(ratios, threshold=4.0, diverged_at=np.nan, **tags):
    steps = np.arange(len(ratios)) * 25
    return pd.DataFrame(
        {
            "step": steps,
            "sharpness": np.asarray(ratios) * threshold,
            "threshold": threshold,
            "diverged_at": diverged_at,
            **tags,
        }
    )


def test_settled_run_has_its_median_and_a_diverged_one_has_none():
    settled = run([0.5, 0.8, 0.95, 1.05, 1.0, 1.1, 1.0], lr=0.5)
    diverged = run([0.5, 0.8, 0.95, 1.05, 1.0, 1.1, 40.0], lr=0.6, diverged_at=150)
    table = aeos.plateaus(pd.concat([settled, diverged]), "sharpness", ["lr"]).set_index("lr")
    assert table.loc[0.5, "median"] == np.median([0.95, 1.05, 1.0, 1.1, 1.0])
    assert table.loc[0.5, "onset"] == 50 and table.loc[0.5, "start_ratio"] == 0.5
    assert np.isnan(table.loc[0.6, "median"]) and np.isnan(table.loc[0.6, "raw_growth"])


def test_raw_growth_is_measured_from_the_first_probe_at_the_threshold():
    table = aeos.plateaus(run([0.5, 0.9, 1.0, 1.2, 1.5], lr=0.5), "sharpness", ["lr"])
    assert table["raw_growth"].iloc[0] == 1.5 / 1.0
