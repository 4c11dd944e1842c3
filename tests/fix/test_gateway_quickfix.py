"""The gateway against QuickFIX (an independent engine validating with its FIX 4.2/4.4 data
dictionaries): a QuickFIX OMS sends parent orders, cancels and replaces to our OMS acceptor and
accepts every report it gets (it would answer a malformed one with a session Reject); a QuickFIX
venue acceptor takes our child orders and cancels the same way."""

from __future__ import annotations

import itertools
import os

import pytest

from gateway_support import VenueSet, book_events, router_config, state_dir, wait_until
from sor.fix.config import SessionConfig
from sor.fix.gateway import Gateway
from test_quickfix_session import QuickFixPeer, free_port, sending_time

_names = itertools.count(1)


@pytest.fixture
def cleanup():
    items = []
    yield items
    for item in reversed(items):
        item()


def _gateway(tmp_path, sessions, cleanup) -> Gateway:
    gateway = Gateway(router_config(f"sorqf{os.getpid() % 100000}n{next(_names)}"), sessions,
                      state_dir=state_dir(tmp_path))
    gateway.start_thread()
    cleanup.append(gateway.close)
    return gateway


def _apps(peer, msg_type=None):
    return [m for m in peer.app_messages if msg_type is None or m.msg_type == msg_type]


@pytest.mark.parametrize("begin_string", ["FIX.4.2", "FIX.4.4"])
def test_a_quickfix_oms_accepts_every_report(tmp_path, begin_string, cleanup):
    venues = VenueSet(str(tmp_path / "venues"), ("XNAS", "BATS"), mode="rest")
    cleanup.append(venues.close)
    port = free_port()
    oms = SessionConfig(name="OMS", role="acceptor", application="oms", begin_string=begin_string,
                        sender_comp_id="SOR", target_comp_id="QFOMS", host="127.0.0.1",
                        port=port, store_dir="fix")
    gateway = _gateway(tmp_path, venues.router_sessions(oms=[oms]), cleanup)
    wait_until(lambda: all(gateway.sessions[n].is_logged_on for n in venues.venues), 10, "logons")
    gateway.engine.publish_market_data(book_events([(0, 1_000_100, 300), (1, 1_000_200, 300)]))
    gateway.engine.wait_idle()
    peer = QuickFixPeer(str(tmp_path / "qf"), role="initiator", begin_string=begin_string,
                        sender="QFOMS", target="SOR", port=port)
    peer.start()
    cleanup.append(peer.stop)
    peer.wait_for(lambda: peer.count("logon") == 1)
    nos = [(21, "1"), (55, "AAPL"), (54, "1"), (40, "2"), (44, "100.05"), (59, "0")]
    peer.send("D", [(11, "Q1"), (38, 600), (60, sending_time())] + nos)
    xnas, bats = venues.venues["XNAS"], venues.venues["BATS"]
    wait_until(lambda: len(xnas.orders) == 1 and len(bats.orders) == 1, 10, "children")
    venues.call(lambda: xnas.fill(next(iter(xnas.orders)), 300, "100.01"))
    venues.call(lambda: bats.fill(next(iter(bats.orders)), 100, "100.02"))
    peer.wait_for(lambda: len(_apps(peer, "8")) == 3)
    peer.send("G", [(11, "Q2"), (41, "Q1"), (38, 700), (60, sending_time())] + nos)
    peer.wait_for(lambda: len(_apps(peer, "8")) == 4)
    peer.send("F", [(11, "Q3"), (41, "Q2"), (55, "AAPL"), (54, "1"), (38, 700),
                    (60, sending_time())])
    peer.wait_for(lambda: len(_apps(peer, "8")) == 6)  # Pending Cancel, then Canceled
    peer.send("F", [(11, "Q4"), (41, "Q2"), (55, "AAPL"), (54, "1"), (38, 700),
                    (60, sending_time())])  # too late: the order is done
    peer.send("D", [(11, "Q5"), (38, 100), (60, sending_time()), (21, "1"), (55, "NOPE"),
                    (54, "1"), (40, "2"), (44, "1")])
    peer.wait_for(lambda: len(_apps(peer, "9")) == 1 and len(_apps(peer, "8")) == 7)
    reports = _apps(peer, "8")
    if begin_string == "FIX.4.2":
        assert [r.get(150) for r in reports] == ["0", "1", "1", "5", "6", "4", "8"]
        assert all(r.get(20) == "0" for r in reports)
    else:
        assert [r.get(150) for r in reports] == ["0", "F", "F", "5", "6", "4", "8"]
    fills = reports[1:3]
    assert [(f.get(14), f.get(151)) for f in fills] == [("300", "300"), ("400", "200")]
    assert fills[1].get(6) == "100.0125"
    assert reports[3].get(11) == "Q2" and reports[3].get(151) == "300"
    assert reports[5].get(11) == "Q3" and reports[5].get(14) == "400"
    assert reports[6].get(58) == "unknown symbol 'NOPE'"
    reject = _apps(peer, "9")[0]
    assert (reject.get(11), reject.get(434), reject.get(102)) == ("Q4", "1", "0")
    # QuickFIX validated every message against its dictionary and rejected none
    assert peer.count("admin_out", "3") == 0 and peer.count("admin_out", "j") == 0


