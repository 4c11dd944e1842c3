"""Recovery of the gateway from its journal at the crash points a kill leaves behind: an OMS
message journaled but never stored by its session, a cancel pending with children open, a
parent whose orphans do not answer at once, a torn journal tail, a parent journaled but never
answered. Each restart is a new Gateway on the same state folder (what a restarted process
does); the journal is written the way a killed router leaves it."""

from __future__ import annotations

import os

import pytest

from gateway_support import wait_until
from sor.fix import codec
from sor.fix.gateway import messages as m
from sor.fix.journal import Journal, RecordKind
from sor.fix.store import MessageStore
from test_gateway import Router


@pytest.fixture
def router(tmp_path):
    made = []

    def make(**options) -> Router:
        made.append(Router(tmp_path, **options))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _journal(router: Router) -> str:
    return os.path.join(router.state_dir, "journal")


def _stop(router: Router) -> None:
    """Closes the gateway (its journal then holds what a kill leaves); the OMS client stays
    up and reconnects to the next one on the same port."""
    port = router.gateway.oms_port
    router.sessions = [c.replace(port=port) if c.name == "OMS" else c for c in router.sessions]
    router.gateway.close()


def _restart(router: Router) -> None:
    from gateway_support import router_config
    from sor.fix.gateway import Gateway

    logons = router.oms.logons
    router.gateway = Gateway(router_config(router.engine_name), router.sessions,
                             state_dir=router.state_dir)
    router.gateway.start_thread()
    wait_until(lambda: all(s.is_logged_on for s in router.gateway.sessions.values()
                           if s.config.application == "venue"), 10, "venue logons")
    router.oms.wait_for(lambda: router.oms.logons > logons and router.oms.session.is_logged_on,
                        10, "the OMS to log on again")


def test_an_oms_report_journaled_but_never_stored_is_sent_once_after_restart(router):
    r = router(venue_names=("XNAS",))
    r.book([(0, 1_000_100, 100)])
    first = r.oms.new_order("AAPL", "buy", 100, price="100.05")
    r.oms.wait_done(first)
    _stop(r)
    # the crash point: the journal holds a report the OMS session never stored
    with MessageStore(os.path.join(r.state_dir, "fix", "OMS")) as store:
        next_seq = store.next_sender_seq_num
    body = m.execution_report("FIX.4.4", order_id="1", cl_ord_id=first, exec_id="outbox-1",
                              exec_type="3", ord_status="3", symbol="AAPL", side_code="1",
                              quantity=100, ord_type=2, price="100.05", leaves=0, cum=100,
                              avg_price="100.01", transact_time=codec.format_utc_timestamp(0),
                              text="journaled before the kill")
    with Journal(_journal(r)) as journal:
        journal.append(RecordKind.OMS_OUT, next_seq, "OMS", "8", m.encode_body(body))
    _restart(r)
    wait_until(lambda: any(x.exec_id == "outbox-1" for x in r.oms.reports), 5, "the report")
    resent = [x for x in r.oms.reports if x.exec_id == "outbox-1"]
    assert len(resent) == 1 and resent[0].text == "journaled before the kill"
    assert r.gateway.status()["counters"]["outbox_resent"] == 1
    # once stored it is the session's: a second restart does not send it again
    _stop(r)
    _restart(r)
    second = r.oms.new_order("AAPL", "buy", 100, price="100.05")
    r.book([(0, 1_000_100, 100)], first_order_id=10)
    r.oms.wait_done(second)
    assert len([x for x in r.oms.reports if x.exec_id == "outbox-1"]) == 1
    assert r.gateway.status()["counters"]["outbox_resent"] == 0


