"""Chapters as published: clean sources (each chapter's quick run is tested in its own test file)."""

from pathlib import Path

import nbformat
import pytest
import yaml

from optdyn import runner
from optdyn.editions import install_source

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = runner.chapters(REPO)


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_source_notebooks_are_clean(name):
    nb = nbformat.read(CHAPTERS[name], as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "source carries outputs"
    repository = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["url"]
    assert code[0].source == install_source(repository), "first code cell must install optdyn where missing"
    assert "remove-cell" in code[0].metadata.get("tags", [])
    assert "parameters" in code[1].metadata.get("tags", []), "second code cell must be the parameters cell"
