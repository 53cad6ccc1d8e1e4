"""The `optdyn` command: list, run and build the book's chapters.

A chapter is ``book/<id>.ipynb`` (or ``book/<id>/<id>.ipynb``). Its code cell tagged ``parameters`` (the
second code cell; the first installs ``optdyn`` on Colab or Binder) declares each parameter as ``name =
literal`` with an optional ``# one of: a, b`` or ``# in [lo, hi)`` comment. The runner checks every
requested value against those declarations before any kernel starts, executes the chapter with papermill
into ``<out>/<id>.ipynb`` (through a temporary file and an atomic rename), extracts the claims the
chapter displays into ``<out>/<id>.claims.json``, and records the run in ``<out>/report.json``. Runs are
cached under a content hash that covers the notebook, the parameters, the whole helper package, the
requirements and the Python/torch versions. A failed run never replaces the last good executed copy. The
executed copy gets a "Reproduce" box under its title: the command, this run's wall time and machine, and
the source notebook to download. ``optdyn student`` writes the course editions (:mod:`optdyn.editions`).

Every error is one line starting ``optdyn:``: bad input (exit 2, nothing written), a failure (exit 1), an
interrupt (Ctrl-C or SIGTERM: the kernels are stopped, temporary files removed, exit 130); temporary files
left by a killed process are removed by the next run.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tokenize
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


class _Lazy:
    """A module imported on first use: ``optdyn`` answers (and is interruptible) before scipy and
    nbformat load, which takes seconds on a busy machine."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


nbformat = _Lazy("nbformat")
_claims = _Lazy("optdyn.claims")

#: The installed ``optdyn`` package, which the chapters' kernels import; its files are in the cache key.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The tags of the cells the runner adds, also their cell ids (fixed, so that a cache hit rewrites no page).
FAILURE_TAG = "optdyn-failure"
REPRODUCE_TAG = "optdyn-reproduce"
CLAIMS_TAG = "optdyn-claims"
ACROSS_TAG = "optdyn-across-seeds"
_TMP_PREFIX = ".running-"
#: Values echoed in messages are cut to this many characters.
SHOWN = 80


class ParameterError(ValueError):
    """A bad chapter name, parameter or option, reported as one line before anything runs."""


def shown(value: object, limit: int = SHOWN, *, literal: bool = True) -> str:
    """``repr(value)`` (``str`` if not ``literal``) for a message, cut to ``limit`` characters: a
    100,000-character value is not echoed back."""
    text = repr(value) if literal else str(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text)} characters)"


def _number(x: float) -> str:
    """A declared bound as written: integers exactly (2147483647, not 2.14748e+09), ``inf``, else repr."""
    if x != x or x in (float("inf"), float("-inf")):
        return repr(x)
    return str(int(x)) if float(x).is_integer() else repr(x)


# --------------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Declared:
    """A parameter of a chapter: its default and the values it accepts."""

    name: str
    default: object
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def check(self, value: object) -> object:
        """``value`` typed like the default and checked against the declaration; raises ParameterError."""
        value = _coerce(self.name, self.default, value)
        for item in value if isinstance(value, list | tuple) else [value]:
            self._check_item(item)
        return value

    def _check_item(self, item: object) -> None:
        if self.choices is not None and item not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ParameterError(f"{self.name}={shown(item)} is not one of: {shown(allowed, literal=False)}")
        if self.lo is None or self.hi is None or not isinstance(item, int | float):
            return
        below = item <= self.lo if self.lo_open else item < self.lo
        above = item >= self.hi if self.hi_open else item > self.hi
        if below or above:
            raise ParameterError(f"{self.name}={shown(item)} is out of range {self.interval()}")

    def interval(self) -> str:
        """The declared range as written, e.g. ``(0, inf)``."""
        lo, hi = _number(self.lo), _number(self.hi)
        return f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"


def _coerce(name: str, default: object, value: object) -> object:
    """``value`` as the type of ``default``: int is accepted for float, bool never counts as a number."""
    kind = type(default)
    wrong = ParameterError(f"{name}={shown(value)} has the wrong type: expected {kind.__name__}")
    if isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            raise wrong
        return type(default)(_coerce(name, default[0], v) for v in value) if default else value
    if isinstance(value, bool) != isinstance(default, bool):
        raise wrong
    if kind is float and isinstance(value, int):
        return float(value)
    if default is not None and not isinstance(value, kind):
        raise wrong
    return value


_RANGE = re.compile(r"^#\s*in\s*([\[(])\s*([^,]+?)\s*,\s*([^\])]+?)\s*([\])])\s*$")
_CHOICES = re.compile(r"^#\s*one of:\s*(.+?)\s*$")


def declared_parameters(notebook: Path) -> dict[str, Declared]:
    """The parameters declared in a chapter's cell tagged ``parameters``; raises ParameterError."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as error:
        raise ParameterError(f"cannot read {notebook}: {_one_line(error)}") from None
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ParameterError(f"{notebook.name} has no code cell tagged 'parameters'")
    source = cells[0].source
    try:
        statements = ast.parse(source).body
    except SyntaxError as error:
        raise ParameterError(f"{notebook.name}: parameters cell does not parse: {error.msg}") from None
    comments = _comments(source)
    return dict(_declaration(notebook.name, s, comments) for s in statements)


def _comments(source: str) -> dict[int, str]:
    """Line number → the comment on that line."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string for t in tokens if t.type == tokenize.COMMENT}


def _declaration(where: str, stmt: ast.stmt, comments: dict[int, str]) -> tuple[str, Declared]:
    if not (
        isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
    ):
        raise ParameterError(f"{where}: parameters cell line {stmt.lineno} is not 'name = literal'")
    name = stmt.targets[0].id
    try:
        default = ast.literal_eval(stmt.value)
    except ValueError:
        raise ParameterError(f"{where}: default of {name!r} is not a literal") from None
    comment = comments.get(stmt.end_lineno or stmt.lineno, "")
    try:
        return name, _declared(name, default, comment)
    except ValueError:
        raise ParameterError(f"{where}: cannot read the declaration of {name!r}: {comment!r}") from None


