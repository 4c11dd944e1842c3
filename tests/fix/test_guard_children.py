"""Controls on every child order, tripped from a FIX client against a real engine and FIX test
venues: a soft refusal leaves the parent working and reaches the OMS as an unsolicited
restated ExecutionReport (150=D, OrdStatus unchanged) with Text and SorRiskReason (7929), at
most once per parent and reason per risk_report_interval_s with the refusals counted; a
parent-stopping refusal ends the parent with 150=4/39=4 and the reason."""

from __future__ import annotations

from gateway_support import GuardRouter, wait_until
from sor.fix.codec import parse


def _restated(router: GuardRouter, cl_ord_id: str) -> list:
    return [r for r in router.oms.order(cl_ord_id).reports if r.exec_type == "D"]


def _reason(report) -> str | None:
    return parse(report.raw).get(7929)


def test_a_price_band_refusal_is_restated_to_the_oms_once_per_interval(make_router):
    router = make_router(changes={"risk.price_band_bps": 50.0}, risk_report_interval_s=0.5)
    # bid 100.00, ask 102.00: the ask is 99 bps above the mid, beyond the 50 bps band
    router.book([(0, 1_020_000, 100)], bids=[(0, 1_000_000, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 300, price="102.00")
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 1, 5, "the first report")
    first = _restated(router, cl_ord_id)[0]
    assert _reason(first) == "PRICE_BAND" and first.ord_status == "0"
    assert first.text.startswith("PRICE_BAND: ") and "> limit 50.00 (bps)" in first.text
    assert first.text.endswith("; 1 child order refused (XNAS)")
    assert parse(first.raw).get(378) == "4"
    # three more refusals at once: held back, then reported together
    for k in range(3):
        router.book([(k % 2, 1_020_000, 100)], first_order_id=10 + k)
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 2, 5, "the second report")
    second = _restated(router, cl_ord_id)[1]
    assert second.text.endswith("; 3 child orders refused since the last report (BATS, XNAS)")
    assert second.cum_quantity == 0 and second.ord_status == "0"
    counters = router.gateway.status()["counters"]
    assert counters["risk_rejects"] == 4 and counters["risk_reports"] == 2
    assert counters["children_sent"] == 0
    # the parent still works: a quote inside the band is taken
    router.book([(1, 1_010_000, 300)], bids=[(1, 1_009_900, 100)], first_order_id=30)
    view = router.oms.wait_done(cl_ord_id)
    assert view.cum_quantity == 300 and view.ord_status == "2"

    def venues() -> dict:
        return {v["name"]: v for v in router.gateway.console_state()["venues"]}

    wait_until(lambda: venues()["BATS"]["filled_shares"] == 300, 5, "the engine's fill record")
    assert venues()["XNAS"]["risk_rejects"] == 3 and venues()["BATS"]["risk_rejects"] == 1
    assert venues()["BATS"]["orders"] == 1 and venues()["BATS"]["fill_rate"] == 1.0
    assert venues()["BATS"]["route_share"] == 1.0 and venues()["XNAS"]["orders"] == 0


