"""The Parquet data store: audit journals and market data in hive partitions, queried with
DuckDB. See docs/store.md and section 1 of docs/learning-loop.md.

Layout under the root::

    _sources/<source_id>.json                                   manifest (written last)
    <dataset>/date=YYYY-MM-DD/instrument=SYM/venue=NAME/<source_id>.parquet
    _lock                                                       flock: writers exclusive

Only files listed in a manifest are part of the store: readers (``files``, ``read``,
``connect``, ``query``, ``ls``) list them from the manifests, so the files of an ingest that
crashed before its manifest was written are never read, and the next ingest of that source
removes them and writes the source again.
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sor.errors import (
    AuditJournalError,
    FeedDecodeError,
    StoreError,
    UsageError,
)
from sor.monitor.journal import _fsync_directory
from sor.store import sources as _sources

#: Datasets written by ``ingest`` (``labelled`` and others come through ``write_dataset``).
INGEST_DATASETS = ("market_data", "quotes", "decisions", "executions", "children", "events")
PARTITION_COLUMNS = ("date", "instrument", "venue")
JOURNAL_SUFFIX = ".sorj"
ITCH_SUFFIXES = (".itch", ".itch50")
MANIFEST_FORMAT = "sor.store.manifest"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARTITION_VALUE = re.compile(r"^[A-Za-z0-9._+\-^$#@]+$")
_SOURCE_ID = re.compile(r"^[A-Za-z0-9._\-]+$")


@dataclass
class IngestResult:
    """What one source's ingest did: status ``ingested`` (new), ``replaced`` (the source
    changed since, e.g. a journal that grew) or ``unchanged`` (same SHA-256: nothing
    written); rows per dataset and the files (relative to the store root)."""

    source_id: str
    kind: str
    status: str
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    path: str = ""

    def line(self) -> str:
        """Returns a one-line summary: source id, status, rows per dataset."""
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.rows.items())) or "no rows"
        return f"{self.source_id}  {self.status}  {counts}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()



def _date_strings(column: Any, source: str) -> np.ndarray:
    """Returns a partition ``date`` column (string, date or timestamp) as "YYYY-MM-DD"."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = pc.strftime(column.cast(pa.timestamp("s")) if pa.types.is_date(column.type)
                             else column, format="%Y-%m-%d")
    values = np.asarray(column.to_pylist(), dtype=object)
    unique = {v for v in values.tolist()}
    checked = {v: _sources.check_date(v, source=source) for v in unique if v is not None}
    if None in unique:
        raise StoreError("the partition column 'date' has nulls", source=source)
    return np.array([checked[v] for v in values.tolist()], dtype=object)


