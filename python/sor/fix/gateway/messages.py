"""FIX message forms of the gateway: validation of the OMS's order messages into plain values,
and the bodies of the messages the router sends (ExecutionReport and OrderCancelReject to the
OMS in FIX 4.2 and 4.4 form; child NewOrderSingle, OrderCancelRequest and
OrderCancelReplaceRequest to the venues). No state lives here."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from sor.errors import OrderValidationError, SorError
from sor.fix import codec

# ExecutionReport and OrderCancelReject fields
ORDER_ID, CL_ORD_ID, ORIG_CL_ORD_ID, EXEC_ID, EXEC_TRANS_TYPE = 37, 11, 41, 17, 20
EXEC_TYPE, ORD_STATUS, SYMBOL, SIDE, ORDER_QTY, ORD_TYPE, PRICE = 150, 39, 55, 54, 38, 40, 44
TIME_IN_FORCE, EXPIRE_TIME, LAST_QTY, LAST_PX = 59, 126, 32, 31
LEAVES_QTY, CUM_QTY, AVG_PX = 151, 14, 6
TEXT, ORD_REJ_REASON, TRANSACT_TIME, CXL_REJ_RESPONSE_TO, CXL_REJ_REASON = 58, 103, 60, 434, 102
HANDL_INST, EXEC_INST, TARGET_STRATEGY, URGENCY, LAST_LIQUIDITY_IND = 21, 18, 847, 7928, 851
LAST_MKT = 30

# the AvgPx (6) precision: the exact average, rounded half-even to this many decimals
AVG_PX_DECIMALS = 8
_AVG_QUANTUM = Decimal(1).scaleb(-AVG_PX_DECIMALS)

# OrdRejReason (103) codes and the highest each version defines (4.2: 0-8; 4.4: 0-15, 99)
REJ_BROKER_OPTION, REJ_UNKNOWN_SYMBOL, REJ_EXCEEDS_LIMIT, REJ_TOO_LATE = 0, 1, 3, 4
REJ_DUPLICATE_ORDER, REJ_UNSUPPORTED, REJ_INCORRECT_QUANTITY, REJ_OTHER = 6, 11, 13, 99
REJ_UNKNOWN_ACCOUNT = 15

# CxlRejReason (102): 4.2 defines 0-3, 4.4 adds 4-6 and 99
CXL_TOO_LATE, CXL_UNKNOWN_ORDER, CXL_BROKER_OPTION, CXL_PENDING, CXL_DUPLICATE = 0, 1, 2, 3, 6

# parent order types and times in force the router takes
ORD_TYPE_MARKET, ORD_TYPE_LIMIT = 1, 2
TIF_DAY, TIF_GTD = 0, 6

# sides: 1 buy, 2 sell, 5 sell short, 6 sell short exempt (the engine works 5 and 6 as sells)
_SIDES = {"1": 1, "2": 2, "5": 2, "6": 2}

ACCOUNT = 1
EXEC_RESTATEMENT_REASON = 378
RESTATED_BROKER_OPTION = 4     # ExecRestatementReason (378) 4, in FIX 4.2 and 4.4
SOR_RISK_REASON = 7929
"""User-defined tag: the engine's RejectReason name on a report the risk controls caused."""

