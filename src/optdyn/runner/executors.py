"""Where executions run: one ``concurrent.futures.Executor`` for ``run``, ``build`` and ``sweep``.

``--scheduler local`` (the default) is a process pool on this machine (or this process, for one job);
``--scheduler dask`` starts a ``dask.distributed.LocalCluster`` of ``--jobs`` worker processes with one
thread each; ``--scheduler tcp://HOST:PORT`` connects to a running Dask scheduler, whose workers need the
same Python environment (``optdyn`` and a ``python3`` Jupyter kernel) as this machine.

A Dask worker executes a chapter in a kernel that talks to it over local TCP sockets; ipykernel warns
once per kernel that such a connection is not encrypted. The sockets listen on the worker's loopback
interface only, so the warning is harmless there and is filtered from the kernel's log.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager

from .base import ParameterError, shown

#: The schedulers ``--scheduler`` accepts besides a ``tcp://HOST:PORT`` address.
SCHEDULERS = ("local", "dask")
#: How long to wait for a running Dask scheduler to answer.
CONNECT_TIMEOUT = "10s"


def check_scheduler(text: str) -> str:
    """``text`` if it names a scheduler (``local``, ``dask``, ``tcp://HOST:PORT``); raises ParameterError."""
    if text in SCHEDULERS:
        return text
    host, sep, port = text.removeprefix("tcp://").rpartition(":")
    if text.startswith("tcp://") and sep and host and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise ParameterError(f"--scheduler {shown(text)}: expected local, dask or tcp://HOST:PORT")


class InlineExecutor(Executor):
    """Runs each submitted call at once in this process (one job: no worker to start, and a test can
    replace what the call uses)."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        """A finished future holding ``fn``'s result or the exception it raised."""
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:
            future.set_exception(error)
        return future


def completed(
    pool: Executor, calls: Iterable[tuple[object, Callable, tuple]]
) -> Iterator[tuple[object, Future]]:
    """Submit each ``(label, fn, args)`` and yield ``(label, future)`` as they finish: one at a time on an
    :class:`InlineExecutor` (so a result is reported as soon as it is there), else all at once.

    On an interrupt the pending calls are cancelled before it goes on (the executor's context stops the
    running ones).
    """
    if isinstance(pool, InlineExecutor):
        for label, fn, args in calls:
            yield label, pool.submit(fn, *args)
        return
    futures: dict[Future, object] = {}
    try:
        for label, fn, args in calls:
            futures[pool.submit(fn, *args)] = label
        for future in as_completed(futures):
            yield futures[future], future
    except BaseException:
        for future in futures:
            future.cancel()
        raise


@contextmanager
def executor(scheduler: str, jobs: int, tasks: int) -> Iterator[Executor]:
    """The executor of ``scheduler`` for ``tasks`` executions at most ``jobs`` at a time; on exit (also by
    an interrupt) its workers are stopped and a cluster it started is closed."""
    workers = max(1, min(jobs, tasks))
    if scheduler == "local":
        if workers == 1:
            yield InlineExecutor()
            return
        with _local_pool(workers) as pool:
            yield pool
        return
    with _dask(scheduler, workers) as pool:
        yield pool


def threads_per_job(jobs: int, tasks: int) -> int:
    """The CPU threads each execution may use when ``jobs`` run at once on this machine."""
    return max(1, (os.cpu_count() or 1) // max(1, min(jobs, tasks)))


# -------------------------------------------------------------------------------------- local pool


@contextmanager
def _local_pool(workers: int) -> Iterator[Executor]:
    """A process pool whose workers ignore Ctrl-C; on an interrupt each gets SIGTERM, which stops its
    kernel and removes its temporary files as a single run does."""
    pool = ProcessPoolExecutor(workers, initializer=worker_start)
    try:
        yield pool
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):
            try:
                process.terminate()
            except Exception:
                pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


#: In a worker process: whether it is executing a chapter, and whether it was told to stop.
_worker = {"busy": False, "stopping": False}


def worker_start() -> None:
    """A worker ignores Ctrl-C (the driver forwards a SIGTERM) and turns SIGTERM into KeyboardInterrupt
    only while it executes a chapter; an idle one just stops taking work, so the pool stays whole."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_sigterm)


def _worker_sigterm(signum, frame) -> None:
    _worker["stopping"] = True
    if _worker["busy"]:
        _worker["busy"] = False  # a second signal during the clean-up does not interrupt it
        raise KeyboardInterrupt(f"signal {signum}")


def in_worker(fn: Callable, *args):
    """Call ``fn(*args)`` in a pool worker, marked busy so that a SIGTERM interrupts it."""
    if _worker["stopping"]:
        raise KeyboardInterrupt("stopped")
    _worker["busy"] = True
    try:
        return fn(*args)
    finally:
        _worker["busy"] = False


# -------------------------------------------------------------------------------------------- Dask


@contextmanager
def _dask(scheduler: str, workers: int) -> Iterator[Executor]:
    """A Dask client's executor: on a new ``LocalCluster`` (``dask``) or an existing scheduler (an
    address). A worker that dies fails its task at once (no silent re-run): the caller retries it and
    says so."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.admin.tick.limit": "1h"}):
        if scheduler == "dask":
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address="127.0.0.1:0",  # not 8787: two sweeps at once do not collide
                silence_logs=logging.CRITICAL,  # a lost worker is said once, by the caller
                worker_class="distributed.Nanny",
            )
            client = Client(cluster)
        else:
            cluster = None
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except OSError as error:
                raise ParameterError(f"--scheduler {scheduler}: cannot connect: {error}") from None
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def worker_pids(pool: Executor) -> list[int]:
    """The process ids of a Dask executor's workers (for tests that kill one); empty for other pools."""
    client = getattr(pool, "_client", None)
    if client is None:
        return []
    return sorted(client.run(os.getpid).values())
