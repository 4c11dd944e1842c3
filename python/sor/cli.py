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
