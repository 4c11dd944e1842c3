"""``sor data ingest | ls | query``: the data store from the command line (docs/store.md)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any

from sor.errors import StoreError

DEFAULT_STORE = "./sor-store"


def default_store() -> str:
    """Returns the store folder used without --store: $SOR_STORE, else ./sor-store."""
    return os.environ.get("SOR_STORE") or DEFAULT_STORE


def add_parser(commands: Any) -> Any:
    """Adds ``sor data`` and its subcommands to the top-level subparsers; returns the
    sub-parsers of ``sor data`` (other modules add their own ``sor data`` commands to it)."""
    data = commands.add_parser(
        "data", help="the Parquet data store: ingest journals and market data, list, query",
        description="The Parquet data store (docs/store.md): audit journals (.sorj) and "
                    "ITCH 5.0 files (.itch) go in as hive-partitioned Parquet "
                    "(<dataset>/date=/instrument=/venue=), idempotently per source; DuckDB "
                    "queries them. --store defaults to $SOR_STORE, else ./sor-store.")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    ingest = data_commands.add_parser(
        "ingest", help="ingest journals, ITCH files or folders of them",
        description="Ingests audit journals (.sorj) and ITCH 5.0 files (.itch, file framing), "
                    "or folders of them; prints one line per source: source id, status "
                    "(ingested, replaced, unchanged) and rows per dataset. Ingesting a source "
                    "again changes nothing; a journal that grew replaces its earlier rows.")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="file or folder")
    _store_argument(ingest)
    ingest.add_argument("--venue", metavar="NAME[=ID]",
                        help="venue of the ITCH files (a configured venue name, or NAME=ID); "
                             "default: a configured venue name in the file name")
    ingest.add_argument("--date", metavar="YYYY-MM-DD",
                        help="session date of the ITCH files (default: a date in the file name)")
    ingest.set_defaults(handler=cmd_ingest)

    ls = data_commands.add_parser("ls", help="list the partitions with files, rows and bytes")
    _store_argument(ls)
    ls.add_argument("--dataset", metavar="NAME", help="only this dataset")
    ls.set_defaults(handler=cmd_ls)

    query = data_commands.add_parser(
        "query", help="run DuckDB SQL over the store",
        description="Runs SQL (DuckDB) over one view per dataset in the store: market_data, "
                    "quotes, decisions, executions, children, events, labelled, ... with the "
                    "partition columns date, instrument, venue. Quote dotted feature names: "
                    "\"nbbo.spread_bps\".")
    query.add_argument("sql", metavar="SQL")
    _store_argument(query)
    query.add_argument("--format", choices=["table", "csv", "json"], default="table",
                       help="output format (default table)")
    query.add_argument("--limit", type=int, default=50,
                       help="rows printed as a table (default 50; csv and json print all)")
    query.set_defaults(handler=cmd_query)
    return data_commands


def _store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="store folder (default $SOR_STORE, else ./sor-store)")


def _store(args: argparse.Namespace) -> Any:
    from sor.store import DataStore

    return DataStore(args.store or default_store())


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingests every PATH; prints one line per source."""
    store = _store(args)
    venue, venue_id = args.venue, None
    if venue and "=" in venue:
        venue, _, number = venue.partition("=")
        try:
            venue_id = int(number)
        except ValueError:
            raise StoreError(f"--venue {args.venue!r}: the id after '=' must be an integer") \
                from None
    for path in args.paths:
        for result in store.ingest(path, venue=venue, venue_id=venue_id, date=args.date):
            print(result.line(), flush=True)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """Prints the partitions of the store with totals."""
    store = _store(args)
    rows = store.ls(args.dataset)
    columns = ["dataset", "date", "instrument", "venue", "files", "rows", "bytes"]
    cells = [columns] + [[str(row[c]) for c in columns] for row in rows]
    cells.append(["total", "", "", "", str(sum(r["files"] for r in rows)),
                  str(sum(r["rows"] for r in rows)), str(sum(r["bytes"] for r in rows))])
    print(_align(cells, numeric={4, 5, 6}))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Runs the SQL and prints the result as a table, CSV or JSON."""
    if args.limit < 0:
        raise StoreError(f"--limit must be >= 0, got {args.limit}")
    table = _store(args).query(args.sql)
    if args.format == "json":
        print(json.dumps(table.to_pylist(), indent=1, default=str))
    elif args.format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow(["" if row[c] is None else row[c] for c in table.column_names])
        sys.stdout.write(buffer.getvalue())
    else:
        rows = table.slice(0, args.limit).to_pylist()
        cells = [list(table.column_names)] + [
            ["" if r[c] is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]))
             for c in table.column_names] for r in rows]
        print(_align(cells))
        if table.num_rows > args.limit:
            print(f"... {table.num_rows - args.limit} more rows (--limit)")
    return 0


def _align(cells: list[list[str]], numeric: set[int] | None = None) -> str:
    if not cells or not cells[0]:
        return "(no columns)"
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.rjust(w) if (numeric is None or i in numeric) else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["add_parser", "cmd_ingest", "cmd_ls", "cmd_query", "default_store"]
