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
