"""Dark-pool prints follow the ITCH convention of every other print: MdEvent.side is the
resting order's side, so the aggressor (the tape's aggressor_side) is the opposite side."""

from __future__ import annotations

import numpy as np

from sor import _core
from sor.sim.market import Market


def test_dark_prints_carry_the_resting_side():
    market = Market("dark_rich", seed=4, record_events=True)
    market.run_for(240)
    dark = [int(v.venue_id) for v in market.spec.venues if v.kind == _core.SimVenueKind.DARK]
    assert dark
    trades = market.trades()
    for venue in dark:
        events = market.events(venue)
        prints = events[events["kind"] == 7]
        tape = trades[trades["venue_id"] == venue]
        assert prints.size == tape.size > 0
        # same prints in the same order: the printed side is the opposite of the aggressor's
        assert np.array_equal(prints["quantity"], tape["quantity"])
        assert np.all(prints["side"] == 3 - tape["aggressor_side"])
