"""One papermill execution of a chapter at one seed: its kernel, its claims, and a failure kept apart
from the last good executed copy.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from .base import _TMP_PREFIX, CLAIMS_TAG, FAILURE_TAG, _claims, nbformat, now, one_line
from .cache import seed_dir, unlink_quietly, versions, write_atomic
from .project import Task


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


def execute(
    source: Path,
    out: Path,
    task: Task,
    threads: int | None = None,
    *,
    cwd: Path | None = None,
    quiet: bool = False,
) -> dict:
    """Execute one chapter at one seed with papermill into :func:`optdyn.runner.cache.seed_dir`; return
    its report entry.

    The kernel runs on ``task.device`` (``OPTDYN_DEVICE`` in its environment) and writes its own stderr
    (ipykernel's log) to a file beside the temporary copy, kept as ``<run>.kernel.log`` if the run fails.
    A failure (any exception) is recorded in the entry, never raised; KeyboardInterrupt is raised after
    the kernel is stopped and the temporary files are removed, and the previous executed copy stays as it
    was. The kernel runs in ``cwd`` (default: the notebook's folder); ``quiet`` drops the "running" line.
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
    entry |= {"cache_key": task.key, "date": now(), **versions()}
    start = time.monotonic()
    if not quiet:
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
                cwd=str(cwd or source.parent),
                progress_bar=False,
                kernel_manager_class=_kernel_manager(kernel_stderr, {"OPTDYN_DEVICE": task.device}, kernels),
                shutdown_kernel="immediate",
            )
        entry["wall_s"] = round(time.monotonic() - start, 2)
        _publish(where, name, tmp, entry)
    except Exception as error:  # a failed chapter is reported; the other chapters go on
        entry |= {"status": "failed", "error": one_line(error), "wall_s": round(time.monotonic() - start, 2)}
        try:
            entry["look"] = str(_keep_failure(source, where, name, tmp, entry))
        except Exception as also:  # e.g. a full disk: still report, still run the other chapters
            entry["look"] = f"nowhere: saving the failed copy failed too ({one_line(also)})"
        try:
            if log.stat().st_size:
                os.replace(log, where / f"{name}.kernel.log")
        except OSError:
            pass
    finally:
        _stop_kernels(kernels)
        unlink_quietly(tmp)
        unlink_quietly(log)
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
    write_atomic(where / f"{name}.claims.json", json.dumps(found, indent=2, sort_keys=True) + "\n")
    write_atomic(where / f"{name}.ipynb", nbformat.writes(nb))
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
        write_atomic(good_path, _with_failure_cell(failed, _failure_cell(entry, None)))
        return good_path
    last = good.metadata["optdyn"].get("date") or "unknown date"
    entry["last_success"] = last
    failed_path = where / f"{name}.failed.ipynb"
    write_atomic(failed_path, nbformat.writes(failed))
    write_atomic(good_path, _with_failure_cell(good, _failure_cell(entry, last)))
    return failed_path
