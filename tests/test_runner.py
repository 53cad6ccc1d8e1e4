"""The runner: checks before any kernel, cache, atomic writes, failures kept apart, the built book.

Kernels are expensive (seconds each): one module-scoped run of the tiny fixture chapter is copied into
each test's project, so most tests start no kernel at all.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

from optdyn import editions, report, runner

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
CONFIG = """title: tiny
only_build_toc_files: true
exclude_patterns: ["book/*.ipynb", "**/*.failed.ipynb", "**/.*", "_build"]
execute:
  execute_notebooks: "off"
"""


def make_project(root: Path, *chapters: str) -> Path:
    """A tiny book: book/<name>.ipynb from fixture notebooks, requirements.txt, _toc.yml, _config.yml."""
    (root / "book").mkdir(parents=True)
    for spec in chapters:
        name, _, fixture = spec.partition("=")
        shutil.copy(FIXTURES / f"{fixture or name}.ipynb", root / "book" / f"{name}.ipynb")
    (root / "requirements.txt").write_text("numpy\n")
    (root / "_config.yml").write_text(CONFIG)
    (root / "book" / "intro.md").write_text("# Tiny book\n\nA test.\n")
    files = "".join(f"      - file: book/_executed/{name.partition('=')[0]}\n" for name in chapters)
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        + files
        + "  - caption: Book\n    chapters:\n      - file: book/_executed/scorecard\n"
        + "      - file: book/_executed/status\n"
    )
    return root


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A project whose tiny chapter ran once with its defaults (one kernel for the whole module)."""
    root = make_project(tmp_path_factory.mktemp("executed"), "tiny")
    assert runner.main(["run", "tiny", "--root", str(root)]) == 0
    return root


@pytest.fixture
def project(executed, tmp_path):
    """A fresh copy of the executed project."""
    return Path(shutil.copytree(executed, tmp_path / "project"))


def out_of(root: Path) -> Path:
    return root / "book" / "_executed"


def no_kernel(*args, **kwargs):
    raise AssertionError("a kernel was started")


def test_declarations_are_read_from_the_parameters_cell(tmp_path):
    source = tmp_path / "c.ipynb"
    cell = nbformat.v4.new_code_cell(
        'profile = "default"  # one of: quick, default, full\n'
        "lrs = [0.5, 0.4]  # in (0, inf)\n"
        "width = 64  # one of: 32, 64\n"
        "label = 'a # b'\n"
        "flag = False\n",
        metadata={"tags": ["parameters"]},
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), source)
    d = runner.declared_parameters(source)
    assert d["profile"].choices == ("quick", "default", "full") and d["label"].default == "a # b"
    assert d["lrs"].check([1, 2.5]) == [1.0, 2.5] and d["lrs"].interval() == "(0, inf)"
    assert d["width"].check(32) == 32
    assert runner.parse_value("profile", "quick", d["profile"]) == "quick"
    for name, value, problem in [("lrs", [0.1, 0], "out of range"), ("width", 48, "not one of"),
                                 ("flag", 1, "wrong type"), ("width", True, "wrong type")]:  # fmt: skip
        with pytest.raises(runner.ParameterError, match=problem):
            d[name].check(value)


