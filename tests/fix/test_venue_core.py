"""The venues' order handling over the simulator, without a transport: every child order type
fills, cancels and replaces with the right CumQty/LeavesQty/AvgPx, and bad fields are refused
with a reject naming the field. The market runs on virtual time (fast, deterministic)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

import sor
from sor.fix.venue.core import VenueCore, VenueMessageError
from sor.fix.venue.mapping import real_time_market, venue_map

START_NS = 1_795_186_800_000_000_000
TICK = Decimal("0.0001")


class Venues:
    """A VenueCore on a virtual clock, recording what it sends."""

    def __init__(self, seed: int = 11, begin_string: str = "FIX.4.4") -> None:
        self.mapping = venue_map()
        self.market = real_time_market(self.mapping, start_ns=START_NS, seed=seed)
        self.sent: list[tuple[str, str, dict[int, str]]] = []
        self.core = VenueCore(self.market, self.mapping, self._send,
                              clock=lambda: self.market.now_ns, run_id="t")
        for venue in self.mapping.venues:
            self.core.set_begin_string(venue.name, begin_string)
        self._ids = itertools.count(1)

    def _send(self, venue: str, msg_type: str, body: list) -> None:
        fields: dict[int, str] = {}
        for tag, value in body:
            assert tag not in fields, f"tag {tag} twice in {body}"
            fields[tag] = str(value)
        self.sent.append((venue, msg_type, fields))

    def run(self, seconds: float) -> None:
        self.core.advance(self.market.now_ns + int(seconds * 1e9))

    def order(self, venue: str = "XNAS", **fields: object) -> str:
        cl_ord_id = str(fields.pop("cl_ord_id", f"C{next(self._ids)}"))
        message = {11: cl_ord_id, 55: "AAPL", 54: "1", 38: "100", 40: "2", 59: "0"}
        message.update({int(tag[1:]): value for tag, value in fields.items()})
        message = {tag: str(v) for tag, v in message.items() if v is not None}
        assert self.core.on_message(venue, "D", message)
        return cl_ord_id

    def request(self, msg_type: str, venue: str = "XNAS", **fields: object) -> str:
        cl_ord_id = f"R{next(self._ids)}"
        message = {11: cl_ord_id}
        message.update({int(tag[1:]): str(value) for tag, value in fields.items()})
        assert self.core.on_message(venue, msg_type, message)
        return cl_ord_id

    def reports(self, cl_ord_id: str | None = None) -> list[dict[int, str]]:
        return [f for _, t, f in self.sent if t == "8" and (cl_ord_id is None or f[11] == cl_ord_id)]

    def best(self, side: str, venue: str = "XNAS", depth: int = 1):
        return self.market.levels(venue, side, depth, 0)

    def px(self, ticks: int) -> str:
        return str(Decimal(ticks) * TICK)


def ticks(text: str) -> int:
    return int(Decimal(text) / TICK)


def check_quantities(reports: list[dict[int, str]]) -> None:
    """CumQty is the sum of LastQty, LeavesQty = OrderQty - CumQty while open, AvgPx the
    quantity-weighted mean of LastPx, ExecIDs unique."""
    cum, notional = 0, Decimal(0)
    for r in reports:
        if r[150] in ("F", "1", "2"):
            cum += int(r[32])
            notional += int(r[32]) * Decimal(r[31])
        assert int(r[14]) == cum
        if r[39] in ("0", "1"):
            assert int(r[151]) == int(r[38]) - cum
        else:
            assert int(r[151]) == 0
        if cum:
            assert abs(Decimal(r[6]) - notional / cum) < Decimal("0.00000001")
    assert len({r[17] for r in reports}) == len(reports)


@pytest.fixture
def venues() -> Venues:
    v = Venues()
    v.run(1.0)
    yield v
    v.market.close()


def test_ioc_take_walks_the_book_and_cancels_the_rest(venues: Venues) -> None:
    asks = venues.best("sell", depth=2)
    size = int(asks["quantity"].sum())
    limit = int(asks["price_ticks"][1])
    cl = venues.order(_40="2", _59="3", _38=size + 500, _44=venues.px(limit))
    venues.run(0.01)
    reports = venues.reports(cl)
    assert [r[150] for r in reports][0] == "0"
    fills = [r for r in reports if r[150] == "F"]
    assert len({r[31] for r in fills}) >= 2, "a take through two levels fills at two prices"
    assert all(ticks(r[31]) <= limit for r in fills)
    assert all(r[851] == "2" for r in fills)  # removed liquidity
    assert reports[-1][150] == "4" and reports[-1][39] == "4" and reports[-1][151] == "0"
    assert 41 not in reports[-1]  # unsolicited: the IOC rest
    filled = sum(int(r[32]) for r in fills)
    assert 0 < filled <= size + 500
    check_quantities(reports)


def test_ioc_fully_filled_ends_filled(venues: Venues) -> None:
    ask = venues.best("sell")
    cl = venues.order(_40="2", _59="3", _38=100, _44=venues.px(int(ask["price_ticks"][0]) + 500))
    venues.run(0.01)
    reports = venues.reports(cl)
    assert reports[-1][150] == "F" and reports[-1][39] == "2" and reports[-1][14] == "100"
    check_quantities(reports)


def test_post_only_rests_then_cancels(venues: Venues) -> None:
    bid = int(venues.best("buy")["price_ticks"][0])
    price = bid - 300
    before = {int(p): int(q) for p, q, _ in venues.best("buy", depth=20)}
    cl = venues.order(_40="2", _59="0", _18="6", _38=700, _44=venues.px(price))
    venues.run(0.01)
    new = venues.reports(cl)
    assert [r[150] for r in new] == ["0"] and new[0][39] == "0" and new[0][151] == "700"
    assert new[0][18] == "6" and new[0][37].startswith("XNAS-")
    after = {int(p): int(q) for p, q, _ in venues.best("buy", depth=20)}
    assert after[price] >= before.get(price, 0) + 700 - 400  # other flow may cancel around it
    cancel = venues.request("F", _41=cl, _54="1", _55="AAPL")
    venues.run(0.01)
    done = venues.reports(cancel)
    assert len(done) == 1
    assert done[0][150] == "4" and done[0][39] == "4" and done[0][41] == cl
    assert done[0][151] == "0" and done[0][14] == "0"
    assert venues.core.open_orders() == []


def test_post_only_that_would_take_is_rejected(venues: Venues) -> None:
    ask = int(venues.best("sell")["price_ticks"][0])
    cl = venues.order(_40="2", _59="0", _18="6", _44=venues.px(ask))
    venues.run(0.01)
    (report,) = venues.reports(cl)
    assert report[150] == "8" and report[39] == "8"
    assert "18=6" in report[58] and "take" in report[58]


def test_midpoint_peg_fills_at_the_mid_as_added_liquidity(venues: Venues) -> None:
    cl = venues.order(_40="P", _18="M", _54="2", _38=100, _44=None)
    for _ in range(600):
        venues.run(0.1)
        if venues.core.order("XNAS", cl).ord_status == "2":
            break
    reports = venues.reports(cl)
    assert reports[0][150] == "0" and 44 not in reports[0]
    fill = reports[-1]
    assert fill[150] == "F" and fill[39] == "2" and fill[851] == "1"
    assert ticks(fill[31]) % 50 == 0  # a midpoint of a one-cent market: a whole or half cent
    check_quantities(reports)


def test_midpoint_peg_cap_is_kept(venues: Venues) -> None:
    bid = int(venues.best("buy")["price_ticks"][0])
    cl = venues.order(_40="P", _18="M", _54="1", _44=venues.px(bid - 1000))
    venues.run(5.0)
    reports = venues.reports(cl)
    assert [r[150] for r in reports] == ["0"]
    assert ticks(reports[0][44]) == bid - 1000


def test_dark_ioc_midpoint_crosses_hidden_liquidity(venues: Venues) -> None:
    hidden = 0
    for _ in range(300):
        venues.run(1.0)
        hidden = venues.market.hidden_quantity("DARK", "sell")
        if hidden >= 100:
            break
    assert hidden >= 100
    cl = venues.order("DARK", _40="P", _18="M", _59="3", _38=100, _44=None)
    venues.run(0.01)
    reports = venues.reports(cl)
    fills = [r for r in reports if r[150] == "F"]
    assert fills and fills[0][851] == "2"
    nbbo = venues.market.nbbo(0)
    assert ticks(fills[0][31]) % 50 == 0
    assert abs(ticks(fills[0][31]) - (int(nbbo["bid_price_ticks"]) + int(nbbo["ask_price_ticks"])) / 2) < 2000
    check_quantities(reports)


def test_replace_down_keeps_priority_and_up_loses_it(venues: Venues) -> None:
    bid = int(venues.best("buy")["price_ticks"][0])
    cl = venues.order(_40="2", _18="6", _38=500, _44=venues.px(bid - 200))
    venues.run(0.01)

    def our_order():
        resting = venues.market.core.resting_orders(0, 0, sor.Side.BUY)
        ours = [(n, int(q), int(p)) for n, (i, q, p) in
                enumerate(zip(resting["order_id"], resting["quantity"], resting["price_ticks"]))
                if int(i) >> 62]
        assert len(ours) == 1
        index, quantity, price = ours[0]
        ahead = sum(1 for p in resting["price_ticks"][:index] if int(p) == price)
        return int(resting["order_id"][index]), quantity, price, ahead

    order_id, quantity, price, _ = our_order()
    assert (quantity, price) == (500, bid - 200)
    down = venues.request("G", _41=cl, _38=300, _44=venues.px(bid - 200), _54="1", _55="AAPL",
                          _40="2")
    venues.run(0.01)
    (replaced,) = venues.reports(down)
    assert replaced[150] == "5" and replaced[39] == "0" and replaced[41] == cl
    assert replaced[38] == "300" and replaced[151] == "300"
    assert our_order()[:3] == (order_id, 300, bid - 200), "same order id: priority kept"
    up = venues.request("G", _41=down, _38=800, _44=venues.px(bid - 200), _54="1", _55="AAPL")
    venues.run(0.01)
    assert venues.reports(up)[0][150] == "5"
    new_id, quantity, price, ahead = our_order()
    assert new_id != order_id and quantity == 800
    levels = {int(p): int(c) for p, _, c in venues.best("buy", depth=20)}
    assert ahead == levels[bid - 200] - 1, "a larger order goes to the back of its level"
    moved = venues.request("G", _41=up, _38=800, _44=venues.px(bid - 400))
    venues.run(0.01)
    assert venues.reports(moved)[0][44] and ticks(venues.reports(moved)[0][44]) == bid - 400
    assert our_order()[2] == bid - 400
    assert venues.core.order("XNAS", cl) is venues.core.order("XNAS", moved)


def test_replace_after_partial_fill_counts_the_filled_shares() -> None:
    v = Venues(seed=5)
    v.run(1.0)
    ask = v.best("sell")
    size, price = int(ask["quantity"][0]), int(ask["price_ticks"][0])
    cl = v.order(_40="2", _59="0", _38=size + 1000, _44=v.px(price))  # takes the level, rests
    v.run(0.01)
    order = v.core.order("XNAS", cl)
    assert order.cum_qty > 0 and order.ord_status == "1"
    filled = order.cum_qty
    away = price - 1000  # off the touch, so that nothing fills it meanwhile
    rep = v.request("G", _41=cl, _38=filled + 100, _44=v.px(away))
    v.run(0.01)
    replaced = [r for r in v.reports(rep) if r[150] == "5"][0]
    assert replaced[39] == "1" and replaced[38] == str(filled + 100)
    # OrderQty is the new total: the filled shares count toward it (more may have filled).
    assert int(replaced[14]) >= filled
    assert int(replaced[151]) == filled + 100 - int(replaced[14])
    done = v.request("G", _41=rep, _38=order.cum_qty, _44=v.px(away))
    v.run(0.01)
    final = v.reports(done)[-1]
    assert final[150] == "5" and final[39] == "2" and final[151] == "0"
    assert not order.open
    check_quantities([r for r in v.reports() if r[37] == order.order_id])
    v.market.close()


def test_post_only_replace_to_a_crossing_price_is_refused(venues: Venues) -> None:
    bid, ask = int(venues.best("buy")["price_ticks"][0]), int(venues.best("sell")["price_ticks"][0])
    cl = venues.order(_40="2", _18="6", _44=venues.px(bid - 100))
    venues.run(0.01)
    rep = venues.request("G", _41=cl, _38=100, _44=venues.px(ask))
    venues.run(0.01)
    (reject,) = [f for _, t, f in venues.sent if t == "9"]
    assert reject[11] == rep and reject[41] == cl and reject[434] == "2"
    assert "take" in reject[58] and reject[39] == "0"
    assert venues.core.order("XNAS", cl).price_ticks == bid - 100


def test_cancel_rejects(venues: Venues) -> None:
    venues.request("F", _41="NOPE")
    ask = int(venues.best("sell")["price_ticks"][0])
    cl = venues.order(_40="2", _59="3", _44=venues.px(ask + 1000))
    venues.run(0.01)
    late = venues.request("F", _41=cl)
    rejects = [f for _, t, f in venues.sent if t == "9"]
    assert rejects[0][102] == "1" and rejects[0][434] == "1" and rejects[0][37] == "NONE"
    assert rejects[1][11] == late and rejects[1][102] == "0" and "too late" in rejects[1][58]
    again = venues.request("F", _41=cl, _11=late)
    assert again == late or True
    assert [f[102] for _, t, f in venues.sent if t == "9"][-1] in ("0", "6")


def test_cancel_racing_a_fill_is_too_late() -> None:
    v = Venues(seed=8)
    v.run(1.0)
    ask = v.best("sell")
    cl = v.order(_40="2", _59="0", _38=100, _44=v.px(int(ask["price_ticks"][0])))
    cancel = v.request("F", _41=cl)  # sent before the order is known to have filled
    v.run(0.01)
    assert v.reports(cl)[-1][39] == "2"
    (reject,) = [f for _, t, f in v.sent if t == "9"]
    assert reject[11] == cancel and reject[102] == "0" and reject[39] == "2"
    v.market.close()


@pytest.mark.parametrize("fields,tag,reason", [
    ({"_55": "ZZZZ"}, "55", "1"),
    ({"_54": "7"}, "54", "99"),
    ({"_38": "0"}, "38", "13"),
    ({"_38": "1.5"}, "38", "13"),
    ({"_38": None}, "38", "99"),
    ({"_44": "100.005"}, "44", "99"),
    ({"_44": "-1"}, "44", "99"),
    ({"_44": "abc"}, "44", "99"),
    ({"_44": None}, "44", "99"),
    ({"_40": "3"}, "40", "11"),
    ({"_59": "1"}, "59", "11"),
    ({"_18": "X"}, "18", "11"),
    ({"_40": "P", "_18": "6"}, "18", "11"),
    ({"_59": "3", "_18": "6"}, "18", "11"),
    ({"_110": "200"}, "110", "13"),
])
def test_bad_fields_are_rejected_naming_the_field(venues: Venues, fields, tag, reason) -> None:
    fields = {"_44": "100.00", **fields}
    cl = venues.order(**fields)
    (report,) = venues.reports(cl)
    assert report[150] == "8" and report[39] == "8" and report[103] == reason
    assert f"({tag})" in report[58], report[58]
    assert venues.market.open_orders == 0
    # The venue keeps working: a good order right after is accepted.
    good = venues.order(_40="2", _18="6", _44=venues.px(int(venues.best("buy")["price_ticks"][0]) - 500))
    venues.run(0.01)
    assert venues.reports(good)[0][150] == "0"


def test_dark_pool_refuses_post_only_and_market(venues: Venues) -> None:
    post = venues.order("DARK", _18="6", _44="100.00")
    market = venues.order("DARK", _40="1", _44=None)
    assert "dark pool" in venues.reports(post)[0][58]
    assert "(40=1)" in venues.reports(market)[0][58]


def test_duplicate_cl_ord_id_is_rejected(venues: Venues) -> None:
    bid = int(venues.best("buy")["price_ticks"][0])
    venues.order(cl_ord_id="SAME", _18="6", _44=venues.px(bid - 500))
    venues.order(cl_ord_id="SAME", _18="6", _44=venues.px(bid - 600))
    venues.run(0.01)
    reports = venues.reports("SAME")
    assert [r[150] for r in reports] == ["8", "0"]
    assert reports[0][103] == "6" and "(11)" in reports[0][58]
    assert len(venues.core.open_orders()) == 1
    # The same ClOrdID on another venue's session is a different order.
    venues.order("BATS", cl_ord_id="SAME", _18="6", _44=venues.px(bid - 500))
    venues.run(0.01)
    assert [r[150] for r in venues.reports("SAME")][-1] == "0"


def test_missing_cl_ord_id_is_a_session_level_problem(venues: Venues) -> None:
    with pytest.raises(VenueMessageError) as caught:
        venues.core.on_message("XNAS", "D", {55: "AAPL"})
    assert caught.value.tag == 11
    assert venues.core.on_message("XNAS", "H", {11: "x"}) is False


def test_fix42_reports() -> None:
    v = Venues(seed=3, begin_string="FIX.4.2")
    v.run(1.0)
    asks = v.best("sell", depth=2)
    cl = v.order(_40="2", _59="3", _38=int(asks["quantity"][0]) + 100,
                 _44=v.px(int(asks["price_ticks"][1])))
    bad = v.order(_40="3")
    v.run(0.01)
    reports = v.reports(cl)
    assert all(r[20] == "0" for r in reports)
    types = [r[150] for r in reports]
    assert types[0] == "0" and "1" in types and "F" not in types
    assert reports[-1][150] in ("2", "4")
    (reject,) = v.reports(bad)
    assert reject[103] == "0"  # 11 (unsupported characteristic) is FIX 4.4
    check_quantities(reports)
    v.market.close()


def test_cancel_all_cancels_resting_orders_unsolicited(venues: Venues) -> None:
    bid = int(venues.best("buy")["price_ticks"][0])
    ours = [venues.order(_18="6", _44=venues.px(bid - 100 * k)) for k in (3, 4, 5)]
    other = venues.order("BATS", _18="6", _44=venues.px(bid - 300))
    venues.run(0.01)
    assert venues.core.cancel_all("XNAS") == 3
    venues.run(0.01)
    for cl in ours:
        last = venues.reports(cl)[-1]
        assert last[150] == "4" and 41 not in last and last[11] == cl
    assert [o.cl_ord_id for o in venues.core.open_orders()] == [other]


def test_replace_to_a_marketable_price_trades_then_rests(venues: Venues) -> None:
    bid, asks = int(venues.best("buy")["price_ticks"][0]), venues.best("sell", depth=1)
    ask, size = int(asks["price_ticks"][0]), int(asks["quantity"][0])
    cl = venues.order(_40="2", _59="0", _38=size + 300, _44=venues.px(bid - 200))
    venues.run(0.01)
    rep = venues.request("G", _41=cl, _38=size + 300, _44=venues.px(ask))
    venues.run(0.01)
    reports = venues.reports(rep)
    assert reports[0][150] == "5" and reports[0][14] == "0"
    fills = [r for r in reports if r[150] == "F"]
    assert fills and all(ticks(r[31]) <= ask for r in fills)
    assert fills[0][851] == "2"  # it took at once; later fills (resting) are added liquidity
    order = venues.core.order("XNAS", rep)
    assert order.cum_qty == sum(int(r[32]) for r in fills)
    if order.open:  # what it could not take rests at its new price
        resting = venues.market.core.resting_orders(0, 0, sor.Side.BUY)
        ours = [int(q) for i, q in zip(resting["order_id"], resting["quantity"]) if int(i) >> 62]
        assert ours == [order.leaves_qty]
    check_quantities([r for r in venues.reports() if r[37] == order.order_id])


def test_replace_midpoint_peg_and_dark_order(venues: Venues) -> None:
    bid = int(venues.best("buy")["price_ticks"][0])
    peg = venues.order(_40="P", _18="M", _44=venues.px(bid - 1000))
    dark = venues.order("DARK", _40="P", _18="M", _38=500, _44=None, _110=100)
    venues.run(0.01)
    peg2 = venues.request("G", _41=peg, _38=300, _44=venues.px(bid - 900), _40="P")
    dark2 = venues.request("G", "DARK", _41=dark, _38=200)
    venues.run(0.01)
    (peg_replaced,) = venues.reports(peg2)
    assert peg_replaced[150] == "5" and peg_replaced[151] == "300"
    assert ticks(peg_replaced[44]) == bid - 900
    dark_replaced = venues.reports(dark2)[0]
    assert dark_replaced[150] == "5" and int(dark_replaced[151]) == 200 - int(dark_replaced[14])
    sub_grid = venues.request("G", _41=peg2, _38=300, _44=venues.px(bid - 950))
    venues.run(0.01)
    assert venues.reports(sub_grid)[0][150] == "5"  # a peg's cap is not held to the grid
    changed_type = venues.request("G", _41=sub_grid, _38=300, _44=venues.px(bid), _40="2")
    (reject,) = [f for _, t, f in venues.sent if t == "9" and f[11] == changed_type]
    assert "(40)" in reject[58] and reject[434] == "2"