class DataStore:
    """A Parquet data store under `root` (created on first write).

    Sources go in with :meth:`ingest` (journals, ITCH files, folders), :meth:`ingest_journal`,
    :meth:`ingest_itch`, :meth:`ingest_events` and :meth:`write_dataset`; the data comes out
    with :meth:`read`, :meth:`query` and :meth:`connect` (DuckDB). Ingest is idempotent per
    source and safe to run from several processes at once (an exclusive ``flock`` on the
    store's lock file while writing).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<sor.store.DataStore {str(self.root)!r}>"

    # --- locking and manifests ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        if not exclusive and not self.root.exists():
            yield
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "_sources").mkdir(exist_ok=True)
            handle = open(self.root / "_lock", "a+b")
        except OSError as error:
            raise StoreError(f"cannot open the store: {error.strerror or error}",
                             source=str(self.root)) from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def _manifest_path(self, source_id: str) -> Path:
        return self.root / "_sources" / f"{source_id}.json"

    def _read_manifest(self, path: Path) -> dict[str, Any] | None:
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            return None  # replaced by a writer meanwhile
        except (OSError, ValueError) as error:
            raise StoreError(f"damaged manifest: {error}", source=str(path)) from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise StoreError("not a store manifest", source=str(path))
        return manifest

    def _manifest(self, source_id: str) -> dict[str, Any] | None:
        path = self._manifest_path(source_id)
        return self._read_manifest(path)

    def _manifests(self) -> list[dict[str, Any]]:
        directory = self.root / "_sources"
        if not directory.is_dir():
            return []
        manifests = (self._read_manifest(p) for p in sorted(directory.glob("*.json")))
        return [m for m in manifests if m is not None]

    def sources(self) -> list[dict[str, Any]]:
        """Returns the manifests of every ingested source (source_id, kind, path, sha256,
        options, ingested_ns, rows per dataset, files)."""
        with self._locked(False):
            return self._manifests()

    # --- writing ------------------------------------------------------------------------------

    def _write_source(self, source_id: str, kind: str, sha256: str, tables: Mapping[str, Any],
                      *, path: str = "", options: Mapping[str, Any] | None = None,
                      extra: Mapping[str, Any] | None = None) -> IngestResult:
        """Writes one source's tables (each with the partition columns) under the rules of
        the store: same SHA-256 and options -> unchanged; else its old files go, the new files
        are written (temporary name, rename) and the manifest last. Holds the write lock."""
        import pyarrow.parquet as pq

        if not _SOURCE_ID.match(source_id):
            raise StoreError(f"source id {source_id!r} must be letters, digits, '.', '_', '-'")
        options = dict(options or {})
        prepared = {name: self._partitioned(name, table, path or source_id)
                    for name, table in tables.items() if table is not None}
        with self._locked(True):
            old = self._manifest(source_id)
            if old is not None and old.get("sha256") == sha256 and \
                    old.get("options", {}) == json.loads(json.dumps(options)):
                return IngestResult(source_id, old.get("kind", kind), "unchanged",
                                    dict(old.get("rows", {})),
                                    [f["path"] for f in old.get("files", [])], path)
            manifest_path = self._manifest_path(source_id)
            if old is not None:
                manifest_path.unlink()  # the source is invisible until rewritten
                _fsync_directory(manifest_path.parent)
            self._remove_source_files(source_id, old)
            files: list[dict[str, Any]] = []
            rows: dict[str, int] = {}
            for dataset, parts in prepared.items():
                rows[dataset] = 0
                for (date, instrument, venue), part in parts:
                    directory = (self.root / dataset / f"date={date}" /
                                 f"instrument={instrument}" / f"venue={venue}")
                    directory.mkdir(parents=True, exist_ok=True)
                    target = directory / f"{source_id}.parquet"
                    temporary = directory / f".{source_id}.parquet.tmp-{os.getpid()}"
                    try:
                        pq.write_table(part, temporary, compression="zstd")
                        os.replace(temporary, target)
                    except OSError as error:
                        temporary.unlink(missing_ok=True)
                        raise StoreError(f"cannot write {target}: {error.strerror or error}",
                                         source=path or source_id) from None
                    rows[dataset] += part.num_rows
                    files.append({"path": target.relative_to(self.root).as_posix(),
                                  "dataset": dataset, "date": date, "instrument": instrument,
                                  "venue": venue, "rows": part.num_rows,
                                  "bytes": target.stat().st_size})
            manifest = {"format": MANIFEST_FORMAT, "source_id": source_id, "kind": kind,
                        "path": path, "sha256": sha256, "options": options,
                        "ingested_ns": time.time_ns(), "rows": rows, "files": files,
                        **dict(extra or {})}
            self._write_manifest(manifest_path, manifest)
            return IngestResult(source_id, kind, "replaced" if old is not None else "ingested",
                                rows, [f["path"] for f in files], path)

    def _write_manifest(self, path: Path, manifest: dict[str, Any]) -> None:
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(temporary, "w") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)

    def _remove_source_files(self, source_id: str, old: dict[str, Any] | None) -> None:
        """Removes a source's files: those its manifest lists and any left by an ingest that
        died before writing its manifest."""
        names = {f"{source_id}.parquet"}
        for entry in (old or {}).get("files", []):
            (self.root / entry["path"]).unlink(missing_ok=True)
        for candidate in self.root.glob("*/date=*/instrument=*/venue=*/*"):
            name = candidate.name
            if name in names or name.startswith(f".{source_id}.parquet.tmp-"):
                candidate.unlink(missing_ok=True)

    def _partitioned(self, dataset: str, table: Any, source: str
                     ) -> list[tuple[tuple[str, str, str], Any]]:
        """Returns `table` split by (date, instrument, venue), without those columns."""
        import pyarrow as pa

        if not _NAME.match(dataset) or dataset.startswith("_"):
            raise StoreError(f"dataset name {dataset!r} must be letters, digits and '_' (not "
                             "starting with '_')", source=source)
        if not isinstance(table, pa.Table):
            raise StoreError(f"dataset {dataset}: expected a pyarrow Table, got "
                             f"{type(table).__name__}", source=source)
        missing = [c for c in PARTITION_COLUMNS if c not in table.column_names]
        if missing:
            raise StoreError(f"dataset {dataset}: the table lacks the partition columns "
                             f"{missing} (date 'YYYY-MM-DD', instrument, venue)", source=source)
        if table.num_rows == 0:
            return []
        keys = []
        for name in PARTITION_COLUMNS:
            column = table.column(name).combine_chunks()
            if name == "date":
                values = _date_strings(column, source)
            else:
                if column.null_count:
                    raise StoreError(f"dataset {dataset}: the partition column {name!r} has "
                                     "nulls", source=source)
                values = np.asarray([str(v) for v in column.to_pylist()], dtype=object)
            keys.append(values)
        labels, inverse = np.unique(
            np.char.add(np.char.add(np.char.add(keys[0].astype(str), "\x1f"),
                                    np.char.add(keys[1].astype(str), "\x1f")),
                        keys[2].astype(str)), return_inverse=True)
        inverse = inverse.reshape(-1)
        body = table.drop_columns(list(PARTITION_COLUMNS))
        order = np.argsort(inverse, kind="stable")
        bounds = np.r_[0, np.flatnonzero(np.diff(inverse[order])) + 1, len(order)]
        parts = []
        for k in range(len(labels)):
            date, instrument, venue = str(labels[k]).split("\x1f")
            for value, name in ((instrument, "instrument"), (venue, "venue")):
                if not _PARTITION_VALUE.match(value):
                    raise StoreError(f"dataset {dataset}: {name} {value!r} cannot be a partition "
                                     "value (letters, digits and . _ - + ^ $ # @ only)",
                                     source=source)
            rows = order[bounds[k]:bounds[k + 1]]
            parts.append(((date, instrument, venue), body.take(pa.array(rows))))
        return parts

    def write_dataset(self, dataset: str, table: Any, *, source_id: str,
                      sha256: str | None = None) -> IngestResult:
        """Writes `table` (pyarrow, with string/date columns ``date``, ``instrument``,
        ``venue`` that become the partitions) as `dataset` under `source_id`; the same table
        again changes nothing (``unchanged``), another table under the same source id replaces
        every file of that source (``replaced``). `sha256` defaults to a hash of the table."""
        if sha256 is None:
            sha256 = _table_sha256(table)
        return self._write_source(source_id, f"table:{dataset}", sha256, {dataset: table},
                                  options={"dataset": dataset})

    # --- ingest -------------------------------------------------------------------------------

    def ingest(self, path: str | os.PathLike[str], *, venue: str | None = None,
               venue_id: int | None = None, date: str | None = None) -> list[IngestResult]:
        """Ingests a journal (``.sorj``), an ITCH file (``.itch``) or a folder of them (not
        recursive); returns one result per source. ITCH files need a venue: `venue`, else a
        configured venue name found in the file name; their date: `date`, else a date in the
        file name (YYYY-MM-DD or YYYYMMDD)."""
        target = Path(path)
        if target.is_dir():
            files = sorted(p for p in target.iterdir() if p.is_file() and
                           (p.suffix == JOURNAL_SUFFIX or p.suffix.lower() in ITCH_SUFFIXES))
            if not files:
                raise StoreError("no journals (.sorj) or ITCH files (.itch) in the folder",
                                 source=str(target))
        elif target.is_file():
            files = [target]
        else:
            raise StoreError("no such file or folder", source=str(target))
        results = []
        for file in files:
            if file.suffix == JOURNAL_SUFFIX:
                results.append(self.ingest_journal(file))
            else:
                results.append(self.ingest_itch(file, venue=venue or _venue_from_name(file),
                                                venue_id=venue_id, date=date))
        return results

    def ingest_journal(self, path: str | os.PathLike[str]) -> IngestResult:
        """Ingests one audit journal run as ``journal-<run_id>`` (decisions, executions,
        children, events). A run that grew since replaces its earlier files; a corrupt
        journal raises StoreError and changes nothing."""
        from sor.monitor.journal import read_run

        file = Path(path)
        try:
            sha256 = _sha256_file(file)
        except OSError as error:
            raise StoreError(f"cannot read: {error.strerror or error}", source=str(file)) from None
        try:
            run = read_run(file)
        except AuditJournalError as error:
            raise StoreError(f"not a readable audit journal: {error}", source=str(file)) from None
        source_id = "journal-" + _safe_id(run.run_id)
        existing = self._manifest(source_id) if self.root.exists() else None
        if existing is not None and existing.get("sha256") == sha256:
            return IngestResult(source_id, "journal", "unchanged", dict(existing["rows"]),
                                [f["path"] for f in existing["files"]], str(file))
        tables = _sources.journal_tables(run, str(file))
        return self._write_source(source_id, "journal", sha256, tables, path=str(file),
                                  extra={"run_id": run.run_id,
                                         "torn_bytes": int(run.torn_bytes)})

    def ingest_itch(self, path: str | os.PathLike[str], *, venue: str | None,
                    venue_id: int | None = None, date: str | None = None,
                    instruments: Mapping[str, int] | None = None) -> IngestResult:
        """Ingests an ITCH 5.0 file (file framing) of one venue as ``itch-<sha256[:16]>``:
        ``market_data`` (L3) and ``quotes``. `venue`: its name (a configured venue's name
        gives its id, else pass `venue_id`); `date`: the session date (ITCH times are since
        midnight; default: a date in the file name); `instruments`: symbol -> instrument id
        (default: the stock locate is the id). A file that fails to decode raises StoreError
        and changes nothing."""
        from sor.feed.itch import decode

        file = Path(path)
        try:
            data = file.read_bytes()
        except OSError as error:
            raise StoreError(f"cannot read: {error.strerror or error}", source=str(file)) from None
        if not venue:
            raise StoreError("an ITCH file needs its venue (venue=, --venue NAME)",
                             source=str(file))
        venue_id = _venue_id(venue, venue_id, str(file))
        if date is None:
            date = _date_from_name(file)
            if date is None:
                raise StoreError("ITCH timestamps are since midnight: give the session date "
                                 "(date=, --date YYYY-MM-DD) or put it in the file name",
                                 source=str(file))
        date = _sources.check_date(date, source=str(file))
        sha256 = hashlib.sha256(data).hexdigest()
        source_id = f"itch-{sha256[:16]}"
        options = {"venue": venue, "venue_id": venue_id, "date": date,
                   "instruments": dict(instruments) if instruments else None}
        existing = self._manifest(source_id) if self.root.exists() else None
        if existing is not None and existing.get("sha256") == sha256 and \
                existing.get("options") == options:
            return IngestResult(source_id, "itch", "unchanged", dict(existing["rows"]),
                                [f["path"] for f in existing["files"]], str(file))
        try:
            batch = decode(data, venue_id=venue_id, session_date_ns=_sources.midnight_ns(date),
                           instruments=instruments)
        except FeedDecodeError as error:
            raise StoreError(f"ITCH decode failed: {error}", source=str(file)) from None
        except UsageError as error:
            raise StoreError(str(error), source=str(file)) from None
        names = {int(entry.instrument_id if instruments else entry.stock_locate): entry.symbol
                 for entry in batch.directory}
        tables, counts = self._market_tables(batch.events, "L3", None, {venue_id: venue},
                                             names, str(file))
        return self._write_source(source_id, "itch", sha256, tables, path=str(file),
                                  options=options, extra=counts)

    def ingest_events(self, events: np.ndarray, *, source_id: str | None = None,
                      venue_names: Mapping[int, str] | None = None,
                      instrument_names: Mapping[int, str] | None = None,
                      book_type: Any = "L3", date: str | None = None) -> IngestResult:
        """Ingests market-data events (md_event_dtype: L3 order by order or L2 levels) as
        ``market_data`` and ``quotes``; `source_id` defaults to ``events-<sha256[:16]>`` of the
        array. `venue_names` / `instrument_names` ({id: name}) name the partitions (else
        ``id-N``); `date` overrides the UTC date of ``ts_event``."""
        from sor.book import MD_EVENT_DTYPE

        array = np.asarray(events)
        if array.dtype != MD_EVENT_DTYPE or array.ndim != 1:
            raise StoreError(f"events must be a 1-d md_event_dtype array, got {array.dtype} "
                             f"shape {array.shape}")
        book = _sources.book_type_name(book_type)
        if date is not None:
            date = _sources.check_date(date)
        array = np.ascontiguousarray(array)
        sha256 = hashlib.sha256(memoryview(array).cast("B")).hexdigest()
        source_id = source_id or f"events-{sha256[:16]}"
        venues = {int(k): str(v) for k, v in (venue_names or {}).items()}
        instruments = {int(k): str(v) for k, v in (instrument_names or {}).items()}
        options = {"book_type": book, "date": date,
                   "venue_names": {str(k): v for k, v in sorted(venues.items())},
                   "instrument_names": {str(k): v for k, v in sorted(instruments.items())}}
        existing = self._manifest(source_id) if self.root.exists() else None
        if existing is not None and existing.get("sha256") == sha256 and \
                existing.get("options") == options:
            return IngestResult(source_id, "events", "unchanged", dict(existing["rows"]),
                                [f["path"] for f in existing["files"]])
        tables, counts = self._market_tables(array, book, date, venues, instruments, source_id)
        return self._write_source(source_id, "events", sha256, tables, options=options,
                                  extra=counts)

    def _market_tables(self, events: np.ndarray, book_type: str, date: str | None,
                       venues: Mapping[int, str], instruments: Mapping[int, str], source: str
                       ) -> tuple[dict[str, Any], dict[str, int]]:
        dates = date if date is not None else _sources.utc_dates(events["ts_event"])
        market = _sources.market_data_table(events, book_type=book_type, dates=dates,
                                            venue_names=venues, instrument_names=instruments)
        quotes, counts = _sources.quotes_tables(events, book_type=book_type, dates_override=date,
                                                venue_names=venues,
                                                instrument_names=instruments)
        return {"market_data": market, "quotes": quotes}, counts

    # --- reading ------------------------------------------------------------------------------

    def _file_entries(self, dataset: str | None = None) -> list[dict[str, Any]]:
        entries = [entry for manifest in self._manifests() for entry in manifest["files"]]
        if dataset is not None:
            entries = [e for e in entries if e["dataset"] == dataset]
        return entries

    def datasets(self) -> list[str]:
        """Returns the datasets that have files, sorted."""
        with self._locked(False):
            return sorted({e["dataset"] for e in self._file_entries()})

    def ls(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Returns one row per partition: dataset, date, instrument, venue, files, rows, bytes
        (sorted)."""
        with self._locked(False):
            entries = self._file_entries(dataset)
        groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for e in entries:
            key = (e["dataset"], e["date"], e["instrument"], e["venue"])
            row = groups.setdefault(key, {"dataset": key[0], "date": key[1],
                                          "instrument": key[2], "venue": key[3], "files": 0,
                                          "rows": 0, "bytes": 0})
            row["files"] += 1
            row["rows"] += int(e["rows"])
            row["bytes"] += int(e["bytes"])
        return [groups[k] for k in sorted(groups)]

    def files(self, dataset: str, *, dates: Iterable[str] | None = None,
              instruments: Iterable[str] | None = None,
              venues: Iterable[str] | None = None) -> list[Path]:
        """Returns the Parquet files of `dataset` (absolute paths), optionally only those of
        the given dates, instruments and venues."""
        with self._locked(False):
            entries = self._file_entries(dataset)
        return self._select(entries, dates, instruments, venues)

    def _select(self, entries: list[dict[str, Any]], dates: Iterable[str] | None,
                instruments: Iterable[str] | None, venues: Iterable[str] | None) -> list[Path]:
        wanted_dates = None if dates is None else {_sources.check_date(d) for d in dates}
        wanted_instruments = None if instruments is None else {str(i) for i in instruments}
        wanted_venues = None if venues is None else {str(v) for v in venues}
        return sorted(self.root / e["path"] for e in entries
                      if (wanted_dates is None or e["date"] in wanted_dates) and
                      (wanted_instruments is None or e["instrument"] in wanted_instruments) and
                      (wanted_venues is None or e["venue"] in wanted_venues))

    def _check_dataset(self, dataset: str, present: Iterable[str]) -> None:
        present = sorted(set(present))
        if dataset not in present:
            raise StoreError(f"no dataset {dataset!r} in the store; datasets: "
                             f"{', '.join(present) or 'none (ingest something first)'}",
                             source=str(self.root))

    def read(self, dataset: str, *, dates: Iterable[str] | None = None,
             instruments: Iterable[str] | None = None, venues: Iterable[str] | None = None,
             columns: list[str] | None = None) -> Any:
        """Returns the rows of `dataset` as a pyarrow table with the partition columns
        ``date`` (date32), ``instrument`` and ``venue`` (strings), optionally only some
        partitions and `columns`."""
        with self._locked(False):
            entries = self._file_entries()
            self._check_dataset(dataset, {e["dataset"] for e in entries})
            paths = self._select([e for e in entries if e["dataset"] == dataset], dates,
                                 instruments, venues)
            if not paths:
                import pyarrow as pa

                return pa.table({})
            connection = self._duckdb()
            try:
                projection = "*" if columns is None else ", ".join(_quote(c) for c in columns)
                return self._fetch(connection, f"SELECT {projection} FROM "
                                               f"{_read_parquet(self.root, paths)}")
            finally:
                connection.close()

    @staticmethod
    def _duckdb() -> Any:
        import duckdb

        return duckdb.connect()

    def _create_views(self, connection: Any) -> list[str]:
        by_dataset: dict[str, list[Path]] = {}
        for entry in self._file_entries():
            by_dataset.setdefault(entry["dataset"], []).append(self.root / entry["path"])
        for dataset, paths in sorted(by_dataset.items()):
            connection.execute(f"CREATE OR REPLACE VIEW {_quote(dataset)} AS SELECT * FROM "
                               f"{_read_parquet(self.root, sorted(paths))}")
        return sorted(by_dataset)

    def connect(self) -> Any:
        """Returns a DuckDB in-memory connection with one view per dataset present (the files
        listed by the manifests when called)."""
        with self._locked(False):
            connection = self._duckdb()
            self._create_views(connection)
        return connection

    def query(self, sql: str) -> Any:
        """Runs `sql` (DuckDB) over the views of the datasets present; returns a pyarrow
        table. Bad SQL raises StoreError with DuckDB's message."""
        import duckdb

        with self._locked(False):
            connection = self._duckdb()
            try:
                present = self._create_views(connection)
                try:
                    return self._fetch(connection, sql)
                except duckdb.CatalogException as error:
                    message = " ".join(str(error).split())
                    raise StoreError(f"query failed: {message} (datasets in the store: "
                                     f"{', '.join(present) or 'none'})") from None
                except duckdb.Error as error:
                    raise StoreError("query failed: " + " ".join(str(error).split())) from None
            finally:
                connection.close()

    @staticmethod
    def _fetch(connection: Any, sql: str) -> Any:
        import pyarrow as pa

        relation = connection.sql(sql)
        if relation is None:
            return pa.table({})
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        result = fetch()
        if not isinstance(result, pa.Table):  # a RecordBatchReader
            result = result.read_all()
        return result


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _read_parquet(root: Path, paths: list[Path]) -> str:
    listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return (f"read_parquet([{listing}], hive_partitioning=true, union_by_name=true, "
            "hive_types={'date': DATE, 'instrument': VARCHAR, 'venue': VARCHAR})")