def test_run_writes_pages_seeds_claims_and_report_then_hits_the_cache(project, monkeypatch, capsys):
    out = out_of(project)
    summary = json.loads((out / "tiny.claims.json").read_text())
    assert summary["chapter"] == "tiny" and summary["seeds"] == [0, 1]  # the seeds declared for quick
    (claim,) = summary["claims"]
    draws = [float(np.mean(np.random.default_rng(s).uniform(size=2))) for s in (0, 1)]
    assert claim["id"] == "tiny-value" and claim["values"] == pytest.approx(draws)
    assert claim["verdict"] == "inconclusive" and "2 of 2 seeds finite; 3 needed" in claim["reason"]
    assert [c["verdict"] for c in summary["checks"]] == ["holds"]
    entry = json.loads((out / "report.json").read_text())["tiny"]
    assert entry["status"] == "ok" and entry["seeds"] == [0, 1] and set(entry["runs"]) == {"0", "1"}
    assert entry["parameters"] == {"profile": "quick", "seed": 0, "scale": 1.0, "sizes": [1, 2]}
    for field in ("wall_s", "profile", "seed", "cache_key", "date", "python", "torch", "optdyn"):
        assert entry["runs"]["1"][field] is not None, field
    page = nbformat.read(out / "tiny.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in page.cells]
    at = tags.index([runner.CLAIMS_TAG])
    assert tags[at + 1] == [runner.ACROSS_TAG] and "Verdicts across seeds" in page.cells[at + 1].source
    assert ["injected-parameters", "remove-cell"] in tags  # shown once, in the Reproduce box
    assert f"threads {os.environ.get('OMP_NUM_THREADS')}" in str(page.cells)  # jobs 1: left alone
    source = nbformat.read(project / "book" / "tiny.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in source.cells)
    assert not [p for p in out.rglob(".*")]
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    assert runner.main(["run", "tiny", "--seeds", "0-1", "--root", str(project)]) == 0
    printed = capsys.readouterr().out
    assert "tiny seed 0: cached" in printed and "tiny seed 1: cached" in printed
    assert json.loads((out / "report.json").read_text())["tiny"]["status"] == "ok"  # the run of record
    assert runner.list_chapters(project)[0] | {"profiles": None} == {
        "chapter": "tiny",
        "profiles": None,
        "status": "ok",
        "profile": "quick",
        "seeds": [0, 1],
        "current": True,
    }


def test_one_seed_is_one_execution_and_same_seed_same_numbers(project):
    out = out_of(project)
    assert (
        runner.main(["run", "tiny", "--seed", "1", "--out", str(project / "one"), "--root", str(project)])
        == 0
    )
    one = json.loads((project / "one" / "tiny.claims.json").read_text())
    both = json.loads((out / "tiny.claims.json").read_text())
    assert one["seeds"] == [1] and one["claims"][0]["values"] == both["claims"][0]["values"][1:]
    assert "1 of 1 seeds finite" in one["claims"][0]["reason"]


@pytest.mark.parametrize(
    "text,seeds",
    [("0-2", [0, 1, 2]), ("0,3,7", [0, 3, 7]), ("0-2,5", [0, 1, 2, 5]), ("4", [4]), ("1,1", [1])],
)
def test_seed_lists(text, seeds):
    assert runner.parse_seeds(text) == seeds
    assert runner.parse_seeds(runner.seeds_text(seeds)) == seeds


def test_report_writers_do_not_lose_entries(tmp_path):
    """Two processes recording 100 chapters each into one report: all 200 entries survive the lock."""
    code = (
        "import sys; from pathlib import Path; from optdyn import runner\n"
        "out = Path(sys.argv[1])\n"
        "for i in range(100):\n"
        "    t = runner.Task(f'{sys.argv[2]}{i}', 0, {'seed': 0}, 'k')\n"
        "    runner._record(out, [t], {0: {'seed': 0, 'status': 'ok', 'wall_s': 1.0, 'date': 'd'}})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), tag]) for tag in "ab"]
    assert [p.wait() for p in procs] == [0, 0]
    assert len(runner.read_report(tmp_path)) == 200


def test_cache_key_covers_package_notebook_parameters(project, tmp_path):
    package = tmp_path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "mod.py").write_text("x = 1\n")
    source = project / "book" / "tiny.ipynb"
    key = runner.cache_key(source, {"seed": 0}, project, package)
    (package / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    assert runner.cache_key(source, {"seed": 0}, project, package) == key
    (package / "mod.py").write_text("x = 2\n")
    assert runner.cache_key(source, {"seed": 0}, project, package) != key
    assert runner.cache_key(source, {"seed": 1}, project, package) != key
    (project / "requirements.txt").write_text("numpy==2\n")
    assert runner.cache_key(source, {"seed": 0}, project, package) != key


def test_changing_the_package_makes_the_run_stale(project, tmp_path, monkeypatch):
    package = Path(shutil.copytree(runner.PACKAGE_DIR, tmp_path / "optdyn"))
    monkeypatch.setattr(runner, "PACKAGE_DIR", package)
    assert runner.list_chapters(project)[0]["current"]
    with open(package / "theory.py", "a") as f:
        f.write("\n# a change\n")
    assert not runner.list_chapters(project)[0]["current"]


@pytest.mark.parametrize("victim", ["seeds/tiny.seed0.claims.json", "seeds/tiny.seed0.ipynb", "report.json"])
def test_corrupt_files_are_a_cache_miss(project, victim):
    out = out_of(project)
    (task, _) = runner.plan(project, ["tiny"], {})["tiny"]
    assert runner.is_current(out, task, runner.read_report(out))
    (out / victim).write_text('{"cells": [')
    assert not runner.is_current(out, task, runner.read_report(out))


def test_corrupt_cache_reruns_without_crash_and_same_seed_same_claims(project, capsys):
    out = out_of(project)
    first = (out / "tiny.claims.json").read_text()
    (out / "seeds" / "tiny.seed0.claims.json").write_text("{not json")
    (out / "report.json").write_text("[]")
    assert runner.main(["run", "tiny", "--root", str(project)]) == 0
    assert "tiny seed 0: ok in" in capsys.readouterr().out
    assert (out / "tiny.claims.json").read_text() == first


def test_failures_keep_the_good_copy_and_the_others_still_run(project, capsys):
    out = out_of(project)
    book = project / "book"
    good = (out / "tiny.claims.json").read_text()
    shutil.copy(FIXTURES / "broken.ipynb", book / "tiny.ipynb")  # tiny breaks; its last good copy stays
    shutil.copy(FIXTURES / "broken.ipynb", book / "other.ipynb")  # never ran: the failure is the page
    shutil.copy(FIXTURES / "tiny.ipynb", book / "fine.ipynb")
    assert runner.main(["run", "--all", "--jobs", "2", "--root", str(project)]) == 1
    printed = capsys.readouterr().out
    assert "tiny seed 0: FAILED" in printed and "broken on purpose" in printed
    assert "tiny.seed0.failed.ipynb" in printed
    entries = json.loads((out / "report.json").read_text())
    assert entries["fine"]["status"] == "ok" and entries["tiny"]["status"] == "failed"
    assert "RuntimeError: this chapter is broken on purpose" in entries["tiny"]["error"]
    kept = nbformat.read(out / "tiny.ipynb", as_version=4)
    assert kept.cells[0].source.startswith("```{warning}\nThe latest run of this chapter (")
    assert "The results below are from the last successful run (" in kept.cells[0].source
    assert any("seeded draw" in str(c.get("outputs")) for c in kept.cells)
    assert "seed(s) 0 failed" in str(kept.cells)
    before, after = json.loads(good), json.loads((out / "tiny.claims.json").read_text())
    assert after["claims"][0]["values"] == before["claims"][0]["values"][:1]  # the broken chapter asks seed 0
    assert "broken on purpose" in (out / "seeds" / "tiny.seed0.failed.ipynb").read_text()
    page = nbformat.read(out / "other.ipynb", as_version=4)
    assert "no successful run" in page.cells[0].source and "broken on purpose" in str(page.cells)
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert f"threads {threads}" in str(nbformat.read(out / "fine.ipynb", as_version=4).cells)
    assert not list(out.rglob(".*"))


def test_interrupted_run_leaves_the_previous_copy_intact(project, monkeypatch, capsys):
    import papermill

    out = out_of(project)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def interrupted(source, output, **kwargs):
        Path(output).write_text("half-written")
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    assert runner.main(["run", "tiny", "--force", "--root", str(project)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_pages_list_chapters_claims_checks_and_status(project):
    shutil.copy(FIXTURES / "broken.ipynb", project / "book" / "later.ipynb")
    report.write_pages(project, out_of(project))
    scorecard = (out_of(project) / "scorecard.md").read_text()
    assert "| {doc}`tiny` | 0, 1 | 0 / 0 / 1 of 1 | 1 / 0 |" in scorecard  # paper claims, then checks
    assert "| `later` | not run |" in scorecard
    assert "## tiny\n\nChapter page: {doc}`tiny`." in scorecard and "<code>tiny-value</code>" in scorecard
    assert "```{figure} scorecard-tiny.png" in scorecard and (out_of(project) / "scorecard-tiny.png").exists()
    assert "Checks of our own code" in scorecard and "tiny-nonneg" in scorecard
    status = (out_of(project) / "status.md").read_text()
    key = runner.read_report(out_of(project))["tiny"]["cache_key"][:12]
    assert "| {doc}`tiny` | ok | quick | 0, 1 |" in status and f"| {key} |" in status
    assert "CPU cores" in status  # the machine of the run of record
    times = (out_of(project) / "run_times.md").read_text()
    assert (
        "| {doc}`/book/_executed/tiny` | `quick` | 0, 1 |" in times
        and "| `later` | `—` | — | not run |" in times
    )
    assert "| `later` | not run |" in status


def test_band_positions_put_the_edges_at_zero_and_one():
    from optdyn.plotting import band_position

    assert band_position(0.95, 0.9, 1.1) == pytest.approx(0.25)
    assert band_position(2.0, 2.0, None) == 0 and band_position(3.0, 2.0, None) == 0.5
    assert band_position(0.5, None, 0.5) == 1 and band_position(0.25, None, 0.5) == 0.5


def test_command_line(project):
    optdyn = Path(sys.executable).with_name("optdyn")
    listed = subprocess.run([optdyn, "list", "--root", project], capture_output=True, text=True, check=True)
    assert "tiny  profiles: quick, default" in listed.stdout and "current" in listed.stdout
    bad = subprocess.run(
        [optdyn, "run", "tiny", "-p", "seed=-3"], cwd=project / "book", capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "optdyn: seed=-3 is out of range [0, 1000]"
    wrong = subprocess.run([optdyn, "frobnicate"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


@pytest.mark.slow
def test_build_renders_the_book_with_scorecard(project, capfd):
    shutil.copy(FIXTURES / "broken.ipynb", project / "book" / "other.ipynb")
    toc = (project / "_toc.yml").read_text()
    toc = toc.replace("book/_executed/tiny\n", "book/_executed/tiny\n      - file: book/_executed/other\n")
    (project / "_toc.yml").write_text(toc)
    assert runner.main(["build", "--root", str(project)]) == 1  # the broken chapter fails the build
    printed = capfd.readouterr()
    assert "tiny seed 0: cached" in printed.out and "book build failed" not in printed.err
    html = project / "_build" / "html" / "book" / "_executed"
    scorecard = (html / "scorecard.html").read_text()
    assert "tiny-value" in scorecard and "replicated" in scorecard and "not run" in scorecard
    assert "failed" in (html / "status.html").read_text()
    assert "broken on purpose" in (html / "other.html").read_text()


def test_executed_copy_says_how_to_reproduce_it(project):
    nb = nbformat.read(out_of(project) / "tiny.ipynb", as_version=4)
    box = nb.cells[1]
    assert box.metadata["tags"] == [runner.REPRODUCE_TAG]
    assert "`optdyn run tiny --profile quick --seeds 0,1`" in box.source
    wall = runner.read_report(out_of(project))["tiny"]["runs"]["1"]["wall_s"]
    assert (
        f"seed 1 {wall:.0f} s" in box.source
        and "{download}`source notebook <../tiny.ipynb>`" in box.source
        and "{download}`student notebook <student/tiny.ipynb>`" in box.source
    )
    student = nbformat.read(out_of(project) / "student" / "tiny.ipynb", as_version=4)
    assert [c.source for c in student.cells] == [
        c.source for c in editions.student_edition(nbformat.read(project / "book" / "tiny.ipynb", 4)).cells
    ]