def test_a_child_over_the_order_notional_is_refused_and_the_parent_stays(make_router):
    router = make_router(changes={"risk.max_order_notional_usd": 5_000.0})
    router.book([(0, 1_000_100, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 100, price="100.05")
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 1, 5, "the report")
    report = _restated(router, cl_ord_id)[0]
    assert _reason(report) == "MAX_ORDER_NOTIONAL"
    assert report.text.startswith("MAX_ORDER_NOTIONAL: 10001.00 > limit 5000.00 (USD)")
    assert router.gateway.status()["live_parents"][0]["cl_ord_id"] == cl_ord_id


def test_the_order_throttle_refuses_the_second_child_in_the_same_second(make_router):
    router = make_router(changes={"risk.max_orders_per_second": 1})
    router.book([(0, 1_000_100, 100), (1, 1_000_200, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 200, price="100.05")
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 1, 5, "the report")
    report = _restated(router, cl_ord_id)[0]
    assert _reason(report) == "ORDER_RATE" and "(orders/s)" in report.text
    router.oms.wait_for(lambda: router.oms.order(cl_ord_id).cum_quantity == 100, 5, "a fill")
    assert router.oms.order(cl_ord_id).ord_status == "1"


def test_children_never_exceed_the_order_limits_and_venue_side_replaces_cannot_grow_them(
        make_router):
    """MAX_ORDER_QUANTITY and MAX_ORDER_NOTIONAL: the engine sizes every child of its own
    policies within them (a hosted policy's request is cut to whole lots; no refusal to
    report), and the one path around the engine, a venue-side replace, may only shrink or
    make a child less aggressive."""
    from sor.errors import OrderValidationError

    router = make_router(mode="rest", venue_names=("XNAS",), policy="best_price",
                         changes={"risk.max_order_quantity_shares": 500})
    router.book([(0, 1_000_100, 1_200)], bids=[(0, 999_900, 100)])
    router.oms.new_order("AAPL", "buy", 1_200, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) >= 1, 5, "children")
    assert all(o.quantity <= 500 for o in xnas.orders.values())
    child_cl = next(iter(xnas.orders))
    incarnation, child_id = map(int, child_cl.split("."))
    application = router.gateway.venue_applications[0]
    outcome = {}

    def attempt(quantity: int, price_ticks: int) -> None:
        try:
            application.replace(incarnation, child_id, quantity, price_ticks)
            outcome[(quantity, price_ticks)] = "sent"
        except OrderValidationError as error:
            outcome[(quantity, price_ticks)] = error.text

    for quantity, price in ((900, 1_000_100), (400, 1_000_200), (400, 1_000_000)):
        router.gateway.call_soon(lambda q=quantity, p=price: attempt(q, p))
    wait_until(lambda: len(outcome) == 3, 5, "the attempts")
    assert "may only shrink a child" in outcome[(900, 1_000_100)]
    assert "more aggressive" in outcome[(400, 1_000_200)]
    assert outcome[(400, 1_000_000)] == "sent"
    router.gateway.halt(operator="alice", reason="drill")
    router.gateway.call_soon(lambda: attempt(300, 999_900))
    wait_until(lambda: len(outcome) == 4, 5, "the attempt while halted")
    assert outcome[(300, 999_900)] == "routing is HALTED: no venue-side replace"


def test_the_message_throttle_counts_new_orders_and_cancels(make_router):
    router = make_router(changes={"risk.max_messages_per_second": 1})
    router.book([(0, 1_000_100, 100), (1, 1_000_200, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 200, price="100.05")
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 1, 5, "the report")
    report = _restated(router, cl_ord_id)[0]
    assert _reason(report) == "MESSAGE_RATE" and "(messages/s)" in report.text


def test_participation_refuses_children_before_the_market_trades(make_router):
    router = make_router(changes={"risk.max_participation_rate": 0.1,
                                  "risk.participation_allowance_shares": 50})
    router.book([(0, 1_000_100, 300)], bids=[(0, 999_900, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 300, price="100.05")
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 1, 5, "the report")
    report = _restated(router, cl_ord_id)[0]
    assert _reason(report) == "PARTICIPATION"
    assert report.text.startswith("PARTICIPATION: 300 > limit 50 (shares)")


def test_a_child_beyond_the_reference_collar_is_refused(make_router):
    router = make_router(changes={"risk.reference_collar_bps": 50.0,
                                  "instruments[AAPL].reference_price_ticks": 1_000_000})
    # a market order: no limit to collar at entry; the ask is 100 bps over the reference
    router.book([(0, 1_010_000, 100)], bids=[(0, 1_009_900, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 100)
    router.oms.wait_for(lambda: len(_restated(router, cl_ord_id)) == 1, 5, "the report")
    report = _restated(router, cl_ord_id)[0]
    assert _reason(report) == "REFERENCE_COLLAR"
    assert report.text.startswith("REFERENCE_COLLAR: 100.00 > limit 50.00 (bps)")


def test_reducing_refuses_a_child_that_would_grow_the_position(make_router):
    router = make_router(mode="rest")
    router.book([(0, 1_000_100, 100)], bids=[(0, 999_900, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 500, price="100.05")
    wait_until(lambda: len(router.venues.venues["XNAS"].orders) == 1, 5, "a child")
    router.gateway.reduce(operator="bob", reason="into the close")
    router.book([(1, 1_000_100, 100)], first_order_id=10)
    router.oms.wait_for(lambda: any(_reason(r) == "REDUCING" and "refused" in r.text
                                    for r in _restated(router, cl_ord_id)), 5, "the refusal")
    refusal = [r for r in _restated(router, cl_ord_id) if _reason(r) == "REDUCING"
               and "refused" in r.text][0]
    assert refusal.text.startswith("REDUCING: ")
    assert "routing REDUCING by bob: into the close" in refusal.text
    assert len(router.venues.venues["BATS"].orders) == 0


def test_a_restricted_symbol_stops_a_working_parent(make_router):
    router = make_router(mode="rest")
    router.book([(0, 1_000_100, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 500, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child")
    router.gateway.update_config(
        lambda c: c.replace(risk=c.risk.replace(restricted_symbols=("AAPL",))),
        operator="carol", reason="news pending")
    router.book([(1, 1_000_100, 100)], first_order_id=10)
    view = router.oms.wait_done(cl_ord_id)
    last = view.reports[-1]
    assert last.exec_type == "4" and last.ord_status == "4"
    assert _reason(last) == "RESTRICTED"
    assert last.text == "RESTRICTED: the instrument is on the restricted list"
    assert all(o.status == "4" for o in xnas.orders.values())  # its children went too
    assert router.gateway.status()["counters"]["parents_stopped_by_risk"] == 1
    assert any(e["kind"] == "risk_stop" for e in router.gateway.events())


ACCOUNTS = [{"name": "ACCT1", "credit_limit_usd": 25_000.0, "max_position_shares": 150}]


def test_a_position_limit_stops_the_parent_whose_child_would_pass_it(make_router):
    router = make_router(mode="rest", changes={"risk.accounts": ACCOUNTS})
    router.book([(0, 1_000_100, 100)])
    first = router.oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT1")])
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "the first child")
    second = router.oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT1")])
    router.book([(1, 1_000_100, 100)], first_order_id=10)
    view = router.oms.wait_done(second)
    last = view.reports[-1]
    assert _reason(last) == "POSITION_LIMIT" and last.ord_status in ("4", "8"), last.text
    assert last.text.startswith("POSITION_LIMIT: 200 > limit 150 (shares)")
    assert not router.oms.order(first).done


def test_a_credit_limit_stops_the_parent_whose_child_would_pass_it(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",), changes={"risk.accounts": [
        {"name": "ACCT1", "credit_limit_usd": 20_000.0, "max_position_shares": 10_000}]})
    router.book([(0, 1_001_000, 100)])  # 100.10: above the first parent's limit
    first = router.oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT1")])
    router.oms.wait_for(lambda: router.oms.order(first).ord_status == "0", 5, "New")
    second = router.oms.new_order("AAPL", "buy", 100, price="100.20", extra=[(1, "ACCT1")])
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "the second parent's child (10010 USD open)")
    router.book([(0, 1_000_100, 200)], first_order_id=10)  # 100.01: the first parent's turn
    view = router.oms.wait_done(first)
    last = view.reports[-1]
    assert last.exec_type == "4" and last.ord_status == "4" and _reason(last) == "CREDIT_LIMIT"
    assert last.text == "CREDIT_LIMIT: 20011.00 > limit 20000.00 (USD)"
    assert not router.oms.order(second).done
