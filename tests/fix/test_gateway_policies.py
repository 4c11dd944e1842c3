"""The gateway around an engine hosting an execution policy with the shipped models: the
policy's children reach the venues in their FIX order types, and their fills reach the OMS."""

from __future__ import annotations

import itertools
import os
import time

import pytest

from gateway_support import VenueSet, book_events, router_config, state_dir, wait_until
from sor.config import with_changes
from sor.fix.gateway import Gateway
from sor.fix.oms import OmsClient
from sor.models.registry import default_models_dir

_names = itertools.count(1)


@pytest.fixture
def hosted(tmp_path):
    made = []

    def make(policy: str):
        venues = VenueSet(str(tmp_path / f"venues{len(made)}"), ("XNAS", "BATS", "EDGX", "IEXG"))
        config = with_changes(router_config(f"sorgp{os.getpid() % 100000}p{next(_names)}"),
                              {"engine.decision_interval_ms": 100})
        gateway = Gateway(config, venues.router_sessions(), state_dir=state_dir(tmp_path,
                          f"router{len(made)}"), policy=policy, models=default_models_dir())
        gateway.start_thread()
        made.append((venues, gateway))
        wait_until(lambda: all(gateway.sessions[n].is_logged_on for n in venues.venues), 10,
                   "venue logons")
        oms = OmsClient(port=gateway.oms_port, store_dir=str(tmp_path / f"oms{len(made)}"))
        made.append((oms,))
        oms.start().wait_logged_on()
        return venues, gateway, oms

    yield make
    for entry in reversed(made):
        if len(entry) == 1:
            entry[0].close()
        else:
            entry[1].close()
            entry[0].close()


def _market(gateway, start_ns: int, steps: int, first_order_id: int = 1) -> None:
    """Publishes a four-venue book, then refreshes it every 250 ms of feature clock."""
    order_id = first_order_id
    for k in range(steps):
        events = book_events([(v, 1_000_100 + 100 * v, 500) for v in range(4)],
                             bids=[(v, 1_000_000 - 100 * v, 500) for v in range(4)],
                             first_order_id=order_id, ts_ns=start_ns + k * 250_000_000)
        order_id += len(events)
        gateway.engine.wait_idle()
        gateway.engine.publish_market_data(events)
        time.sleep(0.002)
    gateway.engine.wait_idle()


def test_twap_slices_reach_the_venues_and_a_cancel_reports_what_they_filled(hosted):
    venues, gateway, oms = hosted("twap")
    start = time.time_ns()
    _market(gateway, start, 1)
    cl_ord_id = oms.new_order("AAPL", "buy", 3000, price="100.05", time_in_force="6",
                              expire_time_ns=start + 60 * 10**9)
    _market(gateway, start + 250_000_000, 40, first_order_id=100)
    wait_until(lambda: oms.order(cl_ord_id).cum_quantity > 0, 10, "twap fills")
    oms.cancel(cl_ord_id)
    view = oms.wait_done(cl_ord_id)
    assert view.ord_status == "4" and 0 < view.cum_quantity < 3000
    assert view.cum_quantity == venues.total_filled() == view.filled_quantity
    children = [m for v in venues.venues.values() for m in v.received if m.msg_type == "D"]
    assert children and all(m.get(40) == "2" and m.get(59) == "3" for m in children)  # IOC takes
    assert all(m.get(11).startswith(f"{gateway.core.incarnation}.") for m in children)


def test_the_ml_router_children_carry_their_execution_instructions(hosted):
    venues, gateway, oms = hosted("ml_router")
    start = time.time_ns()
    _market(gateway, start, 1)
    cl_ord_id = oms.new_order("AAPL", "buy", 3000, price="100.05", time_in_force="6",
                              expire_time_ns=start + 60 * 10**9)
    _market(gateway, start + 250_000_000, 20, first_order_id=100)
    wait_until(lambda: any(m.msg_type == "D" for v in venues.venues.values()
                           for m in v.received), 10, "a child")
    children = [m for v in venues.venues.values() for m in v.received if m.msg_type == "D"]
    for child in children:
        kind = (child.get(40), child.get(59), child.get(18))
        assert kind in {("2", "3", None), ("2", "0", "6"), ("P", "0", "M")}, kind
        assert child.get(44) is not None or kind[0] == "P"  # only a peg may go without a price
    oms.cancel(cl_ord_id)
    view = oms.wait_done(cl_ord_id)
    assert view.cum_quantity == venues.total_filled()
