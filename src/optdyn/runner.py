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
"""

from __future__ import annotations

import argparse
import ast
import hashlib
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
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import nbformat

from .claims import MIME_TYPE, ClaimSet, aggregate, counts, summary_tables_html

#: The installed ``optdyn`` package, which the chapters' kernels import; its files are in the cache key.
PACKAGE_DIR = Path(__file__).resolve().parent
FAILURE_TAG = "optdyn-failure"
REPRODUCE_TAG = "optdyn-reproduce"
CLAIMS_TAG = "optdyn-claims"
ACROSS_TAG = "optdyn-across-seeds"
_TMP_PREFIX = ".running-"


class ParameterError(ValueError):
    """A bad chapter name, parameter or option, reported as one line before anything runs."""


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
            raise ParameterError(f"{self.name}={item!r} is not one of: {allowed}")
        if self.lo is None or self.hi is None or not isinstance(item, int | float):
            return
        below = item <= self.lo if self.lo_open else item < self.lo
        above = item >= self.hi if self.hi_open else item > self.hi
        if below or above:
            raise ParameterError(f"{self.name}={item!r} is out of range {self.interval()}")

    def interval(self) -> str:
        """The declared range as written, e.g. ``(0, inf)``."""
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


def _coerce(name: str, default: object, value: object) -> object:
    """``value`` as the type of ``default``: int is accepted for float, bool never counts as a number."""
    kind = type(default)
    wrong = ParameterError(f"{name}={value!r} has the wrong type: expected {kind.__name__}")
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
    raise ParameterError(f"{name}={text!r} is not a literal value (a number, string, bool or list)")


# ----------------------------------------------------------------------------------------- chapters


def find_root(start: Path) -> Path:
    """The nearest directory from ``start`` upwards holding a ``_toc.yml`` (else ``start``)."""
    for path in [start, *start.parents]:
        if (path / "_toc.yml").exists():
            return path
    return start


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
            raise ParameterError(f"unknown chapter {name!r}; known chapters: {', '.join(known) or 'none'}")
    plans = {}
    for name in dict.fromkeys(names):
        declared = declared_parameters(known[name])
        params = {k: d.default for k, d in declared.items()}
        for key, text in overrides.items():
            if key not in declared:
                raise ParameterError(
                    f"unknown parameter {key!r} for chapter {name}; known: {', '.join(declared)}"
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
            raise ParameterError(f"--seeds {text!r}: expected seeds like 0-2 or 0,3,7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ParameterError(f"--seeds {text!r}: range {lo}-{hi} is empty")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ParameterError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds")
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
    """One execution: a chapter at one seed, with its resolved parameters and cache key."""

    chapter: str
    seed: int
    params: dict
    key: str

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
            runs.append(Task(name, seed, p, cache_key(known[name], p, root)))
        tasks[name] = runs
    return tasks


# -------------------------------------------------------------------------------------------- cache


def versions() -> dict[str, str]:
    """Python, torch and optdyn versions (torch's from its metadata; torch is not imported)."""

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


def cache_key(source: Path, params: dict, root: Path, package_dir: Path | None = None) -> str:
    """sha256 of the source cells, the parameters, the package's files, requirements.txt and versions.

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
    h.update(f"python {v['python']} torch {v['torch']}".encode())
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
        ClaimSet.from_dict(json.loads((seed_dir(out) / f"{task.run_name}.claims.json").read_text()))
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
            if MIME_TYPE in data:
                found = data[MIME_TYPE]
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
            output.get("data", {}).pop(MIME_TYPE, None)
    return nb


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _one_line(error: BaseException) -> str:
    if hasattr(error, "ename") and hasattr(error, "evalue"):  # papermill's PapermillExecutionError
        text = f"{error.ename}: {error.evalue} (cell {getattr(error, 'exec_count', '?')})"
    else:
        text = f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _clean_stale(out: Path, name: str) -> None:
    """Remove temporary copies of this chapter left by runs whose process is gone."""
    for tmp in out.glob(f".{name}{_TMP_PREFIX}*.ipynb"):
        pid = tmp.name.removesuffix(".ipynb").rsplit("-", 1)[-1]
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def seed_dir(out: Path) -> Path:
    """Where the executions of single seeds live: ``<out>/seeds/<chapter>.seed<N>.ipynb`` and claims."""
    return out / "seeds"


def execute(source: Path, out: Path, task: Task, threads: int | None = None) -> dict:
    """Execute one chapter at one seed with papermill into :func:`seed_dir` and return its report entry.

    A failure (any exception) is recorded in the entry, never raised; KeyboardInterrupt is raised after
    the temporary file is removed, and the previous executed copy stays as it was.
    """
    import papermill

    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    where = seed_dir(out)
    where.mkdir(parents=True, exist_ok=True)
    name = task.run_name
    _clean_stale(where, name)
    tmp = where / f".{name}{_TMP_PREFIX}{os.getpid()}.ipynb"
    params = task.params
    entry = {"profile": params.get("profile"), "seed": task.seed, "parameters": params}
    entry |= {"cache_key": task.key, "date": _now(), **versions()}
    start = time.monotonic()
    print(f"{task.chapter}: running seed {task.seed} (profile {entry['profile']})", flush=True)
    try:
        papermill.execute_notebook(
            str(source),
            str(tmp),
            parameters=params,
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=False,
        )
        entry["wall_s"] = round(time.monotonic() - start, 2)
        _publish(where, name, tmp, entry)
    except Exception as error:  # a failed chapter is reported; the other chapters go on
        entry |= {"status": "failed", "error": _one_line(error), "wall_s": round(time.monotonic() - start, 2)}
        try:
            entry["look"] = str(_keep_failure(source, where, name, tmp, entry))
        except Exception as also:  # e.g. a full disk: still report, still run the other chapters
            entry["look"] = f"nowhere: saving the failed copy failed too ({_one_line(also)})"
    finally:
        tmp.unlink(missing_ok=True)
    return entry


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
    machine = f"{os.cpu_count()} CPU cores, Python {first['python']}, torch {first['torch']}"
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
    return nbformat.v4.new_markdown_cell("\n".join(lines), metadata={"tags": [REPRODUCE_TAG]})


def _literal(value: object) -> str:
    """A parameter value as the runner's ``-p`` reads it: bare words bare, everything else a literal."""
    return value if isinstance(value, str) and re.fullmatch(r"[\w.\-]+", value) else repr(value)


def _publish(where: Path, name: str, tmp: Path, entry: dict) -> None:
    """Move a successful execution into place: its claims JSON, then the executed copy, both atomically."""
    nb = nbformat.read(tmp, as_version=4)
    found = claims_from(nb)
    try:
        ClaimSet.from_dict(found)
    except Exception:
        raise RuntimeError(f"the chapter displayed no claims ({MIME_TYPE}) in its outputs") from None
    for cell in nb.cells:
        if any(MIME_TYPE in o.get("data", {}) for o in cell.get("outputs", [])):
            cell.metadata["tags"] = [*cell.metadata.get("tags", []), CLAIMS_TAG]
    nb.metadata["optdyn"] = nb.metadata.get("optdyn", {}) | {
        k: entry[k] for k in ("date", "profile", "seed", "cache_key")
    }
    nb.metadata["optdyn"]["status"] = "ok"
    strip_claims(nb)
    _write_atomic(where / f"{name}.claims.json", json.dumps(found, indent=2, sort_keys=True) + "\n")
    _write_atomic(where / f"{name}.ipynb", nbformat.writes(nb))
    (where / f"{name}.failed.ipynb").unlink(missing_ok=True)
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
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [FAILURE_TAG]})


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


