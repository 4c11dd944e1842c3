"""The backtest report: statistics over a grid of episodes (per regime and policy, paired
differences against a reference, the candidate against the best classical baseline), the JSON
document ``backtest.json``, an HTML page with figures, and a text table."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sor.backtest.metrics import (
    MARKOUT_HORIZONS_S,
    bootstrap_mean_ci,
    bootstrap_regime_average,
    paired_bootstrap_ci,
    relative_improvement_ci,
)

SCHEMA = "sor.backtest/1"
"""Name and version of the JSON document."""
CLASSICAL_BASELINES = ("best_price", "twap", "vwap", "almgren_chriss", "cont_kukanov",
                       "dark_allocator")
"""Factory names of the classical baselines the candidate is compared with."""
TARGET_IMPROVEMENT = 0.25
"""Target: the candidate's IS averaged over regimes at least 25% lower than the best baseline's."""
TARGET_WORST_REGIME = 0.05
"""Target: in no regime is the candidate's mean IS more than 5% worse than that baseline's."""
_MIX = ("passive", "midpoint", "aggressive", "swept")


def _clean(value: Any) -> Any:
    """Replaces NaN and infinities by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _values(rows: Sequence[dict[str, Any]], policy: str, regime: str,
            metric: str = "is_bps") -> tuple[list[int], np.ndarray]:
    chosen = sorted((r["seed"], r[metric]) for r in rows
                    if r["policy"] == policy and r["regime"] == regime and r[metric] is not None)
    return [s for s, _ in chosen], np.array([v for _, v in chosen], dtype=np.float64)


def _mean(values: list[float]) -> float | None:
    clean = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(clean)) if clean else None


def summarize(rows: Sequence[dict[str, Any]], *, policies: Sequence[str], regimes: Sequence[str],
              reference: str | None, candidate: str | None, resamples: int = 2000,
              bootstrap_seed: int = 0) -> dict[str, Any]:
    """Returns the statistics of a grid (see docs/backtest.md, "Statistics")."""
    boot = {"resamples": resamples, "seed": bootstrap_seed}
    by_regime: dict[str, dict[str, Any]] = {}
    for regime in regimes:
        by_regime[regime] = {}
        for policy in policies:
            chosen = [r for r in rows if r["policy"] == policy and r["regime"] == regime]
            if not chosen:
                continue
            _, is_values = _values(rows, policy, regime)
            entry: dict[str, Any] = {"is_bps": bootstrap_mean_ci(is_values, **boot)}
            for metric in ("vwap_slippage_bps", "fill_rate", "participation", "fees_bps",
                           "is_price_bps", "is_fees_bps", "is_unfilled_bps", "completion_s"):
                entry[metric] = _mean([r[metric] for r in chosen])
            entry["fill_mix"] = {k: _mean([r["fill_mix"][k] for r in chosen]) for k in _MIX}
            entry["markouts_bps"] = _pool_markouts(chosen)
            entry["requests_refused"] = int(sum(r["counters"]["requests_refused"] for r in chosen))
            entry["book_errors"] = int(sum(r["counters"]["book_errors"] for r in chosen))
            by_regime[regime][policy] = entry

    averaged = {}
    for policy in policies:
        samples = [_values(rows, policy, regime)[1] for regime in regimes]
        averaged[policy] = {"is_bps": bootstrap_regime_average(samples, **boot)}

    paired: dict[str, Any] = {"reference": reference, "by_regime": {}, "averaged": {}}
    if reference is not None and reference in policies:
        for policy in policies:
            if policy == reference:
                continue
            diffs = []
            for regime in regimes:
                seeds_p, p = _values(rows, policy, regime)
                seeds_r, r = _values(rows, reference, regime)
                common = sorted(set(seeds_p) & set(seeds_r))
                p = np.array([p[seeds_p.index(s)] for s in common])
                r = np.array([r[seeds_r.index(s)] for s in common])
                if len(common):
                    paired["by_regime"].setdefault(regime, {})[policy] = \
                        paired_bootstrap_ci(p, r, **boot)
                diffs.append(p - r)
            paired["averaged"][policy] = bootstrap_regime_average(diffs, **boot)

    return {"by_regime": by_regime, "averaged": averaged, "paired_vs_reference": paired,
            "improvement_vs_best_baseline": _improvement(rows, policies, regimes, candidate,
                                                         averaged, boot)}


