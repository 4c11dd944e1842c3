"""The data contract of issue 8 (docs/guardrails.md): the 128-byte command, the parameter
block (layout version 4) round trip through the control segment, the enums, and
engine_params(config) mapping every configuration key."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from sor import _core
from sor.config import Account, default_config, with_changes
from sor.engine import (
    AuditKind,
    CommandKind,
    Engine,
    ModelGuardReason,
    RejectReason,
    RiskState,
    engine_params,
    today_utc,
)
from sor.errors import UsageError
from sor.ring import COMMAND_DTYPE


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    prefix = f"sorparams{os.getpid()}{request.node.name[-10:].replace('[', '').replace(']', '')}"
    yield prefix
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(prefix)], "segments leaked"


def test_command_is_128_bytes_with_the_contract_layout() -> None:
    assert COMMAND_DTYPE.itemsize == 128
    layout = struct.Struct("<qQQqqqQIBBBB QdqII 32x")
    assert layout.size == 128
    record = np.zeros(1, COMMAND_DTYPE)
    record["ts_ns"] = 1
    record["command_id"] = 2
    record["parent_order_id"] = 3
    record["quantity"] = 4
    record["limit_price_ticks"] = 5
    record["end_time_ns"] = 6
    record["venue_mask"] = 7
    record["instrument_id"] = 8
    record["kind"] = 6
    record["side"] = 1
    record["urgency"] = 9
    record["client_order_hash"] = 0xDEADBEEF12345678
    record["notional_usd"] = 1234.5
    record["position_shares"] = -700
    record["account_id"] = 3
    assert layout.unpack(record.tobytes()) == (1, 2, 3, 4, 5, 6, 7, 8, 6, 1, 9, 0,
                                               0xDEADBEEF12345678, 1234.5, -700, 3, 0)


def test_enums_carry_the_contract_values() -> None:
    assert {k: int(v) for k, v in CommandKind.__members__.items()} == {
        "NONE": 0, "NEW_PARENT": 1, "CANCEL_PARENT": 2, "AMEND_PARENT": 3, "ACCOUNT_STATE": 6}
    reasons = {k: int(v) for k, v in RejectReason.__members__.items()}
    assert [reasons[k] for k in ("RESTRICTED", "CREDIT_LIMIT", "POSITION_LIMIT", "PARTICIPATION",
                                 "MESSAGE_RATE", "REFERENCE_COLLAR", "MAX_PARENT_NOTIONAL",
                                 "DUPLICATE_CLIENT_ORDER_ID", "REDUCING", "MODEL_GUARD",
                                 "UNKNOWN_ACCOUNT", "INVALID_INSTRUMENT")] == list(range(14, 26))
    assert int(AuditKind.MODEL_GUARD) == 11 and int(AuditKind.ACCOUNT_STATE) == 12
    assert [int(v) for v in ModelGuardReason.__members__.values()] == list(range(9))
    assert [int(v) for v in RiskState.__members__.values()] == [0, 1, 2]
    assert _core.ENGINE_LAYOUT_VERSION == 4
    assert _core.MAX_ACCOUNTS == 64 and _core.MAX_RISK_INSTRUMENTS == 4096


def full_params() -> dict:
    """A parameter block with every key away from its default."""
    params = _core.default_engine_params()
    params.pop("version")
    params.update({
        "risk_state": RiskState.REDUCING,
        "max_parent_notional_usd": 1234567.0,
        "max_messages_per_second": 77,
        "max_participation_rate": 0.25,
        "participation_allowance_shares": 300,
        "reference_collar_bps": 150.0,
        "reference_price_ticks": {0: 1_000_000, 7: 55, 4095: 9},
        "restricted_instruments": [1, 64, 4095],
        "account_enabled_mask": 0b1011,
        "account_credit_limit_usd": [float(i) for i in range(64)],
        "account_max_position_shares": list(range(100, 164)),
        "trading_day": 20260102,
        "model_output_min": [0.0, -5.0, -6.0, -7.0],
        "model_output_max": [1.0, 5.0, 6.0, 7.0],
        "model_latency_budget_ns": 12345,
        "model_latency_breaches": 3,
        "model_fallback_reason": ModelGuardReason.FEATURE_DRIFT,
        "model_enable_generation": 42,
    })
    return params


def test_every_parameter_key_round_trips_through_the_control_segment(name: str) -> None:
    with Engine(name=name) as engine:
        control = _core.EngineControl.attach(name)
        try:
            params = full_params()
            version = control.write_params(params)
            read = control.params()
            assert read.pop("version") == version
            assert set(read) == set(params)
            for key, value in params.items():
                assert read[key] == value, key
            # ints are accepted for the enum keys
            params["risk_state"] = 2
            params["model_fallback_reason"] = 8
            control.write_params(params)
            read = control.params()
            assert read["risk_state"] == RiskState.HALTED
            assert read["model_fallback_reason"] == ModelGuardReason.OPERATOR
            for bad, match in ((("risk_state", 3), "risk_state"),
                               (("restricted_instruments", [4096]), "restricted_instruments"),
                               (("reference_price_ticks", {5000: 1}), "reference_price_ticks"),
                               (("account_credit_limit_usd", [0.0] * 65), "account_credit_limit_usd")):
                broken = dict(params)
                broken[bad[0]] = bad[1]
                with pytest.raises(UsageError, match=match):
                    control.write_params(broken)
            missing = dict(params)
            del missing["trading_day"]
            with pytest.raises(UsageError, match="missing key 'trading_day'"):
                control.write_params(missing)
        finally:
            control.close()
        assert engine.counters()["risk_rejects_by_reason"] == [0] * 32


def test_engine_params_maps_every_configuration_key() -> None:
    config = with_changes(default_config(), {
        "risk.state": "REDUCING",
        "risk.max_parent_notional_usd": 2e6,
        "risk.max_messages_per_second": 90,
        "risk.max_participation_rate": 0.2,
        "risk.participation_allowance_shares": 500,
        "risk.reference_collar_bps": 250.0,
        "risk.restricted_symbols": ["SPY", "MSFT"],
        "risk.default_credit_limit_usd": 1e6,
        "risk.default_max_position_shares": 1000,
        "risk.trading_day": 20260315,
        "instruments[AAPL].reference_price_ticks": 1_500_000,
        "guardrails.fill_probability_range": [0.01, 0.99],
        "guardrails.latency_budget_us": 2.5,
        "guardrails.latency_breaches": 2,
    })
    config = config.replace(risk=config.risk.replace(accounts=(
        Account(name="ACCT1", credit_limit_usd=5e5, max_position_shares=200),
        Account(name="ACCT2", credit_limit_usd=6e5, max_position_shares=300))))
    params = engine_params(config)
    assert params["risk_state"] == RiskState.REDUCING
    assert params["max_parent_notional_usd"] == 2e6
    assert params["max_messages_per_second"] == 90
    assert params["max_participation_rate"] == 0.2
    assert params["participation_allowance_shares"] == 500
    assert params["reference_collar_bps"] == 250.0
    assert params["restricted_instruments"] == [1, 2]
    assert params["reference_price_ticks"] == {0: 1_500_000}
    assert params["account_enabled_mask"] == 0b111
    assert params["account_credit_limit_usd"][:4] == [1e6, 5e5, 6e5, 0.0]
    assert params["account_max_position_shares"][:4] == [1000, 200, 300, 0]
    assert len(params["account_credit_limit_usd"]) == 64
    assert params["trading_day"] == 20260315
    assert params["model_output_min"] == [0.01, -1000.0, -1000.0, -1e6]
    assert params["model_output_max"] == [0.99, 1000.0, 1000.0, 1e6]
    assert params["model_latency_budget_ns"] == 2500 and params["model_latency_breaches"] == 2
    assert config.risk.account_id("ACCT2") == 2 and config.risk.account_id("") == 0
    # trading_day 0 is today's UTC date (or the engine's day once it runs)
    default = engine_params(default_config())
    assert default["trading_day"] == today_utc()
    assert engine_params(default_config(), trading_day=20250101)["trading_day"] == 20250101


def test_configuration_reaches_the_running_engine_as_one_block(name: str) -> None:
    config = with_changes(default_config(), "risk.trading_day", 20260105)
    with Engine(config, name=name) as engine:
        params = engine.params()
        expected = engine_params(config)
        for key, value in expected.items():
            assert params[key] == value, key
        engine.update_config(lambda c: with_changes(c, "risk.restricted_symbols", ["MSFT"]))
        assert engine.params()["restricted_instruments"] == [1]
        assert engine.params()["trading_day"] == 20260105


def test_operator_actions_name_who_and_why_and_refuse_bad_input(name: str) -> None:
    events = []
    with Engine(name=name) as engine:
        engine.on_operator_event.append(events.append)
        with pytest.raises(UsageError, match="operator"):
            engine.halt(operator="", reason="x")
        with pytest.raises(UsageError, match="reason"):
            engine.halt(operator="eve", reason="  ")
        with pytest.raises(UsageError, match="risk state"):
            engine.set_risk_state("PAUSED", operator="eve", reason="x")
        with pytest.raises(UsageError, match="NONE"):
            engine.force_fallback("NONE")
        assert events == [] and engine.params()["risk_state"] == RiskState.ACTIVE
        engine.set_risk_state("reducing", operator="eve", reason="close out")
        assert engine.params()["risk_state"] == RiskState.REDUCING
        assert engine.counters()["risk_state"] == "reducing"
        assert engine.config.risk.state == RiskState.REDUCING
        engine.set_risk_state(0, operator="eve", reason="done")
        changes = engine.update_config(
            lambda c: with_changes(c, "risk.max_open_orders", 42), operator="eve",
            reason="tighter")
        assert [c.key for c in changes] == ["risk.max_open_orders"]
        # a configuration update keeps the handle's model-guard values
        engine.force_fallback(ModelGuardReason.OPERATOR, "manual", operator="eve")
        engine.update_config(lambda c: with_changes(c, "risk.max_open_orders", 43))
        assert engine.params()["model_fallback_reason"] == ModelGuardReason.OPERATOR
        engine.enable_model(operator="eve", reason="back")
        assert engine.params()["model_fallback_reason"] == ModelGuardReason.NONE
        assert engine.params()["model_enable_generation"] == 1
    assert [(e["action"], e["reason"], e["detail"]) for e in events] == [
        ("risk_state", "close out", "ACTIVE -> REDUCING"),
        ("risk_state", "done", "REDUCING -> ACTIVE"),
        ("update_config", "tighter", "risk.max_open_orders: 500 -> 42"),
        ("force_fallback", "OPERATOR", "manual"),
        ("enable_model", "back", "")]
    assert all(isinstance(e["ts_ns"], int) and e["operator"] == "eve" for e in events)
