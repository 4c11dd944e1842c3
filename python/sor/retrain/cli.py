"""`sor retrain` and `sor data simulate-day` (docs/retraining.md)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def add_simulate_day_parser(data_commands: Any) -> None:
    """Adds ``simulate-day`` to the sub-commands of ``sor data`` (the sub-parsers that
    ``sor.store.cli.add_parser`` returns)."""
    simulate = data_commands.add_parser(
        "simulate-day", help="route a simulated trading day: audit journal + ITCH files",
        description="Routes a simulated trading day through the real engine (ml_router with "
                    "the models of --models) and writes its audit journal and the market data "
                    "the router saw as ITCH 5.0 files, one per lit venue, into OUT; then "
                    "'sor data ingest OUT' stores them.")
    simulate.add_argument("out", metavar="OUT", help="folder to write into")
    simulate.add_argument("--hours", type=float, default=6.5, help="session hours (6.5)")
    simulate.add_argument("--scenario", default="default", help="simulator scenario")
    simulate.add_argument("--seed", type=int, default=1, help="market seed (1)")
    simulate.add_argument("--models", metavar="DIR", default=None,
                          help="model registry the router runs (default: the shipped models)")
    simulate.add_argument("--policy", default="ml_router", help="routing policy (ml_router)")
    simulate.add_argument("--step-s", type=float, default=0.5,
                          help="simulated seconds per engine step (0.5)")
    simulate.set_defaults(handler=_cmd_simulate_day)


def _cmd_simulate_day(args: argparse.Namespace) -> int:
    from sor.retrain.simulate import simulate_day

    day = simulate_day(args.out, scenario=args.scenario, seed=args.seed, hours=args.hours,
                       registry=args.models, policy=args.policy, step_s=args.step_s)
    print(f"simulated {day.hours:g} h of {day.scenario} (seed {day.seed}), trading day "
          f"{day.trading_day}: {day.parents} parents, {day.decisions} decisions, "
          f"{day.children} children sent, in {day.wall_seconds:.1f} s")
    print(f"journal {day.journal_path}")
    for venue, path in day.itch_paths.items():
        print(f"ITCH    {path} ({day.market_events[venue]} events)")
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``sor retrain`` to the top-level sub-commands; returns it."""
    from sor.scale import add_dask_arguments

    parser = commands.add_parser(
        "retrain", help="label the store's children, train challengers, backtest, promote",
        description="Labels the live children in the store (DuckDB as-of joins on the venues' "
                    "quotes), trains challenger models on them split by time, stages them in "
                    "the registry, compares them with the models in use on held-out "
                    "backtests (paired seeds) and promotes them only when they win by the "
                    "rule of docs/retraining.md. Writes <models>/retrain/<UTC>.json|.md.")
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="data store (default $SOR_STORE, else ./sor-store)")
    parser.add_argument("--models", metavar="DIR", default=None,
                        help="champion registry (default: the shipped models)")
    parser.add_argument("--dates", nargs="+", metavar="YYYY-MM-DD", default=None,
                        help="trading days to learn from (default: all)")
    parser.add_argument("--no-promote", action="store_true",
                        help="stage and report, never promote")
    parser.add_argument("--no-rl", action="store_true", help="no RL challenger")
    parser.add_argument("--seeds", default=None,
                        help="held-out backtest seeds, e.g. 7001-7008 (default 7001-7006)")
    parser.add_argument("--regimes", default=None,
                        help="backtest regimes, comma-separated (default default,calm,volatile)")
    parser.add_argument("--min-improvement-bps", type=float, default=None,
                        help="ml_router mean paired IS improvement needed to promote "
                             "(default -0.5: non-inferiority within the backtests' noise)")
    parser.add_argument("--cold-start", action="store_true",
                        help="fit challengers from scratch only (default: also boost on from "
                             "each champion and keep whichever validates better)")
    parser.add_argument("--max-rounds", type=int, default=None, help="boosting rounds (200)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_dask_arguments(parser)
    parser.set_defaults(handler=_cmd_retrain)
    return parser


def _cmd_retrain(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from sor.models.registry import ModelRegistry
    from sor.models.train import parse_seeds
    from sor.retrain.loop import RetrainSpec, comparison_rows, retrain
    from sor.scale import client_from_args
    from sor.store import DataStore
    from sor.store.cli import default_store

    spec = RetrainSpec()
    changes: dict[str, Any] = {}
    if args.no_rl:
        changes["rl"] = None
    if args.seeds:
        changes["seeds"] = parse_seeds(args.seeds)
    if args.regimes:
        changes["regimes"] = tuple(r.strip() for r in args.regimes.split(",") if r.strip())
    if args.min_improvement_bps is not None:
        changes["min_improvement_bps"] = args.min_improvement_bps
    if args.cold_start:
        changes["warm_start"] = False
    if args.max_rounds is not None:
        changes["boosting"] = dataclasses.replace(spec.boosting, max_rounds=args.max_rounds)
    spec = dataclasses.replace(spec, **changes)
    console = Console(stderr=args.json)
    store = DataStore(args.store or default_store())
    registry = ModelRegistry(args.models)
    started = time.time()
    with client_from_args(args) as client:
        report = retrain(store, registry, spec, client=client, console=console,
                         dates=args.dates, promote=not args.no_promote)
    data = report.to_json()
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    table = Table(title=f"champion vs challenger ({time.time() - started:.1f} s)")
    for column in ("model", "metric", "champion", "challenger", "change"):
        table.add_column(column)
    for row in comparison_rows(data):
        table.add_row(*row)
    console.print(table)
    console.print(f"[bold]{report.decision}[/bold]: {report.reason}")
    console.print(f"report {report.paths['json']}")
    return 0


__all__ = ["add_parser", "add_simulate_day_parser"]