def _declared(name: str, default: object, comment: str) -> Declared:
    if m := _CHOICES.match(comment):
        return Declared(name, default, choices=tuple(_choice(c.strip()) for c in m.group(1).split(",")))
    if m := _RANGE.match(comment):
        lo, hi = float(m.group(2)), float(m.group(3))
        return Declared(name, default, lo=lo, hi=hi, lo_open=m.group(1) == "(", hi_open=m.group(4) == ")")
    return Declared(name, default)


def _choice(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_value(name: str, text: str, declared: Declared) -> object:
    """A command-line value as a Python literal; a bare word is accepted where a string is declared."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        if isinstance(declared.default, str) and re.fullmatch(r"[\w.\-]+", text):
            return text
    raise ParameterError(f"{name}={shown(text)} is not a literal value (a number, string, bool or list)")


# ----------------------------------------------------------------------------------------- chapters


def find_root(start: Path) -> Path | None:
    """The nearest directory from ``start`` upwards holding a ``_toc.yml`` (None if there is none)."""
    for path in [start, *start.parents]:
        if (path / "_toc.yml").is_file():
            return path
    return None


def project_root(given: Path | None) -> Path:
    """The book's root: ``--root`` if given (it must hold a ``_toc.yml``), else :func:`find_root` from the
    current folder; raises ParameterError naming what is missing and how to pass ``--root``."""
    if given is not None:
        root = given.resolve()
        if not root.is_dir():
            raise ParameterError(f"--root {shown(str(given), literal=False)}: no such folder")
        if not (root / "_toc.yml").is_file():
            raise ParameterError(
                f"--root {root}: no _toc.yml there; pass the folder that holds the book's _toc.yml"
            )
        return root
    try:
        here = Path.cwd()
    except OSError:
        raise ParameterError(
            "the current folder no longer exists; cd into the book or pass --root PATH"
        ) from None
    found = find_root(here)
    if found is None:
        raise ParameterError(
            f"no _toc.yml in {here} or any folder above it: run optdyn inside the book, or pass --root PATH"
        )
    return found


def chapters(root: Path) -> dict[str, Path]:
    """Chapter id → source notebook: ``book/<id>.ipynb`` or ``book/<id>/<id>.ipynb``."""
    book = root / "book"
    found = {p.stem: p for p in sorted(book.glob("*.ipynb")) if not p.name.startswith(".")}
    found.update({p.stem: p for p in sorted(book.glob("*/*.ipynb")) if p.parent.name == p.stem})
    return dict(sorted(found.items()))


def resolve(root: Path, names: list[str], overrides: dict[str, str]) -> dict[str, dict]:
    """Chapter → its resolved parameters (defaults plus checked overrides); raises ParameterError."""
    known = chapters(root)
    for name in names:
        if name not in known:
            listed = shown(", ".join(known), 200, literal=False) if known else f"none in {root / 'book'}"
            raise ParameterError(f"unknown chapter {shown(name)}; known chapters: {listed}")
    plans = {}
    for name in dict.fromkeys(names):
        declared = declared_parameters(known[name])
        params = {k: d.default for k, d in declared.items()}
        for key, text in overrides.items():
            if key not in declared:
                raise ParameterError(
                    f"unknown parameter {shown(key)} for chapter {name}; known: {', '.join(declared)}"
                )
            params[key] = declared[key].check(parse_value(key, text, declared[key]))
        plans[name] = params
    return plans


# -------------------------------------------------------------------------------------------- seeds

#: At most this many seeds in one request.
MAX_SEEDS = 100
_SEED_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str) -> list[int]:
    """``0-2`` → [0, 1, 2]; ``0,3,7`` → [0, 3, 7]; ranges and lists mix (``0-2,5``); raises ParameterError."""
    seeds: list[int] = []
    for item in text.split(","):
        m = _SEED_ITEM.match(item.strip())
        if not m:
            raise ParameterError(f"--seeds {shown(text)}: expected seeds like 0-2 or 0,3,7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ParameterError(f"--seeds {shown(text)}: range {lo}-{hi} is empty")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ParameterError(f"--seeds {shown(text)}: more than {MAX_SEEDS} seeds")
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    return seeds


def seeds_text(seeds: list[int]) -> str:
    """The shortest ``--seeds`` form: ``0-2`` for consecutive seeds, else ``0,3,7``."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def declared_seeds(notebook: Path, profile: object) -> list[int]:
    """The seeds a chapter declares for ``profile`` (notebook metadata ``optdyn.seeds``), else [0]."""
    nb = nbformat.read(notebook, as_version=4)
    declared = nb.metadata.get("optdyn", {}).get("seeds", {}).get(str(profile))
    if not (isinstance(declared, list) and declared and all(isinstance(x, int) for x in declared)):
        return [0]
    return list(dict.fromkeys(declared))


@dataclass(frozen=True)
class Task:
    """One execution: a chapter at one seed, with its resolved parameters, cache key and device (the one
    actually used: ``cpu`` where a GPU was asked for and none is present, said in ``notice``)."""

    chapter: str
    seed: int
    params: dict
    key: str
    device: str = "cpu"
    notice: str | None = field(default=None, compare=False)

    @property
    def run_name(self) -> str:
        return f"{self.chapter}.seed{self.seed}"


def plan(
    root: Path, names: list[str], overrides: dict[str, str], seeds: list[int] | None = None
) -> dict[str, list[Task]]:
    """Chapter → its tasks, one per seed; raises ParameterError before anything runs.

    The seeds are ``seeds`` if given, else the one of ``-p seed=``/``--seed`` if given, else those the
    chapter declares for its profile.
    """
    if seeds is not None and "seed" in overrides:
        raise ParameterError("give either --seeds or --seed (or -p seed=), not both")
    plans = resolve(root, names, overrides)
    known = chapters(root)
    tasks = {}
    for name, params in plans.items():
        if seeds is not None:
            chosen = seeds
        elif "seed" in overrides:
            chosen = [params["seed"]]
        else:
            chosen = declared_seeds(known[name], params.get("profile"))
        declared = declared_parameters(known[name])
        runs = []
        for seed in chosen:
            p = params | {"seed": declared["seed"].check(seed) if "seed" in declared else seed}
            runs.append(make_task(known[name], name, seed, p, root))
        tasks[name] = runs
    return tasks


def device_for(profile: object) -> tuple[str, str | None]:
    """(the device a run at ``profile`` will use, a notice of a CPU fallback or None), from
    ``OPTDYN_DEVICE`` and the profile (:func:`optdyn.device.resolve`); raises ParameterError for a bad
    value of the variable, before anything runs."""
    from . import device

    try:
        return device.resolve(profile)
    except ValueError as error:
        raise ParameterError(str(error)) from None


def make_task(source: Path, name: str, seed: int, params: dict, root: Path) -> Task:
    """The task of one seed of a chapter, keyed on its source, parameters and the device it will use."""
    device, notice = device_for(params.get("profile"))
    return Task(name, seed, params, cache_key(source, params, root, device=device), device, notice)


# -------------------------------------------------------------------------------------------- cache


def versions() -> dict[str, str]:
    """Python, torch and optdyn versions (torch's from its metadata; torch is not imported)."""

    from importlib import metadata

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "absent"

    return {"python": platform.python_version(), "torch": version("torch"), "optdyn": version("optdyn")}


def provenance(root: Path) -> dict[str, str]:
    """The code's commit (``git describe --always --dirty``, "unknown" outside a git checkout) and the
    machine (architecture and core count)."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True, timeout=10
        )
        commit = described.stdout.strip() if described.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"commit": commit or "unknown", "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores"}


def cache_key(
    source: Path, params: dict, root: Path, package_dir: Path | None = None, device: str = "cpu"
) -> str:
    """sha256 of the source cells, the parameters, the package's files, requirements.txt, the versions and
    the device the run uses (``cpu`` or ``cuda``: a GPU run is not a CPU run's cache hit).

    ``package_dir`` defaults to :data:`PACKAGE_DIR`, the installed ``optdyn`` the kernels import.
    """
    package_dir = package_dir or PACKAGE_DIR
    h = hashlib.sha256()
    nb = nbformat.read(source, as_version=4)
    cells = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]
    h.update(json.dumps(cells).encode())
    h.update(json.dumps(params, sort_keys=True).encode())
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    requirements = root / "requirements.txt"
    h.update(requirements.read_bytes() if requirements.exists() else b"")
    v = versions()
    h.update(f"python {v['python']} torch {v['torch']} device {device}".encode())
    return h.hexdigest()


def read_report(out: Path) -> dict:
    """The run report (chapter → entry), or an empty one if it is missing or unreadable."""
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(report, dict):
        return {}
    return {k: v for k, v in report.items() if isinstance(v, dict)}


def is_current(out: Path, task: Task, report: dict) -> bool:
    """A cache hit: same key and a good status in the report, a readable executed copy and claims."""
    entry = report.get(task.chapter, {}).get("runs", {}).get(str(task.seed), {})
    if entry.get("cache_key") != task.key or entry.get("status") not in ("ok", "cached"):
        return False
    try:
        nb = nbformat.read(seed_dir(out) / f"{task.run_name}.ipynb", as_version=4)
        nbformat.validate(nb)
        _claims.ClaimSet.from_dict(json.loads((seed_dir(out) / f"{task.run_name}.claims.json").read_text()))
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------------------- execution


def claims_from(nb: nbformat.NotebookNode) -> dict | None:
    """The claims a chapter displayed: the last output carrying ``application/vnd.optdyn.claims+json``."""
    found = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if _claims.MIME_TYPE in data:
                found = data[_claims.MIME_TYPE]
    if isinstance(found, str):
        found = json.loads(found)
    return found


def strip_claims(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop the claims mime data from the outputs (kept in the claims JSON instead).

    myst-nb renders every mime type of an output and warns about unknown ones, which fails a ``-W``
    build; the HTML and plain-text forms of the claims stay in the page.
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(_claims.MIME_TYPE, None)
    return nb


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        _unlink_quietly(tmp)


def _unlink_quietly(path: Path) -> None:
    """Remove ``path`` if it is there; a failure (a read-only filesystem) never hides the error that
    brought us here, and a stale file is removed by the next call (:func:`_clean_stale`)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _one_line(error: BaseException) -> str:
    if hasattr(error, "ename") and hasattr(error, "evalue"):  # papermill's PapermillExecutionError
        text = f"{error.ename}: {error.evalue} (cell {getattr(error, 'exec_count', '?')})"
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


#: The temporary files of a process: ``.<chapter>.seed<N>.running-<pid>.ipynb`` (and ``.log``, the kernel's
#: stderr) of an execution, ``.<file>.tmp<pid>`` of an atomic write.
_TEMPORARY = re.compile(r"^\..+(?:\.running-|\.tmp)(\d+)(?:\.ipynb|\.log)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def _clean_stale(folder: Path) -> list[Path]:
    """Remove the temporary files in ``folder`` left by processes that are gone (killed by SIGKILL, or a
    full disk); those of live processes stay. Returns what was removed; never raises."""
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".")]
    except OSError:
        return removed
    for path in candidates:
        m = _TEMPORARY.match(path.name)
        if m and path.is_file() and not _alive(int(m.group(1))):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def prepare_out(out: Path, label: str) -> None:
    """Make ``out`` a folder (creating it) whose ``report.json`` and ``seeds`` are not in the way; raises
    ParameterError in one line, before anything runs, for an ``out`` that is a file, lies under a file,
    or cannot be created."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{label} {out}: not a folder (a file is there)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ParameterError(f"{label} {out}: cannot create the folder: {_reason(error)}") from None
    for name, kind in (("report.json", "file"), ("seeds", "folder")):
        path = out / name
        if path.exists() and (path.is_dir() if kind == "file" else not path.is_dir()):
            raise ParameterError(f"{label} {out}: {name} is in the way (it should be a {kind}); move it away")


def check_writable(folder: Path, label: str) -> None:
    """Raise ParameterError unless a file can be written in ``folder`` (read-only folder or filesystem,
    immutable attribute, full disk), found by writing one: permission bits do not bind root."""
    probe = folder / f".optdyn-probe.tmp{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"optdyn")
    except OSError as error:
        raise ParameterError(f"{label} {folder}: cannot write there: {_reason(error)}") from None
    finally:
        _unlink_quietly(probe)


def _reason(error: OSError) -> str:
    return error.strerror or _one_line(error)


def seed_dir(out: Path) -> Path:
    """Where the executions of single seeds live: ``<out>/seeds/<chapter>.seed<N>.ipynb`` and claims."""
    return out / "seeds"


def execute(source: Path, out: Path, task: Task, threads: int | None = None) -> dict:
    """Execute one chapter at one seed with papermill into :func:`seed_dir` and return its report entry.

    The kernel runs on ``task.device`` (``OPTDYN_DEVICE`` in its environment) and writes its own stderr
    (ipykernel's log) to a file beside the temporary copy, kept as ``<run>.kernel.log`` if the run fails.
    A failure (any exception) is recorded in the entry, never raised; KeyboardInterrupt is raised after
    the kernel is stopped and the temporary files are removed, and the previous executed copy stays as it
    was.
    """
    import papermill

    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    where = seed_dir(out)
    name = task.run_name
    tmp = where / f".{name}{_TMP_PREFIX}{os.getpid()}.ipynb"
    log = tmp.with_suffix(".log")
    params = task.params
    entry = {"profile": params.get("profile"), "seed": task.seed, "parameters": params, "device": task.device}
    entry |= {"cache_key": task.key, "date": _now(), **versions()}
    start = time.monotonic()
    print(f"{task.chapter}: running seed {task.seed} (profile {entry['profile']})", flush=True)
    kernels: list = []
    try:
        where.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as kernel_stderr:
            papermill.execute_notebook(
                str(source),
                str(tmp),
                parameters=params,
                kernel_name="python3",
                cwd=str(source.parent),
                progress_bar=False,
                kernel_manager_class=_kernel_manager(kernel_stderr, {"OPTDYN_DEVICE": task.device}, kernels),
                shutdown_kernel="immediate",
            )
        entry["wall_s"] = round(time.monotonic() - start, 2)
        _publish(where, name, tmp, entry)
    except Exception as error:  # a failed chapter is reported; the other chapters go on
        entry |= {"status": "failed", "error": _one_line(error), "wall_s": round(time.monotonic() - start, 2)}
        try:
            entry["look"] = str(_keep_failure(source, where, name, tmp, entry))
        except Exception as also:  # e.g. a full disk: still report, still run the other chapters
            entry["look"] = f"nowhere: saving the failed copy failed too ({_one_line(also)})"
        try:
            if log.stat().st_size:
                os.replace(log, where / f"{name}.kernel.log")
        except OSError:
            pass
    finally:
        _stop_kernels(kernels)
        _unlink_quietly(tmp)
        _unlink_quietly(log)
    return entry


def _kernel_manager(stderr, env: dict[str, str], started: list):
    """A kernel manager class for papermill whose kernels write their stderr to ``stderr`` (not to the
    terminal: ipykernel logs a ZMQError traceback when an interrupt closes its sockets mid-message), get
    ``env`` added to their environment, and are appended to ``started`` (see :func:`_stop_kernels`)."""
    from jupyter_client import AsyncKernelManager

    class Manager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["stderr"] = stderr
            kw["env"] = {**kw.get("env", os.environ), **env}
            started.append(self)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    return Manager


def _stop_kernels(managers: list) -> None:
    """Kill any kernel of ``managers`` still running (an interrupt during startup or shutdown can leave one
    that papermill no longer tracks); it runs in its own session, so its whole process group goes."""
    for km in managers:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is None or process.poll() is not None:
            continue
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            process.kill()
        try:
            process.wait(timeout=10)
            km.cleanup_connection_file()
        except Exception:
            pass


def _reproduce_cell(source: Path, out: Path, name: str, runs: list[dict]) -> nbformat.NotebookNode:
    """A box under the chapter's title: the command that reproduces this page (every seed), the wall time
    of each seed's run and the machine, and a link to the source notebook (no outputs)."""
    first = runs[0]
    defaults = {k: d.default for k, d in declared_parameters(source).items()}
    extra = "".join(
        " -p " + shlex.quote(f"{k}={_literal(v)}")
        for k, v in first["parameters"].items()
        if k not in ("profile", "seed") and v != defaults.get(k)
    )
    seeds = [r["seed"] for r in runs]
    which = f"--seed {seeds[0]}" if len(seeds) == 1 else f"--seeds {seeds_text(seeds)}"
    command = f"optdyn run {name} --profile {first['profile']} {which}{extra}"
    gpu = " and a CUDA GPU" if first.get("device") == "cuda" else ""
    machine = f"{os.cpu_count()} CPU cores{gpu}, Python {first['python']}, torch {first['torch']}"
    walls = ", ".join(f"seed {r['seed']} {r.get('wall_s', 0):.0f} s" for r in runs)
    relative = Path(os.path.relpath(source, out)).as_posix()
    lines = [
        "```{admonition} Reproduce this chapter",
        ":class: tip",
        f"`{command}`",
        "",
        f"This page: profile `{first['profile']}`, seed {seeds[0]}'s figures; the verdicts use "
        f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))}, each a separate execution "
        f"({walls}; executed {first['date'][:10]} on {machine}).",
        f"Download the {{download}}`source notebook <{relative}>` (no outputs); the download button at the "
        "top of the page gives this executed copy, and the launch button opens it in Colab or Binder.",
        "```",
    ]
    return nbformat.v4.new_markdown_cell(
        "\n".join(lines), metadata={"tags": [REPRODUCE_TAG]}, id=REPRODUCE_TAG
    )


