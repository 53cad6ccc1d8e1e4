"""Book budget: `optdyn build` of the whole book at a profile, each chapter at the seeds it declares,
and the wall time of every seed's execution from the runner's report.

Budgets (2-core CPU, `--jobs 2`): the whole `default` book ≤ 20 minutes for six chapters (≤ 40 for
twelve); each seed of a chapter at `quick` ≤ 60 s, at `default` ≤ 4 min. Run with `--force` to time
every execution rather than the cache.

Run: .venv/bin/python benchmarks/bench_book.py [--profile default] [--jobs 2] [--force]
(prints one line per chapter and a verdict; exit status 1 if a budget is missed or the build failed)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_SEED_S = {"quick": 60.0, "default": 240.0}
BOOK_S_PER_CHAPTER = 200.0  # 20 minutes for six chapters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="remove the runs of record first")
    args = parser.parse_args()
    out = ROOT / "book" / "_executed"
    if args.force:
        (out / "report.json").unlink(missing_ok=True)
    optdyn = Path(sys.executable).with_name("optdyn")
    command = [str(optdyn), "build", "--root", str(ROOT), "--profile", args.profile, "--jobs", str(args.jobs)]
    start = time.perf_counter()
    status = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=False).returncode
    wall = time.perf_counter() - start
    report = json.loads((out / "report.json").read_text())
    budget = PER_SEED_S.get(args.profile, float("inf"))
    ok = status == 0
    for name, entry in report.items():
        walls = [entry["runs"][str(s)]["wall_s"] for s in entry["seeds"]]
        slow = max(walls) > budget
        ok &= not slow
        print(
            f"{name:32s} seeds {entry['seeds']}  per seed {', '.join(f'{w:.0f}' for w in walls)} s"
            + ("  OVER BUDGET" if slow else "")
        )
    book_budget = BOOK_S_PER_CHAPTER * len(report)
    if args.profile == "default":
        ok &= wall <= book_budget
    load = os.getloadavg()[0]
    print(
        f"whole book at {args.profile}: {wall / 60:.1f} min (exit {status}; "
        f"budget {book_budget / 60:.0f} min at default; load {load:.1f})"
    )
    print("book budget: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
