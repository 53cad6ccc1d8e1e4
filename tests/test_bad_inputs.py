"""Bad inputs to the `optdyn` command, one table: each answered by one line on stderr that starts with
``optdyn: `` and names the problem, exit status 2 (a usage error), no traceback, nothing written and no
kernel started.

The table holds 80 cases: 23 that lived in test_runner.py (16 parameters, 7 seed lists) and 57 from
issue 14 and around it: output folders that cannot be folders or cannot be written (7), ``OPTDYN_DEVICE``
(5), no project found or a bad ``--root`` (5), parameters given twice or in conflict with a flag (5),
bounds printed exactly (3), long values cut when echoed (6), argparse's own errors in one line (6), broken
chapter notebooks (4), more parameter values (10), course editions (3) and ``build`` (3). Each row
checks, besides its message fragment: exit 2, one line, no traceback, at most 400 characters, nothing on
stdout, the project folder byte-identical, and no kernel.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_runner import FIXTURES, make_project

from optdyn import runner

LONG = "x" * 100_000
NO_TOC = "no _toc.yml in"

# (command, expected fragment of the message, setup); {root}, {tmp} and {file} are filled in.
CASES = [
    # --- from test_runner.py: parameters checked against the parameters cell
    ("run nosuch", "unknown chapter 'nosuch'; known chapters: tiny", None),
    ("run tiny -p colour=1", "unknown parameter 'colour' for chapter tiny", None),
    ("run tiny -p seed=1.5", "seed=1.5 has the wrong type: expected int", None),
    ("run tiny -p seed=True", "seed=True has the wrong type", None),
    ("run tiny -p \"scale='big'\"", "scale='big' has the wrong type", None),
    ("run tiny -p sizes=3", "sizes=3 has the wrong type", None),
    ("run tiny -p scale=-1", "scale=-1.0 is out of range (0, 10]", None),
    ("run tiny -p scale=0", "scale=0.0 is out of range (0, 10]", None),
    ("run tiny --seed -1", "seed=-1 is out of range [0, 1000]", None),
    ("run tiny -p sizes=[1,0]", "sizes=0 is out of range [1, 100]", None),
    ("run tiny --profile huge", "profile='huge' is not one of: quick, default", None),
    ("run tiny -p \"seed=__import__('os').system('true')\"", "is not a literal", None),
    ("run tiny -p \"profile=__import__('os')\"", "is not a literal", None),
    ("run tiny --jobs 0", "--jobs must be at least 1", None),
    ("run tiny -p seed", "expected NAME=VALUE", None),
    ("run", "name at least one chapter", None),
    # --- from test_runner.py: seed lists
    ("run tiny --seeds a", "--seeds 'a': expected seeds like 0-2 or 0,3,7", None),
    ("run tiny --seeds 3-1", "range 3-1 is empty", None),
    ("run tiny --seeds -1", "expected seeds like", None),
    ("run tiny --seeds 0-1000", "more than 100 seeds", None),
    ("run tiny --seeds 999-1001", "seed=1001 is out of range [0, 1000]", None),
    ("run tiny --seeds 0-2 --seed 1", "give either --seeds or --seed", None),
    ("run tiny --seeds 0-2 -p seed=1", "give either --seeds or --seed", None),
    # --- item 1, 2, 4: output folders
    ("run tiny --out {file}", "not a folder (a file is there)", "file"),
    ("run tiny --out {file}/sub", "cannot create the folder: Not a directory", "file"),
    ("run tiny --out /proc/optdyn-x", "cannot create the folder", "proc"),
    ("run tiny --out {tmp}/out", "report.json is in the way (it should be a file)", "report_dir"),
    ("run tiny --out {tmp}/out", "seeds is in the way (it should be a folder)", "seeds_file"),
    ("run tiny --out {tmp}/ro", "cannot write there", "read_only"),
    ("run tiny --force", "the output folder", "read_only_book"),
    # --- item 12: OPTDYN_DEVICE, checked before anything runs, cache hit or not
    ("run tiny", "OPTDYN_DEVICE='bogus' is not one of: cpu, cuda", "device_bogus"),
    ("run tiny --seeds 0-1", "OPTDYN_DEVICE='bogus' is not one of: cpu, cuda", "device_bogus_cached"),
    ("list", "OPTDYN_DEVICE='bogus' is not one of", "device_bogus_cached"),
    ("run tiny --out {tmp}/out", "OPTDYN_DEVICE='bogus'", "device_bogus_report_dir"),
    ("run tiny", "OPTDYN_DEVICE='CUDA' is not one of: cpu, cuda", "device_upper"),
    # --- item 8: outside a project, and --root
    ("list", NO_TOC, "outside"),
    ("run tiny", NO_TOC, "outside"),
    ("student", NO_TOC, "outside"),
    ("--root {tmp}/nowhere list", "no such folder", None),
    ("--root {tmp} list", "no _toc.yml there", None),
    # --- item 9: a parameter given twice, or against its flag
    ("run tiny -p profile=nope --profile quick", "profile given twice (--profile and -p profile=)", None),
    ("run tiny -p seed=abc -p seed=0", "-p seed= given twice", None),
    ("run tiny -p seed=0 --seed 0", "seed given twice", None),
    ("run tiny -p profile=quick -p profile=quick", "-p profile= given twice", None),
    ("run tiny -p scale=1 -p ' scale=2'", "-p scale= given twice", None),
    # --- item 10: bounds printed exactly
    ("run tiny --seed 1001", "seed=1001 is out of range [0, 1000]", None),
    ("run tiny --seed 99999999999999999999", "seed=99999999999999999999 is out of range [0, 1000]", None),
    ("run tiny -p scale=1e999", "scale=inf is out of range (0, 10]", None),
    # --- item 11: long values are cut when echoed
    ("run tiny -p profile={long}", "(100002 characters)", None),
    ("run tiny -p {long}=1", "unknown parameter 'xxx", None),
    ("run {long}", "unknown chapter 'xxx", None),
    ("run tiny --seeds {long}", "--seeds 'xxx", None),
    ("run tiny -p seed=" + "(" * 5000, "is not a literal", None),
    ("run tiny -p sizes=[" + "1," * 50_000 + "0]", "sizes=0 is out of range [1, 100]", None),
    # --- argparse's own errors, in one line too
    ("run tiny --jobs abc", "argument --jobs: invalid int value: 'abc'", None),
    ("run tiny --frobnicate", "unrecognized arguments: --frobnicate", None),
    ("", "the following arguments are required", None),
    ("frobnicate", "invalid choice: 'frobnicate'", None),
    ("run tiny --jobs", "argument --jobs: expected one argument", None),
    ("run --all tiny", "give chapter names or --all, not both", None),
    # --- broken chapter notebooks
    ("run zzz", "cannot read", "corrupt"),
    ("run --all", "cannot read", "corrupt"),
    ("run plain", "plain.ipynb has no code cell tagged 'parameters'", "no_parameters"),
    ("run calls", "parameters cell line 1 is not 'name = literal'", "call_in_parameters"),
    # --- more parameter values
    ("run tiny --seed abc", "seed='abc' is not a literal value", None),
    ("run tiny -p seed=", "seed='' is not a literal value", None),
    ("run tiny --profile ''", "profile='' is not a literal value", None),
    ("run tiny -p =1", "expected NAME=VALUE", None),
    ("run tiny -p 'se ed=1'", "unknown parameter 'se ed'", None),
    ("run tiny -p sizes=[1,101]", "sizes=101 is out of range [1, 100]", None),
    ("run tiny -p \"sizes=[1,'a']\"", "sizes='a' has the wrong type", None),
    ("run tiny -p scale=True", "scale=True has the wrong type", None),
    ("run tiny -p scale=nan", "scale='nan' is not a literal", None),
    ("run book/tiny.ipynb", "unknown chapter 'book/tiny.ipynb'", None),
    # --- item 5: course editions, all or nothing
    ("student", "cannot read", "corrupt"),
    ("student --out {file}", "not a folder (a file is there)", "file"),
    ("student --out {tmp}/ro", "cannot write there", "read_only"),
    # --- build checks everything before it runs anything
    ("build --profile huge", "profile='huge' is not one of", None),
    ("build --jobs 0", "--jobs must be at least 1", None),
    ("build --seeds 0-2 --seed 1", "give either --seeds or --seed", None),
]
assert len(CASES) == 80, len(CASES)


def no_kernel(*args, **kwargs):
    raise AssertionError("a kernel was started")


def _immutable(paths: list[Path], on: bool) -> bool:
    """``chattr +i`` (or ``-i``) where root ignores permission bits; chmod otherwise."""
    if os.geteuid() != 0:
        for p in paths:
            p.chmod(0o555 if on else 0o755)
        return True
    flag = "+i" if on else "-i"
    done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A project whose tiny chapter ran once at its defaults (seeds 0 and 1; one kernel for this module)."""
    root = make_project(tmp_path_factory.mktemp("executed"), "tiny")
    assert runner.main(["run", "tiny", "--root", str(root)]) == 0
    return root


