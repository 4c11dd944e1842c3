"""A slow, obvious Python statement of the engine's risk checks (docs/guardrails.md), for the
parity tests of sor::check_child and sor::check_parent. Inputs are plain dicts with the field
names of ChildRiskInput / ParentRiskInput; params is the engine parameter dict."""

from __future__ import annotations

import math

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_RISK_INSTRUMENTS = 4096
MAX_IN_FLIGHT_CHILDREN = 1 << 16
STOPPING = {"RESTRICTED", "CREDIT_LIMIT", "POSITION_LIMIT", "UNKNOWN_ACCOUNT"}


def round_half_away(value: float) -> int:
    """llround: to the nearest integer, halves away from zero; saturating."""
    if math.isnan(value):
        return 0
    if not abs(value) < 9.0e18:
        return INT64_MAX if value > 0 else INT64_MIN
    magnitude = abs(value)
    whole = math.floor(magnitude)
    rounded = whole + (1 if magnitude - whole >= 0.5 else 0)
    return int(rounded) if value >= 0 else -int(rounded)


def cents(usd: float) -> int:
    return round_half_away(usd * 100.0)


def hundredths(bps: float) -> int:
    return round_half_away(bps * 100.0)


def restricted(params: dict, instrument: int) -> bool:
    return instrument in set(params["restricted_instruments"])


def account_ok(params: dict, account: int) -> bool:
    return account < 64 and bool(params["account_enabled_mask"] >> account & 1)


def collar(params: dict, side: str, price: int, reference: int):
    limit = params["reference_collar_bps"]
    if not limit > 0 or price <= 0 or reference <= 0:
        return None
    deviation = (float(price) / float(reference) - 1.0) * 1e4
    aggressive = deviation if side == "BUY" else -deviation
    if aggressive > limit:
        return ("REFERENCE_COLLAR", hundredths(aggressive), hundredths(limit))
    return None


def reducible(side: str, position: int) -> int:
    if side == "BUY":
        return -position if position < 0 else 0
    return position if position > 0 else 0


def position_after(side: str, position: int, open_same: int, quantity: int) -> int:
    after = position + open_same + quantity if side == "BUY" else position - open_same - quantity
    return abs(after)


def check_child(c: dict, params: dict) -> tuple[str, int, int]:
    """Returns (reason, measured, limit) for one child, the first limit it breaks."""
    if c["risk_state"] == "HALTED":
        return ("HALTED", 0, 0)
    if c["instrument_id"] >= MAX_RISK_INSTRUMENTS:
        return ("INVALID_INSTRUMENT", 0, 0)
    if not account_ok(params, c["account_id"]):
        return ("UNKNOWN_ACCOUNT", 0, 0)
    account = c["account_id"]
    if c["risk_state"] == "REDUCING":
        allowed = reducible(c["side"], c["position_shares"])
        if c["open_same_side_shares"] + c["quantity"] > allowed:
            return ("REDUCING", c["open_same_side_shares"] + c["quantity"], allowed)
    if c["venue_id"] >= 64 or not params["enabled_venue_mask"] >> c["venue_id"] & 1:
        return ("VENUE_DISABLED", 0, 0)
    if restricted(params, c["instrument_id"]):
        return ("RESTRICTED", 0, 0)
    if c["quantity"] > params["max_order_quantity_shares"]:
        return ("MAX_ORDER_QUANTITY", c["quantity"], params["max_order_quantity_shares"])
    bid, ask = c["bid_price_ticks"], c["ask_price_ticks"]
    price = c["price_ticks"]
    if price <= 0:
        if bid <= 0 or ask <= bid:
            return ("PRICE_BAND", 0, 0)
        price = (bid + ask) // 2
    notional = float(price) * params["price_tick_usd"] * float(c["quantity"])
    if notional > params["max_order_notional_usd"]:
        return ("MAX_ORDER_NOTIONAL", cents(notional), cents(params["max_order_notional_usd"]))
    gross = c["gross_notional_usd"] + notional
    if gross > params["max_gross_notional_usd"]:
        return ("GROSS_NOTIONAL", cents(gross), cents(params["max_gross_notional_usd"]))
    if bid > 0 and ask > 0:
        mid = 0.5 * float(bid + ask)
        away = abs(float(price) - mid) * 10_000.0 / mid
        if away > params["price_band_bps"]:
            return ("PRICE_BAND", hundredths(away), hundredths(params["price_band_bps"]))
    refused = collar(params, c["side"], price, c["reference_price_ticks"])
    if refused:
        return refused
    open_limit = min(params["max_open_orders"], MAX_IN_FLIGHT_CHILDREN)
    if c["open_orders"] >= open_limit:
        return ("MAX_OPEN_ORDERS", c["open_orders"] + 1, open_limit)
    if c["order_tokens"] < 1.0:
        limit = params["max_orders_per_second"]
        return ("ORDER_RATE", limit - math.floor(c["order_tokens"]) + 1, limit)
    if c["message_tokens"] < 1.0:
        limit = params["max_messages_per_second"]
        return ("MESSAGE_RATE", limit - math.floor(c["message_tokens"]) + 1, limit)
    rate = params["max_participation_rate"]
    if rate > 0:
        allowed = math.floor(rate * float(c["market_volume_shares"])) + \
            params["participation_allowance_shares"]
        traded = c["parent_traded_shares"] + c["quantity"]
        if traded > allowed:
            return ("PARTICIPATION", traded, allowed)
    used = c["account_filled_notional_usd"] + c["account_open_notional_usd"] + notional
    if used > params["account_credit_limit_usd"][account]:
        return ("CREDIT_LIMIT", cents(used), cents(params["account_credit_limit_usd"][account]))
    magnitude = position_after(c["side"], c["position_shares"], c["open_same_side_shares"],
                               c["quantity"])
    if magnitude > params["account_max_position_shares"][account]:
        return ("POSITION_LIMIT", magnitude, params["account_max_position_shares"][account])
    if c["model_refused"]:
        return ("MODEL_GUARD", 0, 0)
    return ("NONE", 0, 0)


