"""The ``optdyn`` command line: every error is one line starting ``optdyn:`` (exit 2 for bad input, 1 for
a failure, 130 for an interrupt).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .base import ParameterError, one_line, shown
from .cache import check_writable, prepare_out
from .commands import build, list_chapters, run
from .executors import check_scheduler
from .params import declared_seeds, parse_seeds, seeds_text
from .project import chapters, device_for, plan, project_root, resolve
from .sweep import sweep


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``optdyn: ...``, exit 2) like every other bad input."""

    def error(self, message: str):
        raise ParameterError(f"{shown(message, 200, literal=False)} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optdyn", description="Run and build 'Optimization Dynamics, Reproduced'.")
    root_help = "project root (default: the nearest directory upwards with a _toc.yml)"
    parser.add_argument("--root", type=Path, default=None, help=root_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list,run,build,sweep,student}")
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
    w = sub.add_parser(
        "sweep", parents=[common], help="run one chapter over a grid of its parameters times seeds"
    )
    w.add_argument("chapter", help="chapter id (see `optdyn list`)")
    w.add_argument(
        "--grid", action="append", default=[], metavar="NAME=V1,V2,...", help="a swept parameter (repeatable)"
    )
    w.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE")
    w.add_argument(
        "--out",
        type=Path,
        default=None,
        help="points go to <out>/sweeps/<id>/ (default: <root>/book/_executed)",
    )
    w.add_argument("--force", action="store_true", help="re-run points that are done")
    s = sub.add_parser(
        "student", parents=[common], help="write student (no solutions) and instructor editions"
    )
    s.add_argument("--out", type=Path, default=None, help="default: <root>/_build/editions")
    for p in (r, b):
        p.add_argument("--seed", default=None, help="one seed (default: the seeds the chapter declares)")
    for p in (r, b, w):
        p.add_argument("--profile", default=None)
        p.add_argument("--seeds", default=None, help="several seeds, each a separate execution: 0-2 or 0,3,7")
        p.add_argument("--jobs", type=int, default=1, help="executions in parallel (default 1)")
        p.add_argument(
            "--scheduler",
            default="local",
            help="local (a process pool, the default), dask (a Dask LocalCluster of --jobs workers) or "
            "tcp://HOST:PORT (a running Dask scheduler)",
        )
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
    from .. import editions

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
        return f"cannot go on: {one_line(error)}"
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
        print(f"optdyn: unexpected error: {one_line(error)} (OPTDYN_DEBUG=1 shows where)", file=sys.stderr)
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
    check_scheduler(args.scheduler)
    overrides = _overrides(args)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.command == "build":
        plan(root, list(chapters(root)), overrides, seeds)
        return build(root, overrides.get("profile"), overrides.get("seed"), args.jobs, seeds, args.scheduler)
    if args.command == "sweep":
        return _sweep(root, args, overrides, seeds)
    names = list(chapters(root)) if args.all else args.chapters
    if not names:
        raise ParameterError("name at least one chapter, or --all")
    if args.all and args.chapters:
        raise ParameterError("give chapter names or --all, not both")
    out = args.out.resolve() if args.out else None
    return run(root, names, overrides, out, args.jobs, args.force, seeds, args.scheduler)


def _sweep(root: Path, args: argparse.Namespace, overrides: dict[str, str], seeds: list[int] | None) -> int:
    """``optdyn sweep``: the seeds default to those the chapter declares for its profile."""
    if seeds is None:
        known = chapters(root)
        if args.chapter in known:
            profile = resolve(root, [args.chapter], overrides)[args.chapter].get("profile")
            seeds = declared_seeds(known[args.chapter], profile)
    out = args.out.resolve() if args.out else None
    return sweep(
        root, args.chapter, args.grid, seeds or [0], overrides, out, args.jobs, args.scheduler, args.force
    )