def _setup(kind, root: Path, tmp: Path, monkeypatch, undo: list) -> None:
    book = root / "book"
    if kind in ("file",):
        (tmp / "f").write_text("a file\n")
    if kind == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    if kind in ("report_dir", "device_bogus_report_dir"):
        (tmp / "out" / "report.json").mkdir(parents=True)
    if kind == "seeds_file":
        (tmp / "out").mkdir()
        (tmp / "out" / "seeds").write_text("")
    if kind in ("read_only", "read_only_book"):
        target = tmp / "ro" if kind == "read_only" else root / "book" / "_executed"
        target.mkdir(exist_ok=True)
        paths = [target, *(target.glob("*") if kind == "read_only_book" else [])]
        if not _immutable(paths, True):
            pytest.skip("cannot make a folder read-only here (chattr +i needs CAP_LINUX_IMMUTABLE)")
        undo.append(lambda: _immutable(paths, False))
    if kind and kind.startswith("device_"):
        value = "CUDA" if kind == "device_upper" else "bogus"
        monkeypatch.setenv("OPTDYN_DEVICE", value)
    if kind == "outside":
        elsewhere = tmp / "elsewhere"
        elsewhere.mkdir()
        if runner.find_root(elsewhere) is not None:
            pytest.skip("a _toc.yml lies above the temporary folder")
        monkeypatch.chdir(elsewhere)
    if kind == "corrupt":
        (book / "zzz.ipynb").write_text('{"cells": [')
    if kind == "no_parameters":
        shutil.copy(FIXTURES / "tiny.ipynb", book / "plain.ipynb")
        text = (book / "plain.ipynb").read_text().replace('"parameters"', '"other"')
        (book / "plain.ipynb").write_text(text)
    if kind == "call_in_parameters":
        text = (FIXTURES / "tiny.ipynb").read_text().replace('"profile = \\"quick\\"', '"print(1)\\n","x = 1')
        (book / "calls.ipynb").write_text(text)


