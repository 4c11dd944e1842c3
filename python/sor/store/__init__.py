"""The Parquet data store: audit journals and market data (ITCH 5.0 files, event arrays) in
hive-partitioned Parquet (``<dataset>/date=/instrument=/venue=/<source_id>.parquet``), ingested
idempotently per source and queried with DuckDB. See docs/store.md."""

from sor.store.datastore import (
    INGEST_DATASETS,
    PARTITION_COLUMNS,
    DataStore,
    IngestResult,
)
from sor.store.quotes import QUOTE_COLUMNS, venue_quotes

__all__ = ["DataStore", "IngestResult", "INGEST_DATASETS", "PARTITION_COLUMNS", "QUOTE_COLUMNS",
           "venue_quotes"]