# the engine's RejectReason -> OrdRejReason
_ENGINE_REJECT_CODES = {
    "HALTED": REJ_BROKER_OPTION, "MAX_PARENT_QUANTITY": REJ_EXCEEDS_LIMIT,
    "MAX_ORDER_QUANTITY": REJ_EXCEEDS_LIMIT, "MAX_ORDER_NOTIONAL": REJ_EXCEEDS_LIMIT,
    "GROSS_NOTIONAL": REJ_EXCEEDS_LIMIT, "DUPLICATE_PARENT": REJ_DUPLICATE_ORDER,
    "CAPACITY": REJ_BROKER_OPTION, "INVALID_COMMAND": REJ_OTHER,
    "PRICE_BAND": REJ_EXCEEDS_LIMIT, "MAX_OPEN_ORDERS": REJ_EXCEEDS_LIMIT,
    "ORDER_RATE": REJ_EXCEEDS_LIMIT, "UNKNOWN_PARENT": REJ_OTHER,
    # RESTRICTED: 12 (surveillance option) fits, but QuickFIX's FIX 4.4 dictionary lacks it
    # (the 4.4 spec's list runs 11 into 12 by a typo) and such an OMS would reject the report
    "VENUE_DISABLED": REJ_BROKER_OPTION, "RESTRICTED": REJ_BROKER_OPTION,
    "CREDIT_LIMIT": REJ_EXCEEDS_LIMIT, "POSITION_LIMIT": REJ_EXCEEDS_LIMIT,
    "PARTICIPATION": REJ_EXCEEDS_LIMIT, "MESSAGE_RATE": REJ_EXCEEDS_LIMIT,
    "REFERENCE_COLLAR": REJ_EXCEEDS_LIMIT, "MAX_PARENT_NOTIONAL": REJ_EXCEEDS_LIMIT,
    "DUPLICATE_CLIENT_ORDER_ID": REJ_DUPLICATE_ORDER, "REDUCING": REJ_BROKER_OPTION,
    "MODEL_GUARD": REJ_BROKER_OPTION, "UNKNOWN_ACCOUNT": REJ_UNKNOWN_ACCOUNT,
    "INVALID_INSTRUMENT": REJ_UNKNOWN_SYMBOL,
}

# how a RejectReason's audit numbers (value_a measured, value_b limit) are shown in Text:
# (unit shown, divisor of the audit unit); reasons not here carry no number (0/0)
_REASON_UNITS: dict[str, tuple[str, int]] = {
    "MAX_ORDER_QUANTITY": ("shares", 1), "MAX_PARENT_QUANTITY": ("shares", 1),
    "POSITION_LIMIT": ("shares", 1), "PARTICIPATION": ("shares", 1),
    "MAX_ORDER_NOTIONAL": ("USD", 100), "GROSS_NOTIONAL": ("USD", 100),
    "CREDIT_LIMIT": ("USD", 100), "MAX_PARENT_NOTIONAL": ("USD", 100),
    "PRICE_BAND": ("bps", 100), "REFERENCE_COLLAR": ("bps", 100),
    "ORDER_RATE": ("orders/s", 1), "MESSAGE_RATE": ("messages/s", 1),
    "MAX_OPEN_ORDERS": ("orders", 1), "REDUCING": ("shares", 1), "CAPACITY": ("entries", 1),
}

# what a reason without numbers means, for Text
_REASON_TEXTS = {
    "HALTED": "routing is halted",
    "REDUCING": "routing is reducing: only orders that reduce the account's position are "
                "accepted",
    "RESTRICTED": "the instrument is on the restricted list",
    "UNKNOWN_ACCOUNT": "the account is not configured",
    "DUPLICATE_CLIENT_ORDER_ID": "the ClOrdID was already used today",
    "DUPLICATE_PARENT": "the order id is already working",
    "MODEL_GUARD": "the model guard refused the order",
    "VENUE_DISABLED": "the venue is disabled",
    "INVALID_INSTRUMENT": "the instrument id is outside the risk tables",
    "INVALID_COMMAND": "the engine refused the command",
    "UNKNOWN_PARENT": "the engine does not know the order",
    "CAPACITY": "the engine is at capacity",
}


def risk_text(reason_name: str, measured: int = 0, limit: int = 0,
              detail: str | None = None) -> str:
    """Returns the Text (58) for a risk refusal: ``"<REASON>: <measured> > limit <limit>
    (<unit>)"`` from an audit record's value_a/value_b in the reason's unit (USD cents shown as
    USD, bps x 100 as bps), or ``"<REASON>: <what it means>"`` for a reason without numbers;
    `detail` (e.g. who put routing in REDUCING) follows the numbers after "; " or replaces
    the meaning."""
    unit = _REASON_UNITS.get(reason_name)
    if unit is not None and (measured or limit):
        name, divisor = unit
        if divisor == 1:
            numbers = f"{measured} > limit {limit} ({name})"
        else:
            numbers = f"{measured / divisor:.2f} > limit {limit / divisor:.2f} ({name})"
        return f"{reason_name}: {numbers}; {detail}" if detail else \
            f"{reason_name}: {numbers}"
    return f"{reason_name}: {detail or _REASON_TEXTS.get(reason_name, 'refused by risk')}"