def test_a_cancel_pending_at_the_crash_completes_after_restart(router):
    r = router(mode="rest", venue_names=("XNAS", "BATS"))
    r.book([(0, 1_000_100, 300), (1, 1_000_200, 300)])
    cl_ord_id = r.oms.new_order("AAPL", "buy", 1000, price="100.05")
    xnas, bats = r.venues.venues["XNAS"], r.venues.venues["BATS"]
    wait_until(lambda: len(xnas.orders) == 1 and len(bats.orders) == 1, 5, "children")
    x1 = next(iter(xnas.orders))
    r.venues.call(lambda: xnas.fill(x1, 70, "100.01"))
    xnas.answer_cancels = bats.answer_cancels = False
    cancel = r.oms.cancel(cl_ord_id)
    r.oms.wait_for(lambda: r.oms.order(cl_ord_id).ord_status == "6", 5, "pending cancel")
    wait_until(lambda: all(any(x.msg_type == "F" for x in v.received) for v in (xnas, bats)),
               5, "the cancels at the venues")
    _stop(r)  # the journal now holds what a kill leaves: cancel pending, two children open
    xnas.answer_cancels = bats.answer_cancels = True
    _restart(r)
    assert r.gateway.recovery["orphans"] == 2 and r.gateway.recovery["live_parents"] == 1
    view = r.oms.wait_done(cl_ord_id)
    last = view.reports[-1]
    assert last.exec_type == "4" and last.cl_ord_id == cancel and last.orig_cl_ord_id == cl_ord_id
    assert last.cum_quantity == 70 and last.avg_price == "100.01"
    assert not any(o.open for v in (xnas, bats) for o in v.orders.values())
    # the parent was not resumed: no child of the second incarnation
    assert not any(cl.startswith("2.") for v in (xnas, bats) for cl in v.orders)


def test_a_parent_waits_until_its_orphans_answer(router):
    r = router(mode="rest", venue_names=("XNAS",))
    r.book([(0, 1_000_100, 300)])
    cl_ord_id = r.oms.new_order("AAPL", "buy", 500, price="100.05")
    xnas = r.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child")
    _stop(r)
    xnas.answer_cancels = False  # the orphan's cancel goes unanswered at first
    _restart(r)
    core = r.gateway.core
    wait_until(lambda: any(x.msg_type == "F" for x in xnas.received), 5, "the orphan cancel")
    assert core.waiting_parents == [1]
    r.book([(0, 1_000_100, 300)], first_order_id=10)
    assert len(xnas.orders) == 1  # nothing new while it waits
    xnas.answer_cancels = True
    xnas.mode = "fill"
    # the cancel is sent again (orphan_retry_s) and answered; the parent resumes for all 500
    wait_until(lambda: core.waiting_parents == [], 10, "the parent to resume")
    r.book([(0, 1_000_000, 500)], first_order_id=20)
    view = r.oms.wait_done(cl_ord_id)
    assert view.cum_quantity == 500
    assert len([x for x in xnas.received if x.msg_type == "F"]) >= 2
    assert core.counters["parents_resumed"] == 1


def test_a_torn_journal_tail_is_cut_and_the_orders_before_it_are_kept(router):
    r = router(venue_names=("XNAS",))
    r.book([(0, 1_000_100, 100)])
    first = r.oms.new_order("AAPL", "buy", 100, price="100.05", cl_ord_id="kept")
    r.oms.wait_done(first)
    _stop(r)
    torn = b"SJ\x01\x00\xff\x00\x00\x00garbage"  # a frame cut short by the crash
    with open(_journal(r), "ab") as f:
        f.write(torn)
    _restart(r)
    assert r.gateway.recovery["torn_tail_bytes"] == len(torn)
    r.oms.send("D", [(11, "kept"), (55, "AAPL"), (54, "1"), (38, 100), (40, "2"), (44, "100.05")])
    wait_until(lambda: any(x.text and "duplicate ClOrdID 'kept'" in x.text
                           for x in r.oms.reports), 5, "reject")


def test_a_parent_journaled_but_never_answered_is_submitted_again(router, tmp_path):
    r = router(venue_names=("XNAS",))
    _stop(r)
    # the crash point: the NewOrderSingle was journaled, the engine never answered
    with Journal(_journal(r)) as journal:
        journal.append(RecordKind.PARENT_NEW, 7, 1, 0, 1, 200, 1_000_500,
                       2**62, 0, 2, 0, -1, "OMS", "lost-ack", "AAPL", "1")
    _restart(r)
    r.book([(0, 1_000_100, 200)])
    wait_until(lambda: any(x.cl_ord_id == "lost-ack" and x.ord_status == "2"
                           for x in r.oms.reports), 5, "the order filled")
    reports = [x for x in r.oms.reports if x.cl_ord_id == "lost-ack"]
    assert reports[0].exec_type == "0" and reports[0].order_id == "7"
    assert reports[-1].cum_quantity == 200
    # its parent id stays taken: the next order gets a higher one
    nxt = r.oms.new_order("AAPL", "buy", 100, price="100.05")
    r.oms.wait_for(lambda: r.oms.order(nxt).order_id is not None, 5, "an ack")
    assert int(r.oms.order(nxt).order_id) == 8
