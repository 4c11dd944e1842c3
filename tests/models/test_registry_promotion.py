"""Registry versions: stage, promote, rollback (incl. after a rollback), history, fingerprint,
old registries, concurrent readers, the CLI."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from sor.errors import RegistryError
from sor.models.registry import ModelRegistry, parse_changes

SHIPPED = Path(__file__).resolve().parents[2] / "models"


from sor.bench.hot_swap import variant_bytes  # noqa: E402 - one definition, shared


def stage_variant(registry: ModelRegistry, name: str, shift: float):
    """Stages a variant of the model in use; returns its entry."""
    card = registry.card(name)
    reference = np.load(registry.root / registry.entry(name).reference_rows)
    return registry.stage(name, variant_bytes(registry.onnx_bytes(name), shift), card,
                          lambda c: f"# {c['name']} v{c['version']}\n", reference)


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    """A copy of the shipped registry (an old one: no versions, staged or history keys)."""
    shutil.copytree(SHIPPED, tmp_path / "models")
    return ModelRegistry(tmp_path / "models")


def test_old_registry_reads_and_stays_untouched_by_reads(registry):
    before = (registry.root / "registry.json").read_bytes()
    assert [v["status"] for v in registry.versions("fill_probability")] == ["in_use"]
    assert registry.history() == []
    assert registry.entry("fill_probability", 1) == registry.entry("fill_probability")
    assert len(registry.fingerprint()) == 64
    assert (registry.root / "registry.json").read_bytes() == before
    with pytest.raises(RegistryError, match="fill_probability.*no version 7"):
        registry.entry("fill_probability", 7)
    with pytest.raises(RegistryError, match="no_such_model"):
        registry.versions("no_such_model")


def test_stage_does_not_change_what_is_in_use(registry):
    fingerprint = registry.fingerprint()
    entry = stage_variant(registry, "fill_probability", 0.25)
    assert entry.version == 2
    assert registry.entry("fill_probability").version == 1
    assert registry.fingerprint() != fingerprint
    statuses = {v["version"]: v["status"] for v in registry.versions("fill_probability")}
    assert statuses == {1: "in_use", 2: "staged"}
    # the staged version loads and validates; the same bytes again stage nothing new
    assert registry.load("fill_probability", 2).schema_hash == entry.schema_hash
    assert stage_variant(registry, "fill_probability", 0.25).version == 2
    assert registry.onnx_bytes("fill_probability", 2) != registry.onnx_bytes("fill_probability")


def test_promote_switches_every_named_model_with_one_history_record(registry):
    fill = stage_variant(registry, "fill_probability", 0.25)
    adverse = stage_variant(registry, "adverse_move", 0.5)
    record = registry.promote({"fill_probability": fill.version, "adverse_move": adverse.version},
                              operator="alice", reason="challenger won")
    assert record["changes"] == {"adverse_move": {"from": 1, "to": 2},
                                 "fill_probability": {"from": 1, "to": 2}}
    assert record["operator"] == "alice" and record["reason"] == "challenger won"
    assert registry.in_use()["fill_probability"] == 2
    assert registry.in_use()["adverse_move"] == 2
    assert registry.in_use()["market_impact"] == 1
    assert registry.history() == [record]
    statuses = {v["version"]: v["status"] for v in registry.versions("fill_probability")}
    assert statuses == {1: "retired", 2: "in_use"}


def test_promote_errors_change_nothing(registry):
    fill = stage_variant(registry, "fill_probability", 0.25)
    before = (registry.root / "registry.json").read_bytes()
    with pytest.raises(RegistryError, match="market_impact.*no version 9"):
        registry.promote({"fill_probability": fill.version, "market_impact": 9},
                         operator="alice", reason="r")
    with pytest.raises(RegistryError, match="already in use"):
        registry.promote({"fill_probability": 1}, operator="alice", reason="r")
    with pytest.raises(RegistryError, match="operator"):
        registry.promote({"fill_probability": 2}, operator="", reason="r")
    with pytest.raises(RegistryError, match="no promotion left"):
        registry.rollback(operator="alice", reason="r")
    # a corrupt staged file is refused at promotion, naming the model and version
    path = registry.root / fill.file
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(RegistryError, match="fill_probability.*v2"):
        registry.promote({"fill_probability": 2}, operator="alice", reason="r")
    assert (registry.root / "registry.json").read_bytes() == before


def test_rollback_then_rollback_again_walks_back(registry):
    v2 = stage_variant(registry, "fill_probability", 0.25).version
    v3 = stage_variant(registry, "fill_probability", 0.5).version
    first = registry.promote({"fill_probability": v2}, operator="a", reason="p1")
    second = registry.promote({"fill_probability": v3}, operator="a", reason="p2")
    undo = registry.rollback(operator="b", reason="v3 misbehaves")
    assert undo["rollback_of"] == second["id"]
    assert undo["changes"] == {"fill_probability": {"from": v3, "to": v2}}
    assert registry.in_use()["fill_probability"] == v2
    # a rollback is never itself undone: the next one undoes the promotion before
    undo_again = registry.rollback(operator="b", reason="v2 too")
    assert undo_again["rollback_of"] == first["id"]
    assert registry.in_use()["fill_probability"] == 1
    with pytest.raises(RegistryError, match="nothing|no promotion"):
        registry.rollback(operator="b", reason="again")
    # undoing a rollback is a promotion, which a later rollback undoes
    redo = registry.promote({"fill_probability": v3}, operator="c", reason="redo")
    assert registry.rollback(operator="c", reason="undo redo")["rollback_of"] == redo["id"]
    assert registry.in_use()["fill_probability"] == 1
    assert [h["id"] for h in registry.history()] == [1, 2, 3, 4, 5, 6]


def test_rollback_of_named_models_only(registry):
    fill = stage_variant(registry, "fill_probability", 0.25).version
    adverse = stage_variant(registry, "adverse_move", 0.5).version
    record = registry.promote({"fill_probability": fill, "adverse_move": adverse},
                              operator="a", reason="both")
    undo = registry.rollback(operator="a", reason="adverse only", names=["adverse_move"])
    assert undo["rollback_of"] == record["id"]
    assert undo["changes"] == {"adverse_move": {"from": adverse, "to": 1}}
    assert registry.in_use()["fill_probability"] == fill
    # the rest of the same promotion is still there to roll back
    rest = registry.rollback(operator="a", reason="fill too")
    assert rest["rollback_of"] == record["id"]
    assert rest["changes"] == {"fill_probability": {"from": fill, "to": 1}}
    with pytest.raises(RegistryError, match="market_impact"):
        registry.rollback(operator="a", reason="r", names=["market_impact"])


def test_publish_is_stage_plus_promote(registry):
    name = "market_impact"
    card = registry.card(name)
    reference = np.load(registry.root / registry.entry(name).reference_rows)
    data = variant_bytes(registry.onnx_bytes(name), 0.1)
    entry = registry.publish(name, data, card, lambda c: "md\n", reference)
    assert entry.version == 2 and registry.in_use()[name] == 2
    (record,) = registry.history()
    assert record["operator"] == "sor train"
    assert record["changes"] == {name: {"from": 1, "to": 2}}
    # the same bytes again change nothing
    fingerprint = registry.fingerprint()
    assert registry.publish(name, data, card, lambda c: "md\n", reference).version == 2
    assert registry.fingerprint() == fingerprint


def test_concurrent_readers_never_see_half_a_registry(registry):
    v2 = stage_variant(registry, "fill_probability", 0.25).version
    v2a = stage_variant(registry, "adverse_move", 0.25).version
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    failures: list[BaseException] = []

    def reader() -> None:
        reader_registry = ModelRegistry(registry.root)
        while not stop.is_set():
            try:
                _, data = reader_registry.snapshot()
                in_use = reader_registry.in_use(data)
                seen.append((in_use["fill_probability"], in_use["adverse_move"]))
                reader_registry.load("fill_probability", data=data)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(15):
            registry.promote({"fill_probability": v2, "adverse_move": v2a},
                             operator="t", reason="up")
            registry.promote({"fill_probability": 1, "adverse_move": 1},
                             operator="t", reason="down")
    finally:
        stop.set()
        thread.join()
    assert not failures, failures
    assert seen
    # both models move together in every promotion: a reader sees both old or both new
    assert set(seen) <= {(1, 1), (v2, v2a)}
    assert len(registry.history()) == 30


def test_parse_changes():
    assert parse_changes(["fill_probability=3", "adverse_move=v2"]) == {
        "fill_probability": 3, "adverse_move": 2}
    with pytest.raises(RegistryError, match="fill_probability"):
        parse_changes(["fill_probability"])


def test_cli_versions_promote_rollback_history(registry, capsys):
    from sor.cli import main

    stage_variant(registry, "fill_probability", 0.25)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["models", *args, "--models", str(registry.root)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, err = run("versions", "fill_probability")
    assert code == 0, err
    assert "v2" in out and "staged" in out
    code, out, err = run("promote", "fill_probability=2", "--operator", "ops", "--reason", "better")
    assert code == 0, err
    assert "fill_probability 1 -> 2" in out
    code, out, err = run("promote", "fill_probability=5", "--operator", "ops", "--reason", "x")
    assert code != 0 and "no version 5" in err
    code, out, err = run("rollback", "--operator", "ops", "--reason", "worse")
    assert code == 0, err
    assert "rollback of #1" in out
    code, out, err = run("history", "--json")
    assert code == 0, err
    assert [h["operator"] for h in json.loads(out)] == ["ops", "ops"]
    assert registry.in_use()["fill_probability"] == 1