def ord_rej_reason_for(begin_string: str, code: int | None) -> int | None:
    """Returns OrdRejReason `code` as the session's FIX version has it (4.2 has no code above
    8: those become 0, broker option), None for None."""
    if code is None:
        return None
    if begin_string == "FIX.4.2" and code > 8:
        return REJ_BROKER_OPTION
    return code


def cxl_rej_reason_for(begin_string: str, code: int) -> int:
    """Returns CxlRejReason `code` as the session's FIX version has it (4.2 stops at 3: a
    higher code becomes 2, broker option)."""
    if begin_string == "FIX.4.2" and code > 3:
        return CXL_BROKER_OPTION
    return code


def engine_reject_code(reason_name: str) -> int:
    """Returns the OrdRejReason for an engine RejectReason name."""
    return _ENGINE_REJECT_CODES.get(reason_name, REJ_OTHER)


def avg_px(notional_ticks: int, quantity: int, tick: Decimal) -> str:
    """Returns AvgPx: notional (price ticks x shares) / quantity in currency units, exact and
    rounded half-even to AVG_PX_DECIMALS decimals, without trailing zeros ("0" when nothing
    executed)."""
    if quantity <= 0:
        return "0"
    value = (Decimal(notional_ticks) * tick / quantity).quantize(_AVG_QUANTUM, ROUND_HALF_EVEN)
    text = format(value.normalize(), "f")
    return text


def tick_decimal(tick_usd: float) -> Decimal:
    """Returns the price tick as an exact decimal (0.0001 -> Decimal('0.0001'))."""
    return Decimal(repr(float(tick_usd)))


class NewOrder(NamedTuple):
    """A NewOrderSingle from the OMS, validated."""

    cl_ord_id: str
    symbol: str
    instrument_id: int
    side: int              # 1 buy, 2 sell (the engine's side)
    side_code: str         # 54 as received (1, 2, 5 or 6), echoed in reports
    quantity: int
    ord_type: int          # 1 market, 2 limit
    limit_price_ticks: int  # 0 for a market order
    time_in_force: int     # 0 day, 6 good till date
    end_time_ns: int       # ExpireTime (126), 0 when absent
    urgency: int           # 7928, 0..255
    target_strategy: int   # 847, -1 when absent
    account: str = ""      # Account (1), "" when absent


def _quantity(text: str | None, what: str) -> int:
    if text is None:
        raise OrderValidationError(f"{what} (38) is required", REJ_INCORRECT_QUANTITY)
    if text.isdigit():  # the usual form: a plain whole number
        value: Decimal | int = int(text)
    else:
        try:
            value = Decimal(text)
        except ArithmeticError:
            raise OrderValidationError(f"{what} (38) {text!r} is not a number",
                                       REJ_INCORRECT_QUANTITY) from None
        if not value.is_finite() or value != value.to_integral_value():
            value = -1
    if value <= 0:
        raise OrderValidationError(f"{what} (38) must be a whole number of shares above 0, "
                                   f"got {text}", REJ_INCORRECT_QUANTITY)
    return int(value)


def _price(message: Any, ord_type: int, tick_usd: float, tick_size_ticks: int = 1) -> int:
    text = message.get(PRICE)
    if ord_type == ORD_TYPE_MARKET:
        if text is not None:
            raise OrderValidationError("Price (44) is not allowed on a market order (40=1)",
                                       REJ_UNSUPPORTED)
        return 0
    if text is None:
        raise OrderValidationError("Price (44) is required on a limit order (40=2)", REJ_OTHER)
    try:
        ticks = codec.price_from_fix(text, tick_usd)
    except (SorError, ValueError) as error:
        raise OrderValidationError(f"Price (44) {text!r}: {error}", REJ_OTHER) from None
    if ticks <= 0:
        raise OrderValidationError(f"Price (44) must be above 0, got {text}", REJ_OTHER)
    if ticks % tick_size_ticks:
        raise OrderValidationError(
            f"Price (44) {text} is not a multiple of the instrument's tick "
            f"{codec.price_to_fix(tick_size_ticks, tick_usd)}", REJ_OTHER)
    return ticks


def _ord_type(text: str | None) -> int:
    if text == "1":
        return ORD_TYPE_MARKET
    if text == "2":
        return ORD_TYPE_LIMIT
    raise OrderValidationError(f"OrdType (40) {text!r} is not supported (1 market, 2 limit)",
                               REJ_UNSUPPORTED)


