"""Cancel on disconnect: an OMS session with cancel_on_disconnect that drops (Logout, a lost
socket, a heartbeat timeout) has its working parents cancelled, their children cancelled at
the venues, and the Canceled reports reach the OMS by resend when it logs on again; a venue
session with cancel_on_disconnect gets a cancel for every child still open there when it is
back. The router's own shutdown cancels nothing."""

from __future__ import annotations

import os
import threading

from gateway_support import GuardRouter, wait_until
from sor.fix.journal import RecordKind, read


def _resting_parent(router: GuardRouter, quantity: int = 500) -> str:
    router.book([(0, 1_000_100, 200)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", quantity, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child resting at XNAS")
    router.oms.wait_for(lambda: router.oms.order(cl_ord_id).ord_status == "0", 5, "New")
    return cl_ord_id


def _parent_done(router: GuardRouter) -> bool:
    status = router.gateway.status()
    return not status["live_parents"]


def test_a_logout_cancels_the_sessions_parents_and_the_reports_wait_for_the_next_logon(
        make_router):
    router = make_router(mode="rest", venue_names=("XNAS",),
                         session_changes={"cancel_on_disconnect": True})
    cl_ord_id = _resting_parent(router)
    router.oms.close()  # Logout
    router.oms = None
    wait_until(lambda: _parent_done(router), 5, "the parent cancelled")
    xnas = router.venues.venues["XNAS"]
    assert all(o.status == "4" for o in xnas.orders.values())  # the child went too
    counters = router.gateway.status()["counters"]
    assert counters["cancel_on_disconnect"] == 1
    # the OMS logs on again with its store: the Canceled report comes by resend
    oms = router.start_oms()
    wait_until(lambda: any(r.cl_ord_id == cl_ord_id and r.exec_type == "4" for r in oms.reports),
               5, "the Canceled report after the logon")
    canceled = [r for r in oms.reports if r.cl_ord_id == cl_ord_id and r.exec_type == "4"]
    assert len(canceled) == 1 and canceled[0].poss_dup
    assert canceled[0].ord_status == "4" and canceled[0].leaves_quantity == 0
    assert canceled[0].text.startswith("cancelled on disconnect of session OMS")
    kinds = [e["kind"] for e in router.gateway.events() if e["kind"] == "session"]
    assert "session" in kinds


def test_a_lost_socket_cancels_and_the_reconnecting_oms_gets_the_reports(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",),
                         session_changes={"cancel_on_disconnect": True})
    cl_ord_id = _resting_parent(router)
    oms = router.oms
    logons = oms.logons
    # the connection goes without a Logout (the client reconnects by itself)
    done = threading.Event()
    oms.reactor.call_soon_threadsafe(lambda: (oms.session.disconnect("socket lost"), done.set()))
    assert done.wait(5)
    wait_until(lambda: _parent_done(router), 5, "the parent cancelled")
    oms.wait_for(lambda: oms.logons > logons and oms.order(cl_ord_id).ord_status == "4", 10,
                 "the Canceled report after reconnecting")
    view = oms.order(cl_ord_id)
    assert view.reports[-1].exec_type == "4" and view.duplicate_exec_ids == 0


def test_a_heartbeat_timeout_cancels_too(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",),
                         session_changes={"cancel_on_disconnect": True})
    router.oms.close()
    # an OMS with a 1 s heartbeat that goes silent without closing its socket
    from sor.fix.oms import OmsClient

    oms = OmsClient(port=router.gateway.oms_port, store_dir=router.oms_store,
                    heartbeat_interval_s=1).start()
    router.oms = oms
    oms.wait_logged_on()
    cl_ord_id = _resting_parent(router)
    thread = oms._thread
    oms.reactor.stop()  # the client's loop stops: no heartbeat, no answer, socket open
    thread.join(5)
    oms._thread = None  # its loop is gone: close() only closes the socket and the store
    wait_until(lambda: _parent_done(router), 10, "the parent cancelled on the timeout")
    events = [e for e in router.gateway.events() if e["kind"] == "session" and not e.get("up")]
    assert any("1 working parent cancelled" in e["text"] for e in events), events
    assert all(o.status == "4" for o in router.venues.venues["XNAS"].orders.values())
    status = router.gateway.status()
    assert status["counters"]["cancel_on_disconnect"] == 1 and cl_ord_id


def test_without_cancel_on_disconnect_parents_keep_working(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",))
    cl_ord_id = _resting_parent(router)
    router.oms.close()
    router.oms = None
    router.book([(0, 1_000_000, 100)], first_order_id=10)
    wait_until(lambda: len(router.venues.venues["XNAS"].orders) == 2, 5, "a second child")
    assert router.gateway.status()["live_parents"][0]["cl_ord_id"] == cl_ord_id


def test_the_routers_own_shutdown_cancels_nothing(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",),
                         session_changes={"cancel_on_disconnect": True})
    _resting_parent(router)
    router.gateway.close()  # logs the OMS session out from the router's side
    records, _ = read(os.path.join(router.state_dir, "journal"))
    assert not [r for r in records if r.kind is RecordKind.ROUTER_CANCEL]
    assert [o.status for o in router.venues.venues["XNAS"].orders.values()] == ["0"]


def test_a_venue_session_with_cancel_on_disconnect_cancels_what_is_open_when_back(make_router):
    router = make_router(mode="rest", venue_names=("XNAS",),
                         venue_session_changes={"cancel_on_disconnect": True})
    _resting_parent(router)
    xnas = router.venues.venues["XNAS"]
    session = router.gateway.sessions["XNAS"]
    # the venue keeps the order when the connection drops (this test venue does not cancel)
    router.venues.call(lambda: router.venues.sessions["XNAS"].disconnect("network blip"))
    wait_until(lambda: not session.is_logged_on, 5, "the drop")
    wait_until(lambda: session.is_logged_on, 10, "the reconnect")
    wait_until(lambda: all(o.status == "4" for o in xnas.orders.values()), 5,
               "the child cancelled after the logon")
    assert router.gateway.status()["counters"]["cancel_on_disconnect"] == 1
    assert any(m.msg_type == "F" for m in xnas.received)
