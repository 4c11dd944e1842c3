// Cont-Kukanov optimal order placement (see docs/baselines.md).
//
// Single exchange (Cont & Kukanov 2017, the explicit solution of Section 3). With
// W = (xi - Q)^+ the shares of outflow that reach an order behind the queue Q, fill
// A = M + min(L, W), and lambda_o >= h + r, an optimum has M + L = S, so the cost along that line
// is g(L) = (h + f)(S - L) - (h + r) E[min(L, W)] + lambda_u E[(L - W)^+], whose right derivative
// is -(h + f) - (h + r) + (lambda_u + h + r) P(W <= L). It is convex, so the minimiser is the
// smallest L with P(xi <= Q + L) >= q, q = (2h + f + r) / (lambda_u + h + r):
//   L* = clamp(F^-1(q) - Q, 0, S),   M* = S - L*,
// with F the distribution function of xi: no limit order when F(Q) >= q (the queue is too
// long), only limit orders when q >= 1 (lambda_u <= h + f: underfill is cheaper than crossing).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "baseline_common.hpp"
#include "sor/baseline_policies.hpp"

namespace sor {
namespace {

double positive(double x) noexcept { return x > 0.0 ? x : 0.0; }

// The realised cost v(M, L; xi) of one outflow row.
double realised_cost(const ContKukanovProblem& p, const double* queue, const double* rebate,
                     std::size_t venue_count, const double* row, double market,
                     const double* limit) noexcept {
  const double h = p.half_spread_usd_per_share;
  double filled = market;
  double cost = (h + p.taker_fee_usd_per_share) * market;
  for (std::size_t k = 0; k < venue_count; ++k) {
    const double passive = std::min(limit[k], positive(row[k] - queue[k]));
    filled += passive;
    cost -= (h + rebate[k]) * passive;
  }
  return cost + p.underfill_penalty_usd_per_share * positive(p.target_shares - filled) +
         p.overfill_penalty_usd_per_share * positive(filled - p.target_shares);
}

}  // namespace

void cont_kukanov_allocate(const ContKukanovProblem& p, const double* queue, const double* rebate,
                           std::size_t venue_count, const double* rows, std::size_t row_count,
                           std::size_t iterations, Random& rng, double& market_shares,
                           double* limit_shares) noexcept {
  venue_count = std::min(venue_count, kMaxPolicyVenues);
  const double S = std::max(p.target_shares, 0.0);
  const double h = p.half_spread_usd_per_share;
  const double f = p.taker_fee_usd_per_share;
  const double lu = p.underfill_penalty_usd_per_share;
  const double lo = p.overfill_penalty_usd_per_share;
  market_shares = S;
  for (std::size_t k = 0; k < venue_count; ++k) limit_shares[k] = 0.0;
  if (S <= 0.0 || row_count == 0 || iterations == 0 || venue_count == 0) return;

  // Robust SA (Nemirovski, Juditsky, Lan & Shapiro 2009): constant step D / (G sqrt(N)) with D
  // the box's diameter and G a bound on the stochastic gradient's norm, iterates averaged.
  double g2 = (h + f + lu + lo) * (h + f + lu + lo);
  for (std::size_t k = 0; k < venue_count; ++k) {
    const double g = std::fabs(h + rebate[k]) + lu + lo;
    g2 += g * g;
  }
  const double diameter = S * std::sqrt(static_cast<double>(venue_count + 1));
  const double step = diameter / (std::sqrt(g2) * std::sqrt(static_cast<double>(iterations)));

  double m = S;
  double limit[kMaxPolicyVenues] = {};
  double sum_m = 0.0;
  double sum_limit[kMaxPolicyVenues] = {};
  std::size_t averaged = 0;
  const std::size_t average_from = iterations / 2;
  for (std::size_t n = 0; n < iterations; ++n) {
    const double* row = rows + rng.below(row_count) * venue_count;
    double filled = m;
    for (std::size_t k = 0; k < venue_count; ++k)
      filled += std::min(limit[k], positive(row[k] - queue[k]));
    const double penalty = filled < S ? -lu : (filled > S ? lo : 0.0);
    const double grad_m = h + f + penalty;
    for (std::size_t k = 0; k < venue_count; ++k) {
      const double grad_l = row[k] > queue[k] + limit[k] ? -(h + rebate[k]) + penalty : 0.0;
      limit[k] = std::clamp(limit[k] - step * grad_l, 0.0, S);
    }
    m = std::clamp(m - step * grad_m, 0.0, S);
    if (n >= average_from) {
      sum_m += m;
      for (std::size_t k = 0; k < venue_count; ++k) sum_limit[k] += limit[k];
      ++averaged;
    }
  }
  market_shares = sum_m / static_cast<double>(averaged);
  for (std::size_t k = 0; k < venue_count; ++k)
    limit_shares[k] = sum_limit[k] / static_cast<double>(averaged);
}

double cont_kukanov_expected_cost(const ContKukanovProblem& p, const double* queue,
                                  const double* rebate, std::size_t venue_count,
                                  const double* rows, std::size_t row_count, double market,
                                  const double* limit) noexcept {
  if (row_count == 0) return 0.0;
  double total = 0.0;
  for (std::size_t r = 0; r < row_count; ++r)
    total += realised_cost(p, queue, rebate, venue_count, rows + r * venue_count, market, limit);
  return total / static_cast<double>(row_count);
}

double cont_kukanov_single_venue_quantile(const ContKukanovProblem& p, double rebate) noexcept {
  const double h = p.half_spread_usd_per_share;
  return (2.0 * h + p.taker_fee_usd_per_share + rebate) /
         (p.underfill_penalty_usd_per_share + h + rebate);
}

double cont_kukanov_single_venue_limit_shares(const ContKukanovProblem& p, double queue,
                                              double rebate, const double* samples,
                                              std::size_t count) {
  const double S = std::max(p.target_shares, 0.0);
  const double q = cont_kukanov_single_venue_quantile(p, rebate);
  if (count == 0 || !(q > 0.0)) return 0.0;
  if (q >= 1.0) return S;
  std::vector<double> sorted(samples, samples + count);
  std::sort(sorted.begin(), sorted.end());
  // F^-1(q) = smallest sample x with #{samples <= x} / n >= q.
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(count) - 1e-12));
  const double quantile = sorted[std::clamp<std::size_t>(rank, 1, count) - 1];
  return std::clamp(quantile - queue, 0.0, S);
}

