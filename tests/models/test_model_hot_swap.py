"""Hot swap under load: an engine fed market data continuously by a publisher thread, with
parents working, while its models are swapped many times (directly and through the registry
and its watcher): nothing dropped, decisions contiguous, every decision tagged with the
generations it used, a corrupt promotion refused with the previous models still running."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sor import _core
from sor.engine import MODEL_SLOTS, Engine
from sor.errors import SchemaMismatchError
from sor.models.registry import ModelRegistry
from sor.models.watch import RegistryWatcher
from sor.monitor.simulate import router_config
from sor.sim import Market

_NS = 1_000_000_000
SHIPPED = Path(__file__).resolve().parents[2] / "models"
SWAPPED = ("fill_probability", "adverse_move")


from sor.bench.hot_swap import variant_bytes  # noqa: E402 - one definition, shared


def stage_variant(registry: ModelRegistry, name: str, shift: float) -> int:
    """Stages a variant of the model in use; returns its version."""
    card = registry.card(name)
    reference = np.load(registry.root / registry.entry(name).reference_rows)
    return registry.stage(name, variant_bytes(registry.onnx_bytes(name), shift), card,
                          lambda c: "card\n", reference).version


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    with Market("default", seed=5, record_events=True) as market:
        market.run_until(market.session_start_ns + 90 * _NS)
        parts = [market.events(int(v.venue_id)) for v in market.spec.venues]
    events = np.concatenate([p for p in parts if len(p)])
    return events[np.argsort(events["ts_recv"], kind="stable")]


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    shutil.copytree(SHIPPED, tmp_path / "models")
    registry = ModelRegistry(tmp_path / "models")
    for name in SWAPPED:
        assert stage_variant(registry, name, 0.25) == 2
    return registry


def _publish_all(engine: Engine, events: np.ndarray, stop: threading.Event,
                 pause_s: float = 0.0) -> None:
    for start in range(0, len(events), 512):
        if pause_s:
            time.sleep(pause_s)  # a steady feed rather than one burst
        chunk = events[start:start + 512]
        written = 0
        while written < len(chunk):
            written += engine.publish_market_data(chunk[written:])
            if written < len(chunk):
                if stop.is_set():
                    return
                time.sleep(0.0002)


class Collector:
    """Drains the decision and audit rings (they refuse records when full)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.decisions: list[np.ndarray] = []
        self.audit: list[np.ndarray] = []

    def drain(self) -> None:
        for target, read in ((self.decisions, self.engine.read_decisions),
                             (self.audit, self.engine.read_audit)):
            batch = read()
            if len(batch):
                target.append(batch)

    def all_decisions(self) -> np.ndarray:
        return np.concatenate(self.decisions)

    def all_audit(self) -> np.ndarray:
        return np.concatenate(self.audit)


def _start(engine: Engine, events: np.ndarray, warmup: int) -> None:
    _publish_all(engine, events[:warmup], threading.Event())
    engine.wait_idle(30)
    for parent in range(1, 5):
        engine.submit_parent(parent, 0, "buy" if parent % 2 else "sell", 200_000,
                             venues=["XNAS", "BATS", "EDGX", "IEXG"])
    engine.wait_idle(10)


