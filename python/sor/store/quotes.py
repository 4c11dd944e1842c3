"""Top-of-book changes derived from market-data events with the C++ books.

The events of each venue go through that venue's :class:`sor.book.L3Book` (order by order) or
:class:`sor.book.L2Book` (price levels) in ``ts_recv`` order. Events sharing one ``ts_recv``
are applied together (one packet, one moment for a receiver); after each such group the best
bid and ask of every instrument it touched are read, and a row is emitted when either changed.
An event the book refuses (an unknown order, a crossed book) is skipped and counted; a
sequence gap is accepted where it happens (``resync``) and counted, so a damaged feed still
yields the quotes of its good part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sor import _core
from sor.errors import BookIntegrityError, SequenceGapError

#: Columns of the ``quotes`` dataset (besides the partition columns).
QUOTE_COLUMNS = ("ts_event", "ts_recv", "sequence", "instrument_id", "venue_id",
                 "bid_price_ticks", "bid_quantity", "ask_price_ticks", "ask_quantity")


@dataclass
class QuoteRows:
    """Top-of-book changes of one venue as columns, and what the book refused."""

    columns: dict[str, np.ndarray]
    rejected_events: int = 0
    sequence_gaps: int = 0

    def __len__(self) -> int:
        return len(self.columns["ts_recv"])


_NO_PRICE = np.iinfo(np.int64).min  # an empty side (stored as null)


def _top(book: Any, instrument_id: int) -> tuple[int, int, int, int]:
    bid = book.best_bid(instrument_id)
    ask = book.best_ask(instrument_id)
    bid_price, bid_quantity = (int(bid[0]), int(bid[1])) if bid is not None else (_NO_PRICE, 0)
    ask_price, ask_quantity = (int(ask[0]), int(ask[1])) if ask is not None else (_NO_PRICE, 0)
    return bid_price, bid_quantity, ask_price, ask_quantity


def _apply(book: Any, events: np.ndarray) -> tuple[int, int]:
    """Applies `events`, skipping refused ones and accepting gaps; returns (refused, gaps)."""
    refused = gaps = 0
    start = 0
    while start < len(events):
        try:
            book.apply(events[start:])
            return refused, gaps
        except SequenceGapError as error:
            gaps += 1
            book.resync(int(error.received_sequence))
            start += error.index
        except BookIntegrityError as error:
            refused += 1
            start += error.index + 1
            # the refused event consumed its sequence number: accept the next one as is
            book.resync(0)
    return refused, gaps


def venue_quotes(events: np.ndarray, venue_id: int, book_type: str) -> QuoteRows:
    """Returns the top-of-book changes of one venue's `events` (md_event_dtype, any order)
    through a fresh L3 or L2 book."""
    events = events[np.argsort(events["ts_recv"], kind="stable")]
    book: Any = (_core.L3Book(int(venue_id), allow_crossed=True) if book_type == "L3"
                 else _core.L2Book(int(venue_id), allow_crossed=True))
    out: dict[str, list[int]] = {name: [] for name in QUOTE_COLUMNS}
    last: dict[int, tuple[int, int, int, int]] = {}
    refused = gaps = 0
    if len(events):
        ts_recv = events["ts_recv"]
        bounds = np.r_[0, np.flatnonzero(np.diff(ts_recv)) + 1, len(events)]
        instruments = events["instrument_id"]
        single = bool(np.all(instruments == instruments[0]))
        only = [int(instruments[0])]
        bounds_list = bounds.tolist()
        for k in range(len(bounds_list) - 1):
            begin, end = bounds_list[k], bounds_list[k + 1]
            group = events[begin:end]
            r, g = _apply(book, group)
            refused += r
            gaps += g
            touched = only if single else np.unique(group["instrument_id"]).tolist()
            for instrument in touched:
                top = _top(book, instrument)
                if last.get(instrument) != top:
                    last[instrument] = top
                    final = group[end - begin - 1]
                    out["ts_event"].append(int(final["ts_event"]))
                    out["ts_recv"].append(int(final["ts_recv"]))
                    out["sequence"].append(int(final["sequence"]))
                    out["instrument_id"].append(int(instrument))
                    out["venue_id"].append(int(venue_id))
                    out["bid_price_ticks"].append(top[0])
                    out["bid_quantity"].append(top[1])
                    out["ask_price_ticks"].append(top[2])
                    out["ask_quantity"].append(top[3])
    types = {"ts_event": np.int64, "ts_recv": np.int64, "sequence": np.uint64,
             "instrument_id": np.uint32, "venue_id": np.uint8, "bid_price_ticks": np.int64,
             "bid_quantity": np.int64, "ask_price_ticks": np.int64, "ask_quantity": np.int64}
    columns = {name: np.asarray(out[name], dtype=types[name]) for name in QUOTE_COLUMNS}
    return QuoteRows(columns, refused, gaps)


def quotes_table(rows: QuoteRows) -> Any:
    """Returns the quote rows as a pyarrow table (an empty side's price is null)."""
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for name, values in rows.columns.items():
        if name in ("bid_price_ticks", "ask_price_ticks"):
            columns[name] = pa.array(values, pa.int64(), mask=values == _NO_PRICE)
        else:
            columns[name] = pa.array(values)
    return pa.table(columns)


__all__ = ["QUOTE_COLUMNS", "QuoteRows", "venue_quotes", "quotes_table"]
