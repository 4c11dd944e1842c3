"""The engine's risk checks (sor::check_child, sor::check_parent, the functions the engine calls
for every child and every parent) agree with a slow Python statement of docs/guardrails.md
over random orders, states and parameter blocks: same reason, same measured value, same limit.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_reference import check_child, check_parent

from sor import _core

STATES = ["ACTIVE", "REDUCING", "HALTED"]
SIDES = ["BUY", "SELL"]

# Values cluster around the limits so both sides of every comparison are drawn.
small_shares = st.integers(0, 3_000)
prices = st.integers(990_000, 1_010_000)
money = st.floats(0.0, 2e6, allow_nan=False)


@st.composite
def params(draw: st.DrawFn) -> dict:
    p = _core.default_engine_params()
    p.pop("version")
    p["price_tick_usd"] = draw(st.sampled_from([0.0001, 0.01]))
    p["max_order_quantity_shares"] = draw(st.integers(1, 3_000))
    p["max_parent_quantity_shares"] = draw(st.integers(1, 5_000))
    p["max_order_notional_usd"] = draw(st.floats(1.0, 2e5))
    p["max_gross_notional_usd"] = draw(st.floats(1.0, 3e6))
    p["max_parent_notional_usd"] = draw(st.floats(1.0, 5e5))
    p["price_band_bps"] = draw(st.floats(0.01, 200.0))
    p["reference_collar_bps"] = draw(st.sampled_from([0.0, 5.0, 50.0, 150.0]))
    p["max_open_orders"] = draw(st.integers(1, 70_000))
    p["max_orders_per_second"] = draw(st.integers(1, 100))
    p["max_messages_per_second"] = draw(st.integers(1, 100))
    p["max_participation_rate"] = draw(st.sampled_from([0.0, 0.05, 0.25, 1.0]))
    p["participation_allowance_shares"] = draw(st.integers(0, 1_000))
    p["enabled_venue_mask"] = draw(st.integers(0, 2**64 - 1))
    p["restricted_instruments"] = draw(st.lists(st.integers(0, 8), max_size=3, unique=True))
    p["account_enabled_mask"] = draw(st.integers(0, 2**64 - 1))
    credit = [draw(st.floats(0.0, 3e6)) for _ in range(4)]
    position = [draw(st.integers(0, 6_000)) for _ in range(4)]
    # accounts 0, 1, 2 and 63 are the ones drawn below
    p["account_credit_limit_usd"] = credit[:3] + [1e9] * 60 + credit[3:]
    p["account_max_position_shares"] = position[:3] + [10**9] * 60 + position[3:]
    p["risk_state"] = draw(st.sampled_from(STATES))
    return p


def core_params(p: dict) -> dict:
    out = dict(p)
    out["risk_state"] = _core.RiskState.__members__[p["risk_state"]]
    return out


@st.composite
def children(draw: st.DrawFn, state: str) -> dict:
    bid = draw(st.sampled_from([0, 999_900, 1_000_000]))
    ask = draw(st.sampled_from([0, 999_800, 1_000_100, 1_000_300]))
    return {
        "risk_state": state,
        "instrument_id": draw(st.sampled_from([0, 1, 2, 5, 4095, 4096])),
        "account_id": draw(st.sampled_from([0, 1, 2, 63, 64])),
        "side": draw(st.sampled_from(SIDES)),
        "venue_id": draw(st.sampled_from([0, 1, 3, 63, 64])),
        "price_ticks": draw(st.one_of(st.just(0), prices)),
        "quantity": draw(st.integers(1, 3_000)),
        "bid_price_ticks": bid,
        "ask_price_ticks": ask,
        "reference_price_ticks": draw(st.one_of(st.just(0), prices)),
        "gross_notional_usd": draw(money),
        "open_orders": draw(st.integers(0, 70_000)),
        "order_tokens": draw(st.floats(-50.0, 100.0)),
        "message_tokens": draw(st.floats(-50.0, 100.0)),
        "parent_traded_shares": draw(small_shares),
        "market_volume_shares": draw(st.integers(0, 20_000)),
        "account_filled_notional_usd": draw(money),
        "account_open_notional_usd": draw(money),
        "position_shares": draw(st.integers(-4_000, 4_000)),
        "open_same_side_shares": draw(small_shares),
        "model_refused": draw(st.booleans()),
    }


@st.composite
def parents(draw: st.DrawFn, state: str) -> dict:
    return {
        "risk_state": state,
        "instrument_id": draw(st.sampled_from([0, 1, 2, 5, 4095, 4096, 10_000])),
        "account_id": draw(st.sampled_from([0, 1, 2, 63, 64, 1000])),
        "side": draw(st.sampled_from(SIDES)),
        "quantity": draw(st.integers(1, 6_000)),
        "limit_price_ticks": draw(st.one_of(st.just(0), prices)),
        "notional_usd": draw(st.floats(0.0, 6e5)),
        "reference_price_ticks": draw(st.one_of(st.just(0), prices)),
        "duplicate_parent": draw(st.booleans()),
        "duplicate_client_order": draw(st.booleans()),
        "client_orders_full": draw(st.booleans()),
        "client_orders_count": draw(st.integers(0, 1 << 20)),
        "client_orders_limit": draw(st.integers(0, 1 << 20)),
        "account_filled_notional_usd": draw(money),
        "account_open_notional_usd": draw(money),
        "position_shares": draw(st.integers(-6_000, 6_000)),
        "open_same_side_shares": draw(small_shares),
    }


def to_core(cls, values: dict):
    record = cls()
    for key, value in values.items():
        if key == "risk_state":
            value = _core.RiskState.__members__[value]
        elif key == "side":
            value = _core.Side.__members__[value]
        setattr(record, key, value)
    return record


def named(verdict) -> tuple[str, int, int]:
    reason, measured, limit = verdict
    return (reason.name, measured, limit)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_child_checks_match_the_reference(data) -> None:
    p = data.draw(params())
    child = data.draw(children(p["risk_state"]))
    assert named(_core.check_child_risk(to_core(_core.ChildRiskInput, child), core_params(p))) == \
        check_child(child, p)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_parent_checks_match_the_reference(data) -> None:
    p = data.draw(params())
    parent = data.draw(parents(p["risk_state"]))
    assert named(_core.check_parent_risk(to_core(_core.ParentRiskInput, parent), core_params(p))) \
        == check_parent(parent, p)


def base_child(**changes) -> dict:
    child = {"risk_state": "ACTIVE", "instrument_id": 0, "account_id": 0, "side": "BUY",
             "venue_id": 0, "price_ticks": 1_000_100, "quantity": 100,
             "bid_price_ticks": 1_000_000, "ask_price_ticks": 1_000_100,
             "reference_price_ticks": 0, "gross_notional_usd": 0.0, "open_orders": 0,
             "order_tokens": 10.0, "message_tokens": 10.0, "parent_traded_shares": 0,
             "market_volume_shares": 0, "account_filled_notional_usd": 0.0,
             "account_open_notional_usd": 0.0, "position_shares": 0, "open_same_side_shares": 0,
             "model_refused": False}
    child.update(changes)
    return child


def base_params(**changes) -> dict:
    p = _core.default_engine_params()
    p.pop("version")
    p["risk_state"] = "ACTIVE"
    p["enabled_venue_mask"] = 0b1111
    p.update(changes)
    return p


# One child per reason, with the measured value and the limit the contract gives it.
CHILD_EXAMPLES = [
    (base_params(risk_state="HALTED"), base_child(risk_state="HALTED"), ("HALTED", 0, 0)),
    (base_params(), base_child(instrument_id=4096), ("INVALID_INSTRUMENT", 0, 0)),
    (base_params(), base_child(account_id=3), ("UNKNOWN_ACCOUNT", 0, 0)),
    (base_params(risk_state="REDUCING"),
     base_child(risk_state="REDUCING", position_shares=-150, open_same_side_shares=100),
     ("REDUCING", 200, 150)),
    (base_params(), base_child(venue_id=5), ("VENUE_DISABLED", 0, 0)),
    (base_params(restricted_instruments=[0]), base_child(), ("RESTRICTED", 0, 0)),
    (base_params(max_order_quantity_shares=99), base_child(), ("MAX_ORDER_QUANTITY", 100, 99)),
    (base_params(max_order_notional_usd=10_000.0), base_child(),
     ("MAX_ORDER_NOTIONAL", 1_000_100, 1_000_000)),
    (base_params(max_gross_notional_usd=20_000.0), base_child(gross_notional_usd=10_000.0),
     ("GROSS_NOTIONAL", 2_000_100, 2_000_000)),
    (base_params(price_band_bps=0.4), base_child(), ("PRICE_BAND", 50, 40)),
    (base_params(), base_child(price_ticks=0, bid_price_ticks=0), ("PRICE_BAND", 0, 0)),
    (base_params(reference_collar_bps=0.5), base_child(reference_price_ticks=1_000_000),
     ("REFERENCE_COLLAR", 100, 50)),
    (base_params(reference_collar_bps=0.5),
     base_child(side="SELL", price_ticks=999_900, reference_price_ticks=1_000_000),
     ("REFERENCE_COLLAR", 100, 50)),
    (base_params(max_open_orders=4), base_child(open_orders=4), ("MAX_OPEN_ORDERS", 5, 4)),
    (base_params(max_orders_per_second=10), base_child(order_tokens=0.4), ("ORDER_RATE", 11, 10)),
    (base_params(max_messages_per_second=10), base_child(message_tokens=-2.5),
     ("MESSAGE_RATE", 14, 10)),
    (base_params(max_participation_rate=0.1, participation_allowance_shares=20),
     base_child(market_volume_shares=500, parent_traded_shares=10), ("PARTICIPATION", 110, 70)),
    (base_params(account_credit_limit_usd=[15_000.0] * 64),
     base_child(account_filled_notional_usd=5_000.0), ("CREDIT_LIMIT", 1_500_100, 1_500_000)),
    (base_params(account_max_position_shares=[250] * 64),
     base_child(position_shares=100, open_same_side_shares=60), ("POSITION_LIMIT", 260, 250)),
    (base_params(account_max_position_shares=[250] * 64),
     base_child(side="SELL", position_shares=-100, open_same_side_shares=60, price_ticks=1_000_000),
     ("POSITION_LIMIT", 260, 250)),
    (base_params(), base_child(model_refused=True), ("MODEL_GUARD", 0, 0)),
    (base_params(), base_child(), ("NONE", 0, 0)),
]


def test_every_child_reason_has_an_example_with_its_values() -> None:
    for p, child, expected in CHILD_EXAMPLES:
        assert check_child(child, p) == expected, expected
        assert named(_core.check_child_risk(to_core(_core.ChildRiskInput, child),
                                            core_params(p))) == expected, expected
