"""``optdyn sweep``: one chapter over a grid of its declared parameters times seeds.

Each point (one value per swept parameter, one seed) is one papermill execution. Its outputs go to
``<out>/sweeps/<id>/<point>/`` (``<point>`` a short hash of the chapter and the point's parameters), never
over the book's pages. The workers write nothing that the driver reads: each returns the executed notebook,
its claims and its timing, and the driver writes them atomically, so the workers need no shared folder.
``point.json`` is written last: it marks a finished point and holds its cache key
(:func:`optdyn.runner.cache.cache_key`), so that the same sweep run again re-runs only what is missing,
failed or out of date.

At the end, ``<out>/sweeps/<id>/sweep.csv`` has one row per point and paper claim: the swept parameters,
the seed, the measured value, whether it lies in the paper's band, and the verdict of that parameter
setting across its seeds (:func:`optdyn.claims.aggregate`). ``figures/<claim>.png`` draws each paper claim
against the first swept parameter: the value of each seed, the interval across seeds and the band.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path

from .base import ParameterError, _claims, now, one_line, shown
from .cache import (
    _alive,
    cache_key,
    check_writable,
    clean_stale,
    provenance,
    unlink_quietly,
    versions,
    write_atomic,
)
from .execution import execute
from .executors import InlineExecutor, check_scheduler, executor, in_worker, threads_per_job
from .params import Declared, declared_parameters, parse_value
from .project import Task, chapters, device_for, resolve

#: At most this many points (grid values times seeds) in one sweep.
MAX_POINTS = 1000


@dataclass(frozen=True)
class Point:
    """One execution of a sweep: the swept values, the seed and the task (its full parameters and key)."""

    swept: tuple[tuple[str, object], ...]
    task: Task

    @property
    def seed(self) -> int:
        return self.task.seed

    @property
    def folder(self) -> str:
        """A short hash of the chapter and the point's parameters: its folder under the sweep's."""
        text = json.dumps([self.task.chapter, self.task.params], sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def label(self) -> str:
        """``name=value`` of each swept parameter and the seed, as a progress line shows it."""
        return " ".join([*(f"{k}={v!r}" for k, v in self.swept), f"seed {self.seed}"])


# -------------------------------------------------------------------------------------------- grid


def split_values(text: str) -> list[str]:
    """``0.5,1,2`` → ['0.5', '1', '2']; commas inside brackets or quotes do not split (``[1,2],[3]``)."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return items


def parse_grid(items: list[str], declared: dict[str, Declared], chapter: str) -> dict[str, list]:
    """``--grid NAME=V1,V2`` options → parameter → its checked values, against the chapter's declared
    parameters (unknown name, wrong type, out of range, empty or repeated: ParameterError)."""
    if not items:
        raise ParameterError("give at least one --grid NAME=V1,V2,...")
    grid: dict[str, list] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise ParameterError(f"--grid {shown(item)}: expected NAME=V1,V2,...")
        if name == "seed":
            raise ParameterError("--grid seed=...: give the seeds with --seeds")
        if name not in declared:
            raise ParameterError(
                f"unknown parameter {shown(name)} for chapter {chapter}; known: {', '.join(declared)}"
            )
        if name in grid:
            raise ParameterError(
                f"--grid {shown(name, literal=False)}= given twice; give each parameter once"
            )
        values = []
        for value in split_values(text):
            if not value:
                raise ParameterError(f"--grid {shown(item)}: an empty value")
            checked = declared[name].check(parse_value(name, value, declared[name]))
            if checked not in values:
                values.append(checked)
        grid[name] = values
    return grid


def plan_sweep(
    root: Path, chapter: str, grid_items: list[str], seeds: list[int], overrides: dict[str, str]
) -> list[Point]:
    """The points of a sweep, each checked against the chapter's declarations; raises ParameterError
    before anything runs."""
    base = resolve(root, [chapter], overrides)[chapter]
    source = chapters(root)[chapter]
    declared = declared_parameters(source)
    grid = parse_grid(grid_items, declared, chapter)
    clash = sorted(set(grid) & set(overrides))
    if clash:
        raise ParameterError(f"{clash[0]} given both in --grid and as a fixed value; give it once")
    count = math.prod(len(v) for v in grid.values()) * len(seeds)
    if count > MAX_POINTS:
        raise ParameterError(f"the sweep has {count} points; at most {MAX_POINTS}")
    seeds = [declared["seed"].check(s) if "seed" in declared else s for s in seeds]
    points = []
    for values in itertools.product(*grid.values()):
        swept = tuple(zip(grid, values, strict=True))
        for seed in seeds:
            params = base | dict(swept) | {"seed": seed}
            device, notice = device_for(params.get("profile"))
            key = cache_key(source, params, root, device=device)
            points.append(Point(swept, Task(chapter, seed, params, key, device, notice)))
    return points


