"""sor: an ML-driven smart order router for equities.

This module only re-exports; the pieces live in their own modules.
"""

from sor._core import __version__
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
    "SorError",
    "UsageError",
    "BookIntegrityError",
    "SequenceGapError",
    "FeedDecodeError",
    "ConfigError",
]
