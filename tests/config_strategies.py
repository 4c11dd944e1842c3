"""Hypothesis strategies that build valid sor.config objects (shared by tests/config)."""

from __future__ import annotations

from hypothesis import strategies as st

from sor.config import (
    ACCESS_FEE_CAP_USD_PER_SHARE,
    FIX_BEGIN_STRINGS,
    Account,
    BookType,
    EngineSettings,
    FeeSchedule,
    FixEndpoint,
    GuardrailSettings,
    IdleStrategy,
    Instrument,
    OverflowPolicy,
    RiskLimits,
    RiskState,
    RouterConfig,
    RoutingRule,
    StaleSegmentPolicy,
    Venue,
    VenueKind,
)

venue_names = st.from_regex(r"[A-Z][A-Z0-9]{0,11}", fullmatch=True)
symbols = st.from_regex(r"[A-Z][A-Z0-9.]{0,7}", fullmatch=True)
comp_ids = st.from_regex(r"[!-<>-~]{1,64}", fullmatch=True)   # printable ASCII except '='
latencies_ns = st.integers(0, 1_000_000_000)


def fees(lit: bool) -> st.SearchStrategy[FeeSchedule]:
    """Fee schedules valid for a lit or a dark venue."""
    taker_cap = ACCESS_FEE_CAP_USD_PER_SHARE if lit else 0.01
    return st.builds(
        FeeSchedule,
        maker_fee_usd_per_share=st.floats(-0.01, 0.01),
        taker_fee_usd_per_share=st.floats(-0.01, taker_cap),
        routing_fee_usd_per_share=st.floats(0.0, 0.01))


fix_endpoints = st.builds(
    FixEndpoint,
    host=st.sampled_from(["10.0.0.1", "gateway.example.net", "fe80::1", "h"]),
    port=st.integers(1, 65535),
    sender_comp_id=comp_ids,
    target_comp_id=comp_ids,
    begin_string=st.sampled_from(FIX_BEGIN_STRINGS),
    heartbeat_interval_s=st.integers(1, 300))


@st.composite
def venues(draw: st.DrawFn, venue_id: int, name: str, lit: bool) -> Venue:
    """A valid venue with the given id, name and kind."""
    order_latency_ns = draw(latencies_ns)
    return Venue(
        venue_id=venue_id, name=name, kind=VenueKind.LIT if lit else VenueKind.DARK,
        book_type=draw(st.sampled_from([BookType.L3, BookType.L2])) if lit else None,
        fees=draw(fees(lit)),
        order_latency_ns=order_latency_ns,
        market_data_latency_ns=draw(latencies_ns),
        ack_latency_ns=draw(st.integers(order_latency_ns, 1_000_000_000)),
        fix=draw(st.none() | fix_endpoints),
        enabled=draw(st.booleans()))


accounts = st.builds(
    Account,
    name=st.from_regex(r"[!-~]{1,32}", fullmatch=True),
    credit_limit_usd=st.floats(1e-3, 1e12),
    max_position_shares=st.integers(1, 10**9))


@st.composite
def ranges(draw: st.DrawFn) -> tuple[float, float]:
    """A [low, high] pair with low < high."""
    low = draw(st.floats(-1e6, 1e6))
    return (low, low + draw(st.floats(1e-3, 1e6)))


@st.composite
def guardrail_settings(draw: st.DrawFn) -> GuardrailSettings:
    """Valid guardrail settings."""
    fill_window = draw(st.integers(1, 10_000))
    concentration_window = draw(st.integers(1, 10_000))
    return GuardrailSettings(
        fallback_policy=draw(st.sampled_from(["best_price", "twap", "vwap"])),
        fill_probability_range=draw(ranges()),
        adverse_move_bps_range=draw(ranges()),
        market_impact_bps_range=draw(ranges()),
        action_value_range=draw(ranges()),
        latency_budget_us=draw(st.floats(0.0, 1e6)),
        latency_breaches=draw(st.integers(1, 1000)),
        fill_rate_enabled=draw(st.booleans()),
        fill_rate_window_children=fill_window,
        fill_rate_min_children=draw(st.integers(1, fill_window)),
        fill_rate_floor_ratio=draw(st.floats(1e-6, 1.0)),
        concentration_enabled=draw(st.booleans()),
        concentration_window_children=concentration_window,
        concentration_min_children=draw(st.integers(1, concentration_window)),
        concentration_max_share=draw(st.floats(1e-6, 1.0)),
        drift_enabled=draw(st.booleans()),
        drift_window_decisions=draw(st.integers(1, 10**6)),
        drift_psi_threshold=draw(st.floats(1e-6, 10.0)))


