"""An ITCH 5.0 stream we generate ourselves, decoded by sor.feed.itch into the books, compared
level by level with books built by an independent decoder (meatpy) from the same bytes."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

import sor
import sor.sim
from sor.feed import itch

meatpy_reader = pytest.importorskip("meatpy.itch50.itch50_message_reader",
                                    reason="meatpy comes with the test extra")


def _independent_levels(path):
    """Books from meatpy's parse of the file: order refs -> (locate, side, price, shares)."""
    orders: dict[int, list] = {}
    for message in meatpy_reader.ITCH50MessageReader().read_file(path):
        t = message.type.decode() if isinstance(message.type, bytes) else message.type
        if t in ("A", "F"):
            side = message.bsindicator.decode() if isinstance(message.bsindicator, bytes) else message.bsindicator
            orders[message.order_ref] = [message.stock_locate, side, message.price, message.shares]
        elif t in ("E", "C"):
            orders[message.order_ref][3] -= message.shares
        elif t == "X":
            orders[message.order_ref][3] -= message.canceled_shares
        elif t == "D":
            orders.pop(message.order_ref)
        elif t == "U":
            old = orders.pop(message.original_ref)
            orders[message.new_ref] = [old[0], old[1], message.price, message.shares]
        else:
            continue
        if t in ("E", "C", "X") and orders[message.order_ref][3] == 0:
            orders.pop(message.order_ref)
    levels: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for locate, side, price, shares in orders.values():
        levels[(locate, side)][price] += shares
    return levels


def test_itch_stream_into_books_matches_independent_decoder(tmp_path):
    flow = sor.sim.synthetic_order_flow(seed=31, event_count=30_000, instrument_count=3,
                                        target_orders=300, start_ts_ns=34_200_000_000_000)
    data = itch.encode(flow, framing="file", directory={1: "AAPL", 2: "MSFT", 3: "SPY"},
                       stock_locates={0: 1, 1: 2, 2: 3})
    path = tmp_path / "flow.itch"
    path.write_bytes(data)
    batch = itch.decode(data, instruments={"AAPL": 10, "MSFT": 11, "SPY": 12})
    book = sor.L3Book(0)
    assert book.apply(batch.events) == len(batch.events)
    expected = _independent_levels(path)
    for locate, instrument in ((1, 10), (2, 11), (3, 12)):
        for side, name, best_first in ((sor.Side.BUY, "B", True), (sor.Side.SELL, "S", False)):
            ours = book.depth(side, 100_000, instrument)
            theirs = sorted(((p, q) for p, q in expected[(locate, name)].items() if q),
                            reverse=best_first)
            assert len(ours) > 3
            assert list(zip(ours["price_ticks"].tolist(), ours["quantity"].tolist())) == theirs


def _frame_offsets(data: bytes) -> list[int]:
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        at += 2 + int.from_bytes(data[at:at + 2], "big")
    return offsets


@pytest.mark.parametrize("garble", ["type", "length", "truncate"])
def test_garbled_bytes_raise_with_offset_and_books_stay_consistent(garble):
    flow = sor.sim.synthetic_order_flow(seed=4, event_count=2_000, start_ts_ns=34_200_000_000_000)
    data = bytearray(itch.encode(flow, framing="file"))
    good = itch.decode(bytes(data)).events
    frame = _frame_offsets(bytes(data))[1_000]
    if garble == "type":
        data[frame + 2] = ord("z")
    elif garble == "length":
        data[frame + 1] -= 1
    else:
        data = data[: frame + 5]
    with pytest.raises(sor.FeedDecodeError) as info:
        itch.decode(bytes(data))
    error = info.value
    assert error.offset == frame
    assert error.status == ("truncated" if garble == "truncate" else "malformed")
    assert len(error.events) == 1_000
    assert np.array_equal(error.events, good[:1_000])
    # Nothing good is lost: what decoded before the fault applies cleanly.
    book = sor.L3Book(0)
    assert book.apply(error.events) == 1_000
