"""The model guard in a running engine that hosts the ML router on simulated market data: a
model whose output turns non-finite mid-run, an out-of-range output, a decision over the latency
budget and a forced fallback each switch routing to the fallback policy (no model evaluated),
routing goes on, and the latch holds until an operator re-enables the models."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sor import _core
from sor.config import with_changes
from sor.engine import AuditKind, Engine, ModelGuardReason, RejectReason
from sor.features import FEATURE_SCHEMA
from sor.models.registry import ModelRegistry, default_models_dir
from sor.ring import EXEC_REPORT_DTYPE

from test_engine_models import _config, _session_events

_NS = 1_000_000_000


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return _session_events(200.0, seed=17)


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(default_models_dir())


def constant_model(weight: float, trees: int = 1):
    """A regressor on the engine's feature row whose output is `trees` x `weight` (3e38 twice
    overflows to +inf: a tree ensemble cannot hold a NaN leaf, but its sum can leave the
    floats)."""
    ids = list(range(trees))
    return _core.TreeEnsemble(
        nodes_treeids=ids, nodes_nodeids=[0] * trees, nodes_featureids=[0] * trees,
        nodes_modes=[0] * trees, nodes_values=[0.0] * trees, nodes_truenodeids=[0] * trees,
        nodes_falsenodeids=[0] * trees, leaf_treeids=ids, leaf_nodeids=[0] * trees,
        leaf_weights=[weight] * trees, base_value=0.0, post_transform=_core.PostTransform.NONE,
        kind=_core.TreeEnsembleKind.REGRESSOR, feature_count=FEATURE_SCHEMA.size)


class Session:
    """Feeds the engine the simulated session second by second; every child the engine sends
    is answered as done without a fill (an IOC that found nothing, a passive child expired),
    so the parent always has shares to route."""

    def __init__(self, engine: Engine, events: np.ndarray) -> None:
        self.engine = engine
        self.events = events
        self.first = int(events["ts_recv"][0])
        self.position = 0
        self.orders: list[np.ndarray] = []
        self.decisions: list[np.ndarray] = []
        self.audit: list[np.ndarray] = []

    def until(self, seconds: float) -> None:
        end = int(np.searchsorted(self.events["ts_recv"], self.first + int(seconds * _NS)))
        while self.position < end:
            stop = min(end, int(np.searchsorted(self.events["ts_recv"],
                                                int(self.events["ts_recv"][self.position]) + _NS)))
            stop = max(stop, self.position + 1)
            chunk = self.events[self.position:stop]
            written = 0
            while written < len(chunk):
                written += self.engine.publish_market_data(chunk[written:])
            self.position = stop
            self.engine.wait_idle(10)
            self.collect()

    def collect(self) -> None:
        orders = self.engine.read_orders()
        self.orders.append(orders)
        new = orders[orders["action"] == 1]
        if len(new):
            reports = np.zeros(len(new), EXEC_REPORT_DTYPE)
            reports["child_order_id"] = new["child_order_id"]
            reports["parent_order_id"] = new["parent_order_id"]
            reports["venue_id"] = new["venue_id"]
            reports["kind"] = int(_core.ExecKind.CANCELLED)
            assert self.engine.send_executions(reports) == len(reports)
            self.engine.wait_idle(10)
        self.decisions.append(self.engine.read_decisions())
        self.audit.append(self.engine.read_audit())

    def arrive(self, seconds: float, quantity: int = 20_000) -> None:
        self.until(seconds)
        self.engine.submit_parent(7, "AAPL", "buy", quantity,
                                  end_time_ns=self.first + int((seconds + 70) * _NS))
        self.engine.wait_idle(10)
        time.sleep(0.01)
        self.collect()

    def mark(self) -> tuple[int, int, int]:
        """How much has been collected so far: (orders, decisions, audit) chunks."""
        self.collect()
        return len(self.orders), len(self.decisions), len(self.audit)

    def since(self, mark: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate(self.orders[mark[0]:]), np.concatenate(self.decisions[mark[1]:]),
                np.concatenate(self.audit[mark[2]:]))

    def guard_records(self) -> list[tuple[int, str, int]]:
        audit = np.concatenate(self.audit)
        rows = audit[audit["kind"] == int(AuditKind.MODEL_GUARD)]
        return [(int(r["value_a"]), ModelGuardReason(int(r["value_b"])).name, int(r["reference"]))
                for r in rows]


def engine_for(name: str, registry: ModelRegistry, **guardrails) -> Engine:
    changes = {f"guardrails.{k}": v for k, v in guardrails.items()}
    config = with_changes(_config(name), changes) if changes else _config(name)
    return Engine(config, models=registry, policy="ml_router")


def test_a_non_finite_output_mid_run_trips_the_fallback_until_an_operator_re_enables(
        name: str, events: np.ndarray, registry: ModelRegistry) -> None:
    operator_events = []
    with engine_for(name, registry) as engine:
        engine.on_operator_event.append(operator_events.append)
        session = Session(engine, events)
        session.arrive(120.0)
        session.until(126.0)
        assert engine.model_status() == {"mode": "model", "reason": "NONE", "trips": 0,
                                         "policy": "ml_router", "fallback_policy": "best_price"}
        before = session.mark()
        _, decisions, _ = session.since((0, 0, 0))
        assert len(decisions) > 0 and np.all(decisions["model_mask"] == 0b1111)

        engine._core.set_model(0, constant_model(3.0e38, trees=2))  # fill probability: +inf
        session.until(134.0)
        assert session.guard_records() == [(1, "NON_FINITE_OUTPUT", 0)]
        status = engine.model_status()
        assert (status["mode"], status["reason"], status["trips"]) == \
            ("fallback", "NON_FINITE_OUTPUT", 1)
        orders, decisions, audit = session.since(before)
        trip = np.flatnonzero(audit["kind"] == int(AuditKind.MODEL_GUARD))[0]
        rejects = audit[:trip][audit[:trip]["kind"] == int(AuditKind.RISK_REJECT)]
        assert int(RejectReason.MODEL_GUARD) in rejects["reason"].tolist()  # the bad decision's
        after_trip = audit[trip + 1:]
        sent_after = after_trip[after_trip["kind"] == int(AuditKind.CHILD_ORDER)]
        assert len(sent_after) > 0  # routing went on, with the fallback policy
        fallback_decisions = decisions[decisions["sequence"] > decisions["sequence"][
            np.flatnonzero(decisions["risk_reason"] == int(RejectReason.MODEL_GUARD))[-1]]]
        assert len(fallback_decisions) > 0 and np.all(fallback_decisions["model_mask"] == 0)
        evaluations = engine.counters()["model_evaluations"]

        engine.set_model("fill_probability", registry.load("fill_probability"))  # fixed
        session.until(142.0)
        assert engine.model_status()["mode"] == "fallback"  # the latch holds
        assert engine.counters()["model_evaluations"] == evaluations  # no model ran
        assert session.guard_records() == [(1, "NON_FINITE_OUTPUT", 0)]

        engine.enable_model(operator="carol", reason="model replaced")
        resumed = session.mark()
        session.until(150.0)
        assert session.guard_records() == [(1, "NON_FINITE_OUTPUT", 0), (2, "NON_FINITE_OUTPUT", 0)]
        assert engine.model_status()["mode"] == "model"
        _, decisions, _ = session.since(resumed)
        assert len(decisions) > 0 and np.all(decisions["model_mask"] == 0b1111)
        assert engine.counters()["model_guard_trips"] == 1
    assert [(e["operator"], e["action"]) for e in operator_events] == [("carol", "enable_model")]


def test_out_of_range_latency_and_forced_fallbacks(name: str, events: np.ndarray,
                                                   registry: ModelRegistry) -> None:
    # an impact model far outside [-1000, 1000] bps
    with engine_for(name, registry) as engine:
        engine._core.set_model(2, constant_model(5_000.0))
        session = Session(engine, events)
        session.arrive(120.0)
        session.until(124.0)
        assert session.guard_records() == [(1, "OUTPUT_OUT_OF_RANGE", 2)]
        assert engine.counters()["model_mode"] == "fallback"
    # every decision over a 1 ns budget
    with engine_for(name, registry, latency_budget_us=0.001, latency_breaches=1) as engine:
        assert engine.params()["model_latency_budget_ns"] == 1
        session = Session(engine, events)
        session.arrive(120.0)
        session.until(122.0)
        assert session.guard_records() == [(1, "LATENCY_BUDGET", 0)]
        assert engine.model_status()["reason"] == "LATENCY_BUDGET"
    # forced through the parameter block (a Python guard or an operator), then re-enabled
    operator_events = []
    with engine_for(name, registry) as engine:
        engine.on_operator_event.append(operator_events.append)
        session = Session(engine, events)
        session.arrive(120.0)
        session.until(123.0)
        engine.force_fallback(ModelGuardReason.FEATURE_DRIFT, "psi 0.41 on book.spread_bps")
        assert engine.model_status()["mode"] == "fallback"
        mark = session.mark()
        session.until(128.0)
        _, decisions, _ = session.since(mark)
        assert len(decisions) > 0 and np.all(decisions["model_mask"] == 0)
        # a new enable generation with the reason still set does not clear it
        params = engine.params()
        engine._publish_params(1.0, model_enable_generation=params["model_enable_generation"] + 1)
        assert engine.model_status()["mode"] == "fallback"
        engine.enable_model(operator="dave", reason="drift understood")
        assert engine.model_status() == {"mode": "model", "reason": "NONE", "trips": 1,
                                         "policy": "ml_router", "fallback_policy": "best_price"}
        session.until(132.0)
        assert session.guard_records() == [(1, "FEATURE_DRIFT", 0), (2, "FEATURE_DRIFT", 0)]
    assert [(e["operator"], e["action"], e["reason"], e["detail"]) for e in operator_events] == [
        ("model_guard", "force_fallback", "FEATURE_DRIFT", "psi 0.41 on book.spread_bps"),
        ("dave", "enable_model", "drift understood", "")]


def test_an_engine_without_model_policy_reports_no_model_mode(name: str) -> None:
    with Engine(_config(name)) as engine:
        assert engine.model_status() == {"mode": "none", "reason": "NONE", "trips": 0,
                                         "policy": None, "fallback_policy": None}
        engine.force_fallback("OPERATOR", "nothing to fall back from")
        assert engine.model_status()["mode"] == "none"
    with pytest.raises(Exception, match="fallback_policy"):
        Engine(with_changes(_config(name), "guardrails.fallback_policy", "ml_router"))
