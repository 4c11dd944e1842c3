"""`sor feed-demo`: the market-data half of the router on its own.

The default simulated market (`sor.sim`, scenario "default": the router's venues, two symbols)
runs from the open; three lit venues publish NASDAQ TotalView-ITCH 5.0 over MoldUDP64, a fourth
a price-level feed. The feed handlers decode every
packet, and the consolidated book (per-venue L3/L2 books, NBBO, depth by venue, protected
quotes) is printed as the session runs. At the end the ITCH path is checked against the same
flow applied directly, level by level.
"""

from __future__ import annotations

import time

import numpy as np

import sor
from sor.book import ConsolidatedBook, VenueSpec, venues_in_mask
from sor.errors import UsageError
from sor.feed import itch
from sor.sim import Market, level_updates

VENUES = {0: "XNAS", 1: "BATS", 2: "EDGX", 3: "IEXG"}   # 3 publishes price levels
SYMBOLS = {"AAPL": 0, "MSFT": 1}
SESSION_DATE_NS = 1_795_150_800_000_000_000   # 2026-11-20 00:00 America/New_York (05:00 UTC)
OPEN_NS = SESSION_DATE_NS + (9 * 3600 + 30 * 60) * 1_000_000_000   # 09:30:00 New York


def _dollars(itch_price: int) -> str:
    return f"{itch_price / 10_000:,.2f}"


def _publish_and_decode(events: np.ndarray, venue_id: int, session_date_ns: int,
                        start_ns: int) -> tuple[np.ndarray, int, int]:
    """Encodes one venue's flow as MoldUDP64 packets and decodes them as its feed handler would.
    Returns (events, packets, bytes)."""
    with itch.ItchWriter(framing="moldudp64", session_date_ns=session_date_ns,
                         session=f"{VENUES[venue_id]}0001",
                         stock_locates={iid: iid + 1 for iid in SYMBOLS.values()}) as writer:
        writer.system_event("O", start_ns)
        for symbol, instrument_id in SYMBOLS.items():
            writer.stock_directory(instrument_id + 1, symbol, ts_event=start_ns)
        writer.write(events)
        writer.end_session()
        packets = writer.getvalue()
    decoded = []
    with itch.ItchDecoder(framing="moldudp64", venue_id=venue_id,
                          session_date_ns=session_date_ns, instruments=SYMBOLS) as decoder:
        for packet in packets:
            decoded.append(decoder.feed(packet))
    return np.concatenate(decoded), len(packets), sum(len(p) for p in packets)