def _seed_claims(out: Path, tasks: list[Task]) -> list[ClaimSet]:
    """The claims of every seed that has a good run (the last good one where the latest failed)."""
    found = []
    for task in tasks:
        try:
            data = json.loads((seed_dir(out) / f"{task.run_name}.claims.json").read_text())
            found.append(ClaimSet.from_dict(data))
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
        + summary_tables_html(summary)
    )
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [ACROSS_TAG]})


def assemble(source: Path, out: Path, name: str, tasks: list[Task], entries: dict[int, dict]) -> dict | None:
    """The chapter's page and verdicts from its seeds' executions.

    Writes ``<out>/<name>.ipynb`` (the first seed's executed copy with the chapter's Reproduce box and the
    "across seeds" table under its claims) and ``<out>/<name>.claims.json`` (:func:`claims.aggregate`),
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
        summary = aggregate(runs)
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
    keys = ("profile", "parameters", "cache_key", "python", "torch", "optdyn", "commit", "machine")
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

    Raises ParameterError (before any kernel starts) for a bad chapter, parameter, seed or option.
    """
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    tasks = plan(root, names, overrides or {}, seeds)
    out = out or root / "book" / "_executed"
    known = chapters(root)
    report = read_report(out)
    todo = [t for ts in tasks.values() for t in ts if force or not is_current(out, t, report)]
    seed_dir(out).mkdir(parents=True, exist_ok=True)
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
        c = counts(summary)
        print(
            f"{name}: seeds {seeds_text(summary['seeds'])}: paper claims {c['replicated']} replicated, "
            f"{c['not replicated']} not replicated, {c['inconclusive']} inconclusive; "
            f"checks {c['holds']} hold, {c['fails']} fail",
            flush=True,
        )


