"""The issue-8 configuration: risk limits, accounts, the restricted list, reference prices and
[guardrails], validated with errors naming the key, written and read back exactly, edited by
key path, and what may change while the router runs."""

from __future__ import annotations

import pytest

from sor.config import (
    Account,
    ConfigError,
    ConfigStore,
    GuardrailSettings,
    RiskLimits,
    RiskState,
    default_config,
    diff,
    dump,
    loads,
    with_changes,
)


def test_defaults_document_the_new_sections() -> None:
    config = default_config()
    assert config.risk.state is RiskState.ACTIVE
    assert config.risk.accounts == () and config.risk.restricted_symbols == ()
    assert config.risk.trading_day == 0 and config.risk.max_participation_rate == 0.0
    assert config.guardrails == GuardrailSettings()
    assert config.guardrails.fallback_policy == "best_price"
    assert all(i.reference_price_ticks == 0 for i in config.instruments)
    text = dump(config)
    assert "[guardrails]" in text and 'state = "ACTIVE"' in text


@pytest.mark.parametrize(("cls", "values", "key", "fragment"), [
    (RiskLimits, {"state": "PAUSED"}, "state", "'ACTIVE', 'REDUCING', 'HALTED'"),
    (RiskLimits, {"max_parent_notional_usd": 0.0}, "max_parent_notional_usd", "> 0 USD"),
    (RiskLimits, {"max_messages_per_second": 0}, "max_messages_per_second", ">= 1"),
    (RiskLimits, {"reference_collar_bps": -1.0}, "reference_collar_bps", ">= 0 bps"),
    (RiskLimits, {"participation_allowance_shares": -1}, "participation_allowance_shares",
     ">= 0 shares"),
    (RiskLimits, {"restricted_symbols": ["aapl"]}, "restricted_symbols[0]", "symbol"),
    (RiskLimits, {"restricted_symbols": ["SPY", "SPY"]}, "restricted_symbols[1]", "duplicate"),
    (RiskLimits, {"default_credit_limit_usd": -5.0}, "default_credit_limit_usd", "> 0 USD"),
    (RiskLimits, {"default_max_position_shares": 0}, "default_max_position_shares", ">= 1"),
    (RiskLimits, {"trading_day": 20260230}, "trading_day", "yyyymmdd"),
    (RiskLimits, {"trading_day": 2026}, "trading_day", "yyyymmdd"),
    (RiskLimits, {"accounts": [Account(name="A", credit_limit_usd=1.0, max_position_shares=1),
                               Account(name="A", credit_limit_usd=2.0, max_position_shares=2)]},
     "accounts[1].name", "duplicate account name"),
    (RiskLimits, {"accounts": [Account(name=f"A{i}", credit_limit_usd=1.0, max_position_shares=1)
                               for i in range(64)]}, "accounts", "at most 63"),
    (Account, {"name": "has space", "credit_limit_usd": 1.0, "max_position_shares": 1}, "name",
     "printable"),
    (Account, {"name": "A", "credit_limit_usd": 0.0, "max_position_shares": 1},
     "credit_limit_usd", "> 0 USD"),
    (GuardrailSettings, {"fallback_policy": "ml_router"}, "fallback_policy", "uses no model"),
    (GuardrailSettings, {"fallback_policy": "twapp"}, "fallback_policy", "unknown policy"),
    (GuardrailSettings, {"fallback_policy": "twap", "fallback_policy_params": {"slicez": 3}},
     "fallback_policy_params", "slicez"),
    (GuardrailSettings, {"fill_probability_range": [1.0, 0.0]}, "fill_probability_range",
     "low < high"),
    (GuardrailSettings, {"action_value_range": [0.0]}, "action_value_range", "two numbers"),
    (GuardrailSettings, {"adverse_move_bps_range": [0.0, "x"]}, "adverse_move_bps_range[1]",
     "number"),
    (GuardrailSettings, {"latency_budget_us": -1.0}, "latency_budget_us", ">= 0 us"),
    (GuardrailSettings, {"latency_breaches": 0}, "latency_breaches", ">= 1"),
    (GuardrailSettings, {"fill_rate_window_children": 10, "fill_rate_min_children": 20},
     "fill_rate_min_children", "<= fill_rate_window_children"),
    (GuardrailSettings, {"concentration_max_share": 1.5}, "concentration_max_share", "<= 1"),
    (GuardrailSettings, {"drift_psi_threshold": 0.0}, "drift_psi_threshold", "> 0"),
    (GuardrailSettings, {"drift_features": ["no.such_feature"]}, "drift_features[0]",
     "no feature"),
])
def test_bad_values_are_refused_naming_the_key(cls, values, key, fragment) -> None:
    with pytest.raises(ConfigError) as caught:
        cls(**values)
    assert caught.value.key == key
    assert fragment in caught.value.reason


