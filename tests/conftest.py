import shutil
from pathlib import Path

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
