"""The sqrt_free_adaptive chapter at the quick profile: the claims that must hold there; a clean notebook.

Accuracy claims are not asserted: at 3 epochs and one seed they measure noise. The algebra (sign descent,
loss scale), the memory counts and the bf16 eigendecomposition check must hold at any scale.
"""

from pathlib import Path

import nbformat
import pytest

from optdyn import runner

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "sqrt_free_adaptive"
MUST_HOLD = [
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
]
ALL = MUST_HOLD + [
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
]


def test_source_notebook_is_clean():
    nb = nbformat.read(REPO / "book" / f"{CHAPTER}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    declared = runner.declared_parameters(REPO / "book" / f"{CHAPTER}.ipynb")
    assert set(declared) == {"profile", "seed"}
    with pytest.raises(runner.ParameterError):
        declared["seed"].check(991)


@pytest.mark.slow
def test_sqrt_free_adaptive_quick(built_chapter):
    claims, figures = built_chapter(CHAPTER)
    assert sorted(claims) == sorted(ALL)
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
    assert figures >= 6
