"""The gateway's message forms against slow, obvious references: AvgPx exact and rounded
half-even, ExecutionReport in FIX 4.2 and 4.4 form, reject codes per version, outbox bodies."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from sor.errors import OrderValidationError
from sor.fix import codec
from sor.fix.gateway import messages as m

TICK = m.tick_decimal(0.0001)


def test_tick_decimal_is_exact():
    assert TICK == Decimal("0.0001")
    assert m.tick_decimal(0.01) == Decimal("0.01")


@pytest.mark.parametrize("seed", range(5))
def test_avg_px_equals_the_exact_average_rounded_half_even(seed):
    rng = random.Random(seed)
    fills = [(rng.randint(1, 5000), rng.randint(1, 5_000_000)) for _ in range(rng.randint(1, 40))]
    notional = sum(q * p for q, p in fills)
    quantity = sum(q for q, _ in fills)
    exact = sum(Decimal(p) / 10_000 * q for q, p in fills) / quantity
    expected = exact.quantize(Decimal("1e-8"), ROUND_HALF_EVEN)
    assert Decimal(m.avg_px(notional, quantity, TICK)) == expected


def test_avg_px_rounds_a_half_to_even_and_drops_trailing_zeros():
    # 1 share at 0.0001 and 7 at 0: 0.0000125 -> 0.00001250 (8 places, exact)
    assert m.avg_px(1, 8, TICK) == "0.0000125"
    # 3 x 100.0001 + 1 x 100.0000 = 100.000075 exactly
    assert m.avg_px(3 * 1_000_001 + 1_000_000, 4, TICK) == "100.000075"
    # 1/3 of a tick: 0.0000333333... -> 0.00003333
    assert m.avg_px(1, 3, TICK) == "0.00003333"
    # 0.000000125 rounds half-even to 0.00000012 (8 places)
    assert m.avg_px(1, 800, TICK) == "0.00000012"
    assert m.avg_px(3, 800, TICK) == "0.00000038"  # 0.000000375 -> ...38 (half to even)
    assert m.avg_px(1_000_000, 1, TICK) == "100"
    assert m.avg_px(0, 0, TICK) == "0"


def _report(begin_string, exec_type, ord_status):
    return dict(m.execution_report(
        begin_string, order_id="7", cl_ord_id="A", exec_id="1-1", exec_type=exec_type,
        ord_status=ord_status, symbol="AAPL", side_code="5", quantity=100, ord_type=2,
        price="10.5", leaves=40, cum=60, avg_price="10.25", transact_time="20260101-00:00:00.000",
        last_quantity=10, last_price="10.3", liquidity=2))


def test_execution_reports_in_fix44_and_fix42_form():
    fix44 = _report("FIX.4.4", "F", "1")
    assert fix44[150] == "F" and 20 not in fix44
    assert (fix44[32], fix44[31], fix44[851]) == (10, "10.3", 2)
    assert (fix44[151], fix44[14], fix44[6]) == (40, 60, "10.25")
    partial = _report("FIX.4.2", "F", "1")
    assert partial[20] == "0" and partial[150] == "1"
    assert _report("FIX.4.2", "F", "2")[150] == "2"
    assert _report("FIX.4.2", "4", "4")[150] == "4"
    assert _report("FIX.4.4", "0", "0")[54] == "5"  # the side code as the OMS sent it


def test_reject_codes_follow_the_session_version():
    assert m.ord_rej_reason_for("FIX.4.4", m.REJ_INCORRECT_QUANTITY) == 13
    assert m.ord_rej_reason_for("FIX.4.2", m.REJ_INCORRECT_QUANTITY) == 0
    assert m.ord_rej_reason_for("FIX.4.2", m.REJ_DUPLICATE_ORDER) == 6
    assert m.ord_rej_reason_for("FIX.4.4", None) is None
    assert m.cxl_rej_reason_for("FIX.4.4", m.CXL_DUPLICATE) == 6
    assert m.cxl_rej_reason_for("FIX.4.2", m.CXL_DUPLICATE) == 2
    assert m.engine_reject_code("MAX_PARENT_QUANTITY") == 3
    assert m.engine_reject_code("SOMETHING_NEW") == 99


def test_outbox_bodies_round_trip():
    body = [(37, "7"), (11, "A=B"), (58, "text with spaces"), (14, 60), (6, "10.25"),
            (96, b"\xff\x00raw")]
    assert m.decode_body(m.encode_body(body)) == [
        (37, b"7"), (11, b"A=B"), (58, b"text with spaces"), (14, b"60"), (6, b"10.25"),
        (96, b"\xff\x00raw")]


def _nos(*fields):
    return codec.parse(codec.encode("FIX.4.4", "D", "OMS", "SOR", 1, 0, list(fields)))


def test_parse_new_order_takes_the_documented_forms():
    instruments = {"AAPL": (0, 100)}
    order = m.parse_new_order(_nos((11, "A"), (55, "AAPL"), (54, "6"), (38, "300.0"),
                                   (40, "2"), (44, "101.25"), (59, "6"),
                                   (126, "20300101-00:00:00.000"), (7928, 200), (847, 1001)),
                              instruments, 0.0001, 0)
    assert (order.side, order.side_code, order.quantity) == (2, "6", 300)
    assert (order.ord_type, order.limit_price_ticks, order.time_in_force) == (2, 1_012_500, 6)
    assert order.end_time_ns == codec.parse_utc_timestamp("20300101-00:00:00.000")
    assert (order.urgency, order.target_strategy) == (200, 1001)
    market = m.parse_new_order(_nos((11, "B"), (55, "AAPL"), (54, "1"), (38, 5), (40, "1")),
                               instruments, 0.0001, 0)
    assert (market.ord_type, market.limit_price_ticks, market.end_time_ns) == (1, 0, 0)
    with pytest.raises(OrderValidationError, match="OrderQty") as info:
        m.parse_new_order(_nos((11, "C"), (55, "AAPL"), (54, "1"), (38, "-5"), (40, "1")),
                          instruments, 0.0001, 0)
    assert info.value.ord_rej_reason == m.REJ_INCORRECT_QUANTITY
