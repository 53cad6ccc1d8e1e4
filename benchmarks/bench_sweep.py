"""Sweep budgets: what Dask costs over the runner's own process pool.

1. Overhead per point on a ``LocalCluster`` (submission, transfer of the notebook and its results, the
   driver's writes) over a plain ``optdyn run`` of the same point, with the tiny fixture chapter: ≤ 2 s.
   ``optdyn run`` executes in its own process (no worker); the sweep runs the same points on a cluster of
   one worker. The cluster's start (once per sweep) is reported apart.
2. A 2-worker Dask sweep of 4 ``quick`` points of one chapter against the local pool (``--scheduler
   local --jobs 2``) on the same cores: wall-time ratio ≤ 1.1.

Every configuration runs as its own ``optdyn`` process, with ``--force`` so that nothing comes from the
cache. Wall times depend on the machine's load; the CPU time (user + sys of the command and everything
it started) is printed beside them.

Run: .venv/bin/python benchmarks/bench_sweep.py [--chapter nfa_alignment] [--grid profile=quick] [--seeds 0-3]
(prints one line per measurement and a verdict; exit status 1 if a budget is missed or a command failed)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "tiny.ipynb"
OVERHEAD_S = 2.0
RATIO = 1.1


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children) of one command; raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def tiny_book(where: Path) -> Path:
    """A book whose only chapter is the tiny fixture (about a second of compute per point)."""
    (where / "book").mkdir(parents=True)
    shutil.copy(FIXTURE, where / "book" / "tiny.ipynb")
    (where / "requirements.txt").write_text("numpy\n")
    (where / "_toc.yml").write_text("format: jb-book\nroot: book/_executed/tiny\n")
    return where


def cluster_start() -> float:
    """Seconds to start and close a LocalCluster of one worker, with a client (the once-per-sweep cost)."""
    code = (
        "import time, logging; t = time.perf_counter()\n"
        "from distributed import Client, LocalCluster\n"
        "if __name__ == '__main__':\n"
        "    c = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address='127.0.0.1:0',"
        " silence_logs=logging.CRITICAL)\n"
        "    cl = Client(c); cl.close(); c.close(); print(time.perf_counter() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def overhead(optdyn: str, points: list[tuple[float, int]], work: Path) -> bool:
    book = tiny_book(work / "tiny")
    plain_wall = plain_cpu = 0.0
    for scale, seed in points:
        w, c = timed(
            [
                optdyn,
                "run",
                "tiny",
                "--root",
                str(book),
                "-p",
                f"scale={scale}",
                "--seed",
                str(seed),
                "--force",
            ],
            book,
        )
        plain_wall, plain_cpu = plain_wall + w, plain_cpu + c
    scales = ",".join(sorted({str(s) for s, _ in points}))
    seeds = ",".join(sorted({str(s) for _, s in points}))
    sweep = [optdyn, "sweep", "tiny", "--root", str(book), "--grid", f"scale={scales}", "--seeds", seeds]
    sweep_wall, sweep_cpu = timed([*sweep, "--scheduler", "dask", "--jobs", "1", "--force"], book)
    start = cluster_start()
    n = len(points)
    per_point = (sweep_wall - plain_wall) / n
    per_point_running = (sweep_wall - start - plain_wall) / n
    ok = per_point_running <= OVERHEAD_S
    print(
        f"plain optdyn run, {n} points one after another: {plain_wall:.1f} s wall "
        f"({plain_wall / n:.1f} s per point), {plain_cpu:.1f} s CPU"
    )
    print(
        f"optdyn sweep on a 1-worker LocalCluster, same {n} points: {sweep_wall:.1f} s wall, "
        f"{sweep_cpu:.1f} s CPU"
    )
    print(f"LocalCluster start and close (once per sweep): {start:.1f} s")
    print(
        f"overhead per point: {per_point:+.2f} s with the cluster's start, {per_point_running:+.2f} s "
        f"without (budget {OVERHEAD_S} s): {'ok' if ok else 'OVER BUDGET'}"
    )
    return ok


def ratio(optdyn: str, chapter: str, grid: str, seeds: str, work: Path) -> bool:
    book = work / "book-copy"
    shutil.copytree(ROOT / "book", book / "book", ignore=shutil.ignore_patterns("_executed", "_build"))
    for name in ("_toc.yml", "_config.yml", "requirements.txt"):
        shutil.copy(ROOT / name, book / name)
    sweep = [
        optdyn,
        "sweep",
        chapter,
        "--root",
        str(book),
        "--grid",
        grid,
        "--seeds",
        seeds,
    ]
    if not grid.startswith("profile="):
        sweep += ["--profile", "quick"]
    local_wall, local_cpu = timed([*sweep, "--scheduler", "local", "--jobs", "2", "--force"], book)
    dask_wall, dask_cpu = timed([*sweep, "--scheduler", "dask", "--jobs", "2", "--force"], book)
    r = dask_wall / local_wall
    ok = r <= RATIO
    from optdyn.runner import parse_seeds

    n = len(grid.split("=", 1)[1].split(",")) * len(parse_seeds(seeds))
    print(f"{chapter} quick, {n} points, local pool --jobs 2: {local_wall:.1f} s wall, {local_cpu:.1f} s CPU")
    print(
        f"{chapter} quick, {n} points, Dask LocalCluster 2 workers: {dask_wall:.1f} s wall, "
        f"{dask_cpu:.1f} s CPU"
    )
    print(f"ratio Dask / local: {r:.2f} (budget {RATIO}): {'ok' if ok else 'OVER BUDGET'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", default="nfa_alignment", help="the cheapest chapter at quick")
    parser.add_argument("--grid", default="profile=quick", help="e.g. lr_scale=0.5,1 for AEoS")
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--skip-ratio", action="store_true", help="only the per-point overhead")
    parser.add_argument("--skip-overhead", action="store_true", help="only the Dask / local ratio")
    args = parser.parse_args()
    optdyn = str(Path(sys.executable).with_name("optdyn"))
    print(
        f"machine: {os.cpu_count()} CPU cores, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        ok = True
        if not args.skip_overhead:
            ok &= overhead(optdyn, [(1.0, 0), (1.0, 1), (2.0, 0), (2.0, 1)], Path(tmp))
        if not args.skip_ratio:
            ok &= ratio(optdyn, args.chapter, args.grid, args.seeds, Path(tmp))
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("verdict:", "within budget" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
