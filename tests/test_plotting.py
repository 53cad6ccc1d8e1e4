"""The house figure layout: at most two panels per row."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from optdyn import plotting  # noqa: E402


@pytest.mark.parametrize(("n", "rows", "cols"), [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 2, 2), (5, 3, 2)])
def test_panels_put_at_most_two_per_row(n, rows, cols):
    fig, axes = plotting.panels(n, width=4.0, height=3.0)
    assert len(axes) == n == len(fig.axes)
    assert tuple(fig.get_size_inches()) == (4.0 * cols, 3.0 * rows)
    geometry = {ax.get_subplotspec().get_geometry()[:2] for ax in axes}
    assert geometry == {(rows, cols)}
    plt.close(fig)


def test_panels_reject_an_empty_figure():
    with pytest.raises(ValueError, match="at least 1"):
        plotting.panels(0)


def test_method_colours_keep_one_colour_per_family_and_shade_variants():
    names = ["constant η=0.5", "constant η=2", "armijo", "Polyak at η_max=1", "CDAT σ=2", "unknown"]
    colours = plotting.method_colours(names)
    assert colours["armijo"] == plotting.METHOD_COLOURS["armijo"].lower()
    assert colours["Polyak at η_max=1"] == plotting.METHOD_COLOURS["polyak"].lower()
    assert colours["constant η=2"] == plotting.METHOD_COLOURS["constant"].lower()
    assert colours["constant η=0.5"] != colours["constant η=2"], "variants of one family are shaded apart"
    assert len(set(colours.values())) == len(names)
    assert plotting.method_family("signSGD") == "sign" and plotting.method_family("GD") == "gd"


def test_a_divergent_run_is_clipped_with_a_marker_instead_of_stretching_the_axis():
    import numpy as np
    import pandas as pd

    steps = np.arange(10)
    stable = pd.DataFrame({"step": steps, "s": 1.0 + 0.1 * steps, "run": "a", "threshold": 2.0})
    blowup = pd.DataFrame({"step": steps, "s": np.exp(steps), "run": "b", "threshold": 1.5})
    frame = pd.concat([stable, blowup]).assign(diverged_at=np.nan)
    fig, (ax,) = plotting.panels(1)
    plotting.curve_with_threshold(ax, frame, "s", ["run"], ylabel="s", clip_at=2.0)
    assert ax.get_ylim()[1] == 4.0, "the axis stops at twice the largest threshold"
    lines = [line for line in ax.lines if line.get_marker() == "^"]
    assert len(lines) == 1 and lines[0].get_ydata()[0] == 4.0
    (drawn,) = [line.get_ydata() for line in ax.lines if line.get_label() == "b"]
    assert max(drawn) == 4.0
    plt.close(fig)
