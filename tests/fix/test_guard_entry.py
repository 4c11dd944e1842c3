"""Pre-trade controls that refuse a parent order when it arrives, tripped from a FIX client
(sor.fix.oms over TCP to a real gateway and engine): each reaches the OMS as an
ExecutionReport Rejected (150=8/39=8) with OrdRejReason (103) for its FIX version, Text
"<REASON>: <measured> > limit <limit> (<unit>)" and the reason's name in SorRiskReason (7929)."""

from __future__ import annotations

import pytest

from gateway_support import GuardRouter, wait_until

LIMIT = [(40, "2"), (44, "100.05")]


def _send(router: GuardRouter, cl_ord_id: str, fields: list) -> None:
    router.oms.send("D", [(11, cl_ord_id), (21, "1")] + fields)


def _report(router: GuardRouter, cl_ord_id: str, timeout_s: float = 5.0):
    wait_until(lambda: any(r.cl_ord_id == cl_ord_id for r in router.oms.reports), timeout_s,
               f"a report for {cl_ord_id}")
    return next(r for r in router.oms.reports if r.cl_ord_id == cl_ord_id)


def _tag(report, tag: int) -> str | None:
    from sor.fix.codec import parse

    return parse(report.raw).get(tag)


ACCOUNTS = [{"name": "ACCT1", "credit_limit_usd": 20_000.0, "max_position_shares": 300},
            {"name": "ACCT2", "credit_limit_usd": 1_000_000.0, "max_position_shares": 100_000},
            {"name": "ACCT3", "credit_limit_usd": 1_000_000.0, "max_position_shares": 300}]


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
def test_parent_controls_at_entry_reach_the_oms_with_reason_and_numbers(make_router, begin):
    router = make_router(oms_begin_string=begin, changes={
        "risk.max_parent_quantity_shares": 50_000,
        "risk.max_parent_notional_usd": 1_000_000.0,
        "risk.restricted_symbols": ["MSFT"],
        "risk.reference_collar_bps": 100.0,
        "instruments[AAPL].reference_price_ticks": 1_000_000,
        "risk.accounts": ACCOUNTS})
    router.book([(0, 1_000_100, 100)], bids=[(0, 999_900, 100)])
    v44 = begin == "FIX.4.4"
    cases = [  # (ClOrdID, fields, reason, Text, OrdRejReason 4.4)
        ("qty", [(55, "AAPL"), (54, "1"), (38, 60_000)] + LIMIT, "MAX_PARENT_QUANTITY",
         "MAX_PARENT_QUANTITY: 60000 > limit 50000 (shares)", 3),
        ("notional", [(55, "AAPL"), (54, "1"), (38, 20_000)] + LIMIT, "MAX_PARENT_NOTIONAL",
         "MAX_PARENT_NOTIONAL: 2001000.00 > limit 1000000.00 (USD)", 3),
        ("restricted", [(55, "MSFT"), (54, "1"), (38, 100)] + LIMIT, "RESTRICTED",
         "RESTRICTED: the instrument is on the restricted list", 0),
        ("collar", [(55, "AAPL"), (54, "1"), (38, 100), (40, "2"), (44, "102.00")],
         "REFERENCE_COLLAR", "REFERENCE_COLLAR: 200.00 > limit 100.00 (bps)", 3),
        ("account", [(1, "NOBODY"), (55, "AAPL"), (54, "1"), (38, 100)] + LIMIT,
         "UNKNOWN_ACCOUNT", "UNKNOWN_ACCOUNT: account 'NOBODY' is not configured", 15),
        ("credit", [(1, "ACCT1"), (55, "AAPL"), (54, "1"), (38, 250)] + LIMIT, "CREDIT_LIMIT",
         "CREDIT_LIMIT: 25012.50 > limit 20000.00 (USD)", 3),
        ("position", [(1, "ACCT3"), (55, "AAPL"), (54, "2"), (38, 400)] + LIMIT,
         "POSITION_LIMIT", "POSITION_LIMIT: 400 > limit 300 (shares)", 3),
    ]
    for cl_ord_id, fields, _, _, _ in cases:
        _send(router, cl_ord_id, fields)
    for cl_ord_id, _, reason, text, code in cases:
        report = _report(router, cl_ord_id)
        assert report.exec_type == "8" and report.ord_status == "8", report
        assert _tag(report, 7929) == reason, (cl_ord_id, report.text)
        assert report.text == text, cl_ord_id
        assert report.ord_rej_reason == (code if v44 or code <= 8 else 0), cl_ord_id
        assert report.cum_quantity == 0 and report.leaves_quantity == 0
    assert router.venues.venues["XNAS"].received == []
    # an account named on the order is echoed on its reports
    assert _tag(_report(router, "credit"), 1) == "ACCT1"


