"""The runner at its edges (issue 14): interrupts, read-only and broken output folders, stale temporary
files, unreadable notebooks, course editions written whole, the device in the cache key.

The interrupt tests start the real `optdyn` command on a chapter that sleeps (tests/fixtures/sleepy.ipynb)
and signal it while its kernel starts or while a cell runs: exit 130, one line on stderr and no traceback,
the previous executed copies byte-identical, no temporary file and no kernel left.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from test_runner import FIXTURES, make_project

from optdyn import device, runner
from optdyn.claims import MIME_TYPE

OPTDYN = Path(sys.executable).with_name("optdyn")
INTERRUPTED = "optdyn: interrupted; previous executed copies are unchanged"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A project whose tiny chapter ran once at its defaults (seeds 0 and 1; one kernel for this module)."""
    root = make_project(tmp_path_factory.mktemp("executed"), "tiny")
    assert runner.main(["run", "tiny", "--root", str(root)]) == 0
    return root


@pytest.fixture
def project(executed, tmp_path, monkeypatch):
    monkeypatch.delenv("OPTDYN_DEVICE", raising=False)
    return Path(shutil.copytree(executed, tmp_path / "project"))


def out_of(root: Path) -> Path:
    return root / "book" / "_executed"


def files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def no_kernel(*args, **kwargs):
    raise AssertionError("a kernel was started")


# ------------------------------------------------------------------------------------------ interrupts


def _kernels_in(folder: Path) -> list[int]:
    """Live ipykernel processes whose working folder is ``folder`` (the chapter's book folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (
                Path(os.readlink(entry / "cwd")) == folder
                and b"ipykernel" in (entry / "cmdline").read_bytes()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _sleep_cell_running(path: Path) -> bool:
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return any(
        "time.sleep" in "".join(c["source"]) and c["metadata"].get("papermill", {}).get("status") == "running"
        for c in nb["cells"]
    )


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds kernels through /proc")
@pytest.mark.parametrize(
    "how,when,jobs",
    [
        ("ctrl-c", "starting", 1),  # the terminal's Ctrl-C: SIGINT to the whole process group
        ("ctrl-c", "running", 1),
        ("sigterm", "starting", 1),  # SIGTERM to optdyn alone
        ("sigterm", "running", 1),
        ("ctrl-c", "starting", 2),  # two worker processes, one kernel each
    ],
)
def test_an_interrupt_leaves_everything_as_it_was(project, how, when, jobs):
    if not OPTDYN.exists():
        pytest.skip("the optdyn command is not installed beside this Python")
    out, book = out_of(project), project / "book"
    shutil.copy(FIXTURES / "sleepy.ipynb", book / "tiny.ipynb")  # a changed chapter: a cache miss
    before = files(out)
    seeds = ["--seeds", "0-1", "--jobs", "2"] if jobs == 2 else ["--seed", "0"]
    command = [OPTDYN, "run", "tiny", *seeds, "--root", project]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            temporary = list((out / "seeds").glob(".tiny.seed*.running-*.ipynb"))
            if len(temporary) >= jobs and (when == "starting" or any(map(_sleep_cell_running, temporary))):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached the point to interrupt")
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip() == INTERRUPTED and "Traceback" not in stdout
    assert files(out) == before, "an executed copy, claims file or the report changed"
    assert hidden(out) == [], "a temporary file was left"
    deadline = time.monotonic() + 10
    while _kernels_in(book) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _kernels_in(book) == [], "a kernel was left running"


# -------------------------------------------------------------------------------- output folders, files


def _immutable(paths: list[Path], on: bool) -> bool:
    if os.geteuid() != 0:
        for p in paths:
            p.chmod((0o555 if p.is_dir() else 0o444) if on else (0o755 if p.is_dir() else 0o644))
        return True
    return (
        subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], capture_output=True).returncode
        == 0
    )


def test_a_cache_hit_answers_from_a_read_only_folder_and_a_miss_is_refused(project, monkeypatch, capsys):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    out = out_of(project)
    paths = [out, *out.rglob("*")]
    before = files(out)
    if not _immutable(paths, True):
        pytest.skip("cannot make a folder read-only here (chattr +i needs CAP_LINUX_IMMUTABLE)")
    try:
        assert runner.main(["run", "tiny", "--root", str(project)]) == 0
        printed = capsys.readouterr()
        assert "tiny seed 0: cached" in printed.out and printed.err == ""
        assert runner.main(["run", "tiny", "--force", "--root", str(project)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"optdyn: the output folder {out}: cannot write there:") and "\n" not in err
    finally:
        _immutable(paths, False)
    assert files(out) == before


def test_a_failing_clean_up_does_not_hide_the_error(project, monkeypatch, capsys):
    """On a read-only filesystem removing the temporary copy fails too; papermill's error is the one shown."""
    import papermill

    def failing(source, output, **kwargs):
        Path(output).write_text("half-written")
        raise RuntimeError("the kernel said no")

    unlink = Path.unlink

    def read_only_unlink(self, missing_ok=False):
        if ".running-" in self.name:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(papermill, "execute_notebook", failing)
    monkeypatch.setattr(Path, "unlink", read_only_unlink)
    assert runner.main(["run", "tiny", "--seed", "0", "--force", "--root", str(project)]) == 1
    printed = capsys.readouterr()
    assert "tiny seed 0: FAILED" in printed.out and "RuntimeError: the kernel said no" in printed.out
    assert "Traceback" not in printed.err + printed.out and "Read-only" not in printed.out
    monkeypatch.undo()
    for path in out_of(project).rglob(".*"):  # our own process is alive: its temporary files stay
        path.unlink()