def _pool_markouts(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Share-weighted markouts per venue over episodes."""
    sums: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        for venue, entry in r["markouts_bps"].items():
            cell = sums.setdefault(venue, {})
            for h in MARKOUT_HORIZONS_S:
                key = f"{h:g}s"
                if entry.get(key) is not None and entry["shares"] > 0:
                    acc = cell.setdefault(key, [0.0, 0.0])
                    acc[0] += entry[key] * entry["shares"]
                    acc[1] += entry["shares"]
    out = {}
    for venue, cell in sums.items():
        out[venue] = {f"{h:g}s": (cell[f"{h:g}s"][0] / cell[f"{h:g}s"][1]
                                  if f"{h:g}s" in cell and cell[f"{h:g}s"][1] > 0 else None)
                      for h in MARKOUT_HORIZONS_S}
    return out


def _improvement(rows: Sequence[dict[str, Any]], policies: Sequence[str], regimes: Sequence[str],
                 candidate: str | None, averaged: dict[str, Any],
                 boot: dict[str, int]) -> dict[str, Any]:
    if candidate is None:
        return {"skipped": "no candidate policy was named"}
    if candidate not in policies:
        return {"candidate": candidate,
                "skipped": f"candidate {candidate!r} was not run (not in the factory or not "
                           f"selected); baselines were compared among themselves only"}
    names = {r["policy"]: r.get("policy_name", r["policy"]) for r in rows}
    baselines = [p for p in policies if p != candidate and names.get(p) in CLASSICAL_BASELINES]
    if not baselines:
        baselines = [p for p in policies if p != candidate]
    if not baselines:
        return {"candidate": candidate, "skipped": "no baseline policy was run"}
    best = min(baselines, key=lambda p: (averaged[p]["is_bps"]["mean"]
                                         if math.isfinite(averaged[p]["is_bps"]["mean"])
                                         else math.inf))
    candidate_samples, baseline_samples = [], []
    per_regime = {}
    for regime in regimes:
        seeds_c, c = _values(rows, candidate, regime)
        seeds_b, b = _values(rows, best, regime)
        common = sorted(set(seeds_c) & set(seeds_b))
        c = np.array([c[seeds_c.index(s)] for s in common])
        b = np.array([b[seeds_b.index(s)] for s in common])
        candidate_samples.append(c)
        baseline_samples.append(b)
        if len(common):
            mean_b = float(b.mean())
            per_regime[regime] = {
                "candidate_is_bps": float(c.mean()), "baseline_is_bps": mean_b,
                "relative_difference": (float(c.mean()) - mean_b) / abs(mean_b)
                if mean_b != 0 else None}
    stats = relative_improvement_ci(candidate_samples, baseline_samples, **boot)
    worst = max(per_regime.items(), key=lambda kv: (kv[1]["relative_difference"]
                                                    if kv[1]["relative_difference"] is not None
                                                    else -math.inf), default=(None, None))
    worst_value = worst[1]["relative_difference"] if worst[1] else None
    improvement = stats["improvement"]
    return {
        "candidate": candidate,
        "best_baseline": best,
        "baselines": baselines,
        "improvement": improvement,
        "ci_low": stats["ci_low"],
        "ci_high": stats["ci_high"],
        "ci_excludes_zero": bool(stats["ci_low"] > 0 or stats["ci_high"] < 0),
        "per_regime": per_regime,
        "worst_regime": worst[0],
        "worst_regime_relative_difference": worst_value,
        "target": {"improvement_at_least": TARGET_IMPROVEMENT,
                   "worst_regime_at_most": TARGET_WORST_REGIME},
        "meets_target": bool(math.isfinite(improvement) and improvement >= TARGET_IMPROVEMENT
                             and stats["ci_low"] > 0
                             and worst_value is not None and worst_value <= TARGET_WORST_REGIME),
    }


def build_report(rows: Sequence[dict[str, Any]], *, config: dict[str, Any],
                 policies: Sequence[str], regimes: Sequence[str], reference: str | None,
                 candidate: str | None, notes: Sequence[str] = (), resamples: int = 2000,
                 bootstrap_seed: int = 0) -> dict[str, Any]:
    """Returns the ``backtest.json`` document: schema, config, notes, episodes, summary."""
    summary = summarize(rows, policies=policies, regimes=regimes, reference=reference,
                        candidate=candidate, resamples=resamples, bootstrap_seed=bootstrap_seed)
    improvement = summary["improvement_vs_best_baseline"]
    return _clean({"schema": SCHEMA, "config": config, "notes": list(notes),
                   # the headline: the candidate's IS reduction vs the best classical baseline,
                   # a fraction (details, interval and per-regime figures in the summary)
                   "improvement_vs_best_baseline": improvement.get("improvement"),
                   "episodes": list(rows), "summary": summary})


# --- text ----------------------------------------------------------------------------------


def _f(value: Any, spec: str = ".2f") -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else format(value, spec)


def format_report(report: dict[str, Any]) -> str:
    """Returns the report as text: mean IS with its 95% interval per regime and policy, the
    regime average, paired differences and the candidate's verdict."""
    summary = report["summary"]
    config = report["config"]
    policies = config["policy_labels"]
    regimes = config["regimes"]
    lines = [f"backtest: {len(policies)} policies x {len(regimes)} regimes x "
             f"{len(config['seeds'])} seeds, {config['quantity']} shares over "
             f"{config['horizon_s']:g} s (IS in bps of arrival notional, fees included; "
             f"lower is better)"]
    width = max(12, *(len(p) for p in policies))
    lines.append(f"{'policy':<{width}} " + " ".join(f"{r:>24}" for r in regimes)
                 + f" {'average':>24}")
    for policy in policies:
        cells = []
        for regime in regimes:
            s = summary["by_regime"].get(regime, {}).get(policy)
            cells.append(f"{'n/a':>24}" if s is None else
                         f"{_f(s['is_bps']['mean']):>8} [{_f(s['is_bps']['ci_low'])}, "
                         f"{_f(s['is_bps']['ci_high'])}]".rjust(24))
        a = summary["averaged"][policy]["is_bps"]
        cells.append(f"{_f(a['mean']):>8} [{_f(a['ci_low'])}, {_f(a['ci_high'])}]".rjust(24))
        lines.append(f"{policy:<{width}} " + " ".join(cells))
    paired = summary["paired_vs_reference"]
    if paired["reference"] and paired["averaged"]:
        lines.append(f"paired difference vs {paired['reference']} (bps, < 0: better), averaged "
                     f"over regimes:")
        for policy, s in paired["averaged"].items():
            lines.append(f"  {policy:<{width}} {_f(s['mean']):>8} [{_f(s['ci_low'])}, "
                         f"{_f(s['ci_high'])}]")
    imp = summary["improvement_vs_best_baseline"]
    if "skipped" in imp:
        lines.append(f"candidate: {imp['skipped']}")
    else:
        lines.append(
            f"candidate {imp['candidate']} vs best baseline {imp['best_baseline']}: "
            f"{_f(100 * imp['improvement'] if imp['improvement'] is not None else None, '.1f')}% "
            f"lower IS [{_f(100 * imp['ci_low'] if imp['ci_low'] is not None else None, '.1f')}%, "
            f"{_f(100 * imp['ci_high'] if imp['ci_high'] is not None else None, '.1f')}%], "
            f"worst regime {imp['worst_regime']} "
            f"{_f(100 * imp['worst_regime_relative_difference'] if imp['worst_regime_relative_difference'] is not None else None, '+.1f')}%; "
            f"target met: {imp['meets_target']}")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------------------


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Writes ``backtest.json``, the figures and ``index.html`` into ``out_dir``; returns the
    path of index.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "backtest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    figures = _figures(report, out)
    (out / "index.html").write_text(_html(report, figures), encoding="utf-8")
    return out / "index.html"


def _figures(report: dict[str, Any], out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    policies = report["config"]["policy_labels"]
    regimes = report["config"]["regimes"]
    figures = []
    width = 0.8 / max(len(policies), 1)
    x = np.arange(len(regimes) + 1)
    labels = list(regimes) + ["average"]

    def stats_of(policy: str, regime: str) -> dict[str, Any] | None:
        if regime == "average":
            return summary["averaged"][policy]["is_bps"]
        s = summary["by_regime"].get(regime, {}).get(policy)
        return s["is_bps"] if s else None

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for n, policy in enumerate(policies):
        means, low, high = [], [], []
        for regime in labels:
            s = stats_of(policy, regime)
            m = s["mean"] if s and s["mean"] is not None else np.nan
            means.append(m)
            low.append(m - s["ci_low"] if s and s["ci_low"] is not None else 0)
            high.append(s["ci_high"] - m if s and s["ci_high"] is not None else 0)
        ax.bar(x + (n - (len(policies) - 1) / 2) * width, means, width, yerr=[low, high],
               capsize=3, label=policy)
    ax.set_xticks(x, labels)
    ax.set_ylabel("implementation shortfall, bps (95% CI)")
    ax.set_title("Implementation shortfall by policy and regime (lower is better)")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "is_by_regime.png", dpi=110)
    plt.close(fig)
    figures.append(("is_by_regime.png", "Mean IS with bootstrap 95% intervals"))

    paired = summary["paired_vs_reference"]
    others = [p for p in policies if p != paired["reference"]]
    if paired["reference"] and others:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        w = 0.8 / len(others)
        for n, policy in enumerate(others):
            means, low, high = [], [], []
            for regime in labels:
                s = paired["averaged"].get(policy) if regime == "average" else \
                    paired["by_regime"].get(regime, {}).get(policy)
                m = s["mean"] if s and s["mean"] is not None else np.nan
                means.append(m)
                low.append(m - s["ci_low"] if s and s["ci_low"] is not None else 0)
                high.append(s["ci_high"] - m if s and s["ci_high"] is not None else 0)
            ax.bar(x + (n - (len(others) - 1) / 2) * w, means, w, yerr=[low, high], capsize=3,
                   label=policy)
        ax.set_xticks(x, labels)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_ylabel(f"IS minus {paired['reference']}, bps (paired 95% CI)")
        ax.set_title(f"Paired differences against {paired['reference']} (< 0: better)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "paired_differences.png", dpi=110)
        plt.close(fig)
        figures.append(("paired_differences.png", f"Paired IS differences vs {paired['reference']}"))

    venues = sorted({v for regime in summary["by_regime"].values() for s in regime.values()
                     for v in s["markouts_bps"] if v != "all"})
    if venues:
        fig, axes = plt.subplots(1, len(policies), figsize=(4 * len(policies), 3.8), sharey=True,
                                 squeeze=False)
        for ax, policy in zip(axes[0], policies):
            w = 0.8 / len(MARKOUT_HORIZONS_S)
            for k, h in enumerate(MARKOUT_HORIZONS_S):
                key = f"{h:g}s"
                values = []
                for venue in venues:
                    cells = [s["markouts_bps"].get(venue, {}).get(key)
                             for regime in summary["by_regime"].values()
                             for p, s in regime.items() if p == policy]
                    values.append(_mean(cells) if cells else None)
                ax.bar(np.arange(len(venues)) + (k - 1) * w,
                       [np.nan if v is None else v for v in values], w, label=key)
            ax.set_xticks(np.arange(len(venues)), venues, rotation=30)
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_title(policy, fontsize=9)
        axes[0][0].set_ylabel("markout, bps (> 0: adverse)")
        axes[0][0].legend(fontsize=8)
        fig.suptitle("Fill markouts per venue, averaged over regimes")
        fig.tight_layout()
        fig.savefig(out / "markouts.png", dpi=110)
        plt.close(fig)
        figures.append(("markouts.png", "Quantity-weighted markouts per venue at 1 s, 10 s, 60 s"))

    fig, ax = plt.subplots(figsize=(9, 4))
    bottoms = np.zeros(len(policies))
    for part in _MIX:
        values = np.array([_mean([s[p]["fill_mix"][part] for s in summary["by_regime"].values()
                                  if p in s]) or 0.0 for p in policies])
        ax.bar(policies, values, bottom=bottoms, label=part)
        bottoms += values
    ax.set_ylabel("share of filled shares")
    ax.set_title("Fill mix, averaged over regimes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fill_mix.png", dpi=110)
    plt.close(fig)
    figures.append(("fill_mix.png", "Passive, midpoint, aggressive and swept shares"))
    return figures


def _html(report: dict[str, Any], figures: list[tuple[str, str]]) -> str:
    config = report["config"]
    summary = report["summary"]
    policies = config["policy_labels"]
    regimes = config["regimes"]
    head = "".join(f"<th>{html.escape(r)}</th>" for r in regimes)
    rows = []
    for policy in policies:
        cells = []
        for regime in regimes:
            s = summary["by_regime"].get(regime, {}).get(policy)
            cells.append("<td>n/a</td>" if s is None else
                         f"<td>{_f(s['is_bps']['mean'])} [{_f(s['is_bps']['ci_low'])}, "
                         f"{_f(s['is_bps']['ci_high'])}]</td>")
        a = summary["averaged"][policy]["is_bps"]
        cells.append(f"<td>{_f(a['mean'])} [{_f(a['ci_low'])}, {_f(a['ci_high'])}]</td>")
        rows.append(f"<tr><th>{html.escape(policy)}</th>{''.join(cells)}</tr>")
    detail = []
    for regime in regimes:
        for policy in policies:
            s = summary["by_regime"].get(regime, {}).get(policy)
            if s is None:
                continue
            mix = s["fill_mix"]
            detail.append(
                f"<tr><td>{html.escape(regime)}</td><td>{html.escape(policy)}</td>"
                f"<td>{_f(s['vwap_slippage_bps'])}</td><td>{_f(s['fill_rate'], '.3f')}</td>"
                f"<td>{_f(s['participation'], '.4f')}</td><td>{_f(s['fees_bps'])}</td>"
                + "".join(f"<td>{_f(mix[k], '.2f')}</td>" for k in _MIX) + "</tr>")
    imp = summary["improvement_vs_best_baseline"]
    verdict = html.escape(imp["skipped"]) if "skipped" in imp else html.escape(
        f"{imp['candidate']} vs {imp['best_baseline']}: improvement {_f(imp['improvement'], '.3f')} "
        f"[{_f(imp['ci_low'], '.3f')}, {_f(imp['ci_high'], '.3f')}], excludes zero: "
        f"{imp['ci_excludes_zero']}; worst regime {imp['worst_regime']} "
        f"{_f(imp['worst_regime_relative_difference'], '+.3f')}; target met: {imp['meets_target']}")
    images = "".join(f"<figure><img src='{name}' alt='{html.escape(caption)}'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                     for name, caption in figures)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.get("notes", []))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sor backtest</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{max-width:100%}}</style></head>
<body><h1>sor backtest</h1>
<p>{len(policies)} policies &times; {len(regimes)} regimes &times; {len(config['seeds'])} seeds
(paired), parent {config['quantity']} shares over {config['horizon_s']:g} s, side alternating by
seed. Implementation shortfall (IS) in bps of arrival notional, fees and the horizon sweep
included; lower is better. Intervals: bootstrap 95% ({config['bootstrap']['resamples']}
resamples, seed {config['bootstrap']['seed']}).</p>
<h2>Mean IS</h2><table><tr><th>policy</th>{head}<th>average</th></tr>{''.join(rows)}</table>
<h2>Candidate</h2><p>{verdict}</p>
{images}
<h2>Details</h2><table><tr><th>regime</th><th>policy</th><th>VWAP slippage bps</th>
<th>fill rate</th><th>participation</th><th>fees bps</th><th>passive</th><th>midpoint</th>
<th>aggressive</th><th>swept</th></tr>{''.join(detail)}</table>
<ul>{notes}</ul>
<p>Data: backtest.json (schema {html.escape(report['schema'])}).</p></body></html>
"""
