"""The engine hosting an execution policy: the ML router and the learned (rl) policy decide on
the engine's own book, features and models, and their children and cancels reach the order
ring with their execution instructions."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sor import _core
from sor.engine import Engine, TimeInForce
from sor.errors import PolicyConfigError
from sor.models.registry import ModelRegistry, default_models_dir
from sor.ring import EXEC_REPORT_DTYPE

from test_engine_models import _config, _publish, _session_events

_NS = 1_000_000_000


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return _session_events(200.0, seed=17)


def _work(engine: Engine, events: np.ndarray, *, horizon_s: float = 60.0):
    first = int(events["ts_recv"][0])
    arrival = first + 120 * _NS
    cut = int(np.searchsorted(events["ts_recv"], arrival))
    _publish(engine, events[:cut])
    engine.submit_parent(7, "AAPL", "buy", 20_000, end_time_ns=int(events["ts_recv"][cut - 1])
                         + int(horizon_s * _NS))
    engine.wait_idle(10)
    _publish(engine, events[cut:])
    engine.wait_idle(10)
    time.sleep(0.05)
    return engine.read_orders(), engine.read_decisions(), engine.counters()


def test_the_ml_router_works_a_parent_inside_the_engine(events):
    registry = ModelRegistry(default_models_dir())
    with Engine(_config("sor-test-policy-ml"), models=registry, policy="ml_router") as engine:
        orders, decisions, counters = _work(engine, events)
        # a fill of the first child reaches the policy and frees the slot
        first = orders[orders["action"] == int(_core.OrderAction.NEW)][0]
        report = np.zeros(1, EXEC_REPORT_DTYPE)
        report["child_order_id"] = first["child_order_id"]
        report["parent_order_id"] = 7
        report["last_price_ticks"] = first["price_ticks"] or 1_000_000
        report["last_quantity"] = first["quantity"]
        report["leaves_quantity"] = 0
        report["venue_id"] = first["venue_id"]
        report["kind"] = int(_core.ExecKind.FILL)
        report["ts_recv"] = time.time_ns()
        engine.send_executions(report)
        engine.wait_idle(5)
        time.sleep(0.02)
        filled = engine.counters()["filled_quantity"]
    new = orders[orders["action"] == int(_core.OrderAction.NEW)]
    assert counters["policy_decisions"] > 10
    assert len(new) > 0
    kinds = set(new["time_in_force"].tolist())
    assert kinds & {int(TimeInForce.POST_ONLY), int(TimeInForce.MIDPOINT_PEG)}  # passive work
    pegs = new[new["time_in_force"] == int(TimeInForce.MIDPOINT_PEG)]
    assert np.all(pegs["price_ticks"] == 0)
    cancels = orders[orders["action"] == int(_core.OrderAction.CANCEL)]
    assert len(cancels) > 0  # passive children are re-priced after their lifetime
    assert set(cancels["child_order_id"].tolist()) <= set(new["child_order_id"].tolist())
    # every child had a decision record with all four models' outputs on its row
    sent = decisions[(decisions["flags"] & 4) != 0]
    assert len(sent) == len(new)
    assert np.all(sent["model_mask"] == 0b1111)
    assert {int(t) for t in sent["context"]["order_type"]} >= {1} or \
        {int(t) for t in sent["context"]["order_type"]} >= {2}
    assert filled == int(first["quantity"])


def test_the_learned_policy_runs_in_the_engine_on_its_action_values(events):
    registry = ModelRegistry(default_models_dir())
    with Engine(_config("sor-test-policy-rl"), models=registry, policy="rl") as engine:
        orders, decisions, counters = _work(engine, events)
    assert counters["policy_decisions"] > 0
    new = orders[orders["action"] == int(_core.OrderAction.NEW)]
    assert len(new) > 0
    sent = decisions[(decisions["flags"] & 4) != 0]
    assert np.all((sent["model_mask"] & 0b1000) != 0)  # Q evaluated on every child's row
    assert set(new["time_in_force"].tolist()) <= {int(t) for t in TimeInForce.__members__.values()}


def test_an_unknown_policy_or_parameter_is_refused_at_construction():
    with pytest.raises(PolicyConfigError, match="unknown policy 'nope'"):
        Engine(_config("sor-test-policy-bad"), policy="nope")
    with pytest.raises(PolicyConfigError, match="schedule_power"):
        Engine(_config("sor-test-policy-bad"), policy="ml_router",
               policy_params={"schedule_power": -1})


def test_the_policy_comes_from_the_configuration(events):
    from sor.config import with_changes

    config = with_changes(_config("sor-test-policy-config"),
                          {"engine.policy": "ml_router", "engine.decision_interval_ms": 500,
                           "engine.policy_params": {"passive_lifetime_s": 4.0}})
    registry = ModelRegistry(default_models_dir())
    with Engine(config, models=registry) as engine:
        orders, decisions, counters = _work(engine, events)
    assert counters["policy_decisions"] > 10
    new = orders[orders["action"] == int(_core.OrderAction.NEW)]
    assert len(new) > 0