def test_a_write_error_after_the_runs_is_one_line(project, monkeypatch, capsys):
    """report.json replaced by a folder between the check and the write: the FAILED/ok lines come first,
    then one line, exit 1."""
    import papermill

    def fine(source, output, **kwargs):
        nb = nbformat.read(out_of(project) / "seeds" / "tiny.seed0.ipynb", as_version=4)
        claims = json.loads((out_of(project) / "seeds" / "tiny.seed0.claims.json").read_text())
        nb.cells[-1].outputs = [nbformat.v4.new_output("display_data", data={MIME_TYPE: claims})]
        nbformat.write(nb, output)
        (out_of(project) / "report.json").unlink()
        (out_of(project) / "report.json").mkdir()

    monkeypatch.setattr(papermill, "execute_notebook", fine)
    assert runner.main(["run", "tiny", "--seed", "0", "--force", "--root", str(project)]) == 1
    printed = capsys.readouterr()
    assert "tiny seed 0: ok in" in printed.out
    err = printed.err.strip()
    assert err.startswith("optdyn: ") and "report.json" in err and "\n" not in err and "Traceback" not in err


def test_stale_temporary_files_of_dead_processes_go_on_every_call(project, capsys):
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = out_of(project)
    stale = [
        out / "seeds" / f".tiny.seed0.running-{dead.pid}.ipynb",
        out / "seeds" / f".tiny.seed0.running-{dead.pid}.log",
        out / f".report.json.tmp{dead.pid}",
    ]
    live = out / "seeds" / f".tiny.seed1.running-{os.getpid()}.ipynb"
    for path in [*stale, live]:
        path.write_text("left over")
    assert runner.main(["run", "tiny", "--root", str(project)]) == 0  # a cache hit
    printed = capsys.readouterr().out
    assert "tiny seed 0: cached" in printed and f"removed .report.json.tmp{dead.pid}" in printed
    assert not any(p.exists() for p in stale) and live.exists()
    live.unlink()


def test_list_marks_an_unreadable_notebook_and_lists_the_others(project, capsys):
    (project / "book" / "broken.ipynb").write_text('{"cells": [')
    assert runner.main(["list", "--root", str(project)]) == 1
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].startswith("broken  UNREADABLE: cannot read ") and lines[1].startswith("tiny  profiles:")
    assert printed.err == "optdyn: cannot read 1 chapter notebook(s): broken\n"


