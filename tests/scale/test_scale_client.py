"""sor.scale: the LocalCluster client, the CLI arguments, unreachable schedulers and failed
tasks named in the error."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import sor
from sor.errors import ScaleOutError, UsageError
from sor.scale import add_dask_arguments, client_from_args, dask_client, run_tasks


def _where(_task: object) -> str:
    import sor as worker_sor

    return str(Path(worker_sor.__file__).resolve())


def _fail_on_three(task: int) -> int:
    if task == 3:
        raise ValueError(f"task {task} refuses")
    return task * 2


def test_workers_import_the_same_sor(dask_cluster):
    found = run_tasks(dask_cluster, _where, [1, 2, 3, 4], describe=str)
    assert set(found) == {str(Path(sor.__file__).resolve())}
    assert len(dask_cluster.scheduler_info()["workers"]) == 2


def test_results_come_back_in_task_order_and_a_failure_names_the_task(dask_cluster):
    seen = []
    assert run_tasks(dask_cluster, _fail_on_three, [5, 1, 2],
                     describe=lambda t: f"t={t}", on_result=lambda n, r: seen.append(n)) \
        == [10, 2, 4]
    assert sorted(seen) == [0, 1, 2]
    with pytest.raises(ScaleOutError, match=r"Dask task t=3 failed on worker tcp://.*"
                                            r"ValueError: task 3 refuses"):
        run_tasks(dask_cluster, _fail_on_three, [1, 3, 2], describe=lambda t: f"t={t}")


def test_an_unreachable_scheduler_is_a_scale_out_error_naming_it():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(ScaleOutError, match=f"cannot reach the Dask scheduler at '{address}'"):
        with dask_client(address, connect_timeout_s=1.0):
            pass


def test_dask_arguments():
    parser = argparse.ArgumentParser()
    add_dask_arguments(parser)
    args = parser.parse_args([])
    with client_from_args(args) as client:
        assert client is None
    assert parser.parse_args(["--scheduler", "tcp://h:8786"]).scheduler == "tcp://h:8786"
    assert parser.parse_args(["--dask-workers", "2"]).dask_workers == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["--scheduler", "tcp://h:8786", "--dask-workers", "2"])
    with pytest.raises(UsageError, match="--dask-workers must be at least 1"):
        client_from_args(parser.parse_args(["--dask-workers", "0"]))
    with pytest.raises(UsageError, match="workers >= 1"):
        with dask_client(workers=0):
            pass
