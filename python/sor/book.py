"""Order books: per-venue L3 (order by order) and L2 (price level) books, and the consolidated
book across venues (NBBO, depth with per-venue sizes, protected quotes).

Everything runs in the C++ core; these are the pybind11 classes themselves. Events go in as
numpy arrays of :data:`MD_EVENT_DTYPE` in one call (``book.apply(events)``), snapshots come back
as numpy arrays. A bad event raises :class:`sor.BookIntegrityError` or
:class:`sor.SequenceGapError` naming its index; it is not applied, events before it are.
"""

from __future__ import annotations

import numpy as np

from sor._core import (
    FLAG_CROSS,
    FLAG_PRINTABLE,
    FLAG_SNAPSHOT,
    BookType,
    ConsolidatedBook,
    EventKind,
    L2Book,
    L3Book,
    Nbbo,
    Side,
    VenueSpec,
)
from sor._core import level_dtype as LEVEL_DTYPE
from sor._core import md_event_dtype as MD_EVENT_DTYPE
from sor._core import protected_quote_dtype as PROTECTED_QUOTE_DTYPE


def empty_events(count: int) -> np.ndarray:
    """Returns ``count`` zeroed market-data events, ready to fill field by field."""
    return np.zeros(count, dtype=MD_EVENT_DTYPE)


def venues_in_mask(book: ConsolidatedBook, mask: int) -> list[int]:
    """Returns the venue ids whose positions are set in an NBBO venue mask."""
    return [spec.venue_id for position, spec in enumerate(book.venues) if mask >> position & 1]


__all__ = [
    "L3Book", "L2Book", "ConsolidatedBook", "VenueSpec", "BookType", "Nbbo", "Side", "EventKind",
    "MD_EVENT_DTYPE", "LEVEL_DTYPE", "PROTECTED_QUOTE_DTYPE", "FLAG_PRINTABLE", "FLAG_CROSS",
    "FLAG_SNAPSHOT", "empty_events", "venues_in_mask",
]