def test_swaps_under_load_drop_nothing_and_tag_every_decision(events, registry):
    versions = {1: {name: registry.load(name, 1) for name in SWAPPED},
                2: {name: registry.load(name, 2) for name in SWAPPED}}
    warmup = int(np.searchsorted(events["ts_recv"], events["ts_recv"][0] + 20 * _NS))
    tail = int(np.searchsorted(events["ts_recv"], events["ts_recv"][0] + 80 * _NS))
    name = f"sorhsw{os.getpid()}"
    engine = Engine(router_config(name), models=registry, policy="ml_router",
                    decision_interval_s=0.05)
    with engine:
        collector = Collector(engine)
        _start(engine, events, warmup)
        installed_sets = [engine.model_generations()]
        stop = threading.Event()
        publisher = threading.Thread(target=_publish_all,
                                     args=(engine, events[warmup:tail], stop, 0.002))
        publisher.start()
        swaps = 0
        swaps_under_load = 0
        try:
            while publisher.is_alive() or swaps < 40:
                version = 2 if swaps % 2 == 0 else 1
                engine.swap_models(versions[version], {name: version for name in SWAPPED})
                installed_sets.append(engine.model_generations())
                swaps += 1
                swaps_under_load += publisher.is_alive()
                collector.drain()
                time.sleep(0.002)
        finally:
            stop.set()
            publisher.join()
        engine.wait_idle(30)
        collector.drain()
        final = engine.model_generations()
        assert engine.model_versions["fill_probability"]["version"] == (2 if swaps % 2 else 1)
        seen_before_tail = sum(len(d) for d in collector.decisions)
        # after the last swap: the rest of the session, every decision on the final models
        _publish_all(engine, events[tail:], threading.Event())
        engine.wait_idle(30)
        time.sleep(0.05)
        collector.drain()
        counters = engine.counters()
        rings = engine.ring_stats()
    decisions = collector.all_decisions()
    audit = collector.all_audit()
    assert swaps >= 40 and swaps_under_load >= 20
    assert counters["model_swaps"] >= 2 * swaps
    # nothing dropped: every published event consumed, no ring refused a record
    assert counters["md_events"] == len(events)
    assert counters["md_rejected"] == 0
    market_ring = rings["market_data"]
    assert market_ring["written_records"] == market_ring["read_records"] == len(events)
    assert all(ring["refused_records"] == 0 for ring in rings.values())
    assert counters["decision_ring_refused"] == 0
    assert counters["audit_ring_refused"] == 0
    assert not np.any(audit["kind"] == int(_core.AuditKind.RING_OVERFLOW))
    # decisions: enough of them during the swaps, contiguous, counted by the engine
    assert seen_before_tail > 50
    assert counters["decisions"] == len(decisions)
    assert np.array_equal(decisions["sequence"], np.arange(1, len(decisions) + 1))
    # each decision's generations are ones installed, per slot never going back, and always
    # one complete installed set (the engine installs a set under a seqlock)
    slots = [MODEL_SLOTS[name] for name in sorted(MODEL_SLOTS, key=MODEL_SLOTS.__getitem__)]
    evaluated = decisions[decisions["model_mask"] != 0]
    generations = evaluated["model_generation"][:, slots].astype(np.int64)
    installed_by_slot = [{s[name] for s in installed_sets} | {g[name] for g in [final]}
                         for name in sorted(MODEL_SLOTS, key=MODEL_SLOTS.__getitem__)]
    for column, installed in enumerate(installed_by_slot):
        assert set(generations[:, column].tolist()) <= installed
        assert np.all(np.diff(generations[:, column]) >= 0)
    used = {tuple(row) for row in generations.tolist()}
    complete = {tuple(s[name] for name in sorted(s, key=MODEL_SLOTS.__getitem__))
                for s in installed_sets}
    mixed = [row for row in generations.tolist() if tuple(row) not in complete]
    assert mixed == []
    assert len({u[MODEL_SLOTS["fill_probability"]] for u in used}) > 2  # swaps were seen
    tail_decisions = decisions[seen_before_tail:]
    assert len(tail_decisions) > 0
    expected = tuple(final[name] for name in sorted(final, key=MODEL_SLOTS.__getitem__))
    for row in tail_decisions[tail_decisions["model_mask"] != 0]:
        assert tuple(int(g) for g in row["model_generation"][slots]) == expected
    # the final models' outputs are the installed models' predictions
    final_models = engine.models
    rows = np.ascontiguousarray(tail_decisions["features"])
    for name in SWAPPED:
        outputs = tail_decisions["model_output"][:, MODEL_SLOTS[name]]
        mask = ~np.isnan(outputs)
        assert np.array_equal(outputs[mask], final_models[name].predict(rows[mask]))


