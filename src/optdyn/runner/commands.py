"""The commands ``run``, ``build`` and ``list``: what to execute, executing it, and recording it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .assembly import assemble
from .base import ParameterError, _claims, now, one_line
from .cache import (
    check_writable,
    clean_stale,
    is_current,
    prepare_out,
    provenance,
    read_report,
    record,
    seed_dir,
    versions,
)
from .execution import execute
from .executors import check_scheduler, completed, executor, in_worker, threads_per_job
from .params import declared_parameters, declared_seeds, seeds_text
from .project import Task, chapters, device_for, make_task, plan


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
    scheduler: str = "local",
) -> int:
    """Check, then execute every (chapter, seed) that is not current and assemble each chapter's page
    and verdicts from its seeds; 0 if all are ok, 1 if any failed. ``scheduler`` is where the executions
    run (:mod:`optdyn.runner.executors`).

    Raises ParameterError (before any kernel starts) for a bad chapter, parameter, seed, option,
    ``OPTDYN_DEVICE`` or output folder (a file, or not writable when something is to be written). A cache
    hit writes nothing, so it also answers from a read-only folder.
    """
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    check_scheduler(scheduler)
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
        for path in clean_stale(folder):
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
    for task, entry in _execute_all(known, out, todo, jobs, scheduler):
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
        record(out, tasks, entries)
    summary = assemble(source, out, name, tasks, entries)
    if summary is not None:
        c = _claims.counts(summary)
        print(
            f"{name}: seeds {seeds_text(summary['seeds'])}: paper claims {c['replicated']} replicated, "
            f"{c['not replicated']} not replicated, {c['inconclusive']} inconclusive; "
            f"checks {c['holds']} hold, {c['fails']} fail",
            flush=True,
        )


def _execute_all(known: dict, out: Path, todo: list[Task], jobs: int, scheduler: str = "local"):
    """Yield (task, entry) as executions finish, through the executor of ``scheduler``
    (:func:`optdyn.runner.executors.executor`): in this process for one local job, else in parallel.

    On an interrupt (Ctrl-C, SIGTERM) the pending executions are cancelled and the running ones are
    stopped (SIGTERM to each local worker, which cleans up as a single run does) before the interrupt goes
    on. The workers write into ``out``: with a remote scheduler it must be the same folder on every
    machine (``optdyn sweep`` needs no shared folder).
    """
    if not todo:
        return
    inline = scheduler == "local" and min(jobs, len(todo)) == 1
    threads = None if inline else threads_per_job(jobs, len(todo))
    with executor(scheduler, jobs, len(todo)) as pool:
        calls = ((t, in_worker, (execute, known[t.chapter], out, t, threads)) for t in todo)
        for task, future in completed(pool, calls):
            yield task, _result(future, task)


def _result(future, task: Task) -> dict:
    try:
        return future.result()
    except Exception as error:  # the worker process itself died
        entry = {"status": "failed", "error": one_line(error), "wall_s": 0.0, "look": "the runner's output"}
        return entry | {
            "profile": task.params.get("profile"),
            "seed": task.seed,
            "parameters": task.params,
            "cache_key": task.key,
            "date": now(),
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
    scheduler: str = "local",
) -> int:
    """Run every (chapter, seed) that is not current, write the scorecard and status pages, build the HTML.

    Each chapter runs at the seeds it declares for the profile unless ``seed``/``seeds`` is given. The
    pages are written by ``python -m optdyn.report`` (:mod:`optdyn.report` reads what the runner wrote;
    the runner never imports it). The book is built even when a chapter failed; the result is nonzero if
    either failed.
    """
    overrides = {k: str(v) for k, v in {"profile": profile, "seed": seed}.items() if v is not None}
    out = root / "book" / "_executed"
    status = run(root, list(chapters(root)), overrides, out, jobs, seeds=seeds, scheduler=scheduler)
    pages = [sys.executable, "-m", "optdyn.report", str(root), str(out)]
    if subprocess.run(pages, check=False, cwd=root).returncode:
        print("optdyn: writing the scorecard and status pages failed; see the error above", file=sys.stderr)
        status = 1
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
        raise ParameterError(f"cannot read {source.name}: {one_line(error)}") from None
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