@pytest.mark.parametrize("begin_string", ["FIX.4.2", "FIX.4.4"])
def test_a_quickfix_venue_accepts_our_children_and_cancels(tmp_path, begin_string, cleanup):
    port = free_port()
    peer = QuickFixPeer(str(tmp_path / "qf"), role="acceptor", begin_string=begin_string,
                        sender="XNAS", target="SOR", port=port)
    peer.start()
    cleanup.append(peer.stop)
    venue = SessionConfig(name="XNAS", role="initiator", application="venue", venue="XNAS",
                          begin_string=begin_string, sender_comp_id="SOR",
                          target_comp_id="XNAS", host="127.0.0.1", port=port, store_dir="fix",
                          reconnect_interval_s=0.2)
    oms = SessionConfig(name="OMS", role="acceptor", application="oms", sender_comp_id="SOR",
                        target_comp_id="OMS", host="127.0.0.1", port=0, store_dir="fix")
    gateway = _gateway(tmp_path, [oms, venue], cleanup)
    peer.wait_for(lambda: peer.count("logon") == 1)
    wait_until(lambda: gateway.sessions["XNAS"].is_logged_on, 10, "venue logon")
    from sor.fix.oms import OmsClient

    client = OmsClient(port=gateway.oms_port, store_dir=str(tmp_path / "oms")).start()
    cleanup.append(client.close)
    client.wait_logged_on()
    gateway.engine.publish_market_data(book_events([(0, 1_000_100, 300)]))
    gateway.engine.wait_idle()
    parent = client.new_order("AAPL", "sell_short", 200, price="99.00")
    gateway.engine.publish_market_data(book_events([], bids=[(0, 999_900, 200)],
                                                   first_order_id=10))
    peer.wait_for(lambda: len(_apps(peer, "D")) == 1)
    child = _apps(peer, "D")[0]
    assert (child.get(54), child.get(38), child.get(40), child.get(44), child.get(59)) == \
        ("5", "200", "2", "99.99", "3")
    client.cancel(parent)  # the engine cancels its open child at the venue
    peer.wait_for(lambda: len(_apps(peer, "F")) == 1)
    cancel = _apps(peer, "F")[0]
    assert cancel.get(41) == child.get(11) and cancel.get(11).startswith(child.get(11) + ".c")
    assert peer.count("admin_out", "3") == 0 and peer.count("admin_out", "j") == 0