def test_watcher_swaps_promotions_and_refuses_a_corrupt_one(events, registry):
    reports: list[dict] = []
    name = f"sorwat{os.getpid()}"
    with Engine(router_config(name), models=registry, policy="ml_router",
                decision_interval_s=0.05) as engine:
        collector = Collector(engine)
        warmup = int(np.searchsorted(events["ts_recv"], events["ts_recv"][0] + 20 * _NS))
        _start(engine, events, warmup)
        watcher = RegistryWatcher(engine, registry, interval_s=0.01, on_event=reports.append)
        assert watcher.check_now() is None  # the engine runs the versions in use
        stop = threading.Event()
        publisher = threading.Thread(target=_publish_all,
                                     args=(engine, events[warmup:], stop))
        publisher.start()
        try:
            for round_number in range(3):
                registry.promote({n: 2 for n in SWAPPED}, operator="ops",
                                 reason=f"round {round_number}")
                event = watcher.check_now()
                assert event["kind"] == "models_swapped"
                assert event["models"] == {n: {"from": 1, "to": 2} for n in SWAPPED}
                assert event["operator"] == "ops" and event["reason"] == f"round {round_number}"
                assert {n: v["version"] for n, v in engine.model_versions.items()
                        if n in SWAPPED} == {n: 2 for n in SWAPPED}
                registry.rollback(operator="ops", reason="back")
                event = watcher.check_now()
                assert event["models"] == {n: {"from": 2, "to": 1} for n in SWAPPED}
                collector.drain()
            # staging changes the fingerprint, not the versions in use: nothing to swap
            version = stage_variant(registry, "fill_probability", 0.5)
            assert watcher.check_now() is None
            # a staged file corrupted after staging: promotion refuses it (hash check); one
            # corrupted between the promotion and the watcher's load is refused by the watcher
            registry.promote({"fill_probability": version}, operator="ops", reason="v3")
            path = registry.path("fill_probability")
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
            before = engine.model_versions
            generations = engine.model_generations()
            event = watcher.check_now()
            assert event["kind"] == "model_swap_refused"
            assert event["name"] == "fill_probability" and event["version"] == version
            assert "SHA-256" in event["error"]
            assert engine.model_versions == before
            assert engine.model_generations() == generations
            assert watcher.check_now() is None  # refused once, not again every poll
            # the operator rolls back: the registry matches the engine again, nothing to do
            registry.rollback(operator="ops", reason="corrupt v3")
            assert watcher.check_now() is None
        finally:
            stop.set()
            publisher.join()
        engine.wait_idle(30)
        collector.drain()
        counters = engine.counters()
    assert [r["kind"] for r in reports] == ["models_swapped"] * 6 + ["model_swap_refused"]
    assert counters["md_events"] == len(events)
    assert counters["decision_ring_refused"] == 0
    decisions = collector.all_decisions()
    assert np.array_equal(decisions["sequence"], np.arange(1, len(decisions) + 1))


def test_watcher_thread_follows_the_registry(registry):
    name = f"sorwth{os.getpid()}"
    reports: list[dict] = []
    seen = threading.Event()

    def on_event(event: dict) -> None:
        reports.append(event)
        seen.set()

    with Engine(router_config(name), models=registry, policy="ml_router") as engine, \
            RegistryWatcher(engine, registry, interval_s=0.01, on_event=on_event) as watcher:
        assert watcher.running
        registry.promote({"adverse_move": 2}, operator="ops", reason="thread")
        assert seen.wait(30)
        assert engine.model_versions["adverse_move"]["version"] == 2
    assert not watcher.running
    assert reports[0]["kind"] == "models_swapped"
    assert reports[0]["models"] == {"adverse_move": {"from": 1, "to": 2}}
    assert reports[0]["load_ms"] > 0 and reports[0]["install_us"] > 0


def test_swap_models_checks_everything_before_installing_anything(registry):
    good = registry.load("fill_probability", 2)
    other = registry.load("adverse_move", 2)
    other.schema_hash = "0123456789abcdef"  # as a model for another feature schema would be
    name = f"sorswc{os.getpid()}"
    with Engine(router_config(name), models=registry) as engine:
        before = engine.model_generations()
        with pytest.raises(SchemaMismatchError, match="0123456789abcdef"):
            engine.swap_models({"fill_probability": good, "adverse_move": other})
        assert engine.model_generations() == before
        assert engine.model_versions["fill_probability"]["version"] == 1
        generations = engine.swap_models({"fill_probability": good}, {"fill_probability": 2})
        assert generations == {"fill_probability": before["fill_probability"] + 1}
        assert engine.model_versions["fill_probability"] == {"version": 2,
                                                             "sha256": good.sha256}


@pytest.mark.slow
def test_the_hot_swap_benchmark_runs_short():
    from sor.bench.hot_swap import format_report, run

    report = run(interval_ms=5.0, seconds=3.0, probe_s=0.2, fix=False)
    engine = report["engine"]
    assert engine["no_swaps"]["swaps"] == 0 and engine["swaps"]["swaps"] > 0
    assert engine["swaps"]["md_events"] == engine["no_swaps"]["md_events"] > 0
    assert engine["swaps"]["decision_ring_refused"] == 0
    assert report["gil"]["loading"]["loads"] > 0
    assert "engine md chunk consumed, swaps" in format_report(report)
