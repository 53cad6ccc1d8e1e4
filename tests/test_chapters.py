"""Chapters as published: clean sources, and a quick run that must show the claims that hold at that scale."""

import json
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


def run_chapter(tmp_path, name, *params):
    out = tmp_path / "out"
    status = runner.main(["--root", str(REPO), "run", name, "--force", "--out", str(out), *params])
    claims = json.loads((out / f"{name}.claims.json").read_text())
    return status, {c["id"]: c for c in claims["claims"]}, nbformat.read(out / f"{name}.ipynb", as_version=4)


@pytest.mark.slow
def test_adaptive_edge_of_stability_quick(built_chapter):
    claims, figures = built_chapter("adaptive_edge_of_stability")
    gd = [c for k, c in claims.items() if k.startswith("gd-eos-")]
    adam = [c for k, c in claims.items() if k.startswith("aeos-lr")]
    assert len(gd) >= 3 and len(adam) >= 2
    must_hold = [*gd, *adam, claims["gd-sharpening"], claims["aeos-inverse-eta"]]
    assert [c["id"] for c in must_hold if c["verdict"] != "replicated"] == []
    assert all(c["measured"] is not None for c in must_hold)
    assert figures >= 5


@pytest.mark.slow
def test_diverging_learning_rates_are_recorded_not_crashed(tmp_path):
    status, claims, _ = run_chapter(
        tmp_path, "adaptive_edge_of_stability", "--profile", "quick", "-p", "lr_scale=60"
    )
    assert status == 0
    gd = [c for k, c in claims.items() if k.startswith("gd-eos-")]
    assert gd and all(c["verdict"] == "inconclusive" and "diverged at step" in c["reason"] for c in gd)


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_claims_are_declared_as_data_with_enough_seeds(name):
    import importlib

    from optdyn import claims

    module = importlib.import_module(f"optdyn.experiments.{name}")
    specs = module.CLAIMS
    claims.validate(specs)
    assert any(s.kind == "paper" for s in specs), "a chapter tests at least one paper claim"
    needed = max((s.seeds for s in specs if s.kind == "paper"), default=1)
    nb = nbformat.read(CHAPTERS[name], as_version=4)
    seeds = nb.metadata.get("optdyn", {}).get("seeds", {})
    assert len(seeds.get("default", [])) >= needed, f"default seeds {seeds.get('default')} < {needed} needed"
    assert seeds.get("quick"), "the quick profile declares its seeds"


def test_every_module_has_an_api_page():
    """Every module of ``optdyn`` (but the Sphinx helper) is documented on one of the API pages, and every
    API page is in the table of contents."""
    import pkgutil

    import optdyn

    documented = " ".join(p.read_text() for p in (REPO / "book" / "api").glob("*.md"))
    names = {m.name for m in pkgutil.walk_packages(optdyn.__path__, "optdyn.") if not m.ispkg}
    names -= {"optdyn.sphinx_fixes"} | {
        n for n in names if n.rsplit(".", 1)[0] in ("optdyn.optim", "optdyn.theory")
    }
    missing = sorted(n for n in names if f"automodule:: {n}\n" not in documented)
    assert missing == [], f"modules without an API page: {missing}"
    toc = (REPO / "_toc.yml").read_text()
    assert all(f"book/api/{p.stem}\n" in toc for p in (REPO / "book" / "api").glob("*.md"))
