"""Peer order books (hftbacktest, nautilus_trader) reach the same top of book as a slow reference.

The peers are optional (the ``bench`` extra); each test is skipped when its peer is missing.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from sor.bench import peers
from sor.bench.peers import ADD, ASK, BID, CANCEL, DELETE, EXECUTE, LEVEL, MD_EVENT, REPLACE


def make_streams(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A valid random L3 stream (never crossed) and the L2 stream derived from it."""
    rng = random.Random(seed)
    orders: dict[int, list[int]] = {}  # id -> [side, px, qty]
    levels: dict[tuple[int, int], int] = {}
    l3: list[tuple] = []
    l2: list[tuple] = []
    next_id = 1
    seq = 0

    def best(side: int) -> int | None:
        pxs = [p for (s, p) in levels if s == side]
        if not pxs:
            return None
        return max(pxs) if side == BID else min(pxs)

    def level_change(side: int, px: int, dq: int, ts: int) -> None:
        total = levels.get((side, px), 0) + dq
        if total:
            levels[(side, px)] = total
        else:
            levels.pop((side, px), None)
        l2.append((ts, ts, len(l2) + 1, 0, 0, px, total, 1, 1, LEVEL, side, 0))

    def price_for(side: int) -> int:
        bb, ba = best(BID), best(ASK)
        if side == BID:
            hi = (ba - 1) if ba is not None else 10_000
            ref = bb if bb is not None else hi
            return min(hi, ref + rng.randint(-5, 1))
        lo = (bb + 1) if bb is not None else 10_001
        ref = ba if ba is not None else lo
        return max(lo, ref + rng.randint(-1, 5))

    for _ in range(n):
        seq += 1
        ts = 1_000 + seq
        r = rng.random()
        if len(orders) < 20 or r < 0.40:
            side = rng.choice((BID, ASK))
            px = price_for(side)
            qty = rng.randint(1, 20) * 100
            oid, next_id = next_id, next_id + 1
            orders[oid] = [side, px, qty]
            l3.append((ts, ts, seq, oid, 0, px, qty, 1, 1, ADD, side, 0))
            level_change(side, px, qty, ts)
            continue
        oid = rng.choice(list(orders))
        side, px, qty = orders[oid]
        if r < 0.55:  # partial or full cancel
            q = min(qty, rng.randint(1, 10) * 100)
            l3.append((ts, ts, seq, oid, 0, px, q, 1, 1, CANCEL, side, 0))
            orders[oid][2] -= q
            if orders[oid][2] == 0:
                del orders[oid]
            level_change(side, px, -q, ts)
        elif r < 0.75:
            l3.append((ts, ts, seq, oid, 0, px, qty, 1, 1, DELETE, side, 0))
            del orders[oid]
            level_change(side, px, -qty, ts)
        elif r < 0.88:  # execute against the front of the best level
            side = rng.choice((BID, ASK))
            bpx = best(side)
            if bpx is None:
                continue
            oid = next(o for o, v in orders.items() if v[0] == side and v[1] == bpx)  # insertion order = FIFO
            qty = orders[oid][2]
            q = min(qty, rng.randint(1, 10) * 100)
            l3.append((ts, ts, seq, oid, 0, bpx, q, 1, 1, EXECUTE, side, 0))
            orders[oid][2] -= q
            if orders[oid][2] == 0:
                del orders[oid]
            level_change(side, bpx, -q, ts)
        else:  # replace: new id, new price/size, same side
            del orders[oid]
            level_change(side, px, -qty, ts)
            npx = price_for(side)
            nq = rng.randint(1, 20) * 100
            nid, next_id = next_id, next_id + 1
            orders[nid] = [side, npx, nq]
            l3.append((ts, ts, seq, oid, nid, npx, nq, 1, 1, REPLACE, side, 0))
            if npx == px:  # one level event, with the net total
                l2.pop()
            level_change(side, npx, nq, ts)
    return np.array(l3, dtype=MD_EVENT), np.array(l2, dtype=MD_EVENT)


