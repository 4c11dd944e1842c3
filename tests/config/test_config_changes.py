"""sor.config.changes: diff by key path, and edits by key path that validate again."""

from __future__ import annotations

import pytest
from config_strategies import router_configs
from hypothesis import HealthCheck, given, settings

from sor.config import (
    ConfigChange,
    ConfigError,
    FixEndpoint,
    Instrument,
    Venue,
    VenueKind,
    default_config,
    diff,
    with_changes,
)


def test_equal_configs_have_no_diff():
    assert diff(default_config(), default_config().replace(source="elsewhere")) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(router_configs(), router_configs())
def test_diff_is_empty_exactly_when_configs_are_equal(first, second):
    assert (diff(first, second) == []) == (first == second)
    assert diff(first, first) == []


def test_with_changes_by_name_by_position_and_by_mapping():
    config = default_config()
    changed = with_changes(config, "venues[XNAS].fees.taker_fee_usd_per_share", 0.0025)
    assert changed.venue("XNAS").fees.taker_fee_usd_per_share == 0.0025
    assert diff(config, changed) == [
        ConfigChange("venues[XNAS].fees.taker_fee_usd_per_share", 0.003, 0.0025)]
    assert config.venue("XNAS").fees.taker_fee_usd_per_share == 0.003   # the original stands
    by_position = with_changes(config, "venues[0].fees.taker_fee_usd_per_share", 0.0025)
    assert by_position == changed
    several = with_changes(config, {"risk.max_order_quantity_shares": 5000,
                                    "engine.cpu": 3,
                                    "routing[*].venue_weights.BATS": 0,
                                    "instruments[SPY].lot_size_shares": 1})
    assert [str(change) for change in diff(config, several)] == [
        "instruments[SPY].lot_size_shares: 100 -> 1",
        "routing[*].venue_weights.BATS: 1.0 -> 0.0",
        "risk.max_order_quantity_shares: 10000 -> 5000",
        "engine.cpu: added 3",
    ]
    assert several.source == config.source


def test_with_changes_takes_objects_and_enum_members_and_none_removes():
    config = default_config()
    endpoint = FixEndpoint(host="10.0.0.9", port=9000, sender_comp_id="ME", target_comp_id="XNAS")
    with_fix = with_changes(config, "venues[XNAS].fix", endpoint)
    assert with_fix.venue("XNAS").fix == endpoint
    assert with_changes(with_fix, "venues[XNAS].fix", None) == config
    assert with_changes(with_fix, "venues[XNAS].fix.port", 9001).venue("XNAS").fix.port == 9001
    dark = with_changes(config, {"venues[IEXG].kind": VenueKind.DARK, "venues[IEXG].book_type": None})
    assert not dark.venue("IEXG").lit and dark.venue("IEXG").book_type is None
    fewer = with_changes(config, "instruments[MSFT]", None)
    assert [i.symbol for i in fewer.instruments] == ["AAPL", "SPY"]
    assert [str(c) for c in diff(config, fewer)][-1].startswith("instruments[MSFT]: removed (was {")
    pinned = with_changes(config, "engine.cpu", 2)
    assert with_changes(pinned, "engine.cpu", None).engine.cpu is None


def test_diff_reports_added_removed_and_reordered_entries():
    config = default_config()
    extra = Venue(venue_id=9, name="XNYS", kind=VenueKind.LIT)
    grown = config.replace(venues=config.venues + (extra,))
    assert diff(config, grown) == [ConfigChange("venues[XNYS]", None, extra)]
    assert diff(config, grown)[0].kind == "added" and diff(grown, config)[0].kind == "removed"
    reordered = config.replace(venues=config.venues[::-1])
    assert diff(config, reordered) == [ConfigChange(
        "venues", ("XNAS", "BATS", "EDGX", "IEXG", "DARK"), ("DARK", "IEXG", "EDGX", "BATS", "XNAS"))]
    assert diff(config, reordered)[0].kind == "changed"
    rule = config.routing[0]
    swapped = rule.replace(venue_weights=rule.venue_weights[::-1])
    assert [c.key for c in diff(config, config.replace(routing=(swapped,)))] == [
        "routing[*].venue_weights"]
    renamed = config.replace(instruments=(Instrument(instrument_id=0, symbol="AAPL"),
                                          Instrument(instrument_id=1, symbol="MSFT"),
                                          Instrument(instrument_id=2, symbol="QQQ")))
    assert [(c.key, c.kind) for c in diff(config, renamed)] == [
        ("instruments[SPY]", "removed"), ("instruments[QQQ]", "added")]


@pytest.mark.parametrize(("changes", "key", "reason"), [
    ({"venues[XNAS].fees.taker_fee_usd_per_share": 0.004},
     "venues[0].fees.taker_fee_usd_per_share", "Reg NMS Rule 610"),
    ({"risk.max_open_orders": 0}, "risk.max_open_orders", ">= 1"),
    ({"risk.max_open_orders": True}, "risk.max_open_orders", "got bool True"),
    ({"risk.max_opn_orders": 5}, "risk.max_opn_orders", "did you mean 'max_open_orders'?"),
    ({"venues[XNYS].enabled": False}, "venues[XNYS].enabled", "no entry 'XNYS'"),
    ({"venues[9].enabled": False}, "venues[9].enabled", "has 5 entries, no [9]"),
    ({"risk[0].max_open_orders": 1}, "risk[0].max_open_orders", "not a list"),
    ({"venues.enabled": False}, "venues.enabled", "does not name a table"),
    ({"[risk]": 1}, "[risk]", "is not a key path"),
    ({"venues[DARK].book_type": "L3"}, "venues[4].book_type", "dark pool displays no book"),
    ({"venues[XNAS]": None, "venues[BATS]": None, "venues[EDGX]": None, "venues[IEXG]": None,
      "routing[*].venue_weights": {"DARK": 1.0}}, "venues", "at least one lit venue"),
])
def test_refused_edits_name_the_source_key_and_reason(changes, key, reason):
    config = default_config()
    with pytest.raises(ConfigError) as caught:
        with_changes(config, changes)
    error = caught.value
    assert (error.source, error.key) == (config.source, key) and reason in error.reason, str(error)


def test_with_changes_needs_a_value_for_a_single_key():
    with pytest.raises(ConfigError, match="needs a value"):
        with_changes(default_config(), "risk.max_open_orders")
    with pytest.raises(ConfigError, match="either a key and a value"):
        with_changes(default_config(), {"risk.max_open_orders": 1}, 2)
