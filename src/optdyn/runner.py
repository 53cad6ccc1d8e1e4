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
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import nbformat

from .claims import MIME_TYPE

#: The installed ``optdyn`` package, which the chapters' kernels import; its files are in the cache key.
PACKAGE_DIR = Path(__file__).resolve().parent
FAILURE_TAG = "optdyn-failure"
REPRODUCE_TAG = "optdyn-reproduce"
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


# -------------------------------------------------------------------------------------------- cache


def versions() -> dict[str, str]:
    """Python, torch and optdyn versions (torch's from its metadata; torch is not imported)."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "absent"

    return {"python": platform.python_version(), "torch": version("torch"), "optdyn": version("optdyn")}


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


def is_current(out: Path, name: str, key: str, report: dict) -> bool:
    """A cache hit: same key and a good status in the report, a readable executed copy and claims."""
    entry = report.get(name, {})
    if entry.get("cache_key") != key or entry.get("status") not in ("ok", "cached"):
        return False
    try:
        nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        claims = json.loads((out / f"{name}.claims.json").read_text())
    except Exception:
        return False
    return isinstance(claims, dict) and isinstance(claims.get("claims"), list)


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


def execute(source: Path, out: Path, name: str, params: dict, key: str, threads: int | None = None) -> dict:
    """Execute one chapter with papermill and return its report entry.

    A failure (any exception) is recorded in the entry, never raised; KeyboardInterrupt is raised after
    the temporary file is removed, and the previous executed copy stays as it was.
    """
    import papermill

    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    out.mkdir(parents=True, exist_ok=True)
    _clean_stale(out, name)
    tmp = out / f".{name}{_TMP_PREFIX}{os.getpid()}.ipynb"
    entry = {"profile": params.get("profile"), "seed": params.get("seed"), "parameters": params}
    entry |= {"cache_key": key, "date": _now(), **versions()}
    start = time.monotonic()
    print(f"{name}: running (profile {entry['profile']}, seed {entry['seed']})", flush=True)
    try:
        papermill.execute_notebook(
            str(source),
            str(tmp),
            parameters=params,
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=True,
        )
        entry["wall_s"] = round(time.monotonic() - start, 2)
        _publish(out, name, tmp, entry, _reproduce_cell(source, out, name, entry))
    except Exception as error:  # a failed chapter is reported; the other chapters go on
        entry |= {"status": "failed", "error": _one_line(error), "wall_s": round(time.monotonic() - start, 2)}
        try:
            entry["look"] = str(_keep_failure(source, out, name, tmp, entry))
        except Exception as also:  # e.g. a full disk: still report, still run the other chapters
            entry["look"] = f"nowhere: saving the failed copy failed too ({_one_line(also)})"
    finally:
        tmp.unlink(missing_ok=True)
    return entry


def _reproduce_cell(source: Path, out: Path, name: str, entry: dict) -> nbformat.NotebookNode:
    """A box under the chapter's title: the command that reproduces this page, this run's wall time and
    machine, and a link to the source notebook (no outputs)."""
    defaults = {k: d.default for k, d in declared_parameters(source).items()}
    extra = "".join(
        " -p " + shlex.quote(f"{k}={_literal(v)}")
        for k, v in entry["parameters"].items()
        if k not in ("profile", "seed") and v != defaults.get(k)
    )
    command = f"optdyn run {name} --profile {entry['profile']} --seed {entry['seed']}{extra}"
    machine = f"{os.cpu_count()} CPU cores, Python {entry['python']}, torch {entry['torch']}"
    relative = Path(os.path.relpath(source, out)).as_posix()
    lines = [
        "```{admonition} Reproduce this chapter",
        ":class: tip",
        f"`{command}`",
        "",
        f"This page: profile `{entry['profile']}`, seed {entry['seed']}, executed {entry['date'][:10]} "
        f"in {entry['wall_s']:.0f} s ({machine}).",
        f"Download the {{download}}`source notebook <{relative}>` (no outputs); the download button at the "
        "top of the page gives this executed copy, and the launch button opens it in Colab or Binder.",
    ]
    lines.append("```")
    return nbformat.v4.new_markdown_cell("\n".join(lines), metadata={"tags": [REPRODUCE_TAG]})


def _literal(value: object) -> str:
    """A parameter value as the runner's ``-p`` reads it: bare words bare, everything else a literal."""
    return value if isinstance(value, str) and re.fullmatch(r"[\w.\-]+", value) else repr(value)


def _publish(out: Path, name: str, tmp: Path, entry: dict, reproduce: nbformat.NotebookNode) -> None:
    """Move a successful execution into place: claims JSON, then the executed copy, both atomically."""
    nb = nbformat.read(tmp, as_version=4)
    nb.cells.insert(1, reproduce)
    found = claims_from(nb)
    if not isinstance(found, dict) or not isinstance(found.get("claims"), list):
        raise RuntimeError(f"the chapter displayed no claims ({MIME_TYPE}) in its outputs")
    nb.metadata["optdyn"] = {k: entry[k] for k in ("date", "profile", "seed", "cache_key")} | {"status": "ok"}
    strip_claims(nb)
    _write_atomic(out / f"{name}.claims.json", json.dumps(found, indent=2, sort_keys=True) + "\n")
    _write_atomic(out / f"{name}.ipynb", nbformat.writes(nb))
    (out / f"{name}.failed.ipynb").unlink(missing_ok=True)
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


