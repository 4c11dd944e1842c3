"""The `sor` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys

import sor


def _cmd_demo(args: argparse.Namespace) -> int:
    from sor.demo import run_demo

    return run_demo(seed=args.seed, policy=args.policy, time_scale=args.time_scale,
                    baseline_seeds=tuple(range(9001, 9001 + args.baseline_seeds)),
                    console_port=None if args.console_port < 0 else args.console_port,
                    hold_s=args.hold_s, audit_dir=args.audit_dir)


def _cmd_feed_demo(args: argparse.Namespace) -> int:
    from sor.feed_demo import run_demo

    return run_demo(events=args.events, seed=args.seed, snapshots=args.snapshots)


def _print_report(args: argparse.Namespace, report: dict, format_report) -> int:
    """Prints a benchmark report as JSON (``--json``) or as its table, and writes it as JSON to
    ``--out`` when the command has that option; returns 0."""
    out = getattr(args, "out", None)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2, default=float) + "\n")
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        print(format_report(report))
    return 0


def _cmd_bench_book(args: argparse.Namespace) -> int:
    from sor.bench.book import format_report, run

    report = run(events=args.events, seed=args.seed, peers=not args.no_peers)
    return _print_report(args, report, format_report)


def _cmd_bench_ring(args: argparse.Namespace) -> int:
    from sor.bench.ring import format_report, run

    report = run(samples=args.samples, throughput_records=args.records,
                 python_samples=args.python_samples, python_records=args.python_records,
                 peers=not args.no_peers)
    return _print_report(args, report, format_report)


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    from sor.bench.sim import format_report, run

    report = run(scenario=args.scenario, seed=args.seed, peer_events=args.peer_events,
                 with_peer=not args.no_peers)
    return _print_report(args, report, format_report)


def _cmd_bench_model(args: argparse.Namespace) -> int:
    from sor.bench.model import format_report, run

    report = run(trees=tuple(args.trees or (100, 500)), depth=args.depth, features=args.features,
                 pool_rows=args.rows, train_rows=args.train_rows, calls=args.calls,
                 python_calls=args.python_calls, warmup=args.warmup, peers=not args.no_peers,
                 seed=args.seed, shipped=not args.no_shipped)
    return _print_report(args, report, format_report)


def _cmd_bench_fix_codec(args: argparse.Namespace) -> int:
    from sor.bench.fix_codec import format_report, run

    report = run(calls=args.calls, peer_calls=args.peer_calls, warmup=args.warmup,
                 pool=args.pool, peers=not args.no_peers, seed=args.seed)
    return _print_report(args, report, format_report)


def _cmd_bench_hot_swap(args: argparse.Namespace) -> int:
    from sor.bench.hot_swap import format_report, run

    report = run(interval_ms=args.interval_ms, seconds=args.seconds, parents=args.parents,
                 warmup=args.warmup, probe_s=args.probe_s, fix=not args.no_fix)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2, default=float)
    print(json.dumps(report, indent=2, default=float) if args.json else format_report(report))
    return 0


def _cmd_bench_fix_path(args: argparse.Namespace) -> int:
    from sor.bench.fix_path import format_report, run

    report = run(parents=args.parents, warmup=args.warmup, peer_parents=args.peer_parents,
                 peers=not args.no_peers)
    return _print_report(args, report, format_report)


def _train_spec(args: argparse.Namespace):
    from sor.models.dataset import DatasetSpec, ProbeSpec
    from sor.models.train import BoostingSpec, TrainSpec, parse_seeds

    dataset = DatasetSpec(
        scenarios=tuple(args.scenarios.split(",")) if args.scenarios else DatasetSpec.scenarios,
        train_seeds=parse_seeds(args.train_seeds), validation_seeds=parse_seeds(args.validation_seeds),
        test_seeds=parse_seeds(args.test_seeds), probe=ProbeSpec(session_hours=args.hours))
    return TrainSpec(dataset=dataset, boosting=BoostingSpec(max_rounds=args.max_rounds))


def _add_dask_arguments(parser: argparse.ArgumentParser) -> None:
    from sor.scale import add_dask_arguments

    add_dask_arguments(parser)


def _cmd_train(args: argparse.Namespace) -> int:
    from sor.models.registry import default_models_dir
    from sor.models.train import summary, train_models

    from sor.scale import client_from_args

    spec = _train_spec(args)
    out = args.out or default_models_dir()
    with client_from_args(args) as client:
        cards = train_models(spec, args.data, out, workers=args.workers, client=client)
    if args.json:
        print(json.dumps(cards, indent=2, default=float))
    else:
        print(summary(cards))
        print(f"models and cards in {out}")
    return 0


def _cmd_train_rl(args: argparse.Namespace) -> int:
    from sor.models.registry import default_models_dir
    from sor.models.train import parse_seeds, summary
    from sor.rl.fqi import FqiSpec
    from sor.rl.train import RlTrainSpec, train_rl

    spec = RlTrainSpec(
        scenarios=tuple(args.scenarios.split(",")) if args.scenarios else RlTrainSpec.scenarios,
        episodes_per_round=args.episodes, rounds=args.rounds,
        validation_seeds=parse_seeds(args.validation_seeds), quantity=args.quantity,
        horizon_s=args.horizon_s, decision_interval_s=args.decision_interval_s,
        fqi=FqiSpec(iterations=args.iterations, rounds=args.trees), workers=args.workers)
    from sor.scale import client_from_args, dask_client

    out = args.out or default_models_dir()
    if args.sweep:
        return _train_rl_sweep(args, spec, client_from_args, dask_client)
    with client_from_args(args) as client:
        card = train_rl(spec, out, client=client)
    if args.json:
        print(json.dumps(card, indent=2, default=float))
    else:
        print(summary([card]))
        print(f"policy model and card in {out}")
    return 0


def _train_rl_sweep(args: argparse.Namespace, spec, client_from_args, dask_client) -> int:
    import hashlib

    from sor.rl.train import parse_sweep, rl_sweep

    grid = parse_sweep(args.sweep, spec)
    context = client_from_args(args)
    if not (args.scheduler or args.dask_workers):
        context = dask_client()  # a sweep always runs on Dask: a local cluster by default
    with context as client:
        rows = rl_sweep(client, spec, grid,
                        on_point=lambda row: print(f"done {row['point']}: validation IS "
                                                   f"{row['validation_mean_is_bps']:.3f} bps",
                                                   file=sys.stderr))
    results = [{"point": row["point"], "validation_mean_is_bps": row["validation_mean_is_bps"],
                "onnx_sha256": hashlib.sha256(row["onnx_bytes"]).hexdigest(),
                "trees": row["card"]["trees"]["count"]} for row in rows]
    best = min(results, key=lambda r: r["validation_mean_is_bps"])
    if args.json:
        print(json.dumps({"grid": grid, "results": results, "best": best}, indent=2,
                         default=float))
    else:
        for r in results:
            mark = "  <- best" if r is best else ""
            print(f"{json.dumps(r['point'])}: validation IS {r['validation_mean_is_bps']:.3f} "
                  f"bps, {r['trees']} trees{mark}")
        print("nothing published; train the best point with sor train-rl and its settings")
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from sor.models.registry import ModelRegistry
    from sor.models.train import summary

    registry = ModelRegistry(args.registry)
    cards = [registry.card(name) for name in registry.names()]
    if args.json:
        print(json.dumps(cards, indent=2, default=float))
    else:
        print(summary(cards) if cards else f"no models in {registry.root}")
    return 0


def _cmd_models_check(args: argparse.Namespace) -> int:
    from sor.models.registry import ModelRegistry

    registry = ModelRegistry(args.registry)
    for name in registry.names():
        model = registry.load(name)
        print(f"{name:<17} ok: {model.tree_count} trees, depth {model.depth}, schema "
              f"{model.schema_hash}, {model.simd_path} evaluator agrees with onnxruntime on "
              f"{model.parity.rows} rows (max |diff| {model.parity.max_abs_difference:.1e})")
    return 0


def _cmd_models_versions(args: argparse.Namespace) -> int:
    from sor.models.registry import ModelRegistry

    rows = ModelRegistry(args.registry).versions(args.name)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{args.name} v{row['version']:<4} {row['status']:<8} sha256 "
                  f"{row['sha256'][:16]}  {row['card']}")
    return 0


def _print_registry_record(record: dict, as_json: bool) -> None:
    import datetime

    if as_json:
        print(json.dumps(record, indent=2))
        return
    when = datetime.datetime.fromtimestamp(record["ts_ns"] / 1e9, datetime.timezone.utc)
    kind = f"rollback of #{record['rollback_of']}" if "rollback_of" in record else "promotion"
    changes = ", ".join(f"{name} {c['from'] if c['from'] is not None else '-'} -> "
                        f"{c['to'] if c['to'] is not None else '-'}"
                        for name, c in sorted(record["changes"].items()))
    print(f"#{record['id']} {when:%Y-%m-%d %H:%M:%S} UTC {kind} by {record['operator']}: "
          f"{changes} ({record['reason']})")


def _cmd_models_promote(args: argparse.Namespace) -> int:
    from sor.models.registry import ModelRegistry, parse_changes

    record = ModelRegistry(args.registry).promote(parse_changes(args.changes),
                                                  operator=args.operator, reason=args.reason)
    _print_registry_record(record, args.json)
    return 0


def _cmd_models_rollback(args: argparse.Namespace) -> int:
    from sor.models.registry import ModelRegistry

    record = ModelRegistry(args.registry).rollback(operator=args.operator, reason=args.reason,
                                                   names=args.names or None)
    _print_registry_record(record, args.json)
    return 0


def _cmd_models_history(args: argparse.Namespace) -> int:
    from sor.models.registry import ModelRegistry

    records = ModelRegistry(args.registry).history()
    if args.json:
        print(json.dumps(records, indent=2))
    elif not records:
        print("no promotions recorded")
    for record in records if not args.json else []:
        _print_registry_record(record, False)
    return 0


def _cmd_sim_scenarios(args: argparse.Namespace) -> int:
    from sor.sim import load_scenario, shipped_scenarios

    for name in shipped_scenarios():
        print(f"{name:<14}{load_scenario(name).description}")
    return 0


def _cmd_sim_run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from sor.sim import Market

    overrides = {"record_feeds": args.itch_dir is not None}
    with Market(args.scenario, seed=args.seed, **overrides) as market:
        end = market.session_end_ns if args.seconds is None else \
            min(market.session_end_ns, market.now_ns + int(args.seconds * 1e9))
        started = time.perf_counter()
        market.run_until(end)
        elapsed = time.perf_counter() - started
        counters = market.counters()
        quotes, _ = market.quotes()
        summary = {"scenario": market.scenario.name, "seed": int(market.spec.seed),
                   "simulated_seconds": (market.now_ns - market.session_start_ns) / 1e9,
                   "wall_seconds": elapsed,
                   "events_per_second": counters["events"] / elapsed if elapsed > 0 else 0.0,
                   "counters": counters, "regime": market.regime}
        if len(quotes):
            mids = (quotes["bid_price_ticks"] + quotes["ask_price_ticks"]) / 2.0
            summary["mid_first_usd"] = float(mids[0] * market.spec.price_tick_usd)
            summary["mid_last_usd"] = float(mids[-1] * market.spec.price_tick_usd)
        if args.itch_dir is not None:
            folder = Path(args.itch_dir)
            folder.mkdir(parents=True, exist_ok=True)
            files = {}
            for venue in market.spec.venues:
                path = folder / f"{venue.name}.itch"
                path.write_bytes(market.feed(venue.name))
                files[venue.name] = str(path)
            summary["itch_files"] = files
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0


def _cmd_sim_report(args: argparse.Namespace) -> int:
    from sor.sim.experiments import MetaorderExperiment, record_days, run_metaorder_experiment
    from sor.sim.report import render_simulation_report

    seeds = tuple(range(args.seed, args.seed + args.days))
    recording = record_days(args.scenario, seeds)
    experiment = MetaorderExperiment(scenario=args.scenario,
                                     seeds=tuple(range(1, args.metaorder_seeds + 1)))
    metaorders = run_metaorder_experiment(experiment) if args.metaorder_seeds > 0 else None
    parameters = {"scenario": args.scenario, "seeds": list(seeds), "events": recording.events,
                  "price ticks per grid tick": recording.grid_ticks,
                  "metaorder sizes (shares)": list(experiment.sizes_shares),
                  "metaorder seeds": args.metaorder_seeds,
                  "metaorder duration (s)": experiment.duration_s}
    report = render_simulation_report(
        args.out, recording.quotes, recording.bid_depth, recording.ask_depth,
        trades=recording.trades, metaorders=metaorders, parameters=parameters,
        return_horizon_ns=int(args.return_horizon_s * 1e9),
        impact_bin_count=len(experiment.sizes_shares))
    print(report.markdown_path.read_text())
    print(f"report: {report.html_path}")
    return 0 if report.passes else 1


def _cmd_backtest(args: argparse.Namespace) -> int:
    from sor.backtest import (DEFAULT_REGIMES, EpisodeSpec, available_policies, build_report,
                              format_report, parse_policies, run_grid, write_report)
    from sor.backtest.report import CLASSICAL_BASELINES
    from sor.backtest.runner import check_policies
    from sor.models.train import parse_seeds

    available = available_policies()
    notes = []
    if args.policies:
        policies = list(parse_policies(args.policies))
    else:
        policies = list(parse_policies(",".join(p for p in CLASSICAL_BASELINES if p in available)))
        if "rl" in available and not args.no_models:
            policies += list(parse_policies("rl"))  # the learned policy, when its model ships
    candidate = args.candidate or None
    if candidate is not None and candidate not in [p.key for p in policies]:
        if candidate in available:
            policies += list(parse_policies(candidate))
        else:
            notes.append(f"candidate {candidate!r} is not available in this build (policies: "
                         f"{', '.join(available)}); improvement_vs_best_baseline skipped")
    check_policies(policies)
    regimes = [r.strip() for r in (args.regimes or ",".join(DEFAULT_REGIMES)).split(",") if r.strip()]
    seeds = parse_seeds(args.seeds)
    spec = EpisodeSpec(side=args.side, quantity=args.quantity, horizon_s=args.horizon_s,
                       start_offset_s=args.start_offset_s,
                       decision_interval_s=args.decision_interval_s)
    labels = [p.key for p in policies]
    reference = args.reference if args.reference in labels else labels[0]
    config = {
        "policies": [{"label": p.key, "name": p.name, "params": dict(p.params)} for p in policies],
        "policy_labels": labels, "regimes": regimes, "seeds": list(seeds),
        "quantity": args.quantity, "horizon_s": args.horizon_s,
        "start_offset_s": args.start_offset_s, "decision_interval_s": args.decision_interval_s,
        "side": args.side or "alternate (buy on even seeds, sell on odd)",
        "unfilled_penalty_bps": 50.0, "models": None if args.no_models else "shipped",
        "reference": reference, "candidate": candidate,
        "bootstrap": {"resamples": args.resamples, "seed": args.bootstrap_seed,
                      "confidence": 0.95},
        "workers": args.workers, "sor_version": sor.__version__,
        "dask": args.scheduler or (f"local cluster of {args.dask_workers} workers"
                                   if args.dask_workers else None),
    }
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True),
                  disable=args.quiet) as progress:
        total = progress.add_task("all episodes", total=len(policies) * len(regimes) * len(seeds))
        per_policy = {p: progress.add_task(p, total=len(regimes) * len(seeds)) for p in labels}

        def advance(row: dict) -> None:
            progress.advance(total)
            progress.advance(per_policy[row["policy"]])

        from sor.scale import client_from_args

        with client_from_args(args) as client:
            rows = run_grid(policies, regimes, seeds, spec=spec, workers=args.workers,
                            models=None if args.no_models else "shipped", progress=advance,
                            client=client)
    report = build_report(rows, config=config, policies=labels, regimes=regimes,
                          reference=reference, candidate=candidate, notes=notes,
                          resamples=args.resamples, bootstrap_seed=args.bootstrap_seed)
    index = write_report(report, args.out)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
        print(f"report: {index}")
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
    return _print_report(args, report, format_report)


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


def _console_port(text: str) -> int | None:
    """Returns a console port argument: a port number, or None for 'none'."""
    if text.strip().lower() == "none":
        return None
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number or 'none', got {text!r}") \
            from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535 or 'none', got {port}")
    return port


def _cmd_router(args: argparse.Namespace) -> int:
    import logging

    from sor.fix.gateway import run_router

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    models = None
    if args.policy:
        from sor.models.registry import default_models_dir

        models = args.models or default_models_dir()

    def ready(gateway) -> None:
        listening = ", ".join(f"{name} on {gateway.sessions[name].config.host}:{port}"
                              for name, port in gateway.listen_ports.items())
        venues = ", ".join(name for name, s in gateway.sessions.items()
                           if s.config.application == "venue")
        recovery = gateway.recovery
        print(f"sor router: pid {os.getpid()}, engine {gateway.engine.name}, incarnation "
              f"{recovery['incarnation']} ({recovery['live_parents']} live parents, "
              f"{recovery['orphans']} orphaned children recovered); listening: {listening}; "
              f"venues: {venues or 'none'}; state {gateway.state_dir}; SIGTERM or SIGINT stops it",
              flush=True)
        if gateway.audit_journal is not None:
            print(f"sor router: audit journal {gateway.audit_journal.path}", flush=True)
        if gateway.console is not None:
            print(f"sor router: operator console {gateway.console.url}", flush=True)

    market_data = None if args.market_data.lower() == "none" else args.market_data
    token = args.console_token or os.environ.get("SOR_CONSOLE_TOKEN") or None
    run_router(args.config, args.fix, state_dir=args.state_dir, policy=args.policy,
               models=models, busy_poll=args.busy_poll, market_data=market_data,
               audit_dir=args.audit_dir, console_port=args.console_port,
               console_host=args.console_host, console_token=token,
               watch_models=not args.no_watch_models, on_ready=ready)
    print("sor router: stopped", flush=True)
def _cmd_venues(args: argparse.Namespace) -> int:
    import signal

    from sor.config import default_config, load
    from sor.fix.venue.server import VenueServer

    config = load(args.config) if args.config else default_config()
    server = VenueServer(args.fix, router_config=config, scenario=args.scenario, seed=args.seed,
                         fix_port=args.fix_port, md_port=args.md_port,
                         begin_string=args.begin_string,
                         cancel_on_disconnect=not args.keep_orders_on_disconnect,
                         summary_interval_s=args.summary_s,
                         fix42_liquidity_tag=args.fix42_liquidity_tag,
                         log=lambda line: print(f"sor venues: {line}", flush=True))

    def stop(signum: int, frame: object) -> None:
        server.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stats = server.stats()
        server.close()
    print(f"sor venues: closed after {stats.get('events', 0):,} md events, "
          f"{stats.get('orders', 0):,} orders, {stats.get('fills', 0):,} fills", flush=True)
    return 0


def _format_table(table, limit: int) -> str:
    """Returns a pyarrow table as aligned text (at most `limit` rows)."""
    columns = table.column_names
    rows = table.slice(0, limit).to_pylist()
    cells = [[str(c) for c in columns]] + [["" if r[c] is None else
                                            (f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]))
                                            for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if table.num_rows > limit:
        lines.append(f"... {table.num_rows - limit} more rows (--limit)")
    return "\n".join(lines)


def _cmd_audit(args: argparse.Namespace) -> int:
    from sor.monitor.journal import read_journal

    contents = read_journal(args.path, on_corrupt=args.on_corrupt)
    if args.training_rows:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = contents.training_rows(finished_only=not args.all_children)
        pq.write_table(pa.table(rows), args.training_rows)
        print(f"{len(rows['child_order_id'])} training rows written to {args.training_rows}",
              file=sys.stderr)
    if args.sql:
        table = contents.query(args.sql)
        if args.json:
            print(json.dumps(table.to_pylist(), indent=2, default=str))
        else:
            print(_format_table(table, args.limit))
        return 0
    summary = contents.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{summary['runs']} run(s): {', '.join(summary['files'])}")
    print(f"decisions {summary['decisions']} (children sent {summary['children_sent']}, risk "
          f"rejected {summary['risk_rejected']}, model-routed {summary['model_routed']})")
    print(f"engine audit records {summary['audit']}: " + ", ".join(
        f"{k.lower()} {v}" for k, v in sorted(summary["audit_by_kind"].items())))
    print(f"events {summary['events']}: " + ", ".join(
        f"{k} {v}" for k, v in sorted(summary["events_by_kind"].items())))
    if summary["first_ts_ns"] is not None:
        span = (summary["last_ts_ns"] - summary["first_ts_ns"]) / 1e9
        print(f"span {span:.3f} s")
    if summary["torn_bytes"]:
        print(f"torn last frames skipped: {summary['torn_bytes']} bytes in "
              f"{summary['torn_runs']} run(s)")
    for path, offset, size in summary["skipped"]:
        print(f"damaged bytes skipped: {path} offset {offset}, {size} bytes")
    return 0

def _console_token(args: argparse.Namespace) -> str | None:
    """Returns the console token from --token-file or SOR_CONSOLE_TOKEN (None: no token)."""
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.readline().strip()
        except OSError as error:
            raise sor.UsageError(f"cannot read the console token file {args.token_file}: "
                                 f"{error.strerror}") from None
        if not token:
            raise sor.UsageError(f"the console token file {args.token_file} is empty")
        return token
    return os.environ.get("SOR_CONSOLE_TOKEN") or None


def _cmd_console(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sor.config import default_config, load
    from sor.engine import Engine
    from sor.monitor.console import ConsoleServer, EngineConsoleControl

    config = load(args.config) if args.config else default_config()
    token = _console_token(args)
    engine = Engine.attach(args.engine, config)
    stop = threading.Event()
    previous = {}
    try:
        with EngineConsoleControl(engine) as control, \
                ConsoleServer(control, host=args.host, port=args.port, token=token) as server:
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
            pid = engine.status()["engine_pid"]
            print(f"sor console: engine {engine.name} (process {pid}) on {server.url} "
                  f"({'token required' if token else 'no token'}); SIGTERM or SIGINT stops it",
                  flush=True)
            if token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
                print(f"sor console: warning: {args.host} is reachable from other hosts and no "
                      f"token is set: anyone there can halt routing", file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for signum, previous_handler in previous.items():
            signal.signal(signum, previous_handler)
        engine.close()
    print("sor console: stopped", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sor", description="sor: an ML-driven smart order router for equities.")
    parser.add_argument("--version", action="version", version=f"sor {sor.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="run the main job on embedded defaults",
        description="Starts the simulated venues as FIX acceptors, the router (engine with the "
                    "ML router and the shipped models, FIX gateway, market data over UDP) and "
                    "an OMS client that sends parent orders over FIX; prints their progress "
                    "and ends with a TCA summary against the arrival price and the classical "
                    "baselines. Everything on localhost, state in a temporary folder.")
    demo.add_argument("--seed", type=int, default=2026, help="market seed (default 2026)")
    demo.add_argument("--policy", default="ml_router",
                      help="the router's execution policy (default ml_router)")
    demo.add_argument("--time-scale", type=float, default=1.0,
                      help="scales the orders' horizons and delays (default 1: about 40 s)")
    demo.add_argument("--baseline-seeds", type=int, default=8,
                      help="backtest seeds per order and baseline for the TCA (default 8)")
    demo.add_argument("--console-port", type=int, default=0,
                      help="port of the operator console on 127.0.0.1 (default 0: a free port, "
                           "printed; -1: no console)")
    demo.add_argument("--hold-s", type=float, default=0.0,
                      help="keep the router and its console up this long after the orders "
                           "are done (default 0)")
    demo.add_argument("--audit-dir", default=None,
                      help="keep the audit journal in this folder (default: the temporary "
                           "state folder, removed at the end)")
    demo.set_defaults(handler=_cmd_demo)

    feed_demo = commands.add_parser(
        "feed-demo", help="the market-data path alone: ITCH in, consolidated books out",
        description="Generates multi-venue order flow, publishes each venue as NASDAQ ITCH 5.0 "
                    "(MoldUDP64), decodes it, builds per-venue and consolidated books, and "
                    "prints the consolidated top of book as the session runs.")
    feed_demo.add_argument("--events", type=int, default=400_000,
                           help="events across venues (default 400000)")
    feed_demo.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    feed_demo.add_argument("--snapshots", type=int, default=4,
                           help="snapshots to print (default 4)")
    feed_demo.set_defaults(handler=_cmd_feed_demo)

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

    bench_sim = bench_commands.add_parser(
        "sim", help="market simulator events/s over a 6.5-hour day vs nautilus_trader",
        description="Runs one 6.5-hour session of a scenario (five venues by default) with and "
                    "without ITCH feeds, checks that the same seed gives the same bytes, and "
                    "runs nautilus_trader's BacktestEngine on a comparable L3 stream in the same "
                    "run for the ratio.")
    bench_sim.add_argument("--json", action="store_true", help="print the report as JSON")
    bench_sim.add_argument("--scenario", default="default", help="scenario name or TOML path")
    bench_sim.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    bench_sim.add_argument("--peer-events", type=int, default=1_000_000,
                           help="events fed to nautilus (default 1000000; its day is extrapolated)")
    bench_sim.add_argument("--no-peers", action="store_true", help="skip nautilus_trader")
    bench_sim.set_defaults(handler=_cmd_bench_sim)

    bench_model = bench_commands.add_parser(
        "model", help="tree-ensemble prediction latency vs onnxruntime, XGBoost and tl2cgen",
        description="Single-row prediction latency (p50/p99/p99.9) of sor's tree-ensemble "
                    "evaluator on XGBoost classifiers of 100 and 500 trees (depth 6, 52 "
                    "features), and of the shipped models on their held-out rows, a different row every call, against onnxruntime and XGBoost "
                    "from Python and tl2cgen-compiled C in the same C++ harness, same model "
                    "and rows, same run; with ratios. tl2cgen comes from the bench extra: "
                    "pip install \"sor[bench]\"; when missing it is reported as skipped.")
    bench_model.add_argument("--json", action="store_true", help="print the report as JSON")
    bench_model.add_argument("--out", metavar="PATH", help="also write the JSON report to PATH")
    bench_model.add_argument("--trees", type=int, action="append", metavar="N",
                             help="tree count to measure (repeatable; default 100 and 500)")
    bench_model.add_argument("--depth", type=int, default=6, help="max_depth (default 6)")
    bench_model.add_argument("--features", type=int, default=52,
                             help="features (default 52, the feature schema's width)")
    bench_model.add_argument("--rows", type=int, default=4096,
                             help="distinct rows cycled through (default 4096)")
    bench_model.add_argument("--train-rows", type=int, default=20_000,
                             help="synthetic training rows (default 20000)")
    bench_model.add_argument("--calls", type=int, default=200_000,
                             help="timed calls per C++ predictor (default 200000)")
    bench_model.add_argument("--python-calls", type=int, default=20_000,
                             help="timed calls per Python peer (default 20000)")
    bench_model.add_argument("--warmup", type=int, default=20_000, help="untimed calls first")
    bench_model.add_argument("--seed", type=int, default=11, help="data seed (default 11)")
    bench_model.add_argument("--no-peers", action="store_true", help="measure sor only")
    bench_model.add_argument("--no-shipped", action="store_true",
                             help="skip the shipped models (timed on their held-out rows)")
    bench_model.set_defaults(handler=_cmd_bench_model)

    bench_fix = bench_commands.add_parser(
        "fix-codec", help="FIX parse/frame/encode latency from Python vs simplefix",
        description="Per-call latency (p50/p99/p99.9) from Python of sor's FIX codec: parse of "
                    "a ~200-byte FIX 4.4 ExecutionReport, parse plus the fields the router "
                    "reads, framing plus parse, and encode of a NewOrderSingle, against "
                    "simplefix on the same messages in the same run, with ratios.")
    bench_fix.add_argument("--json", action="store_true", help="print the report as JSON")
    bench_fix.add_argument("--out", metavar="PATH", help="also write the JSON report to PATH")
    bench_fix.add_argument("--calls", type=int, default=200_000,
                           help="timed calls per sor workload (default 200000)")
    bench_fix.add_argument("--peer-calls", type=int, default=5_000,
                           help="timed calls per simplefix workload (default 5000)")
    bench_fix.add_argument("--warmup", type=int, default=20_000, help="untimed calls first")
    bench_fix.add_argument("--pool", type=int, default=1024,
                           help="distinct messages cycled through (default 1024)")
    bench_fix.add_argument("--seed", type=int, default=3, help="message seed (default 3)")
    bench_fix.add_argument("--no-peers", action="store_true", help="measure sor only")
    bench_fix.set_defaults(handler=_cmd_bench_fix_codec)

    bench_path = bench_commands.add_parser(
        "fix-path", help="OMS NewOrderSingle in -> first child out, vs the router on simplefix",
        description="Latency (p50/p99/p99.9) from an OMS NewOrderSingle written to the router "
                    "to its first child NewOrderSingle read at the venue (wire to wire) and "
                    "inside the router, with sor's codec and, in the same run, with the "
                    "router's sessions on simplefix; engine spinning, reactor busy-polling.")
    bench_path.add_argument("--json", action="store_true", help="print the report as JSON")
    bench_path.add_argument("--out", metavar="PATH", help="also write the JSON report to PATH")
    bench_path.add_argument("--parents", type=int, default=2_000,
                            help="timed parent orders (default 2000)")
    bench_path.add_argument("--peer-parents", type=int, default=500,
                            help="timed parent orders on simplefix (default 500)")
    bench_path.add_argument("--warmup", type=int, default=200, help="untimed parents first")
    bench_path.add_argument("--no-peers", action="store_true", help="measure sor only")
    bench_path.set_defaults(handler=_cmd_bench_fix_path)

    bench_swap = bench_commands.add_parser(
        "hot-swap", help="order-path latency with and without model hot swaps",
        description="Engine decision latency (market data consumed, inference) and the FIX "
                    "order path (OMS NewOrderSingle in -> first child out) without swaps and "
                    "with a swap of two models every --interval-ms (installed directly, and "
                    "through the registry and its watcher), p50/p99/p99.9 and ratios; and how "
                    "long a model load holds the GIL from another Python thread.")
    bench_swap.add_argument("--json", action="store_true", help="print the report as JSON")
    bench_swap.add_argument("--out", metavar="PATH", help="also write the JSON report to PATH")
    bench_swap.add_argument("--interval-ms", type=float, default=20.0,
                            help="time between swaps (default 20)")
    bench_swap.add_argument("--seconds", type=float, default=60.0,
                            help="simulated market seconds fed to the engine (default 60)")
    bench_swap.add_argument("--parents", type=int, default=1_000,
                            help="timed parents per FIX path run (default 1000)")
    bench_swap.add_argument("--warmup", type=int, default=100, help="untimed parents first")
    bench_swap.add_argument("--probe-s", type=float, default=2.0,
                            help="seconds of each GIL probe (default 2)")
    bench_swap.add_argument("--no-fix", action="store_true", help="skip the FIX path runs")
    bench_swap.set_defaults(handler=_cmd_bench_hot_swap)

    train = commands.add_parser(
        "train", help="train the fill-probability, adverse-move and impact models",
        description="Simulates probe days (features from the C++ feature engine, labels from "
                    "what the simulated venues did), writes them as Parquet, trains three "
                    "XGBoost models, validates them on held-out seeds, exports them to ONNX "
                    "and publishes them with model cards into the registry (default: the "
                    "shipped models/). The defaults reproduce the shipped models.")
    train.add_argument("--out", metavar="DIR", help="registry folder (default: the shipped models)")
    train.add_argument("--data", metavar="DIR", default="data/probes",
                       help="dataset folder; days already there are reused (default data/probes)")
    train.add_argument("--scenarios", metavar="A,B", help="scenarios (default: all five regimes)")
    train.add_argument("--train-seeds", default="101-103", help="seeds to fit on (default 101-103)")
    train.add_argument("--validation-seeds", default="104",
                       help="seeds for early stopping (default 104)")
    train.add_argument("--test-seeds", default="105",
                       help="held-out seeds of the model cards' metrics (default 105)")
    train.add_argument("--hours", type=float, default=6.5,
                       help="simulated hours per day (default 6.5)")
    train.add_argument("--max-rounds", type=int, default=300,
                       help="boosting rounds at most (default 300)")
    train.add_argument("--workers", type=int, default=2, help="simulation processes (default 2)")
    train.add_argument("--json", action="store_true", help="print the model cards as JSON")
    _add_dask_arguments(train)
    train.set_defaults(handler=_cmd_train)

    train_rl = commands.add_parser(
        "train-rl", help="train the learned routing policy (fitted Q-iteration)",
        description="Collects episodes in the C++ simulator through the routing environment "
                    "(sor/Routing-v0), fits an action value Q(row) by fitted Q-iteration with "
                    "boosted trees, backtests each round's greedy policy on validation seeds, "
                    "and publishes the best as the action_value model (run by the rl policy).")
    train_rl.add_argument("--out", metavar="DIR", help="registry folder (default: shipped)")
    train_rl.add_argument("--scenarios", metavar="A,B",
                          help="scenarios (default calm,volatile,toxic_venue,dark_rich)")
    train_rl.add_argument("--episodes", type=int, default=200, help="episodes per round (200)")
    train_rl.add_argument("--rounds", type=int, default=5, help="collection rounds (5)")
    train_rl.add_argument("--iterations", type=int, default=12, help="FQI iterations (12)")
    train_rl.add_argument("--trees", type=int, default=200, help="boosting rounds per fit (200)")
    train_rl.add_argument("--validation-seeds", default="5001-5016",
                          help="validation market seeds (5001-5016)")
    train_rl.add_argument("--quantity", type=int, default=100_000, help="parent shares (100000)")
    train_rl.add_argument("--horizon-s", type=float, default=300.0, help="horizon (300 s)")
    train_rl.add_argument("--decision-interval-s", type=float, default=5.0,
                          help="decision interval (5 s)")
    train_rl.add_argument("--workers", type=int, default=2, help="collection processes (2)")
    train_rl.add_argument("--json", action="store_true", help="print the model card as JSON")
    train_rl.add_argument("--sweep", metavar="KEY=V1,V2", action="append", default=[],
                          help="hyperparameter sweep (repeatable; every combination): one "
                               "training per point as a Dask task, nothing published; keys "
                               "are RlTrainSpec fields or fqi.<FqiSpec field>, e.g. "
                               "fqi.rounds=100,200")
    _add_dask_arguments(train_rl)
    train_rl.set_defaults(handler=_cmd_train_rl)

    models = commands.add_parser("models", help="the model registry")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    models_list = models_commands.add_parser("list", help="models in use with their metrics")
    models_list.add_argument("--registry", metavar="DIR", help="registry (default: shipped)")
    models_list.add_argument("--json", action="store_true", help="print the cards as JSON")
    models_list.set_defaults(handler=_cmd_models_list)
    models_check = models_commands.add_parser(
        "check", help="load every model: hash, schema, tree graph, parity with onnxruntime")
    models_check.add_argument("--registry", metavar="DIR", help="registry (default: shipped)")
    models_check.set_defaults(handler=_cmd_models_check)
    models_versions = models_commands.add_parser(
        "versions", help="every version of a model: in use, staged or retired")
    models_versions.add_argument("name", metavar="NAME", help="model name")
    models_versions.add_argument("--models", "--registry", dest="registry", metavar="DIR",
                                 help="registry (default: shipped)")
    models_versions.add_argument("--json", action="store_true", help="print JSON")
    models_versions.set_defaults(handler=_cmd_models_versions)
    models_promote = models_commands.add_parser(
        "promote", help="put versions in use (one atomic registry write, a history record)")
    models_promote.add_argument("changes", nargs="+", metavar="NAME=VERSION",
                                help="model and version, e.g. fill_probability=3")
    models_promote.add_argument("--operator", required=True, help="who promotes")
    models_promote.add_argument("--reason", required=True, help="why")
    models_promote.add_argument("--models", "--registry", dest="registry", metavar="DIR",
                                help="registry (default: shipped)")
    models_promote.add_argument("--json", action="store_true", help="print the record as JSON")
    models_promote.set_defaults(handler=_cmd_models_promote)
    models_rollback = models_commands.add_parser(
        "rollback", help="undo the last promotion (of the named models) not yet rolled back")
    models_rollback.add_argument("names", nargs="*", metavar="NAME",
                                 help="only these models (default: the last promotion)")
    models_rollback.add_argument("--operator", required=True, help="who rolls back")
    models_rollback.add_argument("--reason", required=True, help="why")
    models_rollback.add_argument("--models", "--registry", dest="registry", metavar="DIR",
                                 help="registry (default: shipped)")
    models_rollback.add_argument("--json", action="store_true", help="print the record as JSON")
    models_rollback.set_defaults(handler=_cmd_models_rollback)
    models_history = models_commands.add_parser(
        "history", help="promotions and rollbacks, oldest first")
    models_history.add_argument("--models", "--registry", dest="registry", metavar="DIR",
                                help="registry (default: shipped)")
    models_history.add_argument("--json", action="store_true", help="print JSON")
    models_history.set_defaults(handler=_cmd_models_history)

    sim = commands.add_parser("sim", help="the multi-venue market simulator",
                              description="Run simulated markets and validate them.")
    sim_commands = sim.add_subparsers(dest="sim_command", metavar="COMMAND", required=True)
    scenarios = sim_commands.add_parser("scenarios", help="list the shipped scenarios")
    scenarios.set_defaults(handler=_cmd_sim_scenarios)
    sim_run = sim_commands.add_parser("run", help="run a scenario and print what happened")
    sim_run.add_argument("--scenario", default="default", help="scenario name or TOML path")
    sim_run.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    sim_run.add_argument("--seconds", type=float, default=None, help="simulated seconds (default: the session)")
    sim_run.add_argument("--itch-dir", default=None, help="write each venue's ITCH 5.0 feed here")
    sim_run.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim_run.set_defaults(handler=_cmd_sim_run)
    sim_report = sim_commands.add_parser(
        "report", help="validate a scenario against stylized facts (plots and a table)",
        description="Simulates sessions of a scenario and a metaorder experiment, then writes "
                    "report.md, index.html and PNG plots: heavy tails, volatility clustering, "
                    "spread and depth, queue depletion, and the square-root impact law. Exits 1 "
                    "when a check fails.")
    sim_report.add_argument("--scenario", default="default", help="scenario name or TOML path")
    sim_report.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    sim_report.add_argument("--days", type=int, default=2, help="sessions to simulate (default 2)")
    sim_report.add_argument("--metaorder-seeds", type=int, default=24,
                            help="seeds of the metaorder experiment (default 24; 0 skips it)")
    sim_report.add_argument("--return-horizon-s", type=float, default=30.0,
                            help="return horizon for tails and clustering (default 30 s)")
    sim_report.add_argument("--out", default="sim-report", help="output folder (default ./sim-report)")
    sim_report.set_defaults(handler=_cmd_sim_report)

    backtest = commands.add_parser(
        "backtest", help="backtest execution policies in the simulator (paired seeds)",
        description="Runs every policy on every regime and seed (the same seeds, sides and "
                    "sizes for every policy), computes implementation shortfall, VWAP "
                    "slippage, fill rate, participation, markouts and the fill mix, and "
                    "writes backtest.json and an HTML report with bootstrap 95% intervals, "
                    "paired differences against a reference and the candidate's improvement "
                    "over the best classical baseline. See docs/backtest.md.")
    backtest.add_argument("--policies", metavar="A,B",
                          help="policies, name[:key=value;...] each (default: every classical "
                               "baseline, the ML router and the learned policy rl)")
    backtest.add_argument("--regimes", metavar="A,B",
                          help="scenarios (default calm,volatile,toxic_venue,dark_rich)")
    backtest.add_argument("--seeds", default="9001-9016", help="market seeds (default 9001-9016)")
    backtest.add_argument("--quantity", type=int, default=100_000,
                          help="parent shares (default 100000)")
    backtest.add_argument("--horizon-s", type=float, default=300.0,
                          help="seconds from arrival to the deadline (default 300)")
    backtest.add_argument("--start-offset-s", type=float, default=600.0,
                          help="arrival, seconds after the open (default 600: the warm-up)")
    backtest.add_argument("--decision-interval-s", type=float, default=1.0,
                          help="decision grid, seconds (default 1)")
    backtest.add_argument("--side", choices=("buy", "sell"),
                          help="parent side (default: alternate by seed, buy on even seeds)")
    backtest.add_argument("--candidate", default="ml_router",
                          help="policy compared with the best baseline (default ml_router; "
                               "skipped with a note when not available)")
    backtest.add_argument("--reference", default="best_price",
                          help="policy of the paired differences (default best_price, else the "
                               "first policy)")
    backtest.add_argument("--resamples", type=int, default=2000,
                          help="bootstrap resamples (default 2000)")
    backtest.add_argument("--bootstrap-seed", type=int, default=0, help="bootstrap seed (default 0)")
    backtest.add_argument("--no-models", action="store_true",
                          help="give the policies no models (default: the shipped models)")
    backtest.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    backtest.add_argument("--out", default="backtest-report",
                          help="output folder (default ./backtest-report)")
    backtest.add_argument("--json", action="store_true", help="print the report as JSON")
    backtest.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_dask_arguments(backtest)
    backtest.set_defaults(handler=_cmd_backtest)

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
    router = commands.add_parser(
        "router", help="run the router: engine + FIX gateway (OMS acceptor, venue initiators)",
        description="Runs the engine (embedded thread) and the FIX gateway in the foreground "
                    "until SIGTERM or SIGINT: OMS acceptor sessions take parent orders, one "
                    "initiator session per venue carries child orders. Order state is journaled "
                    "in --state-dir, so a router killed with kill -9 restarts where it stopped "
                    "(see docs/fix.md, gateway).")
    router.add_argument("--config", metavar="FILE",
                        help="router configuration TOML (default: embedded)")
    router.add_argument("--fix", metavar="FILE",
                        help="FIX sessions TOML (default: embedded, OMS on 127.0.0.1:9878)")
    router.add_argument("--state-dir", default="var/router", metavar="DIR",
                        help="journal, session stores and lock (default: var/router)")
    router.add_argument("--policy", metavar="NAME",
                        help="execution policy the engine hosts (default: [engine] policy)")
    router.add_argument("--models", metavar="DIR",
                        help="model registry for --policy (default: the shipped models)")
    router.add_argument("--market-data", default="127.0.0.1:9880", metavar="HOST:PORT",
                        help="UDP market-data publisher to subscribe to (sor venues publishes on "
                             "127.0.0.1:9880, the default); 'none': no receiver")
    router.add_argument("--busy-poll", action="store_true",
                        help="never sleep in the event loop (lowest latency, one core busy)")
    router.add_argument("--verbose", action="store_true", help="log sessions and orders (INFO)")
    router.add_argument("--audit-dir", metavar="DIR",
                        help="where the run's audit journal goes (default: STATE_DIR/audit)")
    router.add_argument("--console-port", type=_console_port, default=9890, metavar="PORT",
                        help="the operator console's port (default 9890; 0: any free port; "
                             "'none': no console)")
    router.add_argument("--console-host", default="127.0.0.1", metavar="HOST",
                        help="the console's listening address (default 127.0.0.1)")
    router.add_argument("--console-token", metavar="TOKEN",
                        help="bearer token the console's actions need (default: "
                             "$SOR_CONSOLE_TOKEN, else none)")
    router.add_argument("--no-watch-models", action="store_true",
                        help="do not follow the model registry (by default promotions and "
                             "rollbacks in it are hot-swapped into the running engine)")
    router.set_defaults(handler=_cmd_router)

    venues = commands.add_parser(
        "venues", help="run the simulated venues as FIX acceptors with UDP market data",
        description="Runs a real-time simulated market (sor.sim, clock = wall clock) whose "
                    "venues are FIX acceptors (one session per venue; default: XNAS, BATS, EDGX, "
                    "IEXG, DARK on 127.0.0.1:9881-9885, SenderCompID = venue name, TargetCompID "
                    "= SOR, FIX 4.2 lit and 4.4 dark) and publishes their market data over UDP "
                    "(default 127.0.0.1:9880; see "
                    "sor.feed.udp). Prints a line per logon and logout and a periodic summary; "
                    "SIGINT or SIGTERM stops it.")
    venues.add_argument("--fix", metavar="FILE", help="session TOML (sor.fix.config) of the "
                        "venue acceptors (default: one per venue on --fix-port)")
    venues.add_argument("--config", metavar="FILE", help="router configuration the venues must "
                        "match (default: the embedded one)")
    venues.add_argument("--scenario", default="default", help="simulator scenario: a shipped "
                        "name or a TOML path (default: default)")
    venues.add_argument("--seed", type=int, help="simulator seed (default: the scenario's)")
    venues.add_argument("--fix-port", type=int, metavar="P", help="one FIX port for every "
                        "venue session, matched by CompIDs (default: each session's own; 0 "
                        "picks a free one)")
    venues.add_argument("--md-port", type=int, default=9880, metavar="P",
                        help="UDP market-data port (default 9880; 0 picks a free one)")
    venues.add_argument("--begin-string", choices=["FIX.4.2", "FIX.4.4"],
                        help="FIX version of every venue session (default: each session's own)")
    venues.add_argument("--keep-orders-on-disconnect", action="store_true",
                        help="do not cancel a venue's resting orders when its session drops")
    venues.add_argument("--fix42-liquidity-tag", type=int, choices=[851, 9730], default=851,
                        help="liquidity flag of FIX 4.2 fills: 851 LastLiquidityInd 1/2 (as "
                             "FIX 4.4; the router reads it) or 9730 A/R (strict FIX 4.2 peers)")
    venues.add_argument("--summary-s", type=float, default=10.0, metavar="S",
                        help="seconds between summary lines (default 10; 0 for none)")
    venues.set_defaults(handler=_cmd_venues)
    audit = commands.add_parser(
        "audit", help="read a router's audit journal: summary, SQL, retraining rows",
        description="Reads an audit journal (one file, or a folder of runs such as "
                    "<state-dir>/audit) and prints a summary, or runs --sql over the tables "
                    "decisions (one row per decision: context, model outputs, risk verdict, one "
                    "column per feature; quote dotted names: \"nbbo.spread_bps\"), audit "
                    "(engine audit records) and events (operator actions, guard trips; JSON in "
                    "data) with DuckDB. See docs/monitoring.md.")
    audit.add_argument("path", metavar="PATH", help="journal file or folder of journal files")
    audit.add_argument("--sql", metavar="QUERY", help="DuckDB SQL over decisions, audit, events")
    audit.add_argument("--limit", type=int, default=50, help="rows printed (default 50)")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.add_argument("--on-corrupt", choices=["error", "skip"], default="error",
                       help="damage in the middle of a file: stop with an error naming the "
                            "offset (default) or skip to the next valid frame")
    audit.add_argument("--training-rows", metavar="FILE.parquet",
                       help="also write the sent children with their outcome (retraining rows)")
    audit.add_argument("--all-children", action="store_true",
                       help="with --training-rows: include children still open")
    audit.set_defaults(handler=_cmd_audit)


    console = commands.add_parser(
        "console", help="serve the operator console for an engine running elsewhere",
        description="Attaches to the engine NAME (started by sor engine or another process) "
                    "and serves the operator console for it until SIGTERM or SIGINT: its state, "
                    "risk state and model mode, live charts, the event log of the actions made "
                    "here and the kill switch (see docs/console.md). The router serves its own "
                    "console (sor router prints the URL). Pass the --config the engine runs: "
                    "an action publishes the engine's parameters from it.")
    console.add_argument("--engine", required=True, metavar="NAME", help="engine name")
    console.add_argument("--config", metavar="FILE",
                         help="router configuration TOML the engine runs (default: embedded)")
    console.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1: this host only)")
    console.add_argument("--port", type=int, default=9891,
                         help="port to listen on (default 9891, beside the router's own console "
                              "on 9890; 0 picks a free one)")
    console.add_argument("--token-file", metavar="FILE",
                         help="file whose first line is the bearer token actions must carry "
                              "(default: $SOR_CONSOLE_TOKEN, else no token)")
    console.set_defaults(handler=_cmd_console)
    from sor.store.cli import add_parser as add_data_parser

    data_commands = add_data_parser(commands)
    from sor.retrain.cli import add_parser as add_retrain_parser
    from sor.retrain.cli import add_simulate_day_parser

    add_simulate_day_parser(data_commands)
    add_retrain_parser(commands)
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