// ---------------------------------------------------------------------------------------------

const char* ContKukanovPolicy::validate(const Config& c) noexcept {
  if (c.decision_interval_ns <= 0) return "decision_interval_ns must be > 0";
  if (!(c.underfill_penalty_usd_per_share > 0.0) ||
      !std::isfinite(c.underfill_penalty_usd_per_share))
    return "underfill_penalty_usd_per_share must be finite and > 0";
  if (!(c.overfill_penalty_usd_per_share >= 0.0) ||
      !std::isfinite(c.overfill_penalty_usd_per_share))
    return "overfill_penalty_usd_per_share must be finite and >= 0";
  if (!(c.price_tick_usd > 0.0) || !std::isfinite(c.price_tick_usd))
    return "price_tick_usd must be finite and > 0";
  if (c.sa_iterations < 2 || c.sa_iterations > 10'000'000)
    return "sa_iterations must be in [2, 10000000]";
  if (c.outflow_history_periods == 0 || c.outflow_history_periods > 1'000'000)
    return "outflow_history_periods must be in [1, 1000000]";
  if (c.min_outflow_samples == 0 || c.min_outflow_samples > c.outflow_history_periods)
    return "min_outflow_samples must be in [1, outflow_history_periods]";
  if (c.replace_delay_ns <= 0) return "replace_delay_ns must be > 0";
  return "";
}

ContKukanovPolicy::ContKukanovPolicy(const Config& config) : config_(config), rng_(config.seed) {
  const char* error = validate(config_);
  if (*error != '\0') throw std::invalid_argument(error);
}

void ContKukanovPolicy::reset(const ParentState& parent, const PolicyVenue* venues,
                              std::size_t venue_count) {
  parent_ = parent;
  venue_count = std::min(venue_count, kMaxPolicyVenues);
  venues_.assign(venues, venues + venue_count);
  snapshot_.assign(venue_count, Snapshot{0, 0, false});
  passive_filled_.assign(venue_count, 0.0);
  rows_.assign(config_.outflow_history_periods * venue_count, 0.0);
  ordered_rows_.assign(config_.outflow_history_periods * venue_count, 0.0);
  scratch_.assign(4 * kMaxPolicyVenues, 0.0);
  row_count_ = 0;
  row_next_ = 0;
  placed_period_ = -1;
  observed_period_ = -1;
  snapshot_taken_ = false;
  rng_ = Random(config_.seed);
}