def test_outside_a_project_list_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if runner.find_root(tmp_path) is not None:
        pytest.skip("a _toc.yml lies above the temporary folder")
    assert runner.main(["list"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"optdyn: no _toc.yml in {tmp_path} or any folder above it: ") and "--root PATH" in err
    )


def test_editions_are_written_whole_or_not_at_all(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", "tiny", "other=tiny")
    out = tmp_path / "editions"
    assert runner.main(["--root", str(root), "student", "--out", str(out)]) == 0
    capsys.readouterr()
    before = files(out)
    (root / "book" / "zzz.ipynb").write_text('{"cells": [')  # read last: the others were fine
    assert runner.main(["--root", str(root), "student", "--out", str(out)]) == 2
    assert "zzz.ipynb" in capsys.readouterr().err and files(out) == before
    (root / "book" / "zzz.ipynb").unlink()
    shutil.copy(FIXTURES / "broken.ipynb", root / "book" / "new.ipynb")
    write_text, calls = Path.write_text, []

    def full_disk(self, text, *args, **kwargs):
        calls.append(self)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    assert runner.main(["--root", str(root), "student", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("optdyn: ") and "No space left on device" in err and err.count("\n") == 1
    assert files(out) == before and hidden(out) == []


# ----------------------------------------------------------------------------------------------- device


def test_the_device_is_checked_said_and_keyed(project, monkeypatch, capsys):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    page = nbformat.read(out_of(project) / "seeds" / "tiny.seed0.ipynb", as_version=4)
    assert "device cpu" in str(page.cells), "the kernel is told the device"
    assert json.loads((out_of(project) / "report.json").read_text())["tiny"]["device"] == "cpu"
    (cpu_task, _) = runner.plan(project, ["tiny"], {})["tiny"]
    monkeypatch.setenv("OPTDYN_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.main(["run", "tiny", "--root", str(project)]) == 0  # the CPU it falls back to: cached
    printed = capsys.readouterr()
    assert "tiny seed 0: cached" in printed.out
    assert (
        printed.err == "optdyn: OPTDYN_DEVICE=cuda asks for a GPU but none is available; running on the CPU\n"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    (gpu_task, _) = runner.plan(project, ["tiny"], {})["tiny"]
    assert gpu_task.device == "cuda" and gpu_task.key != cpu_task.key and gpu_task.notice is None
    assert not runner.list_chapters(project)[0]["current"]
    monkeypatch.setenv("OPTDYN_DEVICE", "")  # empty counts as unset
    assert device.resolve("quick") == ("cpu", None) and device.requested("full") == "cuda"


def test_the_profile_that_asks_for_a_gpu_is_named(monkeypatch):
    monkeypatch.delenv("OPTDYN_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve("full") == (
        "cpu",
        "profile 'full' asks for a GPU but none is available; running on the CPU",
    )


# -------------------------------------------------------------------------------------------- messages


def test_bounds_are_printed_exactly_and_long_values_cut():
    seed = runner.Declared("seed", 0, lo=0, hi=2147483647)
    assert seed.interval() == "[0, 2147483647]"
    with pytest.raises(runner.ParameterError, match=r"^seed=-5 is out of range \[0, 2147483647\]$"):
        seed.check(-5)
    assert runner.Declared("lr", 0.1, lo=1e-4, hi=float("inf"), hi_open=True).interval() == "[0.0001, inf)"
    assert runner.Declared("x", 0.5, lo=0.25, hi=1.5).interval() == "[0.25, 1.5]"
    cut = runner.shown("y" * 100_000)
    assert len(cut) < 120 and cut.endswith("(100002 characters)")
    assert runner.shown("short") == "'short'"


def test_the_browser_test_finds_nan_and_inf_anywhere_in_a_cell():
    from test_browser import raw_values

    bad = ["SGD 90.45 ± nan%", "nan at η=45", "NaN", "-inf", "Infinity", "1.2 (inf)", "None", "<NA>"]
    good = ["info", "finance", "inference", "banana", "1.5 ± 0.2", "—", "1 seed", "≥ 0.9"]
    assert raw_values(bad + good) == bad
