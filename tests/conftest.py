import json
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from optdyn import runner
from optdyn.editions import write_editions
from optdyn.train import set_threads

set_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def quick_book(tmp_path_factory) -> tuple[Path, int]:
    """The whole book built by ``optdyn build --profile quick --jobs 2`` in a scratch copy of the project
    whose chapters are the instructor edition: one run serves the chapter tests (claims in
    ``<root>/book/_executed``), the instructor edition's "it still runs", and the browser test
    (``<root>/_build/html``). Returns (root, exit status of the build)."""
    root = tmp_path_factory.mktemp("quick_book")
    for name in ("_config.yml", "_toc.yml", "requirements.txt"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_executed", "*.ipynb"))
    written = write_editions(runner.chapters(REPO), root / "editions")
    for notebook in written["instructor"]:
        shutil.copy(notebook, root / "book" / notebook.name)
    status = runner.main(["--root", str(root), "build", "--profile", "quick", "--jobs", "2"])
    return root, status


@pytest.fixture(scope="session")
def built_chapter(quick_book):
    """``built_chapter(name)`` → (claims by id, number of figures) of a chapter in the quick build, after
    the checks every chapter must pass: the build succeeded, every claim names the paper's value, its
    source and its rule, and no cell raised."""

    def load(name: str) -> tuple[dict, int]:
        root, status = quick_book
        assert status == 0, "the quick build failed"
        out = root / "book" / "_executed"
        claims = {c["id"]: c for c in json.loads((out / f"{name}.claims.json").read_text())["claims"]}
        unsourced = [k for k, c in claims.items() if not (c["paper"] and c["rule"] and c["source"])]
        assert claims and unsourced == [], f"{name}: claims without paper value, rule or source"
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not any(o.get("output_type") == "error" for o in outputs), f"{name}: a cell raised"
        return claims, sum("image/png" in o.get("data", {}) for o in outputs)

    return load
