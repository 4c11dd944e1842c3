"""sor.config.model: every type validates on construction, with the key and the reason."""

from __future__ import annotations

import dataclasses

import pytest

from sor.config import (
    ACCESS_FEE_CAP_USD_PER_SHARE,
    BookType,
    ConfigError,
    EngineSettings,
    FeeSchedule,
    FixEndpoint,
    IdleStrategy,
    Instrument,
    RiskLimits,
    RiskState,
    RouterConfig,
    RoutingRule,
    Venue,
    VenueKind,
    default_config,
)


def refused(build, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        build(**kwargs)
    return caught.value


def lit(**changes) -> Venue:
    return Venue(**{"venue_id": 0, "name": "XNAS", "kind": VenueKind.LIT, **changes})


def small_config(**changes) -> RouterConfig:
    values = {
        "venues": (lit(), Venue(venue_id=1, name="DARK", kind=VenueKind.DARK)),
        "instruments": (Instrument(instrument_id=0, symbol="AAPL"),),
        "routing": (RoutingRule(venue_weights={"XNAS": 1.0, "DARK": 0.5}),),
    }
    values.update(changes)
    return RouterConfig(**values)


def test_defaults_are_explicit_and_valid():
    assert FeeSchedule() == FeeSchedule(maker_fee_usd_per_share=0.0, taker_fee_usd_per_share=0.003,
                                        routing_fee_usd_per_share=0.0)
    engine = EngineSettings()
    assert engine.cpu is None and engine.idle_strategy is IdleStrategy.YIELD
    assert not engine.sched_fifo and not engine.mlockall
    risk = RiskLimits()
    assert risk.max_order_quantity_shares <= risk.max_parent_quantity_shares
    assert risk.state is RiskState.ACTIVE and risk.max_participation_rate == 0.0  # 0: off
    instrument = Instrument(instrument_id=7, symbol="MSFT")
    assert (instrument.tick_size_ticks, instrument.lot_size_shares, instrument.venues) == (100, 100, ())


def test_lit_venue_defaults_to_an_l3_book_and_a_dark_venue_has_none():
    assert lit().book_type is BookType.L3 and lit().lit
    assert lit(book_type="L2").book_type is BookType.L2
    dark = Venue(venue_id=4, name="DARK", kind="dark")
    assert dark.book_type is None and dark.kind is VenueKind.DARK and not dark.lit
    error = refused(Venue, venue_id=4, name="DARK", kind=VenueKind.DARK, book_type=BookType.L3)
    assert error.key == "book_type" and "dark pool displays no book" in error.reason


def test_the_access_fee_cap_binds_lit_venues_only():
    capped = FeeSchedule(taker_fee_usd_per_share=0.005)
    error = refused(lit, fees=capped)
    assert error.key == "fees.taker_fee_usd_per_share"
    assert error.reason == ("must be <= 0.0030 USD/share (Reg NMS Rule 610 access fee cap) for a "
                            "lit venue, got 0.005")
    assert lit(fees=FeeSchedule(taker_fee_usd_per_share=ACCESS_FEE_CAP_USD_PER_SHARE))
    dark = Venue(venue_id=1, name="DARK", kind=VenueKind.DARK, fees=capped)
    assert dark.fees.taker_fee_usd_per_share == 0.005


@pytest.mark.parametrize(("build", "kwargs", "key", "reason"), [
    (FeeSchedule, {"maker_fee_usd_per_share": -0.02}, "maker_fee_usd_per_share", "between -0.01"),
    (FeeSchedule, {"routing_fee_usd_per_share": -0.001}, "routing_fee_usd_per_share", ">= 0"),
    (FeeSchedule, {"taker_fee_usd_per_share": float("nan")}, "taker_fee_usd_per_share", "finite"),
    (FeeSchedule, {"taker_fee_usd_per_share": "0.003"}, "taker_fee_usd_per_share", "a number"),
    (lit, {"venue_id": 64}, "venue_id", "<= 63"),
    (lit, {"venue_id": -1}, "venue_id", ">= 0"),
    (lit, {"venue_id": True}, "venue_id", "an integer, got bool"),
    (lit, {"name": "xnas"}, "name", "uppercase"),
    (lit, {"name": ""}, "name", "uppercase"),
    (lit, {"kind": "LIT"}, "kind", "one of 'lit', 'dark'"),
    (lit, {"book_type": "L1"}, "book_type", "one of 'L3', 'L2'"),
    (lit, {"order_latency_ns": -5}, "order_latency_ns", ">= 0 ns"),
    (lit, {"order_latency_ns": 10, "ack_latency_ns": 5}, "ack_latency_ns", "order_latency_ns"),
    (lit, {"fees": {"taker_fee_usd_per_share": 0.001}}, "fees", "must be a FeeSchedule"),
    (lit, {"enabled": 1}, "enabled", "true or false"),
    (FixEndpoint, {"host": "10.0.0.1", "port": 0, "sender_comp_id": "A", "target_comp_id": "B"},
     "port", ">= 1"),
    (FixEndpoint, {"host": "10.0.0.1", "port": 70000, "sender_comp_id": "A",
                   "target_comp_id": "B"}, "port", "<= 65535"),
    (FixEndpoint, {"host": "bad host", "port": 1, "sender_comp_id": "A", "target_comp_id": "B"},
     "host", "host name"),
    (FixEndpoint, {"host": "h", "port": 1, "sender_comp_id": "A B", "target_comp_id": "B"},
     "sender_comp_id", "without spaces"),
    (FixEndpoint, {"host": "h", "port": 1, "sender_comp_id": "A", "target_comp_id": "B=C"},
     "target_comp_id", "'='"),
    (FixEndpoint, {"host": "h", "port": 1, "sender_comp_id": "A", "target_comp_id": "B",
                   "begin_string": "FIX.5.0"}, "begin_string", "'FIX.4.2'"),
    (FixEndpoint, {"host": "h", "port": 1, "sender_comp_id": "A", "target_comp_id": "B",
                   "heartbeat_interval_s": 0}, "heartbeat_interval_s", ">= 1 s"),
    (Instrument, {"instrument_id": 2**32, "symbol": "A"}, "instrument_id", "<= 4294967295"),
    (Instrument, {"instrument_id": 0, "symbol": "TOOLONGSYM"}, "symbol", "1 to 8"),
    (Instrument, {"instrument_id": 0, "symbol": "A", "tick_size_ticks": 0}, "tick_size_ticks",
     ">= 1 ticks"),
    (Instrument, {"instrument_id": 0, "symbol": "A", "lot_size_shares": 0}, "lot_size_shares",
     ">= 1 shares"),
    (Instrument, {"instrument_id": 0, "symbol": "A", "venues": "XNAS"}, "venues", "an array"),
    (Instrument, {"instrument_id": 0, "symbol": "A", "venues": ["XNAS", 3]}, "venues[1]",
     "a string"),
    (Instrument, {"instrument_id": 0, "symbol": "A", "venues": ["XNAS", "XNAS"]}, "venues[1]",
     "duplicate venue 'XNAS'"),
    (RoutingRule, {"venue_weights": {}}, "venue_weights", "at least one venue a weight > 0"),
    (RoutingRule, {"venue_weights": {"XNAS": 0.0}}, "venue_weights", "weight > 0"),
    (RoutingRule, {"venue_weights": {"XNAS": -1.0}}, "venue_weights.XNAS", ">= 0"),
    (RoutingRule, {"venue_weights": {"XNAS": True}}, "venue_weights.XNAS", "a number"),
    (RoutingRule, {"venue_weights": {"xnas": 1.0}}, "venue_weights", "venue names"),
    (RoutingRule, {"venue_weights": (("XNAS", 1.0), ("XNAS", 2.0))}, "venue_weights[1]",
     "duplicate venue"),
    (RoutingRule, {"instrument": "aapl", "venue_weights": {"XNAS": 1.0}}, "instrument", "'*'"),
    (RoutingRule, {"venue_weights": {"XNAS": 1.0}, "max_venues_per_order": 0},
     "max_venues_per_order", ">= 1"),
    (RiskLimits, {"max_order_quantity_shares": 0}, "max_order_quantity_shares", ">= 1 shares"),
    (RiskLimits, {"max_order_notional_usd": 0.0}, "max_order_notional_usd", "> 0 USD"),
    (RiskLimits, {"max_participation_rate": 1.5}, "max_participation_rate", "<= 1"),
    (RiskLimits, {"max_participation_rate": -0.1}, "max_participation_rate", ">= 0"),
    (RiskLimits, {"price_band_bps": 20_000.0}, "price_band_bps", "<= 10000 bps"),
    (RiskLimits, {"max_order_quantity_shares": 10, "max_parent_quantity_shares": 5},
     "max_order_quantity_shares", "max_parent_quantity_shares"),
    (RiskLimits, {"max_order_notional_usd": 10.0, "max_gross_notional_usd": 5.0},
     "max_order_notional_usd", "max_gross_notional_usd"),
    (RiskLimits, {"state": "STOPPED"}, "state", "'ACTIVE', 'REDUCING', 'HALTED'"),
    (EngineSettings, {"name": "sor/x"}, "name", "shared-memory"),
    (EngineSettings, {"cpu": -1}, "cpu", ">= 0"),
    (EngineSettings, {"sched_priority": 100}, "sched_priority", "<= 99"),
    (EngineSettings, {"idle_strategy": "busy"}, "idle_strategy", "'spin', 'yield', 'sleep'"),
    (EngineSettings, {"md_ring_capacity_records": 1000}, "md_ring_capacity_records",
     "power of two"),
    (EngineSettings, {"audit_ring_capacity_records": 8}, "audit_ring_capacity_records",
     ">= 16 records"),
    (EngineSettings, {"order_ring_overflow_policy": "drop"}, "order_ring_overflow_policy",
     "'spin', 'refuse'"),
    (EngineSettings, {"stale_segment_policy": "ignore"}, "stale_segment_policy", "'takeover'"),
    (EngineSettings, {"heartbeat_timeout_ms": 0}, "heartbeat_timeout_ms", ">= 1 ms"),
])
def test_each_rule_is_refused_with_its_key_and_reason(build, kwargs, key, reason):
    error = refused(build, **kwargs)
    assert error.key == key and reason in error.reason, str(error)
    assert str(error) == f"{key}: {error.reason}" and error.source is None


@pytest.mark.parametrize(("changes", "key", "reason"), [
    ({"venues": (lit(), lit(name="BATS"))}, "venues[1].venue_id", "duplicate venue id 0"),
    ({"venues": (lit(), lit(venue_id=1))}, "venues[1].name", "duplicate venue name 'XNAS'"),
    ({"venues": (Venue(venue_id=1, name="DARK", kind="dark"),)}, "venues", "at least one lit"),
    ({"instruments": ()}, "instruments", "at least one instrument"),
    ({"instruments": (Instrument(instrument_id=0, symbol="AAPL"),
                      Instrument(instrument_id=0, symbol="MSFT"))},
     "instruments[1].instrument_id", "duplicate instrument id 0"),
    ({"instruments": (Instrument(instrument_id=0, symbol="AAPL"),
                      Instrument(instrument_id=1, symbol="AAPL"))},
     "instruments[1].symbol", "duplicate symbol 'AAPL'"),
    ({"instruments": (Instrument(instrument_id=0, symbol="AAPL", venues=("XNAX",)),)},
     "instruments[0].venues[0]", "did you mean 'XNAS'?"),
    ({"routing": (RoutingRule(venue_weights={"BATS": 1.0}),)}, "routing[0].venue_weights.BATS",
     "names no configured venue"),
    ({"routing": (RoutingRule(instrument="MSFT", venue_weights={"XNAS": 1.0}),)},
     "routing[0].instrument", "names no configured instrument: 'MSFT'"),
    ({"routing": (RoutingRule(venue_weights={"XNAS": 1.0}),
                  RoutingRule(venue_weights={"DARK": 1.0}))}, "routing[1].instrument",
     "duplicate rule for instrument '*'"),
    ({"routing": (RoutingRule(venue_weights={"XNAS": 1.0}, dark_first=True),)},
     "routing[0].dark_first", "no dark venue a weight > 0"),
    ({"routing": (RoutingRule(instrument="AAPL", venue_weights={"XNAS": 1.0}),
                  RoutingRule(venue_weights={"DARK": 1.0})),
      "instruments": (Instrument(instrument_id=0, symbol="AAPL"),
                      Instrument(instrument_id=1, symbol="MSFT", venues=("XNAS",)))},
     "instruments[1].venues", "leave 'MSFT' no venue"),
    ({"routing": (RoutingRule(instrument="AAPL", venue_weights={"XNAS": 1.0}),),
      "instruments": (Instrument(instrument_id=0, symbol="AAPL"),
                      Instrument(instrument_id=1, symbol="MSFT"))},
     "routing", "no rule for 'MSFT' and no '*' rule"),
    ({"price_tick_usd": 0.0003}, "price_tick_usd", "power of ten"),
    ({"price_tick_usd": 0}, "price_tick_usd", "power of ten"),
    ({"risk": {"max_open_orders": 5}}, "risk", "must be a RiskLimits"),
])
def test_cross_object_rules_name_the_source_key_and_reason(changes, key, reason):
    error = refused(small_config, source="desk.toml", **changes)
    assert (error.source, error.key) == ("desk.toml", key) and reason in error.reason, str(error)
    assert str(error).startswith(f"desk.toml: {key}: ")


def test_ints_are_accepted_for_floats_and_stored_as_floats():
    fee = FeeSchedule(maker_fee_usd_per_share=0, taker_fee_usd_per_share=0)
    assert type(fee.maker_fee_usd_per_share) is float and fee == FeeSchedule(
        maker_fee_usd_per_share=0.0, taker_fee_usd_per_share=0.0)
    assert type(small_config(price_tick_usd=1).price_tick_usd) is float
    rule = RoutingRule(venue_weights={"XNAS": 2})
    assert rule.venue_weights == (("XNAS", 2.0),) and type(rule.venue_weights[0][1]) is float


def test_objects_are_frozen_hashable_and_replace_validates_again():
    config = small_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.risk.max_open_orders = 1  # type: ignore[misc]
    assert hash(config) == hash(small_config())
    assert config.replace(risk=RiskLimits(max_open_orders=9)).risk.max_open_orders == 9
    error = refused(config.venues[0].replace, venue_id=99)
    assert error.key == "venue_id"
    error = refused(config.replace, venues=config.venues + (lit(venue_id=5, name="DARK"),))
    assert error.key == "venues[2].name" and "duplicate venue name 'DARK'" in error.reason
    assert config.source is None and config == config.replace(source="other.toml")


def test_lookups_by_name_and_by_id():
    config = default_config()
    assert config.venue("IEXG").venue_id == 3 and config.venue(3).name == "IEXG"
    assert config.venue("IEXG").book_type is BookType.L2
    assert config.instrument("MSFT").instrument_id == 1 and config.instrument(2).symbol == "SPY"
    assert config.routing_rule("AAPL").instrument == "*"
    assert config.venue_mask(["XNAS", "IEXG", 4]) == 0b11001
    with pytest.raises(KeyError):
        config.venue("XNYS")
    with pytest.raises(KeyError):
        config.venue(True)
    with pytest.raises(KeyError):
        config.instrument(99)
    rule = config.routing_rule("SPY")
    assert rule.weight("XNAS") == 1.0 and rule.weight("NOPE") == 0.0