def parse_new_order(message: Any, instruments: dict[str, tuple[int, int]], tick_usd: float,
                    now_ns: int) -> NewOrder:
    """Returns the NewOrderSingle `message` validated; raises OrderValidationError naming what
    is wrong. `instruments` maps symbols to (instrument id, tick size in price ticks)."""
    cl_ord_id = message.get(CL_ORD_ID)
    if not cl_ord_id:
        raise OrderValidationError("ClOrdID (11) is required", REJ_OTHER)
    symbol = message.get(SYMBOL)
    if symbol is None:
        raise OrderValidationError("Symbol (55) is required", REJ_UNKNOWN_SYMBOL)
    instrument = instruments.get(symbol)
    if instrument is None:
        raise OrderValidationError(f"unknown symbol {symbol!r}", REJ_UNKNOWN_SYMBOL)
    instrument_id, tick_size_ticks = instrument
    side_code = message.get(SIDE)
    side = _SIDES.get(side_code)  # type: ignore[arg-type]
    if side is None:
        raise OrderValidationError(f"Side (54) {side_code!r} is not supported (1 buy, 2 sell, "
                                   f"5 sell short, 6 sell short exempt)", REJ_UNSUPPORTED)
    quantity = _quantity(message.get(ORDER_QTY), "OrderQty")
    ord_type = _ord_type(message.get(ORD_TYPE))
    limit = _price(message, ord_type, tick_usd, tick_size_ticks)
    tif_text = message.get(TIME_IN_FORCE, "0")
    if tif_text not in ("0", "6"):
        raise OrderValidationError(f"TimeInForce (59) {tif_text!r} is not supported (0 day, "
                                   f"6 good till date with ExpireTime 126)", REJ_UNSUPPORTED)
    tif = int(tif_text)
    expire_text = message.get(EXPIRE_TIME)
    end_time_ns = 0
    if expire_text is not None:
        try:
            end_time_ns = codec.parse_utc_timestamp(expire_text)
        except (SorError, ValueError) as error:
            raise OrderValidationError(f"ExpireTime (126) {expire_text!r}: {error}",
                                       REJ_OTHER) from None
        if end_time_ns <= now_ns:
            raise OrderValidationError(f"ExpireTime (126) {expire_text} has passed",
                                       REJ_TOO_LATE)
    elif tif == TIF_GTD:
        raise OrderValidationError("ExpireTime (126) is required with TimeInForce 6 (GTD)",
                                   REJ_OTHER)
    urgency = _small_int(message, URGENCY, "Urgency", 0, 255, 0)
    strategy = _small_int(message, TARGET_STRATEGY, "TargetStrategy", 0, 1 << 31, -1)
    account = message.get(ACCOUNT) or ""
    return NewOrder(cl_ord_id, symbol, instrument_id, side, side_code, quantity, ord_type,
                    limit, tif, end_time_ns, urgency, strategy, account)


def _small_int(message: Any, tag: int, name: str, low: int, high: int, default: int) -> int:
    text = message.get(tag)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise OrderValidationError(f"{name} ({tag}) {text!r} is not an integer",
                                   REJ_OTHER) from None
    if not low <= value <= high:
        raise OrderValidationError(f"{name} ({tag}) must be {low}..{high}, got {value}", REJ_OTHER)
    return value


class ReplaceRequest(NamedTuple):
    """An OrderCancelReplaceRequest from the OMS, validated."""

    cl_ord_id: str
    orig_cl_ord_id: str
    quantity: int
    ord_type: int
    limit_price_ticks: int


def parse_replace(message: Any, tick_usd: float, tick_size_ticks: int = 1) -> ReplaceRequest:
    """Returns the OrderCancelReplaceRequest `message` validated (not yet against its order)."""
    cl_ord_id = message.get(CL_ORD_ID)
    orig = message.get(ORIG_CL_ORD_ID)
    if not cl_ord_id or not orig:
        raise OrderValidationError("ClOrdID (11) and OrigClOrdID (41) are required")
    quantity = _quantity(message.get(ORDER_QTY), "OrderQty")
    ord_type = _ord_type(message.get(ORD_TYPE))
    limit = _price(message, ord_type, tick_usd, tick_size_ticks)
    return ReplaceRequest(cl_ord_id, orig, quantity, ord_type, limit)