def _snapshot(folder: Path) -> dict:
    return {
        p.relative_to(folder): (p.read_bytes() if p.is_file() else "folder")
        for p in sorted(folder.rglob("*"))
        if not p.is_symlink()
    }


@pytest.mark.parametrize(
    "command,fragment,setup", CASES, ids=[f"{i:02d}-{c[:40]}" for i, (c, _, _) in enumerate(CASES)]
)
def test_bad_input(command, fragment, setup, executed, tmp_path, monkeypatch, capsys):
    import shlex

    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", no_kernel)
    monkeypatch.delenv("OPTDYN_DEVICE", raising=False)
    cached = setup in ("device_bogus_cached", "read_only_book")
    root = (
        Path(shutil.copytree(executed, tmp_path / "project"))
        if cached
        else make_project(tmp_path / "project", "tiny")
    )
    monkeypatch.chdir(root)
    undo: list = []
    try:
        _setup(setup, root, tmp_path, monkeypatch, undo)
        before = _snapshot(tmp_path)
        argv = [
            a.replace("{root}", str(root))
            .replace("{tmp}", str(tmp_path))
            .replace("{file}", str(tmp_path / "f"))
            for a in shlex.split(command.replace("{long}", LONG))
        ]
        if setup != "outside" and not any(a.startswith("--root") for a in argv):
            argv = ["--root", str(root), *argv]
        status = runner.main(argv)
        printed = capsys.readouterr()
        assert _snapshot(tmp_path) == before, "something was written"
    finally:
        for step in undo:
            step()
    err = printed.err.strip()
    assert status == 2, err
    assert err.startswith("optdyn: ") and "\n" not in err and "Traceback" not in err, err
    assert fragment in err and len(err) <= 400, err
    assert printed.out == ""


def test_bad_inputs_at_the_command_line(tmp_path):
    """The installed command: one line on stderr, exit 2, outside a project and with a bad variable."""
    optdyn = Path(sys.executable).with_name("optdyn")
    if not optdyn.exists():
        pytest.skip("the optdyn command is not installed beside this Python")
    env = {k: v for k, v in os.environ.items() if k != "OPTDYN_DEVICE"}
    outside = subprocess.run([optdyn, "list"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert outside.returncode == 2 and outside.stdout == ""
    assert outside.stderr.startswith("optdyn: no _toc.yml in") and outside.stderr.count("\n") == 1
    assert "--root PATH" in outside.stderr
    root = make_project(tmp_path / "p", "tiny")
    bogus = subprocess.run(
        [optdyn, "run", "tiny"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env | {"OPTDYN_DEVICE": "bogus"},
    )
    assert (
        bogus.returncode == 2 and bogus.stderr == "optdyn: OPTDYN_DEVICE='bogus' is not one of: cpu, cuda\n"
    )
    assert not (root / "book" / "_executed").exists()