def _literal(value: object) -> str:
    """A parameter value as the runner's ``-p`` reads it: bare words bare, everything else a literal."""
    return value if isinstance(value, str) and re.fullmatch(r"[\w.\-]+", value) else repr(value)


def _publish(where: Path, name: str, tmp: Path, entry: dict) -> None:
    """Move a successful execution into place: its claims JSON, then the executed copy, both atomically."""
    nb = nbformat.read(tmp, as_version=4)
    found = claims_from(nb)
    try:
        _claims.ClaimSet.from_dict(found)
    except Exception:
        raise RuntimeError(f"the chapter displayed no claims ({_claims.MIME_TYPE}) in its outputs") from None
    for cell in nb.cells:
        if any(_claims.MIME_TYPE in o.get("data", {}) for o in cell.get("outputs", [])):
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), CLAIMS_TAG]
    nb.metadata["optdyn"] = nb.metadata.get("optdyn", {}) | {
        k: entry[k] for k in ("date", "profile", "seed", "cache_key")
    }
    nb.metadata["optdyn"]["status"] = "ok"
    strip_claims(nb)
    _write_atomic(where / f"{name}.claims.json", json.dumps(found, indent=2, sort_keys=True) + "\n")
    _write_atomic(where / f"{name}.ipynb", nbformat.writes(nb))
    (where / f"{name}.failed.ipynb").unlink(missing_ok=True)
    (where / f"{name}.kernel.log").unlink(missing_ok=True)
    entry |= {"status": "ok", "last_success": entry["date"]}


