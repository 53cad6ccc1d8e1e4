"""The `optdyn` command: list, run, sweep and build the book's chapters.

A chapter is ``book/<id>.ipynb`` (or ``book/<id>/<id>.ipynb``). Its code cell tagged ``parameters`` (the
second code cell; the first installs ``optdyn`` on Colab or Binder) declares each parameter as ``name =
literal`` with an optional ``# one of: a, b`` or ``# in [lo, hi)`` comment. The runner checks every
requested value against those declarations before any kernel starts, executes the chapter with papermill
into ``<out>/<id>.ipynb`` (through a temporary file and an atomic rename), extracts the claims the
chapter displays into ``<out>/<id>.claims.json``, and records the run in ``<out>/report.json``. Runs are
cached under a content hash that covers the notebook, the parameters, the whole helper package, the
requirements and the Python/torch versions. A failed run never replaces the last good executed copy. The
executed copy gets a "Reproduce" box under its title: the command, this run's wall time and machine, and
the source notebook to download. ``optdyn sweep`` runs one chapter over a grid of its parameters times
seeds (:mod:`optdyn.runner.sweep`); ``run``, ``build`` and ``sweep`` execute on this machine or on a Dask
cluster (:mod:`optdyn.runner.executors`). ``optdyn student`` writes the course editions
(:mod:`optdyn.editions`).

Every error is one line starting ``optdyn:``: bad input (exit 2, nothing written), a failure (exit 1), an
interrupt (Ctrl-C or SIGTERM: the kernels are stopped, temporary files removed, exit 130); temporary files
left by a killed process are removed by the next run.

The parts, each importing only those before it: :mod:`optdyn.runner.base` (shared bits),
:mod:`optdyn.runner.params` (declared parameters, values, seeds), :mod:`optdyn.runner.cache` (keys, the
report, atomic writes), :mod:`optdyn.runner.project` (chapters, the plan of a request),
:mod:`optdyn.runner.execution` (one papermill execution), :mod:`optdyn.runner.assembly` (a chapter's
page from its seeds), :mod:`optdyn.runner.executors` (local or Dask), :mod:`optdyn.runner.commands`
(``run``, ``build``, ``list``), :mod:`optdyn.runner.sweep` and :mod:`optdyn.runner.cli`. The book's
generated pages (:mod:`optdyn.report`) import from the runner, never the reverse. The names below are
re-exported here, so ``from optdyn import runner; runner.main([...])`` keeps working.
"""

from . import sweep
from .assembly import assemble
from .base import (
    ACROSS_TAG,
    CLAIMS_TAG,
    FAILURE_TAG,
    PACKAGE_DIR,
    REPRODUCE_TAG,
    SHOWN,
    ParameterError,
    one_line,
    shown,
)
from .cache import (
    cache_key,
    check_writable,
    clean_stale,
    is_current,
    prepare_out,
    provenance,
    read_report,
    record,
    seed_dir,
    versions,
    write_atomic,
)
from .cli import main
from .commands import build, list_chapters, run
from .execution import claims_from, execute, strip_claims
from .executors import check_scheduler, executor
from .params import (
    MAX_SEEDS,
    Declared,
    declared_parameters,
    declared_seeds,
    parse_seeds,
    parse_value,
    seeds_text,
)
from .project import Task, chapters, device_for, find_root, make_task, plan, project_root, resolve

_record = record
_write_atomic = write_atomic
