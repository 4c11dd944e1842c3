"""Scale-out on Dask: the heavy steps (XGBoost fits, backtest grids, RL collection and sweeps)
as Dask tasks, on a ``distributed.LocalCluster`` on this machine by default or on an existing
multi-node cluster given its scheduler address. docs/scale-out.md describes the set-up.

Workers must run the same ``sor`` as the caller: a LocalCluster's workers are processes spawned
from this interpreter (with this ``sor`` on their path); on a remote cluster ``dask_client``
checks each worker's ``sor.__version__`` and refuses a cluster that differs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from sor.errors import ScaleOutError, UsageError

SINGLE_THREADED_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                       "MKL_NUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
"""Environment of LocalCluster workers: numeric libraries single-threaded (one Dask thread
each; XGBoost gets its threads from the Dask worker)."""

DEFAULT_CONNECT_TIMEOUT_S = 10.0
"""How long ``dask_client`` waits for a scheduler before raising ScaleOutError."""


def _worker_version() -> dict[str, str]:
    import sor

    return {"sor": sor.__version__, "path": str(Path(sor.__file__).resolve().parent)}


def _check_workers(client: Any, address: str) -> None:
    """Raises ScaleOutError when a worker cannot import sor or runs another version."""
    import sor

    try:
        found = client.run(_worker_version)
    except Exception as exc:  # a worker without sor fails to unpickle the function
        raise ScaleOutError(f"the workers of the Dask cluster at {address} cannot run sor: "
                            f"{type(exc).__name__}: {exc}; install sor {sor.__version__} on "
                            "every worker") from exc
    wrong = {w: v["sor"] for w, v in found.items() if v["sor"] != sor.__version__}
    if wrong:
        raise ScaleOutError(f"Dask workers at {address} run another sor version than this "
                            f"process ({sor.__version__}): {wrong}")


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, workers: int = 2, threads_per_worker: int = 1,
                connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> Iterator[Any]:
    """Returns a context manager yielding a ``distributed.Client``: on a new LocalCluster of
    ``workers`` processes (``threads_per_worker`` threads each, no dashboard, quiet logs,
    single-threaded numeric libraries) when ``scheduler`` is None, else on the existing
    cluster at ``scheduler`` (ScaleOutError naming the address when it cannot be reached
    within ``connect_timeout_s`` or its workers run another sor). Closes what it opened."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        if workers < 1 or threads_per_worker < 1:
            raise UsageError(f"a local Dask cluster needs workers >= 1 and threads_per_worker "
                             f">= 1, got {workers} and {threads_per_worker}")
        import sor

        source = str(Path(sor.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR,
                               env={**SINGLE_THREADED_ENV, "PYTHONPATH": path})
        try:
            client = Client(cluster, timeout=connect_timeout_s)
        except BaseException:
            cluster.close()
            raise
        try:
            _check_workers(client, cluster.scheduler_address)
            yield client
        finally:
            client.close()
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout=connect_timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ScaleOutError(f"cannot reach the Dask scheduler at {scheduler!r} within "
                            f"{connect_timeout_s:g} s: {type(exc).__name__}: {exc}") from exc
    try:
        _check_workers(client, scheduler)
        yield client
    finally:
        client.close()


def add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--scheduler ADDR`` and ``--dask-workers N`` (one or the other) to ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--scheduler", metavar="ADDR", default=None,
                       help="run the heavy steps on the Dask cluster of this scheduler "
                            "(e.g. tcp://host:8786)")
    group.add_argument("--dask-workers", metavar="N", type=int, default=None,
                       help="run the heavy steps on a local Dask cluster of N worker processes")


def client_from_args(args: argparse.Namespace) -> contextlib.AbstractContextManager[Any]:
    """Returns the ``dask_client`` context manager the parsed ``--scheduler`` /
    ``--dask-workers`` ask for, or a null context yielding None (no Dask) when neither was
    given."""
    scheduler = getattr(args, "scheduler", None)
    workers = getattr(args, "dask_workers", None)
    if scheduler:
        return dask_client(scheduler)
    if workers is not None:
        if workers < 1:
            raise UsageError(f"--dask-workers must be at least 1, got {workers}")
        return dask_client(workers=workers)
    return contextlib.nullcontext(None)


def worker_count(client: Any) -> int:
    """Returns the number of workers connected to the client's scheduler (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def _guarded(function: Callable[[Any], Any], task: Any) -> tuple[str, Any, str]:
    """Runs ``function(task)`` on a worker; returns ("ok", result, address) or ("error", the
    error and its traceback, address) so the caller can name the failed task."""
    try:
        from distributed import get_worker

        address = get_worker().address
    except (ImportError, ValueError):
        address = "?"
    try:
        return "ok", function(task), address
    except Exception as exc:
        return "error", (f"{type(exc).__name__}: {exc}", traceback.format_exc()), address


def run_tasks(client: Any, function: Callable[[Any], Any], tasks: Sequence[Any], *,
              describe: Callable[[Any], str],
              on_result: Callable[[int, Any], None] | None = None,
              key_prefix: str = "sor-task") -> list[Any]:
    """Runs ``function(task)`` for every task as Dask tasks; returns the results in task
    order. ``on_result(index, result)`` is called as each completes. A failing task cancels
    the rest and raises ScaleOutError naming it (``describe(task)``), the worker and its
    error."""
    from distributed import as_completed

    import uuid

    token = uuid.uuid4().hex[:12]
    futures = [client.submit(_guarded, function, task, key=f"{key_prefix}-{token}-{n}",
                             pure=False)
               for n, task in enumerate(tasks)]
    index = {future.key: n for n, future in enumerate(futures)}
    results: list[Any] = [None] * len(tasks)
    try:
        for future in as_completed(futures):
            n = index[future.key]
            try:
                status, value, address = future.result()
            except Exception as exc:  # the worker died, the task was cancelled, ...
                raise ScaleOutError(f"Dask task {describe(tasks[n])} failed: "
                                    f"{type(exc).__name__}: {exc}") from exc
            if status != "ok":
                message, trace = value
                raise ScaleOutError(f"Dask task {describe(tasks[n])} failed on worker "
                                    f"{address}: {message}\n{trace}")
            results[n] = value
            if on_result is not None:
                on_result(n, value)
    finally:
        client.cancel([f for f in futures if not f.done()])
    return results
