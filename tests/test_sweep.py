"""``optdyn sweep`` on Dask's real engine: a LocalCluster of 2 workers, a worker that dies mid-point, the
per-point cache, and the grid checked before anything is submitted."""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from optdyn import runner
from optdyn.runner import executors
from optdyn.runner import sweep as sweeps

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
CONFIG = "title: tiny\nonly_build_toc_files: true\n"


def make_project(root: Path, name: str = "tiny", notebook: Path | None = None) -> Path:
    """A book of one chapter (a copy of ``notebook``, the tiny fixture by default)."""
    (root / "book").mkdir(parents=True)
    shutil.copy(notebook or FIXTURES / "tiny.ipynb", root / "book" / f"{name}.ipynb")
    (root / "requirements.txt").write_text("numpy\n")
    (root / "_config.yml").write_text(CONFIG)
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/_executed/{name}\n")
    return root


def crash_once_notebook(path: Path) -> Path:
    """The tiny chapter with a ``crash_once`` parameter: the first execution that finds no file at that
    path creates it and kills its own worker process (the kernel's parent) with SIGKILL mid-run."""
    nb = nbformat.read(FIXTURES / "tiny.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += '\ncrash_once = ""'
    crash = nbformat.v4.new_code_cell(
        "import os, signal, time\n"
        "if crash_once and not os.path.exists(crash_once):\n"
        "    open(crash_once, 'w').close()\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "    time.sleep(30)\n"
    )
    nb.cells.insert(2, crash)
    nbformat.write(nb, path)
    return path


def sweep_args(root: Path, *extra: str) -> list[str]:
    return ["sweep", "tiny", "--root", str(root), "--grid", "scale=1,2", "--seeds", "0-1", *extra]


def rows(root: Path, name: str = "tiny") -> list[dict]:
    with open(root / "book" / "_executed" / "sweeps" / name / "sweep.csv") as f:
        return list(csv.DictReader(f))


def nothing_submitted(*args, **kwargs):
    raise AssertionError("an executor was started")


@pytest.mark.parametrize(
    "grid, message",
    [
        ("width=1,2", "unknown parameter 'width' for chapter tiny"),
        ("scale=1,'big'", "scale='big' has the wrong type: expected float"),
        ("scale=1,20", "scale=20.0 is out of range (0, 10]"),
        ("scale=", "expected NAME=V1,V2"),
        ("seed=1,2", "give the seeds with --seeds"),
        ("profile=quick,huge", "profile='huge' is not one of"),
    ],
)
def test_the_grid_is_checked_before_anything_is_submitted(tmp_path, monkeypatch, capsys, grid, message):
    root = make_project(tmp_path / "p")
    monkeypatch.setattr(sweeps, "executor", nothing_submitted)
    args = ["sweep", "tiny", "--root", str(root), "--grid", grid, "--seeds", "0-1"]
    assert runner.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("optdyn: ") and err.count("\n") == 1 and message in err, err
    assert not (root / "book" / "_executed").exists()


def test_bad_options_are_one_line(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p")
    monkeypatch.setattr(sweeps, "executor", nothing_submitted)
    for extra, message in [
        (["--scheduler", "yarn"], "expected local, dask or tcp://HOST:PORT"),
        (["--grid", "scale=3"], "--grid scale= given twice"),
        (["-p", "scale=3"], "given both in --grid and as a fixed value"),
        (["--jobs", "0"], "--jobs must be at least 1"),
    ]:
        assert runner.main(sweep_args(root, *extra)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_grid_values_split_at_top_level_commas():
    assert sweeps.split_values("0.5,1,2") == ["0.5", "1", "2"]
    assert sweeps.split_values("[1,2],[3], 'a,b'") == ["[1,2]", "[3]", "'a,b'"]


@pytest.mark.slow
def test_a_dask_sweep_survives_a_killed_worker_then_hits_the_cache(tmp_path, monkeypatch, capsys):
    """Four points on a 2-worker LocalCluster; the first to run kills its worker process mid-execution
    (SIGKILL to the kernel's parent): it is reported, retried once, and every point completes."""
    root = make_project(tmp_path / "p", notebook=crash_once_notebook(tmp_path / "crash.ipynb"))
    marker = tmp_path / "crashed"
    crash = ["-p", f"crash_once={str(marker)!r}"]
    assert runner.main(sweep_args(root, "--scheduler", "dask", "--jobs", "2", *crash)) == 0
    out = capsys.readouterr().out
    assert marker.exists() and out.count("; retrying") == 1 and "worker lost: KilledWorker" in out, out
    where = root / "book" / "_executed" / "sweeps" / "tiny"
    points = [p for p in where.iterdir() if (p / "point.json").exists()]
    assert len(points) == 4 and out.count("paper claims 1/1 in band, checks 1/1 hold") == 4
    got = rows(root)
    expected = [("1.0", "0"), ("1.0", "1"), ("2.0", "0"), ("2.0", "1")]
    assert sorted((r["scale"], r["seed"]) for r in got) == expected
    measured = {}
    for point in points:
        entry = json.loads((point / "point.json").read_text())
        value = json.loads((point / "claims.json").read_text())["records"][0]["value"]
        measured[(str(entry["parameters"]["scale"]), str(entry["seed"]))] = value
    for r in got:  # the csv holds each point's own measured value
        assert float(r["value"]) == pytest.approx(measured[(r["scale"], r["seed"])])
    assert (where / "figures" / "tiny-value.png").stat().st_size > 0
    assert not (root / "book" / "_executed" / "tiny.ipynb").exists()  # the book's page is left alone
    assert not list(where.rglob(".*"))  # no temporary file left
    # The same sweep again submits nothing; one more scale value runs only its two points (locally).
    monkeypatch.setattr(sweeps, "executor", nothing_submitted)
    assert runner.main(sweep_args(root, "--scheduler", "dask", "--jobs", "2", *crash)) == 0
    assert "4 done before, 0 to run" in capsys.readouterr().out
    monkeypatch.undo()
    args = sweep_args(root, *crash)
    args[args.index("scale=1,2")] = "scale=1,2,4"
    assert runner.main(args) == 0
    assert "4 done before, 2 to run" in capsys.readouterr().out
    assert len(rows(root)) == 6


@pytest.mark.slow
def test_a_worker_killed_in_the_local_pool_fails_its_points_in_one_line_each(tmp_path, capsys):
    """The local process pool does not survive a dead worker: the points it held are named as failed
    (exit 1), and the same command again runs only those."""
    root = make_project(tmp_path / "p", notebook=crash_once_notebook(tmp_path / "crash.ipynb"))
    crash = ["-p", f"crash_once={str(tmp_path / 'crashed')!r}"]
    assert runner.main(sweep_args(root, "--scheduler", "local", "--jobs", "2", *crash)) == 1
    captured = capsys.readouterr()
    assert "worker lost: BrokenProcessPool" in captured.out and "point(s) failed" in captured.err
    assert captured.err.count("\n") == 1
    assert runner.main(sweep_args(root, "--scheduler", "local", "--jobs", "2", *crash)) == 0
    assert len(rows(root)) == 4


@pytest.mark.slow
def test_a_failing_point_is_retried_once_named_and_rerun_later(tmp_path, capsys):
    nb = nbformat.read(FIXTURES / "tiny.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("assert scale < 1.5, 'scale too large'"))
    nbformat.write(nb, tmp_path / "fails.ipynb")
    root = make_project(tmp_path / "p", notebook=tmp_path / "fails.ipynb")
    args = ["sweep", "tiny", "--root", str(root), "--grid", "scale=1,2", "--seeds", "0"]
    assert runner.main(args) == 1
    captured = capsys.readouterr()
    assert captured.out.count("; retrying") == 1 and "AssertionError: scale too large" in captured.out
    assert "1 point(s) failed" in captured.err and "scale=2.0 seed 0" in captured.err
    assert len(rows(root)) == 1
    assert runner.main(args) == 1
    assert "1 done before, 1 to run" in capsys.readouterr().out


def test_a_dead_scheduler_address_is_one_line(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    assert runner.main(sweep_args(root, "--scheduler", "tcp://127.0.0.1:9")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect" in err, err


@pytest.mark.slow
def test_a_real_chapter_at_quick_on_two_dask_workers(tmp_path, capsys):
    """The cheapest chapter at ``quick`` (about 30 s a seed), two seeds on a LocalCluster of two workers:
    every claim is measured finite and every check holds on both."""
    root = tmp_path / "book-copy"
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("_executed", "_build"))
    for name in ("_toc.yml", "_config.yml", "requirements.txt"):
        shutil.copy(REPO / name, root / name)
    chapter = "nfa_alignment"
    args = ["sweep", chapter, "--root", str(root), "--grid", "profile=quick", "--seeds", "0-1"]
    assert runner.main([*args, "--scheduler", "dask", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"{chapter} ") >= 2
    got = rows(root, chapter)
    assert {(r["profile"], r["seed"]) for r in got} == {("quick", "0"), ("quick", "1")}
    assert all(r["in_band"] in ("inside", "outside") for r in got)  # judged on finite values
    for point in (root / "book" / "_executed" / "sweeps" / chapter).glob("*/claims.json"):
        data = json.loads(point.read_text())
        assert all(r["value"] is not None and r["band"] for r in data["records"])
        checks = [r for r in data["records"] if r["kind"] == "check"]
        assert all(_inside(r) for r in checks), [r["id"] for r in checks if not _inside(r)]


def _inside(record: dict) -> bool:
    lo, hi = record["band"]["lo"], record["band"]["hi"]
    return (lo is None or record["value"] >= lo) and (hi is None or record["value"] <= hi)


def test_the_dask_pins_are_exact():
    pins = (REPO / "requirements.txt").read_text().splitlines()
    assert any(p.startswith("dask[distributed]==") for p in pins)
    assert any(p.startswith("distributed==") for p in pins)
    assert executors.check_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"


@pytest.mark.slow
def test_ctrl_c_cancels_the_points_and_leaves_no_file(tmp_path):
    """SIGINT while two points sleep in their kernels on a LocalCluster: exit 130 within seconds, no
    point written, no kernel left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = make_project(tmp_path / "p", name="sleepy", notebook=FIXTURES / "sleepy.ipynb")
    env = os.environ | {"PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-c", "import sys; from optdyn.runner import main; sys.exit(main())"]
    args = ["sweep", "sleepy", "--root", str(root), "--grid", "scale=1,2", "--seeds", "0"]
    driver = subprocess.Popen(
        [*command, *args, "--scheduler", "dask", "--jobs", "2"], env=env, stdout=subprocess.PIPE, text=True
    )
    where = root / "book" / "_executed" / "sweeps" / "sleepy"
    deadline = time.monotonic() + 60
    while not _kernels_under(driver.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    kernels = _kernels_under(driver.pid)
    assert kernels, "no kernel started"
    driver.send_signal(signal.SIGINT)
    assert driver.wait(timeout=60) == 130
    assert not where.exists() or not [p for p in where.rglob("*") if p.is_file()]
    deadline = time.monotonic() + 15  # an orphaned kernel notices its parent is gone within a second
    while [k for k in kernels if _alive(k)] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [k for k in kernels if _alive(k)], "a kernel outlived the sweep"


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kernels_under(pid: int) -> list[int]:
    """The ipykernel processes descending from ``pid`` (or orphaned from it: ``JPY_PARENT_PID``)."""
    import subprocess

    table = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in table.splitlines() if line.strip()]
    children: dict[int, list[int]] = {}
    for p, pp, _ in rows:
        children.setdefault(int(pp), []).append(int(p))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return [int(p) for p, _, args in rows if int(p) in found and "ipykernel" in args]