def _good_copy(path: Path) -> nbformat.NotebookNode | None:
    """The executed copy at ``path`` if it is readable and comes from a successful run."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return None
    return nb if nb.metadata.get("optdyn", {}).get("status") == "ok" else None


def _failure_cell(entry: dict, last_success: str | None) -> nbformat.NotebookNode:
    error = entry["error"].replace("`", "'")
    when = f"{entry['date']}, profile {entry['profile']!s}, seed {entry['seed']!s}"
    after = (
        f"The results below are from the last successful run ({last_success})."
        if last_success
        else "There is no successful run of this chapter yet; the output below is the failed execution."
    )
    text = f"```{{warning}}\nThe latest run of this chapter ({when}) failed: `{error}`. {after}\n```"
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [FAILURE_TAG]}, id=FAILURE_TAG)


def _with_failure_cell(nb: nbformat.NotebookNode, cell: nbformat.NotebookNode) -> str:
    nb.cells = [cell] + [c for c in nb.cells if FAILURE_TAG not in c.metadata.get("tags", [])]
    return nbformat.writes(nb)


def _keep_failure(source: Path, where: Path, name: str, tmp: Path, entry: dict) -> Path:
    """Record a failed execution without losing the last good copy; return where to look."""
    try:
        failed = nbformat.read(tmp, as_version=4)
    except Exception:  # papermill failed before writing anything: show the source with the error
        failed = nbformat.read(source, as_version=4)
    failed.metadata["optdyn"] = {"status": "failed", "date": entry["date"], "error": entry["error"]}
    strip_claims(failed)
    good_path = where / f"{name}.ipynb"
    good = _good_copy(good_path)
    if good is None:
        _write_atomic(good_path, _with_failure_cell(failed, _failure_cell(entry, None)))
        return good_path
    last = good.metadata["optdyn"].get("date") or "unknown date"
    entry["last_success"] = last
    failed_path = where / f"{name}.failed.ipynb"
    _write_atomic(failed_path, nbformat.writes(failed))
    _write_atomic(good_path, _with_failure_cell(good, _failure_cell(entry, last)))
    return failed_path


# ------------------------------------------------------------------------------------ chapter pages


def _seed_claims(out: Path, tasks: list[Task]) -> list:
    """The claims of every seed that has a good run (the last good one where the latest failed)."""
    found = []
    for task in tasks:
        try:
            data = json.loads((seed_dir(out) / f"{task.run_name}.claims.json").read_text())
            found.append(_claims.ClaimSet.from_dict(data))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _across_seeds_cell(summary: dict, missing: list[int], failed: list[int]) -> nbformat.NotebookNode:
    lost = ""
    if failed:
        lost += f" The latest run of seed(s) {', '.join(map(str, failed))} failed (see the status page)."
    if missing:
        lost += f" Seed(s) {', '.join(map(str, missing))} have no successful run and are left out below."
    text = (
        "**Verdicts across seeds.** The table above is one seed; the verdicts below come from all seeds, "
        "run as separate executions of this chapter: *replicated* when the interval lies inside the band, "
        "*not replicated* when it lies outside, *inconclusive* when it straddles an edge, when too few "
        f"seeds gave a finite value, or when the claim's premise is not replicated.{lost}\n\n"
        + _claims.summary_tables_html(summary)
    )
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [ACROSS_TAG]}, id=ACROSS_TAG)


def assemble(source: Path, out: Path, name: str, tasks: list[Task], entries: dict[int, dict]) -> dict | None:
    """The chapter's page and verdicts from its seeds' executions.

    Writes ``<out>/<name>.ipynb`` (the first seed's executed copy with the chapter's Reproduce box and the
    "across seeds" table under its claims) and ``<out>/<name>.claims.json`` (:func:`optdyn.claims.aggregate`),
    each only when it changed. Returns the summary, or None when no seed has a good run.
    """
    runs = _seed_claims(out, tasks)
    first = seed_dir(out) / f"{tasks[0].run_name}.ipynb"
    try:
        page = nbformat.read(first, as_version=4)
    except Exception:
        return None
    good = [entries[t.seed] for t in tasks if t.seed in entries and entries[t.seed].get("status") != "failed"]
    box_runs = good or [entries[tasks[0].seed]]
    cells = [c for c in page.cells if not {REPRODUCE_TAG, ACROSS_TAG} & set(c.metadata.get("tags", []))]
    for cell in cells:  # papermill's copy of the parameters: the Reproduce box says what was injected
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    cells.insert(1, _reproduce_cell(source, out, name, box_runs))
    summary = None
    if runs:
        summary = _claims.aggregate(runs)
        missing = [t.seed for t in tasks if t.seed not in summary["seeds"]]
        at = next(
            (i for i, c in enumerate(cells) if CLAIMS_TAG in c.metadata.get("tags", [])), len(cells) - 1
        )
        failed = [t.seed for t in tasks if entries.get(t.seed, {}).get("status") == "failed"]
        cells.insert(at + 1, _across_seeds_cell(summary, missing, failed))
        _write_if_changed(out / f"{name}.claims.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    page.cells = cells
    _write_if_changed(out / f"{name}.ipynb", nbformat.writes(page))
    return summary


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    _write_atomic(path, text)


# ------------------------------------------------------------------------------------------ running


@contextmanager
def _report_lock(out: Path):
    """An exclusive lock on ``<out>/report.json.lock`` for a read-modify-write of ``report.json``."""
    import fcntl

    with open(out / "report.json.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _chapter_entry(tasks: list[Task], runs: dict[str, dict]) -> dict:
    """A chapter's report entry: its runs by seed, and a summary (status, seeds, total wall time)."""
    chosen = [runs[str(t.seed)] for t in tasks if str(t.seed) in runs]
    first = chosen[0]
    status = "failed" if any(r.get("status") == "failed" for r in chosen) else "ok"
    keys = ("profile", "parameters", "cache_key", "device", "python", "torch", "optdyn", "commit", "machine")
    entry = {k: first.get(k) for k in keys}
    entry |= {
        "status": status,
        "seeds": [t.seed for t in tasks],
        "seed": tasks[0].seed,
        "runs": runs,
        "wall_s": round(sum(r.get("wall_s", 0.0) for r in chosen), 2),
        "date": max(r.get("date", "") for r in chosen),
    }
    errors = [f"seed {r['seed']}: {r['error']}" for r in chosen if r.get("status") == "failed"]
    if errors:
        entry |= {"error": "; ".join(errors), "look": next(r["look"] for r in chosen if "look" in r)}
    return entry