def _snapshot(book: ConsolidatedBook, clock_ns: int, session_date_ns: int) -> str:
    seconds = (clock_ns - session_date_ns) / 1e9
    hh, mm, ss = int(seconds // 3600), int(seconds % 3600 // 60), seconds % 60
    lines = [f"--- {hh:02d}:{mm:02d}:{ss:09.6f} " + "-" * 58]
    names = [VENUES[spec.venue_id] for spec in book.venues]
    for symbol, instrument_id in SYMBOLS.items():
        nbbo = book.nbbo(instrument_id)
        bid_venues = ",".join(VENUES[v] for v in venues_in_mask(book, nbbo.bid_venue_mask))
        ask_venues = ",".join(VENUES[v] for v in venues_in_mask(book, nbbo.ask_venue_mask))
        lines.append(f"{symbol}  NBBO {nbbo.bid_quantity:>6} @ {_dollars(nbbo.bid_price_ticks)} "
                     f"[{bid_venues}]  x  {_dollars(nbbo.ask_price_ticks)} @ "
                     f"{nbbo.ask_quantity:<6} [{ask_venues}]")
        bids = book.depth(sor.Side.BUY, 3, instrument_id)
        asks = book.depth(sor.Side.SELL, 3, instrument_id)
        header = "".join(f"{n:>7}" for n in names)
        lines.append(f"      {'bid':>9} {'total':>7}{header}   |  {'ask':>9} {'total':>7}{header}")
        for level in range(max(len(bids["price_ticks"]), len(asks["price_ticks"]))):
            def side(d):
                if level >= len(d["price_ticks"]):
                    return " " * (18 + 7 * len(names))
                per_venue = "".join(f"{q:>7}" for q in d["venue_quantity"][level])
                return f"{_dollars(d['price_ticks'][level]):>9} {d['quantity'][level]:>7}{per_venue}"
            lines.append(f"      {side(bids)}   |  {side(asks)}")
    return "\n".join(lines)


def _simulated_flow(events: int, seed: int) -> np.ndarray:
    """Runs the default simulated market (the router's venues, two symbols) from the open until
    its lit venues have published at least `events` events; returns them in time order."""
    parts = []
    total = 0
    with Market("default", seed=seed, instrument_count=len(SYMBOLS), session_start_ns=OPEN_NS,
                record_events=True, record_trades=False, quote_sample_interval_ns=0) as market:
        while total < events and market.now_ns < market.session_end_ns:
            market.run_for(5.0)
            for venue_id in VENUES:
                chunk = market.events(venue_id)
                parts.append(chunk)
                total += len(chunk)
    flow = np.concatenate(parts)
    return flow[np.argsort(flow["ts_event"], kind="stable")]


def run_demo(*, events: int = 400_000, seed: int = 2026, snapshots: int = 4) -> int:
    """Runs the demo and prints its progress; returns the process exit code."""
    if events < 1_000:
        raise UsageError(f"the demo needs at least 1000 events, not {events}")
    if snapshots < 1:
        raise UsageError(f"snapshots must be at least 1, not {snapshots}")
    print(f"sor {sor.__version__} demo: {len(VENUES)} venues, {len(SYMBOLS)} symbols, "
          f"{events:,} order-flow events (seed {seed})")
    flow = _simulated_flow(events, seed)
    start_ns, session_date_ns = OPEN_NS - 1_000, SESSION_DATE_NS

    t0 = time.perf_counter()
    feeds, packet_count, byte_count = [], 0, 0
    for venue_id in (0, 1, 2):
        venue_flow = flow[flow["venue_id"] == venue_id]
        decoded, packets, size = _publish_and_decode(venue_flow, venue_id, session_date_ns, start_ns)
        # A feed handler stamps arrival; the generated flow carries each venue's latency.
        book_events = decoded["kind"] != int(sor.EventKind.STATUS)
        decoded["ts_recv"][book_events] = venue_flow["ts_recv"]
        decoded["ts_recv"][~book_events] = start_ns
        feeds.append(decoded)
        packet_count, byte_count = packet_count + packets, byte_count + size
    feeds.append(level_updates(flow[flow["venue_id"] == 3]))
    merged = np.concatenate(feeds)
    merged = merged[np.argsort(merged["ts_recv"], kind="stable")]
    decode_s = time.perf_counter() - t0
    print(f"published and decoded {packet_count:,} MoldUDP64 packets ({byte_count / 1e6:.1f} MB "
          f"of ITCH 5.0) in {decode_s:.2f} s; {len(merged):,} events in arrival order\n")

    specs = [VenueSpec(0), VenueSpec(1), VenueSpec(2), VenueSpec(3, sor.BookType.L2)]
    book = ConsolidatedBook(specs)
    chunks = np.array_split(merged, max(1, snapshots))
    book_ns = 0
    for chunk in chunks:
        t = time.perf_counter_ns()
        book.apply(chunk)
        book_ns += time.perf_counter_ns() - t
        print(_snapshot(book, int(chunk["ts_recv"][-1]), session_date_ns))
    print()

    # Check: the same flow applied directly (no ITCH) must give the same books.
    direct = ConsolidatedBook(specs)
    direct_flow = flow
    direct.apply(np.concatenate([direct_flow[direct_flow["venue_id"] != 3], feeds[3]]))
    same = all(
        np.array_equal(book.depth(side, 1000, i)["venue_quantity"], direct.depth(side, 1000, i)["venue_quantity"])
        and np.array_equal(book.depth(side, 1000, i)["price_ticks"], direct.depth(side, 1000, i)["price_ticks"])
        for side in (sor.Side.BUY, sor.Side.SELL) for i in SYMBOLS.values())
    resting = sum(book.venue_book(v).order_count for v in (0, 1, 2))
    print(f"books: {len(merged):,} events applied in {book_ns / 1e6:.1f} ms "
          f"({len(merged) / (book_ns / 1e9) / 1e6:.1f} M events/s from Python), "
          f"{resting:,} resting orders on the L3 venues")
    print(f"ITCH path vs direct path, every level of every venue: {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1
