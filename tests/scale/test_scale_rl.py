"""train_rl with a Dask client (collection and validation as tasks) and rl_sweep over a grid."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from sor.errors import UsageError
from sor.rl.fqi import FqiSpec
from sor.rl.train import (RlTrainSpec, models_as_onnx_bytes, parse_sweep, rl_sweep, spec_at,
                          train_rl, train_rl_model)

TINY = RlTrainSpec(scenarios=("calm",), episodes_per_round=4, rounds=2, epsilon=(1.0, 0.5),
                   validation_seeds=(5001,), quantity=20_000, horizon_s=60.0,
                   fqi=FqiSpec(iterations=2, rounds=10), workers=1)


def _quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.mark.slow
def test_train_rl_on_dask_matches_the_local_run(dask_cluster):
    onnx_models = models_as_onnx_bytes("shipped")
    remote = train_rl_model(TINY, console=_quiet(), client=dask_cluster, models=onnx_models)
    local = train_rl_model(TINY, console=_quiet())
    assert remote.card["fit"]["dask_workers"] == 2
    assert [r["round"] for r in remote.card["training"]["rounds_run"]] == [0, 1]
    # the same episodes, the same transitions, the same validation backtests
    for key in ("episodes", "transitions", "behaviour_mean_return_bps",
                "validation_mean_is_bps"):
        assert [r[key] for r in remote.card["training"]["rounds_run"]] == \
            [r[key] for r in local.card["training"]["rounds_run"]], key
    assert remote.onnx_bytes == local.onnx_bytes
    card = train_rl(TINY, publish=False, console=_quiet(), client=dask_cluster)
    assert card["metrics_test"] == local.card["metrics_test"]
    assert set(card["supervised_models"]) >= {"fill_probability", "adverse_move"}


@pytest.mark.slow
def test_rl_sweep_runs_one_training_per_point(dask_cluster):
    base = RlTrainSpec(scenarios=("calm",), episodes_per_round=3, rounds=1,
                       validation_seeds=(5001,), quantity=20_000, horizon_s=60.0,
                       fqi=FqiSpec(iterations=1, rounds=5))
    grid = parse_sweep(["fqi.rounds=5,12"], base)
    assert grid == {"fqi.rounds": [5, 12]}
    seen = []
    rows = rl_sweep(dask_cluster, base, grid, on_point=seen.append)
    assert [row["point"] for row in rows] == [{"fqi.rounds": 5}, {"fqi.rounds": 12}]
    assert len(seen) == 2
    for row in rows:
        assert row["card"]["training"]["fqi"]["rounds"] == row["point"]["fqi.rounds"]
        assert row["onnx_bytes"][:2] and row["validation_mean_is_bps"] == \
            row["card"]["metrics_test"]["validation_mean_is_bps"]
    assert rows[0]["onnx_bytes"] != rows[1]["onnx_bytes"]


def test_sweep_keys_are_checked():
    assert spec_at(TINY, {"quantity": 10_000, "fqi.gamma": 0.9}).fqi.gamma == 0.9
    assert parse_sweep(["epsilon=1+0.3,1+0.5"], TINY) == {"epsilon": [(1.0, 0.3), (1.0, 0.5)]}
    with pytest.raises(UsageError, match="unknown sweep key 'fqi.nothing'"):
        parse_sweep(["fqi.nothing=1,2"], TINY)
    with pytest.raises(UsageError, match="not a int"):
        parse_sweep(["rounds=two"], TINY)
    with pytest.raises(UsageError, match="use KEY=V1,V2"):
        parse_sweep(["rounds"], TINY)
