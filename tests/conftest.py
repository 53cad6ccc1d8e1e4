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
    shutil.copytree(REPO / "_static", root / "_static")
    written = write_editions(runner.chapters(REPO), root / "editions")
    for notebook in written["instructor"]:
        shutil.copy(notebook, root / "book" / notebook.name)
    status = runner.main(["--root", str(root), "build", "--profile", "quick", "--jobs", "2"])
    return root, status


@pytest.fixture(scope="session")
def built_chapter(quick_book):
    """``built_chapter(name)`` → (paper claims by id, checks by id, number of figures) of a chapter in
    the quick build, after what every chapter must pass: the build succeeded, the chapter declares paper
    claims, each with the paper's value, its source and a band, every paper claim was measured finite on
    every seed, every check holds, and no cell raised. Paper-claim verdicts are not pinned."""

    def load(name: str) -> tuple[dict, dict, int]:
        root, status = quick_book
        assert status == 0, "the quick build failed"
        out = root / "book" / "_executed"
        summary = json.loads((out / f"{name}.claims.json").read_text())
        paper = {c["id"]: c for c in summary["claims"]}
        checks = {c["id"]: c for c in summary["checks"]}
        assert paper, f"{name}: no paper claims"
        unsourced = [k for k, c in paper.items() if not (c["paper"] and c["source"] and c["band"]["text"])]
        assert unsourced == [], f"{name}: paper claims without paper value, source or band"
        not_finite = [k for k, c in paper.items() if any(v is None for v in c["values"])]
        assert not_finite == [], f"{name}: paper claims without a finite value on every seed"
        failed = {k: c["reason"] for k, c in checks.items() if c["verdict"] != "holds"}
        assert failed == {}, f"{name}: checks failed"
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not any(o.get("output_type") == "error" for o in outputs), f"{name}: a cell raised"
        return paper, checks, sum("image/png" in o.get("data", {}) for o in outputs)

    return load
