"""The gateway with a real engine, real FIX sessions over TCP to test venues (acceptors that fill
deterministically) and the OMS client: child fills aggregate into exact parent reports, cancel,
replace, rejects, duplicate ClOrdIDs, expiry, a venue that is down, duplicate venue ExecIDs,
FIX 4.2 and 4.4 forms."""

from __future__ import annotations

import itertools
import os
import time
from decimal import Decimal

import pytest

from gateway_support import VenueSet, book_events, router_config, state_dir, wait_until
from sor.fix.gateway import Gateway
from sor.fix.oms import OmsClient

_names = itertools.count(1)


def _engine_name() -> str:
    return f"sorgw{os.getpid() % 100000}t{next(_names)}"


class Router:
    """A gateway on a thread with test venues and an OMS client."""

    def __init__(self, tmp_path, *, mode: str = "fill", venue_names=None,
                 oms_begin_string: str = "FIX.4.4", venue_begin_strings=None,
                 missing_venues=(), parts: int = 2) -> None:
        self.venues = VenueSet(str(tmp_path / "venues"), venue_names or
                               ("XNAS", "BATS", "EDGX", "IEXG", "DARK"), mode=mode, parts=parts,
                               begin_strings=venue_begin_strings)
        sessions = self.venues.router_sessions(begin_string=oms_begin_string)
        for config in list(sessions):
            if config.name in missing_venues:  # a venue whose acceptor is not there
                sessions[sessions.index(config)] = config.replace(port=_closed_port())
        self.state_dir = state_dir(tmp_path)
        self.engine_name = _engine_name()
        self.sessions = sessions
        self.gateway = Gateway(router_config(self.engine_name), sessions, state_dir=self.state_dir)
        self.gateway.start_thread()
        up = [n for n in self.venues.venues if n not in missing_venues]
        wait_until(lambda: all(self.gateway.sessions[n].is_logged_on for n in up), 10,
                   "venue logons")
        self.oms = OmsClient(port=self.gateway.oms_port, begin_string=oms_begin_string,
                             store_dir=str(tmp_path / "oms")).start()
        self.oms.wait_logged_on()

    def book(self, asks, bids=(), first_order_id: int = 1) -> None:
        """Publishes add orders to the engine (once it has consumed the executions before
        them) and waits until it applied them."""
        self.gateway.engine.wait_idle()
        self.gateway.engine.publish_market_data(book_events(asks, bids,
                                                            first_order_id=first_order_id))
        self.gateway.engine.wait_idle()

    def restart(self) -> None:
        """Closes the gateway and starts a new one on the same state folder and sessions; the
        OMS client reconnects with its store (the acceptor port changes)."""
        store = self.oms.config.store_dir
        begin_string = self.oms.config.begin_string
        self.oms.close()
        self.gateway.close()
        self.gateway = Gateway(router_config(self.engine_name), self.sessions,
                               state_dir=self.state_dir)
        self.gateway.start_thread()
        wait_until(lambda: all(s.is_logged_on for s in self.gateway.sessions.values()
                               if s.config.application == "venue"), 10, "venue logons")
        self.oms = OmsClient(port=self.gateway.oms_port, begin_string=begin_string,
                             store_dir=store).start()
        self.oms.wait_logged_on()

    def close(self) -> None:
        self.oms.close()
        self.gateway.close()
        self.venues.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_router(tmp_path):
    routers = []

    def make(**options) -> Router:
        router = Router(tmp_path / f"r{len(routers)}", **options)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close()


def _exact_avg(fills) -> Decimal:
    notional = sum(Decimal(p) * q for q, p in fills)
    return notional / sum(q for q, _ in fills)