def test_cross_checks_name_the_full_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        with_changes(default_config(), "risk.restricted_symbols", ["GOOG"])
    assert caught.value.key == "risk.restricted_symbols[0]" and "GOOG" in caught.value.reason
    config = with_changes(default_config(), "instruments[AAPL].instrument_id", 5000)
    with pytest.raises(ConfigError) as caught:
        with_changes(config, "instruments[AAPL].reference_price_ticks", 1)
    assert caught.value.key == "instruments[0].reference_price_ticks"
    with pytest.raises(ConfigError) as caught:
        with_changes(config, "risk.restricted_symbols", ["AAPL"])
    assert "below 4096" in caught.value.reason


TOML = '''
[[venues]]
venue_id = 0
name = "XNAS"
kind = "lit"

[[instruments]]
instrument_id = 0
symbol = "AAPL"
reference_price_ticks = 1_900_000

[[routing]]
venue_weights = { XNAS = 1.0 }

[risk]
state = "REDUCING"
restricted_symbols = ["AAPL"]
trading_day = 20260316

[[risk.accounts]]
name = "ACCT1"
credit_limit_usd = 1_000_000.0
max_position_shares = 5_000

[[risk.accounts]]
name = "ACCT2"
credit_limit_usd = 2_000_000.0
max_position_shares = 6_000

[guardrails]
fallback_policy = "twap"
fallback_policy_params = { slices = 12 }
fill_probability_range = [0.0, 1.0]
latency_budget_us = 250.0
drift_features = ["order.side"]
'''


def test_the_new_sections_load_and_round_trip_exactly() -> None:
    config = loads(TOML)
    assert config.risk.state is RiskState.REDUCING
    assert [a.name for a in config.risk.accounts] == ["ACCT1", "ACCT2"]
    assert config.risk.account_id("ACCT2") == 2
    assert config.instruments[0].reference_price_ticks == 1_900_000
    assert config.guardrails.fallback_policy_params == (("slices", 12.0),)
    assert config.guardrails.drift_features == ("order.side",)
    assert loads(dump(config)) == config
    with pytest.raises(ConfigError) as caught:
        loads(TOML.replace("latency_budget_us", "latency_budget"))
    assert caught.value.key == "guardrails.latency_budget" and "latency_budget_us" in caught.value.reason
    with pytest.raises(ConfigError) as caught:
        loads(TOML.replace("max_position_shares = 6_000", "max_position = 6_000"))
    assert caught.value.key == "risk.accounts[1].max_position"


def test_accounts_are_edited_and_compared_by_name() -> None:
    config = loads(TOML)
    changed = with_changes(config, "risk.accounts[ACCT2].credit_limit_usd", 3e6)
    assert [str(c) for c in diff(config, changed)] == [
        "risk.accounts[ACCT2].credit_limit_usd: 2000000.0 -> 3000000.0"]
    added = with_changes(changed, "risk.accounts",
                         [*[{"name": a.name, "credit_limit_usd": a.credit_limit_usd,
                             "max_position_shares": a.max_position_shares}
                            for a in changed.risk.accounts],
                          {"name": "ACCT3", "credit_limit_usd": 1.0, "max_position_shares": 1}])
    assert [c.key for c in diff(changed, added)] == ["risk.accounts[ACCT3]"]


def test_live_changes_keep_account_ids_and_the_fallback_policy() -> None:
    config = loads(TOML)
    store = ConfigStore(config, running=True)
    store.update(lambda c: with_changes(c, "risk.state", "HALTED"))
    store.update(lambda c: with_changes(c, "guardrails.latency_budget_us", 10.0))
    store.update(lambda c: with_changes(c, "risk.accounts[ACCT1].max_position_shares", 1))
    appended = store.current.risk.accounts + (
        Account(name="ACCT3", credit_limit_usd=1.0, max_position_shares=1),)
    store.update(lambda c: c.replace(risk=c.risk.replace(accounts=appended)))
    assert store.current.risk.account_id("ACCT3") == 3
    for change, key in (
            (lambda c: c.replace(risk=c.risk.replace(accounts=c.risk.accounts[1:])), "risk.accounts"),
            (lambda c: c.replace(risk=c.risk.replace(accounts=c.risk.accounts[::-1])),
             "risk.accounts"),
            (lambda c: c.replace(guardrails=c.guardrails.replace(
                fallback_policy="best_price", fallback_policy_params=())),
             "guardrails.fallback_policy")):
        version = store.version
        with pytest.raises(ConfigError, match="restart-only") as caught:
            store.update(change)
        assert caught.value.key == key and store.version == version
