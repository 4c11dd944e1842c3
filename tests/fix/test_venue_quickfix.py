"""Interop: QuickFIX (an independent engine, validating with its FIX 4.2/4.4 data dictionaries)
as the router side of a simulated venue: it logs on, sends a take and a post-only order and a
cancel, and accepts every ExecutionReport the venue sends (no Reject back). FIX 4.2 has no
LastLiquidityInd (851), so that venue runs with fix42_liquidity_tag=9730 (the US venues' 4.2
dialect); with 851 QuickFIX's 4.2 dictionary rejects every fill (shown below)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import sending_time
from test_quickfix_session import QuickFixPeer

from sor.fix.venue.server import VenueServer


@pytest.fixture(params=["FIX.4.2", "FIX.4.4"])
def begin_string(request) -> str:
    return request.param


def test_quickfix_router_trades_on_a_simulated_venue(begin_string: str, tmp_path) -> None:
    with VenueServer(fix_port=0, md_port=0, seed=9, begin_string=begin_string,
                     fix42_liquidity_tag=9730) as server:
        peer = QuickFixPeer(tmp_path / "qf", role="initiator", begin_string=begin_string,
                            sender="SOR", target="XNAS", port=server.fix_address("XNAS")[1])
        peer.start()
        try:
            peer.wait_for(lambda: peer.count("logon") == 1)
            book = server.call(lambda: (server.market.levels("XNAS", "sell", 2, 0),
                                        server.market.levels("XNAS", "buy", 1, 0)))
            asks, bids = book
            take_px = Decimal(int(asks["price_ticks"][1])) / 10_000
            rest_px = Decimal(int(bids["price_ticks"][0]) - 500) / 10_000
            extra = [(21, 1)] if begin_string == "FIX.4.2" else []
            peer.send("D", [(11, "TAKE1"), (55, "AAPL"), (54, 1),
                            (38, int(asks["quantity"][0]) + 100), (40, 2), (44, take_px),
                            (59, 3), (60, sending_time())] + extra)
            peer.send("D", [(11, "POST1"), (55, "MSFT"), (54, 1), (38, 300), (40, 2),
                            (44, rest_px), (59, 0), (18, "6"), (60, sending_time())] + extra)

            def reports(cl_ord_id: str) -> list:
                return [m for m in peer.app_messages if m.get(11) == cl_ord_id]

            peer.wait_for(lambda: any(m.get(39) in ("2", "4") for m in reports("TAKE1"))
                          and reports("POST1"))
            peer.send("F", [(11, "CXL1"), (41, "POST1"), (55, "MSFT"), (54, 1),
                            (60, sending_time())] + ([(38, 300)] if begin_string == "FIX.4.2" else []))
            peer.wait_for(lambda: reports("CXL1"))
            take = reports("TAKE1")
            fill_types = {"1", "2"} if begin_string == "FIX.4.2" else {"F"}
            assert take[0].get(150) == "0" and any(m.get(150) in fill_types for m in take)
            fills = [m for m in take if m.get(150) in fill_types]
            if begin_string == "FIX.4.2":
                assert all(m.get(9730) == "R" and 851 not in m for m in fills)
            else:
                assert all(m.get(851) == "2" for m in fills)
            assert reports("POST1")[0].get(150) == "0"
            assert reports("CXL1")[0].get(150) == "4" and reports("CXL1")[0].get(41) == "POST1"
            assert peer.count("admin_out", "3") == 0, "QuickFIX rejected a message of ours"
        finally:
            peer.stop()


def test_quickfix_fix42_dictionary_refuses_tag_851(tmp_path) -> None:
    with VenueServer(fix_port=0, md_port=0, seed=9, begin_string="FIX.4.2") as server:
        peer = QuickFixPeer(tmp_path / "qf", role="initiator", begin_string="FIX.4.2",
                            sender="SOR", target="XNAS", port=server.fix_address("XNAS")[1])
        peer.start()
        try:
            peer.wait_for(lambda: peer.count("logon") == 1)
            asks = server.call(lambda: server.market.levels("XNAS", "sell", 1, 0))
            peer.send("D", [(11, "TAKE1"), (55, "AAPL"), (54, 1), (38, 100), (40, 2),
                            (44, Decimal(int(asks["price_ticks"][0])) / 10_000), (59, 3),
                            (21, 1), (60, sending_time())])
            peer.wait_for(lambda: peer.count("admin_out", "3") >= 1)
            assert not any(m.get(150) in ("1", "2") for m in peer.app_messages)
        finally:
            peer.stop()
