"""The `sor` command line."""

from __future__ import annotations

import argparse
import json
import os
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


def _cmd_bench_ring(args: argparse.Namespace) -> int:
    from sor.bench.ring import format_report, run

    report = run(samples=args.samples, throughput_records=args.records,
                 python_samples=args.python_samples, python_records=args.python_records,
                 peers=not args.no_peers)
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print(format_report(report))
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from sor import doctor

    if args.cpu is not None:
        cpu, cpu_source = args.cpu, "--cpu"
    elif args.config is not None:
        cpu, cpu_source = doctor.cpu_from_config(args.config), f"[engine] cpu of {args.config}"
    else:
        cpu, cpu_source = doctor.default_cpu(args.root), "highest online cpu"
    checks = doctor.run_checks(cpu, root=args.root)
    if args.json:
        print(json.dumps(doctor.report_as_dict(checks, cpu, cpu_source, args.root), indent=2))
    else:
        print(doctor.format_report(checks, cpu, cpu_source))
    return doctor.exit_code(checks)


def _cmd_engine(args: argparse.Namespace) -> int:
    from sor.config import default_config, load
    from sor.engine import Engine

    config = load(args.config) if args.config else default_config()
    if args.takeover:
        config = config.replace(engine=config.engine.replace(stale_segment_policy="takeover"))
    engine = Engine(config, name=args.name, cpu=args.cpu)

    def ready(running: Engine) -> None:
        cpu = running.config.engine.cpu if args.cpu is None else args.cpu
        print(f"sor engine {running.name}: pid {os.getpid()}, cpu {'unpinned' if cpu is None else cpu}, "
              f"segments /dev/shm/{running.name}.{{control,md,cmd,exec,order,audit}}; "
              f"SIGTERM or SIGINT stops it", flush=True)

    engine.run_foreground(on_ready=ready)
    print(f"sor engine {engine.name}: stopped", flush=True)
    return 0


def _cmd_bench_engine(args: argparse.Namespace) -> int:
    from sor.bench.engine import format_report, run

    report = run(samples=args.samples, modes=args.mode)
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
    ring = bench_commands.add_parser(
        "ring", help="shared-memory ring latency and throughput vs multiprocessing.Queue, "
                     "POSIX message queues and ZeroMQ",
        description="One-way latency (p50/p99/p99.9, paced) and throughput of 64-byte records "
                    "through sor's shared-memory ring, across threads and across processes, "
                    "pinned to two cores where the host allows; in the same run the same "
                    "traffic from Python over the ring, multiprocessing.Queue, posix_ipc and "
                    "ZeroMQ ipc://, with ratios. Peers come from the bench extra: "
                    "pip install \"sor[bench]\"; a missing peer is reported as skipped.")
    ring.add_argument("--json", action="store_true", help="print the report as JSON")
    ring.add_argument("--samples", type=int, default=200_000,
                      help="C++ latency samples per path (default 200000)")
    ring.add_argument("--records", type=int, default=20_000_000,
                      help="C++ throughput records per path (default 20000000)")
    ring.add_argument("--python-samples", type=int, default=20_000,
                      help="latency samples per Python path (default 20000)")
    ring.add_argument("--python-records", type=int, default=200_000,
                      help="throughput records per Python path, one per call (default 200000)")
    ring.add_argument("--no-peers", action="store_true",
                      help="measure sor only (C++ and Python)")
    ring.set_defaults(handler=_cmd_bench_ring)

    bench_engine = bench_commands.add_parser(
        "engine", help="tick-to-decision latency of the engine (thread and process)",
        description="Writes a market-data record that adds liquidity at the best ask to the "
                    "engine's md ring and times until the child order it triggers is visible in "
                    "the order ring; the engine runs as a thread of this process and as a "
                    "separate `sor engine` process. Reports p50/p99/p99.9.")
    bench_engine.add_argument("--json", action="store_true", help="print the report as JSON")
    bench_engine.add_argument("--samples", type=int, default=100_000, help="ticks measured per mode (default 100000)")
    bench_engine.add_argument("--mode", action="append", choices=["thread", "process"],
                              help="engine placement to measure (repeatable; default both)")
    bench_engine.set_defaults(handler=_cmd_bench_engine)

    engine = commands.add_parser(
        "engine", help="run the engine as this process (pinned, busy-polling)",
        description="Creates the engine's shared-memory segments and runs its loop on this "
                    "process's main thread until SIGTERM or SIGINT, then drains its input rings "
                    "and removes the segments. Attach from Python with sor.Engine.attach(NAME).")
    engine.add_argument("--config", metavar="FILE", help="router configuration TOML (default: embedded)")
    engine.add_argument("--cpu", type=int, metavar="N", help="core to pin the loop to (default: [engine] cpu)")
    engine.add_argument("--name", metavar="NAME", help="engine name (default: [engine] name)")
    engine.add_argument("--takeover", action="store_true",
                        help="replace segments left by a dead engine of the same name")
    engine.set_defaults(handler=_cmd_engine)

    doctor = commands.add_parser(
        "doctor", help="check this host against deploy/TUNING.md (reads only)",
        description="Checks the host for the engine core: isolation, tick, RCU, IRQs, frequency, "
                    "C-states, RT throttling, clocksource, huge pages, NUMA, swap, limits and "
                    "/dev/shm. Each check prints ok, warn, fail or n/a with the TUNING.md section "
                    "to fix it. Nothing on the host is changed. Exit status: 0 when no check "
                    "fails, 1 when any fails, 2 on a usage or configuration error.")
    doctor.add_argument("--cpu", type=int, metavar="N",
                        help="engine core to check (default: [engine] cpu of --config, else the "
                             "highest-numbered online cpu)")
    doctor.add_argument("--config", metavar="FILE", help="sor TOML configuration to take [engine] cpu from")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--root", default="/", metavar="PATH",
                        help="filesystem root holding proc/ and sys/ (default /)")
    doctor.set_defaults(handler=_cmd_doctor)

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