def check_parent(p: dict, params: dict) -> tuple[str, int, int]:
    """Returns (reason, measured, limit) for one new parent, the first limit it breaks."""
    if p["instrument_id"] >= MAX_RISK_INSTRUMENTS:
        return ("INVALID_INSTRUMENT", 0, 0)
    if not account_ok(params, p["account_id"]):
        return ("UNKNOWN_ACCOUNT", 0, 0)
    account = p["account_id"]
    if p["risk_state"] == "HALTED":
        return ("HALTED", 0, 0)
    if restricted(params, p["instrument_id"]):
        return ("RESTRICTED", 0, 0)
    if p["duplicate_parent"]:
        return ("DUPLICATE_PARENT", 0, 0)
    if p["duplicate_client_order"]:
        return ("DUPLICATE_CLIENT_ORDER_ID", 0, 0)
    if p["quantity"] > params["max_parent_quantity_shares"]:
        return ("MAX_PARENT_QUANTITY", p["quantity"], params["max_parent_quantity_shares"])
    if p["notional_usd"] > params["max_parent_notional_usd"]:
        return ("MAX_PARENT_NOTIONAL", cents(p["notional_usd"]),
                cents(params["max_parent_notional_usd"]))
    refused = collar(params, p["side"], p["limit_price_ticks"], p["reference_price_ticks"])
    if refused:
        return refused
    if p["risk_state"] == "REDUCING":
        allowed = reducible(p["side"], p["position_shares"])
        if p["quantity"] > allowed:
            return ("REDUCING", p["quantity"], allowed)
    used = p["account_filled_notional_usd"] + p["account_open_notional_usd"] + p["notional_usd"]
    if used > params["account_credit_limit_usd"][account]:
        return ("CREDIT_LIMIT", cents(used), cents(params["account_credit_limit_usd"][account]))
    magnitude = position_after(p["side"], p["position_shares"], p["open_same_side_shares"],
                               p["quantity"])
    if magnitude > params["account_max_position_shares"][account]:
        return ("POSITION_LIMIT", magnitude, params["account_max_position_shares"][account])
    if p["client_orders_full"]:
        return ("CAPACITY", p["client_orders_count"], p["client_orders_limit"])
    return ("NONE", 0, 0)
