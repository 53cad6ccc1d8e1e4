"""The SAM edge-of-stability chapter at the quick profile: the claims that must hold at that scale, a clean
notebook with its figures, and a parameter error before any compute."""

from pathlib import Path

import nbformat
import pytest

from optdyn import runner

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "sam_edge_of_stability"
MUST_HOLD = [
    "toy-edge-rho0",
    "toy-edge-rho0.02",
    "toy-edge-rho0.05",
    "toy-edge-rho0.1",
    "mlp-gd-lr0.4-rho0",
    "mlp-usam-lr0.4-rho0.1",
    "mlp-usam-lr0.4-rho0.2",
    "grid-within-15pct",
    "mlp-monotone-rho-lr0.4",
    "normalized-sam-rho0.02",
]


@pytest.mark.slow
def test_sam_chapter_quick(built_chapter):
    claims, figures = built_chapter(CHAPTER)
    assert [k for k in MUST_HOLD if claims[k]["verdict"] != "replicated"] == []
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
