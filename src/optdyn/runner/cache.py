"""Cache keys, the run report (``report.json``), and the files the runner writes: atomically, through
temporary files that a later run removes when their process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .base import ParameterError, _claims, nbformat, one_line

if TYPE_CHECKING:
    from .project import Task


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

    ``package_dir`` defaults to ``optdyn.runner.PACKAGE_DIR``, the installed ``optdyn`` the kernels import
    (read at each call, so that a test can point it elsewhere).
    """
    package_dir = package_dir or sys.modules[__package__].PACKAGE_DIR
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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        unlink_quietly(tmp)


def unlink_quietly(path: Path) -> None:
    """Remove ``path`` if it is there; a failure (a read-only filesystem) never hides the error that
    brought us here, and a stale file is removed by the next call (:func:`clean_stale`)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


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


def clean_stale(folder: Path) -> list[Path]:
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
        unlink_quietly(probe)


def _reason(error: OSError) -> str:
    return error.strerror or one_line(error)


def seed_dir(out: Path) -> Path:
    """Where the executions of single seeds live: ``<out>/seeds/<chapter>.seed<N>.ipynb`` and claims."""
    return out / "seeds"


def write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    write_atomic(path, text)


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


def record(out: Path, tasks: list[Task], entries: dict[int, dict]) -> None:
    """Merge this chapter's run entries into ``report.json`` (under a lock; written atomically)."""
    name = tasks[0].chapter
    with _report_lock(out):
        report = read_report(out)
        runs = dict(report.get(name, {}).get("runs", {}))
        runs |= {str(seed): entry for seed, entry in entries.items()}
        report[name] = _chapter_entry(tasks, runs)
        write_atomic(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