def test_a_duplicate_cl_ord_id_is_refused_with_its_reason(make_router):
    router = make_router()
    router.book([(0, 1_000_100, 100)])
    first = router.oms.new_order("AAPL", "buy", 100, price="100.05", cl_ord_id="dup-1")
    router.oms.wait_done(first)
    _send(router, "dup-1", [(55, "AAPL"), (54, "1"), (38, 100)] + LIMIT)
    wait_until(lambda: len([r for r in router.oms.reports if r.cl_ord_id == "dup-1"
                            and r.exec_type == "8"]) == 1, 5, "the duplicate's reject")
    reject = [r for r in router.oms.reports if r.cl_ord_id == "dup-1" and r.exec_type == "8"][0]
    assert reject.ord_rej_reason == 6 and _tag(reject, 7929) == "DUPLICATE_CLIENT_ORDER_ID"
    assert reject.text == ("DUPLICATE_CLIENT_ORDER_ID: duplicate ClOrdID 'dup-1' (already used "
                           "on session OMS)")
    assert router.gateway.status()["counters"]["oms_duplicate_cl_ord_ids"] == 1


def test_halted_and_reducing_refuse_new_parents_naming_who_and_why(make_router):
    router = make_router(changes={"risk.accounts": ACCOUNTS})
    router.book([(0, 1_000_100, 100)], bids=[(0, 999_900, 1000)])
    bought = router.oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT2")])
    assert router.oms.wait_done(bought).cum_quantity == 100
    result = router.gateway.halt(operator="alice", reason="fat finger on desk 3")
    assert result["state"] == "HALTED" and result["engine_error"] is None
    _send(router, "while-halted", [(55, "AAPL"), (54, "1"), (38, 100)] + LIMIT)
    halted = _report(router, "while-halted")
    assert halted.exec_type == "8" and _tag(halted, 7929) == "HALTED"
    assert halted.text == "HALTED: routing HALTED by alice: fat finger on desk 3"
    assert halted.ord_rej_reason == 0
    router.gateway.reduce(operator="bob", reason="wind down for the close")
    # a buy would grow ACCT2's long position: refused; a sell of at most 100 reduces it
    _send(router, "grows", [(1, "ACCT2"), (55, "AAPL"), (54, "1"), (38, 50)] + LIMIT)
    grows = _report(router, "grows")
    assert grows.exec_type == "8" and _tag(grows, 7929) == "REDUCING"
    assert grows.text.startswith("REDUCING: ")
    assert "routing REDUCING by bob: wind down for the close" in grows.text
    reduces = router.oms.new_order("AAPL", "sell", 100, price="99.99", extra=[(1, "ACCT2")])
    view = router.oms.wait_done(reduces)
    assert view.cum_quantity == 100 and view.ord_status == "2"
    router.gateway.resume(operator="bob", reason="close done")
    again = router.oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT2")])
    router.book([(0, 1_000_100, 100)], first_order_id=50)
    assert router.oms.wait_done(again).cum_quantity == 100
    kinds = [(e["kind"], e.get("operator"), e.get("state")) for e in router.gateway.events()
             if e["kind"] == "risk_state"]
    assert kinds == [("risk_state", "alice", "HALTED"), ("risk_state", "bob", "REDUCING"),
                     ("risk_state", "bob", "ACTIVE")]