double ContKukanovPolicy::outflow_observation(std::size_t row, std::size_t venue) const noexcept {
  if (row >= row_count_ || venue >= venues_.size()) return 0.0;
  const std::size_t capacity = config_.outflow_history_periods;
  const std::size_t slot = (row_next_ + capacity - row_count_ + row) % capacity;
  return rows_[slot * venues_.size() + venue];
}

void ContKukanovPolicy::record_outflow(const double* outflow) noexcept {
  const std::size_t n = venues_.size();
  if (n == 0) return;
  for (std::size_t v = 0; v < n; ++v) rows_[row_next_ * n + v] = std::max(outflow[v], 0.0);
  row_next_ = (row_next_ + 1) % config_.outflow_history_periods;
  row_count_ = std::min(row_count_ + 1, config_.outflow_history_periods);
}

void ContKukanovPolicy::on_fill(const ChildFill& fill) noexcept {
  if (fill.type != ChildOrderType::kPost) return;
  for (std::size_t v = 0; v < venues_.size(); ++v) {
    if (venues_[v].venue_id == fill.venue_id) passive_filled_[v] += static_cast<double>(fill.quantity);
  }
}

// The outflow of a period at a venue is read as the net depletion of the near-touch level seen
// at the last placement, raised to Q + our passive fills when those filled (FIFO: everything
// ahead of us left first). Arrivals at the level hide departures, so it is a lower bound.
void ContKukanovPolicy::observe(const PolicyView& view) noexcept {
  const ParentState& parent = *view.parent;
  const Side near_side = parent.side == Side::kBuy ? Side::kBuy : Side::kSell;
  double row[kMaxPolicyVenues] = {};
  for (std::size_t v = 0; v < venues_.size(); ++v) {
    const Snapshot& s = snapshot_[v];
    if (!s.valid) continue;
    std::int64_t now_quantity = 0;
    const int index = view.book != nullptr ? view.book->venue_index(venues_[v].venue_id) : -1;
    if (index >= 0) {
      const PriceLadder* ladder =
          view.book->book(static_cast<std::size_t>(index)).ladder(parent.instrument_id, near_side);
      const PriceLevel* level = ladder != nullptr ? ladder->find(s.price_ticks) : nullptr;
      if (level != nullptr) now_quantity = level->quantity;
    }
    double outflow = static_cast<double>(std::max<std::int64_t>(s.quantity - now_quantity, 0));
    if (passive_filled_[v] > 0.0)
      outflow = std::max(outflow, static_cast<double>(s.quantity) + passive_filled_[v]);
    row[v] = outflow;
  }
  record_outflow(row);
}

void ContKukanovPolicy::take_snapshot(const PolicyView& view) noexcept {
  const ParentState& parent = *view.parent;
  const Side near_side = parent.side == Side::kBuy ? Side::kBuy : Side::kSell;
  for (std::size_t v = 0; v < venues_.size(); ++v) {
    snapshot_[v] = Snapshot{0, 0, false};
    passive_filled_[v] = 0.0;
    if (!venues_[v].lit || view.book == nullptr) continue;
    const int index = view.book->venue_index(venues_[v].venue_id);
    if (index < 0) continue;
    const PriceLadder* ladder =
        view.book->book(static_cast<std::size_t>(index)).ladder(parent.instrument_id, near_side);
    const PriceLevel* best = ladder != nullptr ? ladder->best() : nullptr;
    if (best != nullptr) snapshot_[v] = Snapshot{best->price_ticks, best->quantity, true};
  }
  snapshot_taken_ = true;
}

void ContKukanovPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const ParentState& parent = *view.parent;
  const std::int64_t period = config_.decision_interval_ns;
  if (view.now_ns >= parent.end_ns) {
    // Past the deadline: stop resting, take what is left.
    baseline::cancel_open_children(view, out);
    route_marketable(view, sendable_quantity(parent), out);
    out.next_decision_ns = view.now_ns + config_.replace_delay_ns;
    return;
  }
  const std::int64_t k = baseline::period_index(parent, period, view.now_ns);
  const std::int64_t boundary = baseline::period_end(parent, period, k);
  out.next_decision_ns = boundary;
  if (k == placed_period_) return;

  if (snapshot_taken_ && observed_period_ != k) {
    observe(view);
    observed_period_ = k;
    snapshot_taken_ = false;
  }
  // Stale orders first: re-place only once every child of the last period is done.
  if (baseline::cancel_open_children(view, out)) {
    out.next_decision_ns = std::min(boundary, view.now_ns + config_.replace_delay_ns);
    return;
  }

  const std::int64_t sendable = sendable_quantity(parent);
  const std::int64_t target_shares =
      std::min(baseline::twap_target(parent, period, k) - parent.filled, sendable);
  placed_period_ = k;
  observed_period_ = k;
  const std::int64_t count = baseline::period_count(parent, period);
  if (target_shares > 0 && k + 1 >= count) {
    route_marketable(view, target_shares, out);  // Nowhere to carry an underfill.
  } else if (target_shares > 0) {
    const bool buy = parent.side == Side::kBuy;
    const Side near_side = buy ? Side::kBuy : Side::kSell;
    // Eligible venues: lit, with a near touch within the parent's limit.
    double* queue = scratch_.data();
    double* rebate = queue + kMaxPolicyVenues;
    double* limit = rebate + kMaxPolicyVenues;
    std::size_t position[kMaxPolicyVenues];
    std::int64_t touch[kMaxPolicyVenues];
    std::size_t eligible = 0;
    for (std::size_t v = 0; v < venues_.size() && view.book != nullptr; ++v) {
      if (!venues_[v].lit) continue;
      const int index = view.book->venue_index(venues_[v].venue_id);
      if (index < 0) continue;
      const PriceLadder* ladder =
          view.book->book(static_cast<std::size_t>(index)).ladder(parent.instrument_id, near_side);
      const PriceLevel* best = ladder != nullptr ? ladder->best() : nullptr;
      if (best == nullptr) continue;
      if (parent.limit_price_ticks != 0 && (buy ? best->price_ticks > parent.limit_price_ticks
                                                : best->price_ticks < parent.limit_price_ticks))
        continue;
      position[eligible] = v;
      touch[eligible] = best->price_ticks;
      queue[eligible] = static_cast<double>(best->quantity);
      rebate[eligible] = -venues_[v].maker_fee_usd_per_share;
      ++eligible;
    }
    double market = static_cast<double>(target_shares);
    for (std::size_t j = 0; j < eligible; ++j) limit[j] = 0.0;
    if (eligible > 0 && row_count_ >= config_.min_outflow_samples) {
      for (std::size_t r = 0; r < row_count_; ++r)
        for (std::size_t j = 0; j < eligible; ++j)
          ordered_rows_[r * eligible + j] = outflow_observation(r, position[j]);
      const Nbbo nbbo = view.book->nbbo(parent.instrument_id);
      const double half_spread_ticks =
          nbbo.bid_price_ticks > 0 && nbbo.ask_price_ticks > nbbo.bid_price_ticks
              ? 0.5 * static_cast<double>(nbbo.ask_price_ticks - nbbo.bid_price_ticks)
              : 0.5;
      const ContKukanovProblem problem{static_cast<double>(target_shares),
                                       half_spread_ticks * config_.price_tick_usd,
                                       best_taker_fee_usd_per_share(view),
                                       config_.underfill_penalty_usd_per_share,
                                       config_.overfill_penalty_usd_per_share};
      cont_kukanov_allocate(problem, queue, rebate, eligible, ordered_rows_.data(), row_count_,
                            config_.sa_iterations, rng_, market, limit);
    }
    // Whole lots within what the parent may still send; the market order has priority.
    const std::int64_t lot = std::max<std::int64_t>(parent.lot_shares, 1);
    std::int64_t market_shares = baseline::lot_slice(round_to_lot(market, lot), sendable, lot);
    std::int64_t budget = sendable - route_marketable(view, market_shares, out);
    for (std::size_t j = 0; j < eligible; ++j) {
      std::int64_t shares = baseline::lot_slice(round_to_lot(limit[j], lot), budget, lot);
      if (shares > 0 && out.add_child(venues_[position[j]].venue_id, ChildOrderType::kPost,
                                      touch[j], shares))
        budget -= shares;
    }
  }
  take_snapshot(view);
}

}  // namespace sor
