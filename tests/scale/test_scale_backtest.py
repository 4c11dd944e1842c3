"""run_grid as Dask tasks gives the local rows; models as ONNX bytes, a registry folder or
"shipped" are the same models; a failing episode names its policy, regime and seed."""

from __future__ import annotations

import json
import shutil

import pytest

from sor.backtest.runner import (EpisodeSpec, parse_policies, portable_models, run_episode,
                                 run_grid)
from sor.errors import ScaleOutError, UsageError
from sor.models.registry import ModelRegistry, default_models_dir

SPEC = EpisodeSpec(quantity=20_000, horizon_s=60.0)
POLICIES = parse_policies("best_price,ml_router")


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def onnx_models():
    registry = ModelRegistry()
    return {name: registry.path(name).read_bytes() for name in registry.names()}


@pytest.mark.slow
def test_dask_grid_gives_the_local_rows_in_grid_order(dask_cluster, onnx_models):
    local = run_grid(POLICIES, ["calm", "toxic_venue"], [9001], spec=SPEC, workers=1)
    seen = []
    remote = run_grid(POLICIES, ["calm", "toxic_venue"], [9001], spec=SPEC,
                      client=dask_cluster, models=onnx_models, progress=seen.append)
    assert len(remote) == 4 and len(seen) == 4
    assert [(r["policy"], r["regime"], r["seed"]) for r in remote] == \
        [(p.key, g, 9001) for g in ("calm", "toxic_venue") for p in POLICIES]
    assert _same(local, remote)  # deterministic episodes: every metric equal


def test_models_as_bytes_equal_models_as_a_registry_folder(onnx_models, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(default_models_dir(), folder)
    episodes = {}
    for label, models in (("bytes", onnx_models), ("folder", folder), ("str", str(folder)),
                          ("shipped", "shipped")):
        episode = run_episode("ml_router", {}, "calm", 9003, spec=SPEC, models=models)
        episodes[label] = (episode.filled, episode.fees_usd, episode.children.tobytes(),
                           episode.fills.tobytes())
    assert episodes["bytes"] == episodes["folder"] == episodes["str"] == episodes["shipped"]
    assert episodes["bytes"] != _without_models()


def _without_models():
    episode = run_episode("ml_router", {}, "calm", 9003, spec=SPEC, models=None)
    return (episode.filled, episode.fees_usd, episode.children.tobytes(), episode.fills.tobytes())


def test_a_failing_dask_episode_names_its_task(dask_cluster):
    with pytest.raises(ScaleOutError, match=r"policy=best_price regime=no_such_regime "
                                            r"seed=9001 failed on worker tcp://"):
        run_grid(parse_policies("best_price"), ["no_such_regime"], [9001], spec=SPEC,
                 client=dask_cluster, models=None)


def test_models_that_cannot_travel_are_refused(tmp_path):
    from sor.backtest.runner import shipped_models

    evaluators = shipped_models()
    with pytest.raises(UsageError, match="cannot be sent to worker processes"):
        portable_models(evaluators)
    with pytest.raises(UsageError, match="cannot read"):
        run_episode("best_price", {}, "calm", 9001, spec=SPEC, models=tmp_path / "nothing")
    assert portable_models(tmp_path) == str(tmp_path)
    with pytest.raises(UsageError, match="models must be"):
        run_episode("best_price", {}, "calm", 9001, spec=SPEC, models=42)