# ------------------------------------------------------------------------------------------ worker


def execute_point(notebook: str, folder: str, task: Task, threads: int | None) -> dict:
    """Execute one point in a temporary folder of the worker and return what the driver writes: the entry
    (status, timing, error), the executed notebook and the claims JSON (text, or None). The kernel runs in
    ``folder`` (the chapter's folder) where that exists on the worker, else in the temporary folder.
    Temporary folders left by a worker that died (killed, or stopped by an interrupt) are removed first."""
    _remove_orphans()
    with tempfile.TemporaryDirectory(prefix=f"{_POINT_PREFIX}{os.getpid()}-") as tmp:
        source = Path(tmp) / f"{task.chapter}.ipynb"
        source.write_text(notebook)
        cwd = Path(folder) if Path(folder).is_dir() else Path(tmp)
        entry = execute(source, Path(tmp) / "out", task, threads, cwd=cwd, quiet=True)
        where = Path(tmp) / "out" / "seeds"
        found = {}
        for name, suffix in (("notebook", ".ipynb"), ("claims", ".claims.json"), ("log", ".kernel.log")):
            path = where / f"{task.run_name}{suffix}"
            found[name] = path.read_text() if path.is_file() else None
        if entry["status"] == "failed" and entry.get("look", "").startswith(tmp):
            entry["look"] = "the point's folder"
        return {"entry": entry, **found}


_POINT_PREFIX = "optdyn-point-"


