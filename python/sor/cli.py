"""The `sor` command line."""

from __future__ import annotations

import argparse
import json
import sys

import sor


def _cmd_demo(args: argparse.Namespace) -> int:
    from sor.demo import run_demo

    return run_demo(events=args.events, seed=args.seed, snapshots=args.snapshots)


def _cmd_bench_book(args: argparse.Namespace) -> int:
    from sor.bench.book import format_report, run

    report = run(events=args.events, seed=args.seed, peers=not args.no_peers)
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print(format_report(report))
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from sor.config import load

    failed = False
    for path in args.files:
        try:
            load(path)
        except sor.ConfigError as error:
            print(f"sor: error: {error}", file=sys.stderr)
            failed = True
        else:
            print(f"{path}: ok")
    return 2 if failed else 0


def _cmd_config_show(args: argparse.Namespace) -> int:
    from sor.config import default_config, dump, load

    print(dump(load(args.file) if args.file else default_config()), end="")
    return 0


def _cmd_config_diff(args: argparse.Namespace) -> int:
    from sor.config import diff, load

    changes = diff(load(args.old), load(args.new))
    for change in changes:
        print(change)
    if not changes:
        print("no differences")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sor", description="sor: an ML-driven smart order router for equities.")
    parser.add_argument("--version", action="version", version=f"sor {sor.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run the main job on embedded defaults",
        description="Generates multi-venue order flow, publishes each venue as NASDAQ ITCH 5.0 "
                    "(MoldUDP64), decodes it, builds per-venue and consolidated books, and "
                    "prints the consolidated top of book as the session runs.")
    demo.add_argument("--events", type=int, default=400_000, help="events across venues (default 400000)")
    demo.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    demo.add_argument("--snapshots", type=int, default=4, help="snapshots to print (default 4)")
    demo.set_defaults(handler=_cmd_demo)

    bench = commands.add_parser("bench", help="benchmarks (see bench/README.md)")
    bench_commands = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    book = bench_commands.add_parser(
        "book", help="book update latency and throughput vs hftbacktest and nautilus_trader",
        description="Per-update latency (p50/p99/p99.9) and throughput of sor's L3 and L2 books "
                    "and of the peers' books on the same stream, in the same run. Peers come "
                    "from the bench extra: pip install \"sor[bench]\".")
    book.add_argument("--json", action="store_true", help="print the report as JSON")
    book.add_argument("--events", type=int, default=500_000, help="L3 events (default 500000)")
    book.add_argument("--seed", type=int, default=7, help="stream seed (default 7)")
    book.add_argument("--no-peers", action="store_true", help="measure sor only")
    book.set_defaults(handler=_cmd_bench_book)

    config = commands.add_parser(
        "config", help="check, show and compare configuration files",
        description="Router configuration is TOML (venues, instruments, routing, risk limits, "
                    "engine settings), validated into frozen typed objects. See "
                    "deploy/config/colo-example.toml.")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = config_commands.add_parser(
        "check", help="validate files; print ok or the file, key and reason (exit 2)")
    check.add_argument("files", nargs="+", metavar="FILE", help="TOML configuration file")
    check.set_defaults(handler=_cmd_config_check)
    show = config_commands.add_parser(
        "show", help="print a file (or the embedded defaults) as normalized TOML")
    show.add_argument("file", nargs="?", metavar="FILE", help="TOML file (default: the defaults)")
    show.set_defaults(handler=_cmd_config_show)
    compare = config_commands.add_parser("diff", help="print what changes from file A to file B")
    compare.add_argument("old", metavar="A", help="TOML file before")
    compare.add_argument("new", metavar="B", help="TOML file after")
    compare.set_defaults(handler=_cmd_config_diff)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except sor.SorError as error:
        print(f"sor: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