def _keep_failure(source: Path, out: Path, name: str, tmp: Path, entry: dict) -> Path:
    """Record a failed execution without losing the last good copy; return where to look."""
    try:
        failed = nbformat.read(tmp, as_version=4)
    except Exception:  # papermill failed before writing anything: show the source with the error
        failed = nbformat.read(source, as_version=4)
    failed.metadata["optdyn"] = {"status": "failed", "date": entry["date"], "error": entry["error"]}
    strip_claims(failed)
    good_path = out / f"{name}.ipynb"
    good = _good_copy(good_path)
    if good is None:
        _write_atomic(good_path, _with_failure_cell(failed, _failure_cell(entry, None)))
        return good_path
    last = good.metadata["optdyn"].get("date") or "unknown date"
    entry["last_success"] = last
    failed_path = out / f"{name}.failed.ipynb"
    _write_atomic(failed_path, nbformat.writes(failed))
    _write_atomic(good_path, _with_failure_cell(good, _failure_cell(entry, last)))
    return failed_path


# ------------------------------------------------------------------------------------------ running


def _update_report(out: Path, entries: dict[str, dict]) -> None:
    report = read_report(out) | entries
    _write_atomic(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")


def _summary(name: str, entry: dict) -> str:
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
) -> int:
    """Check, then execute the chapters that are not current; 0 if all are ok, 1 if any failed.

    Raises ParameterError (before any kernel starts) for a bad chapter, parameter or option.
    """
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    plans = resolve(root, names, overrides or {})
    out = out or root / "book" / "_executed"
    known = chapters(root)
    keys = {n: cache_key(known[n], p, root) for n, p in plans.items()}
    report = read_report(out)
    todo = [n for n in plans if force or not is_current(out, n, keys[n], report)]
    out.mkdir(parents=True, exist_ok=True)
    for name in (n for n in plans if n not in todo):
        print(f"{name}: cached (key {keys[name][:12]}, run {report[name].get('date')}), not re-run")
        _update_report(out, {name: report[name] | {"status": "cached"}})
    failed = False
    for name, entry in _execute_all(known, out, todo, plans, keys, jobs):
        _update_report(out, {name: entry})
        print(_summary(name, entry), flush=True)
        failed |= entry["status"] == "failed"
    return 1 if failed else 0


def _execute_all(known: dict, out: Path, todo: list[str], plans: dict, keys: dict, jobs: int):
    """Yield (chapter, entry) as chapters finish; in parallel processes when jobs > 1."""
    if jobs == 1 or not todo:
        for name in todo:
            yield name, execute(known[name], out, name, plans[name], keys[name])
        return
    threads = max(1, (os.cpu_count() or 1) // min(jobs, len(todo)))
    with ProcessPoolExecutor(min(jobs, len(todo))) as pool:
        futures: dict[Future, str] = {
            pool.submit(execute, known[n], out, n, plans[n], keys[n], threads): n for n in todo
        }
        for future in as_completed(futures):
            yield futures[future], _result(future, plans[futures[future]], keys[futures[future]])


def _result(future: Future, params: dict, key: str) -> dict:
    try:
        return future.result()
    except Exception as error:  # the worker process itself died
        entry = {"status": "failed", "error": _one_line(error), "wall_s": 0.0, "look": "the runner's output"}
        return entry | {
            "profile": params.get("profile"),
            "seed": params.get("seed"),
            "parameters": params,
            "cache_key": key,
            "date": _now(),
            **versions(),
        }


def _jupyter_book() -> str:
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else shutil.which("jupyter-book") or "jupyter-book"


def build(root: Path, profile: str | None = None, seed: int | None = None, jobs: int = 1) -> int:
    """Run every chapter that is not current, write the scorecard and status pages, build the HTML.

    The book is built even when a chapter failed; the result is nonzero if either failed.
    """
    from .report import write_pages

    overrides = {k: str(v) for k, v in {"profile": profile, "seed": seed}.items() if v is not None}
    out = root / "book" / "_executed"
    status = run(root, list(chapters(root)), overrides, out, jobs)
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
        current = is_current(out, name, cache_key(source, params, root), report)
        profiles = declared["profile"].choices if "profile" in declared else None
        rows.append(
            {
                "chapter": name,
                "profiles": list(profiles or []),
                "status": entry.get("status", "not run"),
                "profile": params.get("profile"),
                "seed": params.get("seed"),
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
        p.add_argument("--seed", default=None)
        p.add_argument("--jobs", type=int, default=1, help="chapters in parallel (default 1)")
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
            f"last run: {row['status']} (profile {row['profile']}, seed {row['seed']}), {state}"
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
        if args.command == "build":
            resolve(root, list(chapters(root)), overrides)
            return build(root, overrides.get("profile"), overrides.get("seed"), args.jobs)
        names = list(chapters(root)) if args.all else args.chapters
        if not names:
            raise ParameterError("name at least one chapter, or --all")
        return run(root, names, overrides, args.out.resolve() if args.out else None, args.jobs, args.force)
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