@st.composite
def risk_limits(draw: st.DrawFn) -> RiskLimits:
    """Valid risk limits."""
    parent = draw(st.integers(1, 10**9))
    gross = draw(st.floats(1e-3, 1e12))
    return RiskLimits(
        max_order_quantity_shares=draw(st.integers(1, parent)),
        max_order_notional_usd=draw(st.floats(1e-6, gross)),
        max_parent_quantity_shares=parent,
        max_open_orders=draw(st.integers(1, 10**6)),
        max_orders_per_second=draw(st.integers(1, 10**6)),
        max_messages_per_second=draw(st.integers(1, 10**6)),
        price_band_bps=draw(st.floats(1e-6, 10_000.0)),
        max_participation_rate=draw(st.floats(0.0, 1.0)),
        participation_allowance_shares=draw(st.integers(0, 10**9)),
        reference_collar_bps=draw(st.floats(0.0, 10_000.0)),
        max_parent_notional_usd=draw(st.floats(1e-3, 1e12)),
        max_gross_notional_usd=gross,
        state=draw(st.sampled_from(list(RiskState.__members__.values()))),
        default_credit_limit_usd=draw(st.floats(1e-3, 1e12)),
        default_max_position_shares=draw(st.integers(1, 10**9)),
        accounts=draw(st.lists(accounts, max_size=3, unique_by=lambda a: a.name)),
        trading_day=draw(st.sampled_from([0, 20260102, 20261231])))


powers_of_two = st.integers(4, 30).map(lambda exponent: 1 << exponent)
engine_settings = st.builds(
    EngineSettings,
    name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,23}", fullmatch=True),
    cpu=st.none() | st.integers(0, 1023),
    sched_fifo=st.booleans(),
    sched_priority=st.integers(1, 99),
    mlockall=st.booleans(),
    idle_strategy=st.sampled_from(IdleStrategy),
    idle_sleep_ns=st.integers(1, 1_000_000_000),
    md_ring_capacity_records=powers_of_two,
    order_ring_capacity_records=powers_of_two,
    command_ring_capacity_records=powers_of_two,
    exec_ring_capacity_records=powers_of_two,
    audit_ring_capacity_records=powers_of_two,
    md_ring_overflow_policy=st.sampled_from(OverflowPolicy),
    order_ring_overflow_policy=st.sampled_from(OverflowPolicy),
    command_ring_overflow_policy=st.sampled_from(OverflowPolicy),
    exec_ring_overflow_policy=st.sampled_from(OverflowPolicy),
    audit_ring_overflow_policy=st.sampled_from(OverflowPolicy),
    overflow_spin_limit_ns=st.integers(1, 1_000_000_000),
    heartbeat_timeout_ms=st.integers(1, 60_000),
    stale_segment_policy=st.sampled_from(StaleSegmentPolicy))


@st.composite
def router_configs(draw: st.DrawFn) -> RouterConfig:
    """A valid router configuration: 1-6 venues (the first lit), 1-5 instruments, rules."""
    count = draw(st.integers(1, 6))
    ids = draw(st.lists(st.integers(0, 63), min_size=count, max_size=count, unique=True))
    names = draw(st.lists(venue_names, min_size=count, max_size=count, unique=True))
    lit = [True] + draw(st.lists(st.booleans(), min_size=count - 1, max_size=count - 1))
    venue_list = [draw(venues(ids[i], names[i], lit[i])) for i in range(count)]

    instrument_count = draw(st.integers(1, 5))
    instrument_ids = draw(st.lists(st.integers(0, 2**32 - 1), min_size=instrument_count,
                                   max_size=instrument_count, unique=True))
    instrument_symbols = draw(st.lists(symbols, min_size=instrument_count,
                                       max_size=instrument_count, unique=True))
    instruments = [
        Instrument(instrument_id=instrument_ids[i], symbol=instrument_symbols[i],
                   tick_size_ticks=draw(st.integers(1, 10**6)),
                   lot_size_shares=draw(st.integers(1, 10**4)),
                   min_quantity_shares=draw(st.integers(1, 10**4)),
                   venues=tuple(draw(st.lists(st.sampled_from(names), unique=True))),
                   reference_price_ticks=draw(st.integers(0, 10**9))
                   if instrument_ids[i] < 4096 else 0)
        for i in range(instrument_count)]

    def rule(instrument: str, allowed: list[str]) -> RoutingRule:
        chosen = draw(st.permutations(allowed))
        weights = [draw(st.floats(1e-3, 1e3))] + [draw(st.floats(0.0, 1e3)) for _ in chosen[1:]]
        dark_positive = any(w > 0 and not lit[names.index(n)] for n, w in zip(chosen, weights))
        return RoutingRule(instrument=instrument, venue_weights=tuple(zip(chosen, weights)),
                           dark_first=dark_positive and draw(st.booleans()),
                           min_dark_quantity_shares=draw(st.integers(0, 10**6)),
                           max_venues_per_order=draw(st.integers(1, 64)))

    routing = [RoutingRule(instrument="*",
                           venue_weights=tuple((n, draw(st.floats(1e-3, 1e3))) for n in names))]
    for instrument in instruments:
        if draw(st.booleans()):
            routing.append(rule(instrument.symbol, list(instrument.venues) or names))
    routing = draw(st.permutations(routing))
    restrictable = [i.symbol for i in instruments if i.instrument_id < 4096]
    risk = draw(risk_limits()).replace(
        restricted_symbols=tuple(draw(st.lists(st.sampled_from(restrictable), unique=True)))
        if restrictable else ())
    return RouterConfig(
        price_tick_usd=draw(st.sampled_from([10.0**-k for k in range(10)])),
        venues=tuple(venue_list), instruments=tuple(instruments), routing=tuple(routing),
        risk=risk, engine=draw(engine_settings), guardrails=draw(guardrail_settings()))