def execution_report(begin_string: str, *, order_id: str, cl_ord_id: str, exec_id: str,
                     exec_type: str, ord_status: str, symbol: str, side_code: str,
                     quantity: int, ord_type: int, price: str | None, leaves: int, cum: int,
                     avg_price: str, transact_time: str, orig_cl_ord_id: str | None = None,
                     last_quantity: int = 0, last_price: str | None = None,
                     text: str | None = None, ord_rej_reason: int | None = None,
                     time_in_force: int | None = None, expire_time: str | None = None,
                     liquidity: int = 0, last_market: str | None = None,
                     account: str | None = None, risk_reason: str | None = None,
                     restatement_reason: int | None = None) -> list[tuple[int, Any]]:
    """Returns an ExecutionReport body in the session's version: FIX 4.2 carries
    ExecTransType 20=0 and ExecType 1/2 for fills, FIX 4.4 ExecType F. `exec_type` is given
    in 4.4 terms. A fill names its venue in LastMkt (30); `account` is echoed in Account (1),
    `risk_reason` (a RejectReason name) goes in SorRiskReason (7929) and `restatement_reason`
    in ExecRestatementReason (378) on a restated report (150=D)."""
    v42 = begin_string == "FIX.4.2"
    body: list[tuple[int, Any]] = [(ORDER_ID, order_id), (CL_ORD_ID, cl_ord_id)]
    if orig_cl_ord_id is not None:
        body.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    if account:
        body.append((ACCOUNT, account))
    body.append((EXEC_ID, exec_id))
    if v42:
        body.append((EXEC_TRANS_TYPE, "0"))
        if exec_type == "F":
            exec_type = "2" if ord_status == "2" else "1"
    body += [(EXEC_TYPE, exec_type), (ORD_STATUS, ord_status), (SYMBOL, symbol),
             (SIDE, side_code), (ORDER_QTY, quantity), (ORD_TYPE, ord_type)]
    if price is not None:
        body.append((PRICE, price))
    if time_in_force is not None:
        body.append((TIME_IN_FORCE, time_in_force))
    if expire_time is not None:
        body.append((EXPIRE_TIME, expire_time))
    if last_quantity:
        body += [(LAST_QTY, last_quantity), (LAST_PX, last_price)]
        if last_market:
            body.append((LAST_MKT, last_market))
        if liquidity and not v42:  # LastLiquidityInd came with FIX 4.3
            body.append((LAST_LIQUIDITY_IND, liquidity))
    body += [(LEAVES_QTY, leaves), (CUM_QTY, cum), (AVG_PX, avg_price),
             (TRANSACT_TIME, transact_time)]
    if ord_rej_reason is not None:
        body.append((ORD_REJ_REASON, ord_rej_reason))
    if restatement_reason is not None:
        body.append((EXEC_RESTATEMENT_REASON, restatement_reason))
    if text:
        body.append((TEXT, text))
    if risk_reason:
        body.append((SOR_RISK_REASON, risk_reason))
    return body


def cancel_reject(*, order_id: str, cl_ord_id: str, orig_cl_ord_id: str, ord_status: str,
                  response_to: int, reason: int, text: str,
                  transact_time: str) -> list[tuple[int, Any]]:
    """Returns an OrderCancelReject body (434 = 1 for a cancel, 2 for a replace)."""
    return [(ORDER_ID, order_id), (CL_ORD_ID, cl_ord_id), (ORIG_CL_ORD_ID, orig_cl_ord_id),
            (ORD_STATUS, ord_status), (CXL_REJ_RESPONSE_TO, response_to),
            (CXL_REJ_REASON, reason), (TRANSACT_TIME, transact_time), (TEXT, text)]


def encode_body(body: list[tuple[int, Any]]) -> bytes:
    """Returns a body as tag=value fields joined by SOH (the outbox form)."""
    parts = []
    for tag, value in body:
        if isinstance(value, bytes):
            parts.append(b"%d=%s" % (tag, value))
        else:
            parts.append(f"{tag}={value}".encode())
    return b"\x01".join(parts)


def decode_body(data: bytes) -> list[tuple[int, bytes]]:
    """Returns the (tag, value) fields of an outbox body."""
    fields = []
    for part in data.split(b"\x01"):
        tag, _, value = part.partition(b"=")
        fields.append((int(tag), value))
    return fields