def reference_top(l3: np.ndarray) -> dict[str, int | None]:
    """Slow, obviously-correct top of book from the L3 stream."""
    orders: dict[int, list[int]] = {}
    for e in l3:
        k, oid = int(e["kind"]), int(e["order_id"])
        if k == ADD:
            orders[oid] = [int(e["side"]), int(e["price_ticks"]), int(e["quantity"])]
        elif k in (CANCEL, EXECUTE):
            orders[oid][2] -= int(e["quantity"])
            if orders[oid][2] <= 0:
                del orders[oid]
        elif k == DELETE:
            del orders[oid]
        elif k == REPLACE:
            side = orders.pop(oid)[0]
            orders[int(e["related_id"])] = [side, int(e["price_ticks"]), int(e["quantity"])]
    agg: dict[tuple[int, int], int] = {}
    for side, px, qty in orders.values():
        agg[(side, px)] = agg.get((side, px), 0) + qty
    bids = [p for (s, p) in agg if s == BID]
    asks = [p for (s, p) in agg if s == ASK]
    bb = max(bids) if bids else None
    ba = min(asks) if asks else None
    return {
        "bid_price_ticks": bb,
        "bid_quantity": agg[(BID, bb)] if bb is not None else 0,
        "ask_price_ticks": ba,
        "ask_quantity": agg[(ASK, ba)] if ba is not None else 0,
    }


def reference_top_l2(l2: np.ndarray) -> dict[str, int | None]:
    lv: dict[tuple[int, int], int] = {}
    for e in l2:
        key = (int(e["side"]), int(e["price_ticks"]))
        if int(e["quantity"]):
            lv[key] = int(e["quantity"])
        else:
            lv.pop(key, None)
    bids = [p for (s, p) in lv if s == BID]
    asks = [p for (s, p) in lv if s == ASK]
    bb = max(bids) if bids else None
    ba = min(asks) if asks else None
    return {
        "bid_price_ticks": bb,
        "bid_quantity": lv[(BID, bb)] if bb is not None else 0,
        "ask_price_ticks": ba,
        "ask_quantity": lv[(ASK, ba)] if ba is not None else 0,
    }


@pytest.fixture(scope="module")
def streams():
    l3, l2 = make_streams(4_000)
    top = reference_top(l3)
    assert reference_top_l2(l2) == top  # the generator's L2 derivation is consistent
    assert top["bid_price_ticks"] is not None and top["ask_price_ticks"] is not None
    assert top["bid_price_ticks"] < top["ask_price_ticks"]
    return l3, l2, top


def _check_result(res: dict, n3: int, n2: int, top: dict) -> None:
    for key, n in (("l3", n3), ("l2", n2)):
        r = res[key]
        assert r["events"] == n
        assert r["per_update"] in ("measured", "amortised")
        assert r["final_top"] == top, key
        assert r["throughput_per_s"] > 0
        assert {"p50_ns", "p99_ns", "p999_ns", "mean_ns"} <= r.keys()
        assert r["api"] and r["version"]
    for key in ("l3", "l2"):
        if "batch" in res[key]:
            assert res[key]["batch"]["per_update"] == "amortised"


def test_nautilus_matches_reference(streams, monkeypatch):
    pytest.importorskip("nautilus_trader", reason="peer not installed: pip install \"sor[bench]\"")
    monkeypatch.setattr(peers, "_OVERHEAD_SAMPLES", 2_000)
    l3, l2, top = streams
    res = peers.run_nautilus(l3, l2, tick_size=0.01)
    _check_result(res, len(l3), len(l2), top)
    assert res["version"] == peers.peer_versions()["nautilus_trader"]


def test_hftbacktest_matches_reference(streams, monkeypatch):
    pytest.importorskip("hftbacktest", reason="peer not installed: pip install \"sor[bench]\"")
    monkeypatch.setattr(peers, "_OVERHEAD_SAMPLES", 2_000)
    l3, l2, top = streams
    res = peers.run_hftbacktest(l3, l2, tick_size=0.01)
    _check_result(res, len(l3), len(l2), top)
    assert res["version"] == peers.peer_versions()["hftbacktest"]


def test_missing_peer_names_the_fix(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "nautilus_trader":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ModuleNotFoundError, match=r"sor\[bench\]"):
        peers.run_nautilus(np.zeros(0, MD_EVENT), None)


def test_peer_versions_keys():
    v = peers.peer_versions()
    assert set(v) == {"hftbacktest", "nautilus_trader"}


def test_stream_layout_is_normalised():
    l3, _ = make_streams(50)
    shuffled = np.dtype([(n, MD_EVENT.fields[n][0]) for n in reversed(MD_EVENT.names)])
    other = np.empty(len(l3), dtype=shuffled)
    for n in MD_EVENT.names:
        other[n] = l3[n]
    back = peers._check_stream(other, "L3")
    assert back.dtype == MD_EVENT
    assert back.tobytes() == l3.tobytes()
    with pytest.raises(ValueError, match="lacks MdEvent fields"):
        peers._check_stream(np.zeros(3, dtype=[("kind", "u1")]), "L3")
