"""A router follows its model registry while it works orders: an OMS sends orders without a
pause while an operator promotes new model versions (and rolls them back); the watcher
hot-swaps them into the engine, every order is acknowledged and filled, none is lost, and the
swaps are events in the audit journal (whose header names the trading day, venues and
instruments) and on the console."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from gateway_support import wait_until
from sor.models.registry import ModelRegistry
from sor.monitor.journal import read_journal

SHIPPED = Path(__file__).resolve().parents[2] / "models"


from sor.bench.hot_swap import variant_bytes  # noqa: E402 - one definition, shared


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    shutil.copytree(SHIPPED, tmp_path / "models")
    registry = ModelRegistry(tmp_path / "models")
    for name in ("fill_probability", "adverse_move"):
        card = registry.card(name)
        reference = np.load(registry.root / registry.entry(name).reference_rows)
        registry.stage(name, variant_bytes(registry.onnx_bytes(name), 0.25), card,
                       lambda c: "card\n", reference)
    return registry


def test_orders_flow_while_promotions_are_hot_swapped(make_router, registry):
    router = make_router(models=registry.root, gateway_options={
        "watch_models": True, "watch_interval_s": 0.02, "console_port": None})
    gateway = router.gateway
    assert gateway.model_watcher is not None
    router.book([(0, 1_000_100, 1_000_000)], bids=[(0, 999_900, 1_000_000)])
    sent: list[str] = []
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set() and len(sent) < 400:
            order = router.oms.new_order("AAPL", "buy", 100, price="100.05")
            sent.append(order)
            router.oms.wait_for(lambda o=order: router.oms.order(o).done, 10, "order done")

    def swaps() -> list[dict]:
        return [e for e in gateway.events() if e["kind"] == "models_swapped"]

    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_until(lambda: len(sent) >= 5, 20, "orders before the promotion")
        registry.promote({"fill_probability": 2, "adverse_move": 2}, operator="ops",
                         reason="challenger won")
        wait_until(lambda: len(swaps()) == 1, 20, "the swap")
        first_after = len(sent)
        wait_until(lambda: len(sent) >= first_after + 5, 20, "orders after the swap")
        registry.rollback(operator="ops", reason="back to v1")
        wait_until(lambda: len(swaps()) == 2, 20, "the rollback's swap")
        rolled_back_at = len(sent)
        wait_until(lambda: len(sent) >= rolled_back_at + 5, 20, "orders after the rollback")
    finally:
        stop.set()
        sender.join()
    # every order acknowledged (ExecType 0) and filled in full: none lost
    for order in sent:
        view = router.oms.wait_done(order, 10)
        assert any(r.exec_type == "0" for r in view.reports), order
        assert view.cum_quantity == 100, order
    assert len(set(sent)) == len(sent) >= 15
    assert {n: v["version"] for n, v in gateway.engine.model_versions.items()} == {
        "action_value": 1, "adverse_move": 1, "fill_probability": 1, "market_impact": 1}
    first, second = swaps()
    assert first["models"] == {"adverse_move": {"from": 1, "to": 2},
                               "fill_probability": {"from": 1, "to": 2}}
    assert first["operator"] == "ops" and first["reason"] == "challenger won"
    assert second["models"]["fill_probability"] == {"from": 2, "to": 1}
    state = gateway.console_state()
    assert state["model"]["versions"]["fill_probability"]["version"] == 1
    assert state["model"]["watching"] is True
    assert any("models swapped" in e["text"] for e in state["events"])
    journal_path = gateway.audit_journal.path
    router.close()
    contents = read_journal(journal_path)
    kinds = [e["kind"] for e in contents.events]
    assert kinds.count("models_swapped") == 2
    journaled = [e for e in contents.events if e["kind"] == "models_swapped"][0]
    assert journaled["models"]["fill_probability"] == {"from": 1, "to": 2}
    assert journaled["operator"] == "ops"
    header = contents.runs[0].header["metadata"]
    assert len(header["trading_day"]) == 10 and header["trading_day"][4] == "-"
    assert header["venues"]["1"] == gateway.config.venue(1).name
    assert header["instruments"]["0"] == "AAPL"
    assert header["models"]["fill_probability"]["version"] == 1


def test_a_corrupt_promotion_is_refused_and_orders_go_on(make_router, registry):
    router = make_router(models=registry.root, gateway_options={
        "watch_models": True, "watch_interval_s": 0.02, "console_port": None})
    gateway = router.gateway
    router.book([(0, 1_000_100, 1_000_000)], bids=[(0, 999_900, 1_000_000)])
    registry.promote({"fill_probability": 2}, operator="ops", reason="v2")
    path = registry.path("fill_probability")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    wait_until(lambda: any(e["kind"] == "model_swap_refused" for e in gateway.events()), 20,
               "the refusal")
    refused = [e for e in gateway.events() if e["kind"] == "model_swap_refused"][0]
    assert refused["severity"] == "error"
    assert refused["name"] == "fill_probability" and refused["version"] == 2
    assert gateway.engine.model_versions["fill_probability"]["version"] == 1
    order = router.oms.new_order("AAPL", "buy", 100, price="100.05")
    assert router.oms.wait_done(order, 10).cum_quantity == 100
