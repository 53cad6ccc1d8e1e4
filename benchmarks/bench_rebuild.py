"""Rebuild budget: `optdyn build` twice on the real project with nothing changed in between.

The first build runs whatever is not current (possibly every chapter, minutes); the second must find
every chapter cached and only rebuild the HTML: budget ≤ 30 s. Both exit statuses must be 0.

Run: .venv/bin/python benchmarks/bench_rebuild.py [--profile default] [--jobs 2]
(prints one line per build and a verdict; exit status 1 if the budget is missed or a build failed)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 30.0


def timed_build(profile: str, jobs: int) -> tuple[float, int]:
    """Wall time and exit status of one `optdyn build`."""
    optdyn = Path(sys.executable).with_name("optdyn")
    command = [str(optdyn), "build", "--root", str(ROOT), "--profile", profile, "--jobs", str(jobs)]
    start = time.perf_counter()
    status = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=False).returncode
    return time.perf_counter() - start, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    first, first_status = timed_build(args.profile, args.jobs)
    print(f"first build:  {first:8.1f} s  (exit {first_status})")
    second, second_status = timed_build(args.profile, args.jobs)
    print(f"second build: {second:8.1f} s  (exit {second_status}; nothing changed, budget {BUDGET_S:.0f} s)")
    ok = first_status == 0 and second_status == 0 and second <= BUDGET_S
    print("rebuild budget: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