def test_child_fills_aggregate_into_exact_cum_leaves_and_avg_px(make_router):
    router = make_router(parts=3)
    # XNAS 300 @ 100.01, BATS 300 @ 100.02, EDGX 200 @ 100.03: the taker sweeps by all-in price
    router.book([(0, 1_000_100, 300), (1, 1_000_200, 300), (2, 1_000_300, 200)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 700, price="100.05")
    view = router.oms.wait_done(cl_ord_id)
    assert view.ord_status == "2"
    assert view.cum_quantity == 700 and view.leaves_quantity == 0
    # every report carries the running aggregate of the fills before it, exactly
    running = []
    fills = [r for r in view.reports if r.is_fill]
    assert len(fills) == 9  # three children, three executions each
    for report in fills:
        running.append((report.last_quantity, report.last_price))
        cum = sum(q for q, _ in running)
        assert report.cum_quantity == cum
        assert report.leaves_quantity == 700 - cum
        assert Decimal(report.avg_price) == _exact_avg(running).quantize(Decimal("1e-8"))
    assert view.avg_price == "100.01714286"  # 70012/700, rounded half-even to 8 places
    assert sorted({p for _, p in view.fills}) == ["100.01", "100.02", "100.03"]
    # the venues executed exactly what the OMS was told, with unique ExecIDs on both sides
    assert router.venues.total_filled() == view.cum_quantity
    assert len(set(view.exec_ids)) == len(view.exec_ids) == len(view.reports)
    assert view.reports[0].exec_type == "0" and view.reports[0].ord_status == "0"
    assert [r.ord_status for r in fills] == ["1"] * 8 + ["2"]
    counters = router.gateway.status()["counters"]
    assert counters["children_sent"] == 3 and counters["venue_fills"] == 9


def test_children_carry_the_parent_side_and_venue_order_types(make_router):
    router = make_router(parts=1)
    router.book([], bids=[(1, 1_000_000, 200)])
    cl_ord_id = router.oms.new_order("AAPL", "short", 200, price="99.99")
    view = router.oms.wait_done(cl_ord_id)
    assert view.cum_quantity == 200
    child = router.venues.venues["BATS"].received[0]
    assert child.msg_type == "D"
    assert child.get(54) == "5"  # a short sale stays marked short at the venue
    assert child.get(40) == "2" and child.get(59) == "3" and child.get(44) == "100"
    incarnation, child_order_id = child.get(11).split(".")
    assert int(incarnation) == router.gateway.core.incarnation and int(child_order_id) > 0
    assert view.reports[-1].raw.count(b"\x0154=5\x01") == 1


def test_fix42_sessions_use_exec_trans_type_and_exec_type_1_2(make_router):
    router = make_router(oms_begin_string="FIX.4.2",
                         venue_begin_strings={n: "FIX.4.2" for n in ("XNAS", "BATS")},
                         venue_names=("XNAS", "BATS"))
    router.book([(0, 1_000_100, 100), (1, 1_000_200, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 200, price="100.02")
    view = router.oms.wait_done(cl_ord_id)
    assert view.cum_quantity == 200 and view.avg_price == "100.015"
    assert [r.exec_type for r in view.reports] == ["0", "1", "1", "1", "2"]
    assert all(b"\x0120=0\x01" in r.raw for r in view.reports)
    assert all(r.raw.startswith(b"8=FIX.4.2\x01") for r in view.reports)


def test_cancel_winds_the_children_down_and_reports_canceled(make_router):
    router = make_router(mode="rest")
    router.book([(0, 1_000_100, 300), (1, 1_000_200, 300)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 1000, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1 and len(router.venues.venues["BATS"].orders) == 1,
               5, "children at both venues")
    child = next(iter(xnas.orders))
    router.venues.call(lambda: xnas.fill(child, 120, "100.01"))
    router.oms.wait_for(lambda: router.oms.order(cl_ord_id).cum_quantity == 120)
    cancel = router.oms.cancel(cl_ord_id)
    view = router.oms.wait_done(cl_ord_id)
    assert view.ord_status == "4"
    pending, canceled = view.reports[-2], view.reports[-1]
    assert pending.exec_type == "6" and pending.ord_status == "6"
    assert canceled.exec_type == "4" and canceled.cl_ord_id == cancel
    assert canceled.orig_cl_ord_id == cl_ord_id
    assert canceled.cum_quantity == 120 and canceled.leaves_quantity == 0
    assert canceled.avg_price == "100.01"
    # both children were cancelled at the venues before the OMS heard Canceled
    assert all(o.status == "4" for v in router.venues.venues.values() for o in v.orders.values())
    # a second cancel of a done order is refused: too late
    again = router.oms.cancel(cl_ord_id)
    router.oms.wait_for(lambda: len(view.cancel_rejects) == 1)
    reject = view.cancel_rejects[0]
    assert reject.cl_ord_id == again and reject.response_to == 1 and reject.cxl_rej_reason == 0
    assert reject.ord_status == "4"


def test_replace_changes_quantity_and_limit_and_refusals_name_why(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",))
    router.book([(0, 1_000_100, 300)])
    first = router.oms.new_order("AAPL", "buy", 1000, price="100.02")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child")
    child = next(iter(xnas.orders))
    router.venues.call(lambda: xnas.fill(child, 300, "100.01"))
    oms = router.oms
    oms.wait_for(lambda: oms.order(first).cum_quantity == 300)
    second = oms.replace(first, 800, price="100.03")
    oms.wait_for(lambda: oms.order(first).current_cl_ord_id == second)
    view = oms.order(first)
    replaced = view.reports[-1]
    assert replaced.exec_type == "5" and replaced.orig_cl_ord_id == first
    assert replaced.quantity == 800 and replaced.leaves_quantity == 500
    assert replaced.cum_quantity == 300 and b"\x0144=100.03\x01" in replaced.raw
    # below what is filled: refused with the reason, the order is unchanged
    oms.replace(first, 200, price="100.03")
    oms.wait_for(lambda: len(view.cancel_rejects) == 1)
    reject = view.cancel_rejects[0]
    assert reject.response_to == 2 and "below CumQty 300" in reject.text
    # a sub-tick price is refused
    oms.replace(first, 900, price="100.035")
    oms.wait_for(lambda: len(view.cancel_rejects) == 2)
    assert "not a multiple of the instrument's tick 0.01" in view.cancel_rejects[1].text
    # the live order goes on with the new quantity: the venue fills what it has and more
    # liquidity fills the rest
    def fill_all() -> None:
        xnas.mode = "fill"
        for cl, order in list(xnas.orders.items()):
            if order.open:
                xnas.fill(cl, order.quantity - order.cum_quantity, order.price)

    router.venues.call(fill_all)
    router.book([(0, 1_000_000, 500)], first_order_id=100)  # a better ask: taken at once
    final = oms.wait_done(first)
    assert final.ord_status == "2" and final.cum_quantity == 800
    assert final.reports[-1].cl_ord_id == second
    assert Decimal(final.avg_price) == _exact_avg(final.fills).quantize(Decimal("1e-8"))
    assert router.venues.total_filled() == 800
    assert [p for _, p in final.fills] == ["100.01", "100.01", "100", "100"]  # two halves


def test_validation_and_engine_rejects_name_the_reason(make_router):
    router = make_router(venue_names=("XNAS",))
    oms = router.oms
    limit = [(40, "2"), (44, "10")]
    cases = [  # (text the Rejected report carries, OrdRejReason, fields after ClOrdID)
        ("unknown symbol 'ZZZZ'", 1, [(55, "ZZZZ"), (54, "1"), (38, 100)] + limit),
        ("Side (54) '7' is not supported", 11, [(55, "AAPL"), (54, "7"), (38, 100)] + limit),
        ("whole number of shares above 0, got 0", 13, [(55, "AAPL"), (54, "1"), (38, 0)] + limit),
        ("whole number of shares above 0, got 1.5", 13,
         [(55, "AAPL"), (54, "1"), (38, "1.5")] + limit),
        ("not a multiple of the instrument's tick 0.01", 99,
         [(55, "AAPL"), (54, "1"), (38, 100), (40, "2"), (44, "10.001")]),
        ("Price (44) is required on a limit order", 99,
         [(55, "AAPL"), (54, "1"), (38, 100), (40, "2")]),
        ("Price (44) is not allowed on a market order", 11,
         [(55, "AAPL"), (54, "1"), (38, 100), (40, "1"), (44, "10")]),
        ("OrdType (40) '3' is not supported", 11, [(55, "AAPL"), (54, "1"), (38, 100), (40, "3")]),
        ("TimeInForce (59) '1' is not supported", 11,
         [(55, "AAPL"), (54, "1"), (38, 100)] + limit + [(59, "1")]),
        ("ExpireTime (126) is required with TimeInForce 6", 99,
         [(55, "AAPL"), (54, "1"), (38, 100)] + limit + [(59, "6")]),
        ("has passed", 4, [(55, "AAPL"), (54, "1"), (38, 100)] + limit
         + [(126, "20200101-00:00:00.000")]),
        ("Urgency (7928) must be 0..255, got 300", 99,
         [(55, "AAPL"), (54, "1"), (38, 100)] + limit + [(7928, 300)]),
        ("MAX_PARENT_QUANTITY: 5000000 > limit 1000000 (shares)", 3,
         [(55, "AAPL"), (54, "1"), (38, 5_000_000)] + limit),
    ]
    for k, (_, _, fields) in enumerate(cases):
        oms.send("D", [(11, f"bad-{k}")] + fields)
    wait_until(lambda: len(oms.reports) >= len(cases), 5, "every reject")
    by_id = {r.cl_ord_id: r for r in oms.reports}
    for k, (text, code, _) in enumerate(cases):
        report = by_id[f"bad-{k}"]
        assert report.exec_type == "8" and report.ord_status == "8", report
        assert text in report.text and report.ord_rej_reason == code, (text, report.text)
        assert report.cum_quantity == 0 and report.leaves_quantity == 0
    # a ClOrdID already used on the session, rejected or accepted, is refused
    oms.send("D", [(11, "bad-0"), (55, "AAPL"), (54, "1"), (38, 100)] + limit)
    wait_until(lambda: len(oms.reports) > len(cases), 5, "the duplicate reject")
    duplicate = oms.reports[-1]
    assert duplicate.cl_ord_id == "bad-0"
    assert duplicate.text == ("DUPLICATE_CLIENT_ORDER_ID: duplicate ClOrdID 'bad-0' (already "
                              "used on session OMS)")
    assert duplicate.ord_rej_reason == 6
    # a cancel of an order the router never had
    oms.send("F", [(11, "cxl-1"), (41, "no-such-order"), (55, "AAPL"), (54, "1")])
    wait_until(lambda: any(r.msg_type == "9" for r in oms.reports), 5, "the cancel reject")
    reject = [r for r in oms.reports if r.msg_type == "9"][0]
    assert reject.response_to == 1 and reject.cxl_rej_reason == 1 and reject.order_id == "NONE"
    assert "unknown order" in reject.text
    counters = router.gateway.status()["counters"]
    # twelve failed validation and one was a duplicate; the engine refused the thirteenth
    assert counters["oms_rejects"] == len(cases) and counters["children_sent"] == 0


def test_expiry_reports_done_for_day(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",))
    router.book([(0, 1_000_100, 100)])
    expire = time.time_ns() + 2 * 10**9
    cl_ord_id = router.oms.new_order("AAPL", "buy", 500, price="100.05", time_in_force="6",
                                     expire_time_ns=expire)
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child")
    child = next(iter(xnas.orders))
    router.venues.call(lambda: xnas.fill(child, 40, "100.01"))
    router.oms.wait_for(lambda: router.oms.order(cl_ord_id).cum_quantity == 40)
    # at its deadline the engine cancels the child, then tries the remainder with IOC takes at
    # the venues' tops: this venue has nothing for them
    xnas.cancel_ioc = True
    # the engine's clock is the market data's: an event after the deadline expires the parent
    router.gateway.engine.publish_market_data(
        book_events([], bids=[(0, 990_000, 100)], first_order_id=999, ts_ns=expire + 10**9))
    view = router.oms.wait_done(cl_ord_id)
    last = view.reports[-1]
    assert last.exec_type == "3" and last.ord_status == "3"
    assert last.cum_quantity == 40 and last.leaves_quantity == 0
    assert xnas.orders[child].status == "4"  # its child was cancelled first
    assert not any(order.open for order in xnas.orders.values())


def test_a_venue_that_is_down_gets_no_child_and_the_engine_hears_rejected(make_router):
    router = make_router(venue_names=("XNAS", "BATS"), missing_venues=("XNAS",))
    router.book([(0, 1_000_100, 300), (1, 1_000_200, 300)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 500, price="100.05")
    oms = router.oms
    # XNAS (best price) is down: its 300 are refused at once, BATS takes 200
    oms.wait_for(lambda: oms.order(cl_ord_id).cum_quantity == 200)
    counters = router.gateway.status()["counters"]
    assert counters["children_rejected_venue_down"] == 1
    assert counters["children_sent"] == 1
    # the engine was told at once: its working shares are free again and new liquidity is used
    router.book([(1, 1_000_200, 300)], first_order_id=50)
    view = oms.wait_done(cl_ord_id)
    assert view.cum_quantity == 500 and router.venues.total_filled() == 500


def test_a_duplicate_venue_exec_id_is_applied_once(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",))
    router.book([(0, 1_000_100, 300)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 300, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child")
    child = next(iter(xnas.orders))
    router.venues.call(lambda: xnas.fill(child, 100, "100.01"))
    oms = router.oms
    oms.wait_for(lambda: oms.order(cl_ord_id).cum_quantity == 100)
    fill = [m for m in router.venues.sessions["XNAS"].store.get_messages(1, 100)][-1][1]
    from sor.fix import codec

    message = codec.parse(fill)
    body = [(t, v) for t, v in message.fields() if t not in (8, 9, 35, 49, 56, 34, 52, 10)]
    router.venues.call(lambda: router.venues.sessions["XNAS"].send("8", body))  # same ExecID
    wait_until(lambda: router.gateway.status()["counters"]["venue_duplicate_exec_ids"] == 1, 5,
               "the duplicate")
    router.venues.call(lambda: xnas.fill(child, 200, "100.01"))
    view = oms.wait_done(cl_ord_id)
    assert view.cum_quantity == 300 and len([r for r in view.reports if r.is_fill]) == 2


def test_venue_side_cancel_replace_changes_the_child(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",))
    router.book([(0, 1_000_100, 300)])
    router.oms.new_order("AAPL", "buy", 300, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child")
    child_cl = next(iter(xnas.orders))
    incarnation, child_id = map(int, child_cl.split("."))
    application = router.gateway.venue_applications[0]
    result = {}
    router.gateway.call_soon(lambda: result.setdefault(
        "id", application.replace(incarnation, child_id, 200, 1_000_000)))
    wait_until(lambda: xnas.orders[child_cl].quantity == 200, 5, "the replace at the venue")
    child = router.gateway.core.children[(incarnation, child_id)]
    wait_until(lambda: child.quantity == 200 and child.price_ticks == 1_000_000, 5,
               "the Replaced report")
    assert result["id"].startswith(f"{child_cl}.r")
    replace = [m for m in xnas.received if m.msg_type == "G"][0]
    assert replace.get(41) == child_cl and replace.get(38) == "200" and replace.get(44) == "100"


def test_cl_ord_ids_stay_used_across_a_restart_and_exec_ids_stay_unique(make_router, tmp_path):
    router = make_router(venue_names=("XNAS",))
    router.book([(0, 1_000_100, 1000)])
    first = router.oms.new_order("AAPL", "buy", 100, price="100.05", cl_ord_id="same")
    before = router.oms.wait_done(first)
    router.restart()
    router.book([(0, 1_000_100, 1000)])
    oms = router.oms
    oms.send("D", [(11, "same"), (55, "AAPL"), (54, "1"), (38, 100), (40, "2"), (44, "100.05")])
    wait_until(lambda: any(r.text and "duplicate ClOrdID 'same'" in r.text for r in oms.reports),
               5, "the reject")
    second = oms.new_order("AAPL", "buy", 100, price="100.05")
    after = oms.wait_done(second)
    exec_ids = before.exec_ids + [r.exec_id for r in oms.reports]
    assert len(set(exec_ids)) == len(exec_ids)
    assert router.gateway.core.incarnation == 2
    # the OMS session's sequence numbers continued (its store survived the restart)
    assert oms.session.next_target_seq_num > len(before.reports) + len(after.reports)


def test_a_state_folder_takes_one_router_and_bad_session_lists_are_refused(make_router, tmp_path):
    from sor.errors import GatewayError

    router = make_router(venue_names=("XNAS",))
    second = Gateway(router_config(_engine_name()), router.sessions, state_dir=router.state_dir)
    with pytest.raises(GatewayError, match="in use by another router"):
        second.start()
    bad = [c.replace(venue="NOPE") if c.application == "venue" else c for c in router.sessions]
    with pytest.raises(GatewayError, match="venue 'NOPE' is not a venue of the router"):
        Gateway(router_config(_engine_name()), bad, state_dir=str(tmp_path / "other"))
    twice = router.sessions + [router.sessions[-1].replace(name="XNAS2")]
    with pytest.raises(GatewayError, match="venue XNAS already has a session"):
        Gateway(router_config(_engine_name()), twice, state_dir=str(tmp_path / "other"))
    # the running router was not disturbed
    router.book([(0, 1_000_100, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 100, price="100.05")
    assert router.oms.wait_done(cl_ord_id).cum_quantity == 100
