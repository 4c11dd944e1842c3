"""sor: an ML-driven smart order router for equities.

This module only re-exports; the pieces live in their own modules (``sor.book``,
``sor.feed.itch``, ``sor.sim``, ``sor.errors``).
"""

from sor._core import __version__
from sor.book import (
    LEVEL_DTYPE,
    MD_EVENT_DTYPE,
    BookType,
    ConsolidatedBook,
    EventKind,
    L2Book,
    L3Book,
    Side,
    VenueSpec,
)
from sor.errors import (
    BookIntegrityError,
    ConfigError,
    FeedDecodeError,
    SequenceGapError,
    SorError,
    UsageError,
)

__all__ = [
    "__version__",
    "L3Book",
    "L2Book",
    "ConsolidatedBook",
    "VenueSpec",
    "BookType",
    "Side",
    "EventKind",
    "MD_EVENT_DTYPE",
    "LEVEL_DTYPE",
    "SorError",
    "UsageError",
    "BookIntegrityError",
    "SequenceGapError",
    "FeedDecodeError",
    "ConfigError",
]
