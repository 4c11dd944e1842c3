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
    # the exported policy runs in the engine, on the engine's own rows, by the C++ evaluator
    import time

    import numpy as np

    from sor.engine import Engine
    from test_engine_models import _config, _publish, _session_events

    events = _session_events(90.0, seed=23)
    with Engine(_config("sor-test-train-rl"), models=registry, policy="rl") as engine:
        cut = len(events) // 2
        _publish(engine, events[:cut])
        engine.submit_parent(9, "AAPL", "sell", 10_000)
        engine.wait_idle(10)
        _publish(engine, events[cut:])
        engine.wait_idle(10)
        time.sleep(0.05)
        counters = engine.counters()
        assert engine.models["action_value"].sha256 == q.sha256
    assert counters["policy_decisions"] > 0
    assert counters["model_generation"][3] == 1  # the trained Q in its slot
