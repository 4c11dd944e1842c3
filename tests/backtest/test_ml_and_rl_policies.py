"""The ML router and the learned (rl) policy in the backtester: they finish the parent without
overfilling, use the order types their models favour, and refuse bad parameters by name."""

from __future__ import annotations

import numpy as np
import pytest

from sor import _core
from sor.backtest.runner import EpisodeSpec, run_episode, shipped_models
from sor.backtest.metrics import episode_metrics
from sor.errors import PolicyConfigError
from sor.features import FEATURE_SCHEMA
from sor.models import load_tree_model, xgboost_to_onnx

SPEC = EpisodeSpec(quantity=30_000, horizon_s=120.0, start_offset_s=120.0, markout_tail_s=5.0)


def _run(policy, params=None, *, models="shipped", scenario="calm", seed=21):
    return run_episode(policy, params or {}, scenario, seed, spec=SPEC,
                       models=shipped_models() if models == "shipped" else models)


def _filled_by_type(episode):
    fills = episode.fills
    return {t: int(fills["quantity"][(fills["type"] == t) & ~fills["swept"]].sum())
            for t in (0, 1, 2)}


def test_the_ml_router_finishes_mostly_passively_and_never_overfills():
    e = _run("ml_router")
    assert e.filled == e.quantity
    assert int(e.fills["quantity"].sum()) == e.quantity
    by_type = _filled_by_type(e)
    assert by_type[1] + by_type[2] > by_type[0]  # posts and midpoint pegs, not takes
    m = episode_metrics(e)
    assert m["fill_rate"] == 1.0
    # without models it still works, on the venues' fill rates
    assert _run("ml_router", models=None).filled == SPEC.quantity


def test_an_impatient_ml_router_takes_to_keep_its_schedule():
    # a schedule front-loaded to (almost) everything at once leaves no time to rest orders
    e = _run("ml_router", {"schedule_power": 0.01, "take_slack_lots": 0})
    assert _filled_by_type(e)[0] > 0
    assert e.filled == e.quantity


def _q_model(prefer_type: float) -> object:
    import xgboost as xgb

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(600, FEATURE_SCHEMA.size)).astype(np.float32)
    column = FEATURE_SCHEMA.index("child.order_type")
    rows[:, column] = rng.integers(0, 4, size=600)
    value = (rows[:, column] == prefer_type).astype(np.float32)
    model = xgb.XGBRegressor(n_estimators=20, max_depth=2, n_jobs=1, random_state=0)
    model.fit(rows, value)
    data = xgboost_to_onnx(model, feature_count=FEATURE_SCHEMA.size,
                           schema_hash=FEATURE_SCHEMA.version_hash,
                           metadata={"sor.model_name": "action_value"})
    return load_tree_model(data, expected_schema_hash=FEATURE_SCHEMA.version_hash).evaluator


def test_the_rl_policy_acts_greedily_on_its_action_values():
    models = dict(shipped_models())
    models["action_value"] = _q_model(2.0)  # midpoint pegs are worth the most
    e = _run("rl", {"decision_interval_s": 5}, models=models)
    by_type = _filled_by_type(e)
    assert by_type[2] > 0 and by_type[0] == 0 and by_type[1] == 0
    assert e.filled == e.quantity
    models["action_value"] = _q_model(3.0)  # waiting is worth the most: all swept at the end
    waiting = _run("rl", {"decision_interval_s": 5}, models=models)
    assert waiting.fills["swept"].all() and waiting.filled == waiting.quantity
    # without a model the policy waits too
    assert _run("rl", models=None).fills["swept"].all()


@pytest.mark.parametrize(("policy", "params", "match"), [
    ("ml_router", {"schedule_power": 0.0}, "schedule_power"),
    ("ml_router", {"nope": 1.0}, "nope: unknown parameter"),
    ("rl", {"child_shares": 0.0}, "child_shares"),
    ("almgren_chriss", {"temporary_impact_ticks_per_share_per_second": 0.0}, "temporary_impact"),
    ("cont_kukanov", {"underfill_penalty_usd_per_share": -1.0}, "underfill_penalty"),
])
def test_bad_policy_parameters_are_refused_by_name(policy, params, match):
    with pytest.raises(PolicyConfigError, match=match):
        _core.make_policy(policy, params)


@pytest.mark.parametrize("policy", ["vwap", "almgren_chriss", "cont_kukanov", "dark_allocator"])
def test_every_classical_baseline_finishes_its_parent(policy):
    e = _run(policy, scenario="dark_rich")
    assert e.filled == e.quantity
    assert int(e.fills["quantity"].sum()) == e.quantity