def _remove_orphans() -> None:
    """Remove the temporary folders of points whose worker process is gone; never raises."""
    for path in Path(tempfile.gettempdir()).glob(f"{_POINT_PREFIX}*-*"):
        pid = path.name[len(_POINT_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _outcome(future: Future, point: Point) -> dict:
    """The worker's answer, or a failed entry naming why there is none (the worker died, the cluster
    went away)."""
    try:
        return future.result()
    except Exception as error:
        entry = {"status": "failed", "error": f"worker lost: {one_line(error)}", "wall_s": 0.0}
        entry |= {"seed": point.seed, "parameters": point.task.params, "date": now(), **versions()}
        return {"entry": entry, "notebook": None, "claims": None, "log": None}


# ------------------------------------------------------------------------------------------ driver


def sweep_dir(out: Path, chapter: str) -> Path:
    """``<out>/sweeps/<chapter>``: the sweep's points, ``sweep.csv`` and figures."""
    return out / "sweeps" / chapter


def is_done(where: Path, point: Point) -> bool:
    """A finished point: its ``point.json`` has the point's cache key and status ok, and its claims read."""
    folder = where / point.folder
    try:
        entry = json.loads((folder / "point.json").read_text())
        _claims.ClaimSet.from_dict(json.loads((folder / "claims.json").read_text()))
    except Exception:
        return False
    return entry.get("cache_key") == point.task.key and entry.get("status") == "ok"


def write_point(where: Path, point: Point, answer: dict) -> dict:
    """Write a point's files atomically (notebook, claims, kernel log of a failure), ``point.json`` last;
    returns the entry recorded."""
    folder = where / point.folder
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale(folder)
    entry = dict(answer["entry"]) | {"chapter": point.task.chapter, "swept": dict(point.swept)}
    entry["cache_key"] = point.task.key
    if answer.get("notebook") is not None:
        write_atomic(folder / f"{point.task.chapter}.ipynb", answer["notebook"])
    if answer.get("claims") is not None and entry["status"] == "ok":
        write_atomic(folder / "claims.json", answer["claims"])
    else:
        unlink_quietly(folder / "claims.json")
    if answer.get("log"):
        write_atomic(folder / "kernel.log", answer["log"])
    if entry["status"] == "failed":
        entry["look"] = str(folder)
    write_atomic(folder / "point.json", json.dumps(entry, indent=2, sort_keys=True, default=repr) + "\n")
    return entry


def _claims_line(claims_text: str | None) -> str:
    """``paper claims 2/3 in band, checks 3/3 hold`` for one seed's claims."""
    if not claims_text:
        return "no claims"
    records = _claims.ClaimSet.from_dict(json.loads(claims_text)).records
    paper = [r for r in records if r.kind == "paper"]
    checks = [r for r in records if r.kind == "check"]
    inside = sum(bool(r.inside) for r in paper)
    hold = sum(bool(r.inside) for r in checks)
    return f"paper claims {inside}/{len(paper)} in band, checks {hold}/{len(checks)} hold"


class Progress:
    """One line per finished point and one overall bar (points done / total, ETA): a bar under the lines
    on a terminal, else the count and ETA at the start of each line (a log stays one line per point)."""

    def __init__(self, total: int, done: int = 0) -> None:
        self.total, self.done, self.start, self.first = total, done, time.monotonic(), done
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="sweep", unit="point", file=sys.stderr)

    def line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(f"[{self.done}/{self.total}{self._eta()}] {text}", flush=True)

    def _eta(self) -> str:
        ran = self.done - self.first
        if ran <= 0 or self.done >= self.total:
            return ""
        left = (time.monotonic() - self.start) / ran * (self.total - self.done)
        return f", ETA {left:.0f} s"

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def sweep(
    root: Path,
    chapter: str,
    grid: list[str],
    seeds: list[int],
    overrides: dict[str, str] | None = None,
    out: Path | None = None,
    jobs: int = 1,
    scheduler: str = "local",
    force: bool = False,
    retries: int = 1,
) -> int:
    """Run the points of a sweep that are not done, write ``sweep.csv``, the figures and a summary.

    Everything is checked (chapter, grid, seeds, options, output folder) before any point is submitted.
    A point that fails, or whose worker dies, is retried ``retries`` times; the others go on. Returns 0
    when every point is done, 1 naming the failed points otherwise.
    """
    if jobs < 1:
        raise ParameterError(f"--jobs must be at least 1, got {jobs}")
    check_scheduler(scheduler)
    points = plan_sweep(root, chapter, grid, seeds, overrides or {})
    label = "--out" if out else "the output folder"
    where = sweep_dir(out or root / "book" / "_executed", chapter)
    if where.exists() and not where.is_dir():
        raise ParameterError(f"{label} {where}: not a folder (a file is there)")
    todo = [p for p in points if force or not is_done(where, p)]
    if todo:
        check_writable(where, label)
    for notice in dict.fromkeys(p.task.notice for p in points if p.task.notice):
        print(f"optdyn: {notice}", file=sys.stderr, flush=True)
    print(
        f"{chapter}: sweep of {len(points)} points into {where}: {len(points) - len(todo)} done before, "
        f"{len(todo)} to run ({scheduler}, {jobs} job{'s' if jobs > 1 else ''})",
        flush=True,
    )
    failed = _run_points(root, chapter, where, todo, len(points), jobs, scheduler, retries) if todo else []
    rows = write_results(where, points)
    print(summary_text(chapter, rows, points, failed), flush=True)
    if failed:
        names = ", ".join(f"{p.folder} ({p.label()})" for p in failed)
        print(f"optdyn: {len(failed)} point(s) failed: {names}", file=sys.stderr, flush=True)
        return 1
    return 0


def _run_points(
    root: Path,
    chapter: str,
    where: Path,
    todo: list[Point],
    total: int,
    jobs: int,
    scheduler: str,
    retries: int,
) -> list[Point]:
    """Submit the points, write each as it finishes, retry failures; the points that failed for good.

    At most ``jobs`` points are in flight (also on a remote scheduler): a worker holds one point at a
    time, so a worker that dies takes only its running point with it.
    """
    source = chapters(root)[chapter]
    notebook, folder = source.read_text(), str(source.parent)
    inline = scheduler == "local" and min(jobs, len(todo)) == 1
    threads = None if inline else threads_per_job(jobs, len(todo))
    where_from = provenance(root)
    progress = Progress(total, total - len(todo))
    failed: list[Point] = []
    try:
        with executor(scheduler, jobs, len(todo)) as pool:
            capacity = 1 if isinstance(pool, InlineExecutor) else min(jobs, len(todo))

            def submit(point: Point) -> Future:
                return pool.submit(in_worker, execute_point, notebook, folder, point.task, threads)

            for point, attempt, answer in _as_finished(todo, submit, capacity, retries, progress):
                entry = write_point(where, point, answer | {"entry": answer["entry"] | where_from})
                if entry["status"] == "failed" and attempt <= retries:
                    continue
                if entry["status"] == "failed":
                    failed.append(point)
                    text = f"FAILED: {entry['error']}"
                else:
                    text = _claims_line(answer.get("claims"))
                progress.step()
                progress.line(f"{chapter} {point.folder} {point.label()}: {entry['wall_s']:.1f} s, {text}")
    finally:
        progress.close()
    return failed


def _submitted(submit: Callable[[Point], Future], point: Point) -> Future:
    """``submit(point)``, or a future holding the reason it could not be submitted (a local pool broken by
    a worker that died), so that the point is reported and retried like any other failure."""
    try:
        return submit(point)
    except Exception as error:
        future: Future = Future()
        future.set_exception(error)
        return future


def _as_finished(todo: list[Point], submit: Callable[[Point], Future], capacity: int, retries: int, progress):
    """Yield (point, attempt, answer) as points finish, keeping at most ``capacity`` in flight and
    resubmitting a failed point up to ``retries`` times (saying why). On an interrupt the points in flight
    are cancelled."""
    queue = [(p, 1) for p in todo]
    flight: dict[Future, tuple[Point, int]] = {}
    try:
        while queue or flight:
            while queue and len(flight) < capacity:
                point, attempt = queue.pop(0)
                flight[_submitted(submit, point)] = (point, attempt)
            done, _ = wait(list(flight), return_when=FIRST_COMPLETED)
            for future in done:
                point, attempt = flight.pop(future)
                answer = _outcome(future, point)
                if answer["entry"]["status"] == "failed" and attempt <= retries:
                    progress.line(
                        f"{point.task.chapter} {point.folder} {point.label()}: failed "
                        f"({answer['entry']['error']}); retrying"
                    )
                    queue.insert(0, (point, attempt + 1))
                yield point, attempt, answer
    except BaseException:
        for future in flight:
            future.cancel()
        raise


# ----------------------------------------------------------------------------------------- results


def _setting(point: Point) -> tuple:
    return point.swept


def collect(where: Path, points: list[Point]) -> dict[tuple, list]:
    """Parameter setting → the claims (:class:`optdyn.claims.ClaimSet`) of its finished seeds."""
    found: dict[tuple, list] = {}
    for point in points:
        found.setdefault(_setting(point), [])
        if is_done(where, point):
            data = json.loads((where / point.folder / "claims.json").read_text())
            found[_setting(point)].append(_claims.ClaimSet.from_dict(data))
    return found


def write_results(where: Path, points: list[Point]) -> list[dict]:
    """``sweep.csv`` (one row per point and paper claim) and one figure per paper claim; the rows."""
    settings = collect(where, points)
    names = [k for k, _ in points[0].swept]
    rows = []
    for setting, runs in settings.items():
        if not runs:
            continue
        summary = _claims.aggregate(sorted(runs, key=lambda r: r.seed))
        verdicts = {c["id"]: c for c in summary["claims"]}
        for run in sorted(runs, key=lambda r: r.seed):
            for record in (r for r in run.records if r.kind == "paper"):
                claim = verdicts[record.id]
                band = (
                    "outside"
                    if record.inside is False
                    else "non-finite"
                    if record.inside is None
                    else "inside"
                )
                rows.append(
                    dict(setting)
                    | {
                        "seed": run.seed,
                        "claim": record.id,
                        "value": record.value,
                        "band_lo": record.band.lo,
                        "band_hi": record.band.hi,
                        "in_band": band,
                        "verdict": claim["verdict"],
                        "seeds": len(runs),
                        "estimate": claim["estimate"],
                        "interval_lo": (claim["interval"] or [None, None])[0],
                        "interval_hi": (claim["interval"] or [None, None])[1],
                    }
                )
    if not rows:
        return rows
    import pandas as pd

    frame = pd.DataFrame(rows, columns=[*names, *(k for k in rows[0] if k not in names)])
    write_atomic(where / "sweep.csv", frame.to_csv(index=False))
    figures = where / "figures"
    figures.mkdir(exist_ok=True)
    for claim, part in frame.groupby("claim", sort=False):
        fig = claim_figure(part, names, str(claim))
        tmp = figures / f".{claim}.png.tmp{id(fig)}"
        try:
            fig.savefig(tmp, format="png", dpi=110)
            tmp.replace(figures / f"{claim}.png")
        finally:
            unlink_quietly(tmp)
            import matplotlib.pyplot as plt

            plt.close(fig)
    return rows


def claim_figure(part, names: list[str], claim: str):
    """One paper claim against the first swept parameter (one line per value of the others): each seed's
    value, the mean and its interval across seeds (:func:`optdyn.claims.t_interval`), and the band."""
    import matplotlib

    matplotlib.use("Agg")
    from .. import plotting

    plotting.use_theme()
    fig, (ax,) = plotting.panels(1)
    x_name, others = names[0], names[1:]
    xs = list(dict.fromkeys(part[x_name]))
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    position = {x: (float(x) if numeric else i) for i, x in enumerate(xs)}
    groups = part.groupby(others, sort=False) if others else [((), part)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k}={v!r}" for k, v in zip(others, key, strict=True)) or None
        at = [position[x] for x in group[x_name]]
        dots = ax.plot(at, group["value"], "o", alpha=0.5, ms=4, label=f"seeds {label or ''}".strip())
        settings = group.drop_duplicates(x_name)
        centre = [position[x] for x in settings[x_name]]
        mean = settings["estimate"].astype(float)
        lo, hi = settings["interval_lo"].astype(float), settings["interval_hi"].astype(float)
        ax.errorbar(
            centre,
            mean,
            yerr=[mean - lo, hi - mean],
            color=dots[0].get_color(),
            capsize=4,
            lw=1.5,
            label="mean, 90 % interval" + (f" ({label})" if label else ""),
        )
    band_lo, band_hi = float(part["band_lo"].iloc[0]), float(part["band_hi"].iloc[0])
    bottom, top = ax.get_ylim()
    lo = band_lo if math.isfinite(band_lo) else bottom
    hi = band_hi if math.isfinite(band_hi) else top
    ax.axhspan(lo, hi, color="tab:green", alpha=0.12, label="paper's band")
    ax.set_ylim(bottom, top)
    if numeric and min(position.values()) > 0 and max(position.values()) / min(position.values()) >= 10:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(list(position.values()), [repr(x) for x in xs])
    ax.set_xlabel(f"{x_name} (swept)")
    ax.set_ylabel(f"{claim} (measured)")
    ax.set_title(f"{claim} across the sweep")
    ax.legend(fontsize=7)
    return fig


def summary_text(chapter: str, rows: list[dict], points: list[Point], failed: list[Point]) -> str:
    """A one-screen summary of the verdicts across seeds: one row per paper claim and one column per
    parameter setting (up to 8 settings), else one row per setting with its verdict counts."""
    names = [k for k, _ in points[0].swept]
    settings = list(dict.fromkeys(_setting(p) for p in points))
    claims = list(dict.fromkeys(r["claim"] for r in rows))
    short = {"replicated": "yes", "not replicated": "NO", "inconclusive": "?"}
    verdict: dict[tuple, dict[str, str]] = {s: {} for s in settings}
    seeds: dict[tuple, set] = {s: set() for s in settings}
    for r in rows:
        setting = tuple((k, r[k]) for k in names)
        verdict[setting][r["claim"]] = r["verdict"]
        seeds[setting].add(r["seed"])
    lines = [f"{chapter}: {len(points) - len(failed)} of {len(points)} points done; verdicts across seeds:"]
    label = {s: " ".join(f"{k}={v!r}" for k, v in s) for s in settings}
    if len(settings) <= 8:
        head = ["paper claim", *(f"{label[s]} ({len(seeds[s])} seeds)" for s in settings)]
        table = [head] + [[c, *(short.get(verdict[s].get(c, ""), "-") for s in settings)] for c in claims]
    else:
        head = ["setting", "seeds", *short.values()]
        table = [head]
        for s in settings[:20]:
            counts = [sum(v == full for v in verdict[s].values()) for full in short]
            table.append([label[s], str(len(seeds[s])), *map(str, counts)])
        if len(settings) > 20:
            table.append([f"... {len(settings) - 20} more settings in sweep.csv", "", "", "", ""])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines += ["  " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.append("  yes: replicated, NO: not replicated, ?: inconclusive (straddles the band, too few seeds)")
    return "\n".join(lines)
