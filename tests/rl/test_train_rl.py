"""`sor train-rl` on a tiny budget: episodes through the routing environment, FQI, a
validation backtest per round, and the best Q published as action_value, which the rl policy
then runs in the backtester."""

from __future__ import annotations

import shutil

import pytest

from sor.backtest.runner import EpisodeSpec, run_episode
from sor.models.registry import ModelRegistry, default_models_dir
from sor.rl.fqi import FqiSpec
from sor.rl.train import RlTrainSpec, train_rl

pytestmark = pytest.mark.slow


def test_train_rl_publishes_a_policy_the_backtester_runs(tmp_path):
    registry_dir = tmp_path / "models"
    shutil.copytree(default_models_dir(), registry_dir)
    spec = RlTrainSpec(scenarios=("calm",), episodes_per_round=4, rounds=2, epsilon=(1.0, 0.5),
                       validation_seeds=(5001,), quantity=20_000, horizon_s=60.0,
                       fqi=FqiSpec(iterations=2, rounds=10), workers=1)
    card = train_rl(spec, registry_dir)
    assert card["name"] == "action_value"
    assert [r["round"] for r in card["training"]["rounds_run"]] == [0, 1]
    assert card["training"]["rounds_run"][1]["episodes"] == 8
    registry = ModelRegistry(registry_dir)
    q = registry.load("action_value")
    evaluators = {name: registry.load(name).evaluator for name in registry.names()}
    assert set(evaluators) >= {"fill_probability", "action_value"}
    episode = run_episode("rl", {"decision_interval_s": 5.0}, "calm", 5002,
                          spec=EpisodeSpec(quantity=20_000, horizon_s=60.0),
                          models=evaluators)
    assert episode.filled == 20_000
    assert q.tree_count > 0