@pytest.mark.parametrize("begin_string", ["FIX.4.2", "FIX.4.4"])
def test_a_quickfix_oms_accepts_the_risk_reports(tmp_path, begin_string, cleanup):
    """Risk refusals (OrdRejReason, SorRiskReason 7929 as a user-defined field), the restated
    reports of a halt (150=D, 378=4) and of a soft child refusal, and a parent stopped by risk
    pass QuickFIX's dictionary validation."""
    from sor.config import with_changes

    venues = VenueSet(str(tmp_path / "venues"), ("XNAS",), mode="rest")
    cleanup.append(venues.close)
    port = free_port()
    oms = SessionConfig(name="OMS", role="acceptor", application="oms", begin_string=begin_string,
                        sender_comp_id="SOR", target_comp_id="QFOMS", host="127.0.0.1",
                        port=port, store_dir="fix")
    config = with_changes(router_config(f"sorqf{os.getpid() % 100000}n{next(_names)}"), {
        "risk.price_band_bps": 50.0, "risk.restricted_symbols": ["MSFT"],
        "risk.accounts": [{"name": "A1", "credit_limit_usd": 1e6, "max_position_shares": 1000}]})
    gateway = Gateway(config, venues.router_sessions(oms=[oms]), state_dir=state_dir(tmp_path))
    gateway.start_thread()
    cleanup.append(gateway.close)
    wait_until(lambda: gateway.sessions["XNAS"].is_logged_on, 10, "logon")
    peer = QuickFixPeer(str(tmp_path / "qf"), role="initiator", begin_string=begin_string,
                        sender="QFOMS", target="SOR", port=port)
    peer.start()
    cleanup.append(peer.stop)
    peer.wait_for(lambda: peer.count("logon") == 1)

    def order(cl_ord_id: str, symbol: str, quantity: int, price: str, *extra) -> None:
        peer.send("D", [(11, cl_ord_id), (21, "1"), (55, symbol), (54, "1"), (38, quantity),
                        (40, "2"), (44, price), (59, "0"), (60, sending_time()), *extra])

    order("R1", "AAPL", 5_000_000, "100.05")                  # MAX_PARENT_QUANTITY
    order("R2", "MSFT", 100, "100.05")                        # RESTRICTED
    order("R3", "AAPL", 100, "100.05", (1, "NOBODY"))         # UNKNOWN_ACCOUNT
    peer.wait_for(lambda: len(_apps(peer, "8")) == 3)
    # a soft refusal (the ask is 99 bps from the mid, the band is 50) and a halt, restated
    gateway.engine.publish_market_data(book_events([(0, 1_020_000, 100)],
                                                   bids=[(0, 1_000_000, 100)]))
    gateway.engine.wait_idle()
    order("W1", "AAPL", 300, "102.00", (1, "A1"))
    peer.wait_for(lambda: len(_apps(peer, "8")) == 5)         # New, then the band refusal
    gateway.halt(operator="qa", reason="quickfix drill")
    peer.wait_for(lambda: len(_apps(peer, "8")) == 6)
    # restricted while working: the parent is stopped by risk (Canceled with the reason)
    gateway.resume(operator="qa", reason="drill over")
    gateway.update_config(lambda c: c.replace(risk=c.risk.replace(
        restricted_symbols=("MSFT", "AAPL"))), operator="qa", reason="news")
    gateway.engine.publish_market_data(book_events([(0, 1_010_000, 100)],
                                                   bids=[(0, 1_009_900, 100)],
                                                   first_order_id=10))
    peer.wait_for(lambda: any(m.get(150) == "4" for m in _apps(peer, "8")))
    reports = {(m.get(11), m.get(150), m.get(7929)) for m in _apps(peer, "8")}
    assert {("R1", "8", "MAX_PARENT_QUANTITY"), ("R2", "8", "RESTRICTED"),
            ("R3", "8", "UNKNOWN_ACCOUNT"), ("W1", "D", "PRICE_BAND"), ("W1", "D", "HALTED"),
            ("W1", "4", "RESTRICTED")} <= reports
    restated = [m for m in _apps(peer, "8") if m.get(150) == "D"]
    assert all(m.get(378) == "4" for m in restated)
    assert all(m.get(1) == "A1" for m in _apps(peer, "8") if m.get(11) == "W1")
    # QuickFIX validated every message against its dictionary and rejected none
    assert peer.count("admin_out", "3") == 0 and peer.count("admin_out", "j") == 0