def _table_sha256(table: Any) -> str:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._\-]", "_", text)


def _configured_venues() -> dict[str, int]:
    from sor.config import default_config

    return {v.name: int(v.venue_id) for v in default_config().venues}


def _venue_id(venue: str, venue_id: int | None, source: str) -> int:
    if venue_id is not None:
        if not 0 <= int(venue_id) <= 0xFF:
            raise StoreError(f"venue id {venue_id} is not 0..255", source=source)
        return int(venue_id)
    match = re.fullmatch(r"id-(\d+)", venue)
    if match and int(match.group(1)) <= 0xFF:
        return int(match.group(1))
    known = _configured_venues()
    if venue in known:
        return known[venue]
    raise StoreError(f"venue {venue!r} is not a configured venue ({', '.join(sorted(known))}); "
                     "give its id (venue_id=, --venue NAME=ID)", source=source)


def _venue_from_name(file: Path) -> str | None:
    tokens = set(re.split(r"[^A-Za-z0-9]+", file.stem.upper()))
    found = [name for name in _configured_venues() if name.upper() in tokens]
    return found[0] if len(found) == 1 else None


def _date_from_name(file: Path) -> str | None:
    match = re.search(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)", file.name)
    if not match:
        return None
    try:
        return _datetime.date(int(match.group(1)), int(match.group(2)),
                              int(match.group(3))).isoformat()
    except ValueError:
        return None


__all__ = ["DataStore", "IngestResult", "INGEST_DATASETS", "PARTITION_COLUMNS"]
