"""Market-data feed decoders and encoders. This module only re-exports."""

from sor.feed.itch import DirectoryEntry, ItchBatch, ItchDecoder, ItchWriter, decode, encode

__all__ = ["DirectoryEntry", "ItchBatch", "ItchDecoder", "ItchWriter", "decode", "encode"]