def _record(out: Path, tasks: list[Task], entries: dict[int, dict]) -> None:
    """Merge this chapter's run entries into ``report.json`` (under a lock; written atomically)."""
    name = tasks[0].chapter
    with _report_lock(out):
        report = read_report(out)
        runs = dict(report.get(name, {}).get("runs", {}))
        runs |= {str(seed): entry for seed, entry in entries.items()}
        report[name] = _chapter_entry(tasks, runs)
        _write_atomic(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")


def _summary(task: Task, entry: dict) -> str:
    name = f"{task.chapter} seed {task.seed}"
    if entry["status"] == "failed":
        return f"{name}: FAILED in {entry['wall_s']} s: {entry['error']} (see {entry['look']})"
    return f"{name}: {entry['status']} in {entry['wall_s']} s"


def run(
    root: Path,
    names: list[str],
    overrides: dict[str, str] | None = None,
    out: Path | None = None,
    jobs: int = 1,
    force: bool = False,
    seeds: list[int] | None = None,
) -> int:
    """Check, then execute every (chapter, seed) that is not current and assemble each chapter's page
    and verdicts from its seeds; 0 if all are ok, 1 if any failed.

    Raises ParameterError (before any kernel starts) for a bad chapter, parameter, seed, option,
    ``OPTDYN_DEVICE`` or output folder (a file, or not writable when something is to be written). A cache
    hit writes nothing, so it also answers from a read-only folder.
    """
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    tasks = plan(root, names, overrides or {}, seeds)
    label = "--out" if out else "the output folder"
    out = out or root / "book" / "_executed"
    prepare_out(out, label)
    known = chapters(root)
    report = read_report(out)
    todo = [t for ts in tasks.values() for t in ts if force or not is_current(out, t, report)]
    if todo:
        check_writable(out, label)
        check_writable(seed_dir(out), label)
    for folder in (out, seed_dir(out)):
        for path in _clean_stale(folder):
            print(f"removed {path.name}, left by a process that is gone", flush=True)
    for notice in dict.fromkeys(t.notice for ts in tasks.values() for t in ts if t.notice):
        print(f"optdyn: {notice}", file=sys.stderr, flush=True)
    entries: dict[str, dict[int, dict]] = {name: {} for name in tasks}
    for t in (t for ts in tasks.values() for t in ts if t not in todo):
        entry = report[t.chapter]["runs"][str(t.seed)]
        entries[t.chapter][t.seed] = entry
        print(f"{t.chapter} seed {t.seed}: cached (key {t.key[:12]}, run {entry.get('date')}), not re-run")
    pending = {name: sum(t in todo for t in ts) for name, ts in tasks.items()}
    failed = False
    for name in (n for n, k in pending.items() if k == 0):
        _finish(known[name], out, tasks[name], entries[name], report_runs=False)
    where = provenance(root)
    for task, entry in _execute_all(known, out, todo, jobs):
        entry |= where
        print(_summary(task, entry), flush=True)
        failed |= entry["status"] == "failed"
        entries[task.chapter][task.seed] = entry
        pending[task.chapter] -= 1
        if pending[task.chapter] == 0:
            _finish(known[task.chapter], out, tasks[task.chapter], entries[task.chapter])
    return 1 if failed else 0


def _finish(source: Path, out: Path, tasks: list[Task], entries: dict[int, dict], report_runs=True) -> None:
    """Record the chapter's runs and assemble its page and verdicts; print the verdict counts."""
    name = tasks[0].chapter
    if report_runs:
        _record(out, tasks, entries)
    summary = assemble(source, out, name, tasks, entries)
    if summary is not None:
        c = _claims.counts(summary)
        print(
            f"{name}: seeds {seeds_text(summary['seeds'])}: paper claims {c['replicated']} replicated, "
            f"{c['not replicated']} not replicated, {c['inconclusive']} inconclusive; "
            f"checks {c['holds']} hold, {c['fails']} fail",
            flush=True,
        )


def _execute_all(known: dict, out: Path, todo: list[Task], jobs: int):
    """Yield (task, entry) as executions finish; in parallel processes when jobs > 1.

    On an interrupt (Ctrl-C, SIGTERM) the pending executions are cancelled and the running ones are
    stopped (SIGTERM to each worker, which cleans up as a single run does) before the interrupt goes on.
    """
    if jobs == 1 or len(todo) <= 1:
        for task in todo:
            yield task, execute(known[task.chapter], out, task)
        return
    workers = min(jobs, len(todo))
    threads = max(1, (os.cpu_count() or 1) // workers)
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(workers, initializer=_worker_start)
    futures: dict = {}
    try:
        futures = {pool.submit(_worker_execute, known[t.chapter], out, t, threads): t for t in todo}
        for future in as_completed(futures):
            yield futures[future], _result(future, futures[future])
    except BaseException:
        for future in futures:
            future.cancel()
        for process in list(getattr(pool, "_processes", {}).values()):
            try:
                process.terminate()
            except Exception:
                pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


#: In a worker process: whether it is executing a chapter, and whether it was told to stop.
_worker = {"busy": False, "stopping": False}


def _worker_start() -> None:
    """A worker ignores Ctrl-C (the driver forwards a SIGTERM) and turns SIGTERM into KeyboardInterrupt
    only while it executes a chapter; an idle one just stops taking work, so the pool stays whole."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum, frame) -> None:
    _worker["stopping"] = True
    if _worker["busy"]:
        _worker["busy"] = False  # a second signal during the clean-up does not interrupt it
        raise KeyboardInterrupt(f"signal {signum}")


def _worker_execute(source: Path, out: Path, task: Task, threads: int) -> dict:
    if _worker["stopping"]:
        raise KeyboardInterrupt("stopped")
    _worker["busy"] = True
    try:
        return execute(source, out, task, threads)
    finally:
        _worker["busy"] = False


def _result(future, task: Task) -> dict:
    try:
        return future.result()
    except Exception as error:  # the worker process itself died
        entry = {"status": "failed", "error": _one_line(error), "wall_s": 0.0, "look": "the runner's output"}
        return entry | {
            "profile": task.params.get("profile"),
            "seed": task.seed,
            "parameters": task.params,
            "cache_key": task.key,
            "date": _now(),
            **versions(),
        }


def _jupyter_book() -> str:
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else shutil.which("jupyter-book") or "jupyter-book"


def build(
    root: Path,
    profile: str | None = None,
    seed: int | None = None,
    jobs: int = 1,
    seeds: list[int] | None = None,
) -> int:
    """Run every (chapter, seed) that is not current, write the scorecard and status pages, build the HTML.

    Each chapter runs at the seeds it declares for the profile unless ``seed``/``seeds`` is given. The
    book is built even when a chapter failed; the result is nonzero if either failed.
    """
    from .report import write_pages

    overrides = {k: str(v) for k, v in {"profile": profile, "seed": seed}.items() if v is not None}
    out = root / "book" / "_executed"
    status = run(root, list(chapters(root)), overrides, out, jobs, seeds=seeds)
    write_pages(root, out)
    command = [_jupyter_book(), "build", str(root), "-W", "-n", "--keep-going"]
    print("$ " + " ".join(command), flush=True)
    built = subprocess.run(command, check=False, cwd=root).returncode
    if built:
        print(f"optdyn: the book build failed (exit {built}); see the warnings above", file=sys.stderr)
    return 1 if status or built else 0


def list_chapters(root: Path) -> list[dict]:
    """Per chapter: id, declared profiles, last recorded status and whether that run is current.

    A chapter whose notebook cannot be read is listed with ``error`` (the one-line reason) and the others
    are listed as usual. Raises ParameterError for a bad ``OPTDYN_DEVICE``.
    """
    device_for(None)  # the variable is checked once, before any chapter
    out = root / "book" / "_executed"
    report = read_report(out)
    rows = []
    for name, source in chapters(root).items():
        try:
            rows.append(_list_row(root, out, report, name, source))
        except ParameterError as error:
            rows.append({"chapter": name, "error": str(error)})
    return rows


def _list_row(root: Path, out: Path, report: dict, name: str, source: Path) -> dict:
    try:
        declared = declared_parameters(source)
        entry = report.get(name, {})
        params = {k: d.default for k, d in declared.items()}
        if isinstance(entry.get("parameters"), dict) and set(entry["parameters"]) == set(params):
            params = entry["parameters"]
        seeds = entry.get("seeds")
        if not (isinstance(seeds, list) and seeds and all(type(s) is int for s in seeds)):
            seeds = declared_seeds(source, params.get("profile"))
        tasks = [make_task(source, name, s, params | {"seed": s}, root) for s in seeds]
    except (OSError, ValueError, TypeError, KeyError) as error:
        if isinstance(error, ParameterError):
            raise
        raise ParameterError(f"cannot read {source.name}: {_one_line(error)}") from None
    current = all(is_current(out, t, report) for t in tasks)
    profiles = declared["profile"].choices if "profile" in declared else None
    return {
        "chapter": name,
        "profiles": [str(p) for p in profiles or []],
        "status": entry.get("status", "not run"),
        "profile": params.get("profile"),
        "seeds": seeds,
        "current": current,
    }


# ----------------------------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``optdyn: ...``, exit 2) like every other bad input."""

    def error(self, message: str):
        raise ParameterError(f"{shown(message, 200, literal=False)} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optdyn", description="Run and build 'Optimization Dynamics, Reproduced'.")
    root_help = "project root (default: the nearest directory upwards with a _toc.yml)"
    parser.add_argument("--root", type=Path, default=None, help=root_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,build,student}")
    common = _Parser(add_help=False)
    common.add_argument("--root", type=Path, default=argparse.SUPPRESS, help=root_help)
    sub.add_parser(
        "list", parents=[common], help="chapters, their profiles, whether the cached run is current"
    )
    r = sub.add_parser("run", parents=[common], help="execute chapters with papermill")
    r.add_argument("chapters", nargs="*", help="chapter ids (see `optdyn list`)")
    r.add_argument("--all", action="store_true", help="every chapter")
    r.add_argument("--out", type=Path, default=None, help="output directory (default: <root>/book/_executed)")
    r.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--force", action="store_true", help="ignore the cache")
    b = sub.add_parser("build", parents=[common], help="run what is not current, then build the HTML book")
    s = sub.add_parser(
        "student", parents=[common], help="write student (no solutions) and instructor editions"
    )
    s.add_argument("--out", type=Path, default=None, help="default: <root>/_build/editions")
    for p in (r, b):
        p.add_argument("--profile", default=None)
        p.add_argument("--seed", default=None, help="one seed (default: the seeds the chapter declares)")
        p.add_argument("--seeds", default=None, help="several seeds, each a separate execution: 0-2 or 0,3,7")
        p.add_argument("--jobs", type=int, default=1, help="executions in parallel (default 1)")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """``-p NAME=VALUE``, ``--profile`` and ``--seed`` as one mapping; a parameter given twice (two ``-p``,
    or ``-p profile=``/``-p seed=`` beside the flag) is refused rather than resolved silently."""
    pairs: dict[str, str] = {}
    for item in getattr(args, "params", []):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p {shown(item)}: expected NAME=VALUE")
        if name in pairs:
            raise ParameterError(f"-p {shown(name, literal=False)}= given twice; give each parameter once")
        pairs[name] = value.strip()
    for name in ("profile", "seed"):
        flag = getattr(args, name, None)
        if flag is None:
            continue
        if name in pairs:
            raise ParameterError(f"{name} given twice (--{name} and -p {name}=); give it once")
        pairs[name] = str(flag)
    return pairs


def _print_list(root: Path) -> int:
    """One line per chapter; an unreadable notebook is marked and makes the exit status 1."""
    rows = list_chapters(root)
    if not rows:
        print(f"no chapters in {root / 'book'} (book/<id>.ipynb or book/<id>/<id>.ipynb)")
    broken = []
    for row in rows:
        if "error" in row:
            broken.append(row["chapter"])
            print(f"{row['chapter']}  UNREADABLE: {row['error']}")
            continue
        state = "current" if row["current"] else "not current"
        print(
            f"{row['chapter']}  profiles: {', '.join(row['profiles']) or '-'}  "
            f"last run: {row['status']} (profile {row['profile']}, seeds {seeds_text(row['seeds'])}), {state}"
        )
    if broken:
        print(f"optdyn: cannot read {len(broken)} chapter notebook(s): {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0


def _write_editions(root: Path, out: Path | None) -> int:
    """Both course editions, all or nothing: every chapter is read and both editions made before the output
    folder is checked and written (:mod:`optdyn.editions`)."""
    from . import editions

    label = "--out" if out else "the editions folder"
    out = (out or root / "_build" / "editions").resolve()
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{label} {out}: not a folder (a file is there)")
    try:
        texts = editions.make_editions(chapters(root))
    except ValueError as error:
        raise ParameterError(f"{error}; no edition written") from None
    except RuntimeError as error:
        print(f"optdyn: {error}; no edition written", file=sys.stderr)
        return 1
    prepare_out(out, label)
    check_writable(out, label)
    try:
        written = editions.save_editions(texts, out)
    except ValueError as error:
        raise ParameterError(f"{label} {out}: {error}; no edition written") from None
    for edition, paths in written.items():
        print(f"{edition} edition: {len(paths)} chapters in {out / edition}")
    return 0


def _on_signal(signum, frame) -> None:
    """The first SIGINT or SIGTERM interrupts (KeyboardInterrupt); later ones are ignored while the clean-up
    (stopping the kernel, removing temporary files) runs, so it cannot be cut short."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _trap_signals() -> dict:
    """Install :func:`_on_signal` for SIGINT and SIGTERM (main thread only); the previous handlers."""
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, _on_signal)
        except ValueError:  # not the main thread
            pass
    return previous


def _os_error(error: OSError) -> str:
    if not error.strerror:
        return f"cannot go on: {_one_line(error)}"
    return f"{error.filename}: {error.strerror}" if error.filename else error.strerror


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `optdyn` command; returns the exit status (2: bad input, 1: a failure, 130: an
    interrupt). Every error is one line starting ``optdyn:``; ``OPTDYN_DEBUG=1`` shows the traceback of an
    unexpected one."""
    previous = _trap_signals()
    try:
        return _main(_parser().parse_args(argv))
    except ParameterError as error:
        print(f"optdyn: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optdyn: interrupted; previous executed copies are unchanged", file=sys.stderr)
        return 130
    except OSError as error:
        print(f"optdyn: {_os_error(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        if os.environ.get("OPTDYN_DEBUG"):
            raise
        print(f"optdyn: unexpected error: {_one_line(error)} (OPTDYN_DEBUG=1 shows where)", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(args: argparse.Namespace) -> int:
    root = project_root(args.root)
    if args.command == "student":
        return _write_editions(root, args.out)
    device_for(None)  # OPTDYN_DEVICE is checked before anything else reads or runs
    if args.command == "list":
        return _print_list(root)
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {args.jobs}")
    overrides = _overrides(args)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.command == "build":
        plan(root, list(chapters(root)), overrides, seeds)
        return build(root, overrides.get("profile"), overrides.get("seed"), args.jobs, seeds)
    names = list(chapters(root)) if args.all else args.chapters
    if not names:
        raise ParameterError("name at least one chapter, or --all")
    if args.all and args.chapters:
        raise ParameterError("give chapter names or --all, not both")
    out = args.out.resolve() if args.out else None
    return run(root, names, overrides, out, args.jobs, args.force, seeds)


if __name__ == "__main__":
    sys.exit(main())
