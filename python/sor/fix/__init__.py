"""FIX 4.2/4.4 connectivity (see docs/fix.md). This module only re-exports."""

from sor.fix.codec import (
    FixFramer,
    FixMessage,
    FrameStatus,
    encode,
    format_utc_timestamp,
    parse,
    parse_utc_timestamp,
    price_from_fix,
    price_to_fix,
)

__all__ = [
    "FixFramer", "FixMessage", "FrameStatus", "encode", "format_utc_timestamp", "parse",
    "parse_utc_timestamp", "price_from_fix", "price_to_fix",
]