def _execute_all(known: dict, out: Path, todo: list[Task], jobs: int):
    """Yield (task, entry) as executions finish; in parallel processes when jobs > 1."""
    if jobs == 1 or len(todo) <= 1:
        for task in todo:
            yield task, execute(known[task.chapter], out, task)
        return
    workers = min(jobs, len(todo))
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers) as pool:
        futures: dict[Future, Task] = {
            pool.submit(execute, known[t.chapter], out, t, threads): t for t in todo
        }
        for future in as_completed(futures):
            yield futures[future], _result(future, futures[future])


def _result(future: Future, task: Task) -> dict:
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
    """Per chapter: id, declared profiles, last recorded status and whether that run is current."""
    out = root / "book" / "_executed"
    report = read_report(out)
    rows = []
    for name, source in chapters(root).items():
        declared = declared_parameters(source)
        entry = report.get(name, {})
        params = {k: d.default for k, d in declared.items()}
        if isinstance(entry.get("parameters"), dict) and set(entry["parameters"]) == set(params):
            params = entry["parameters"]
        seeds = entry.get("seeds") or declared_seeds(source, params.get("profile"))
        tasks = [
            Task(name, s, params | {"seed": s}, cache_key(source, params | {"seed": s}, root)) for s in seeds
        ]
        current = all(is_current(out, t, report) for t in tasks)
        profiles = declared["profile"].choices if "profile" in declared else None
        rows.append(
            {
                "chapter": name,
                "profiles": list(profiles or []),
                "status": entry.get("status", "not run"),
                "profile": params.get("profile"),
                "seeds": seeds,
                "current": current,
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optdyn", description="Run and build 'Optimization Dynamics, Reproduced'."
    )
    root_help = "project root (default: the nearest directory upwards with a _toc.yml)"
    parser.add_argument("--root", type=Path, default=None, help=root_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,build,student}")
    common = argparse.ArgumentParser(add_help=False)
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
    pairs = {}
    for item in getattr(args, "params", []):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"-p {item!r}: expected NAME=VALUE")
        pairs[name.strip()] = value.strip()
    for name in ("profile", "seed"):
        if getattr(args, name, None) is not None:
            pairs[name] = str(getattr(args, name))
    return pairs


def _print_list(root: Path) -> int:
    for row in list_chapters(root):
        state = "current" if row["current"] else "not current"
        print(
            f"{row['chapter']}  profiles: {', '.join(row['profiles']) or '-'}  "
            f"last run: {row['status']} (profile {row['profile']}, seeds {seeds_text(row['seeds'])}), {state}"
        )
    return 0


def _write_editions(root: Path, out: Path | None) -> int:
    from .editions import write_editions

    out = (out or root / "_build" / "editions").resolve()
    written = write_editions(chapters(root), out)
    for edition, paths in written.items():
        print(f"{edition} edition: {len(paths)} chapters in {out / edition}")
    return 0


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _trap_sigterm():
    """Turn SIGTERM into KeyboardInterrupt so temporary files are cleaned up (main thread only)."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `optdyn` command; returns the exit status (2: bad input, 1: a failure)."""
    args = _parser().parse_args(argv)
    root = (args.root or find_root(Path.cwd())).resolve()
    previous = _trap_sigterm()
    try:
        if args.command == "list":
            return _print_list(root)
        if args.command == "student":
            return _write_editions(root, args.out)
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
        out = args.out.resolve() if args.out else None
        return run(root, names, overrides, out, args.jobs, args.force, seeds)
    except ParameterError as error:
        print(f"optdyn: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optdyn: interrupted; previous executed copies are unchanged", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
