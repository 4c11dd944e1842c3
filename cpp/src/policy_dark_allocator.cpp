// Censored-exploration dark pool allocator of Ganchev, Kearns, Nevmyvaka & Vaughan (see
// docs/baselines.md).
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "baseline_common.hpp"
#include "sor/baseline_policies.hpp"

namespace sor {

CensoredTailEstimator::CensoredTailEstimator(std::int64_t max_units,
                                             std::uint32_t cutoff_min_observations)
    : max_units_(std::max<std::int64_t>(max_units, 0)),
      cutoff_min_observations_(std::max<std::uint32_t>(cutoff_min_observations, 1)),
      exact_(static_cast<std::size_t>(max_units_) + 1, 0),
      censored_(static_cast<std::size_t>(max_units_) + 1, 0),
      km_tail_(static_cast<std::size_t>(max_units_) + 1, 1.0) {}

void CensoredTailEstimator::clear() noexcept {
  std::fill(exact_.begin(), exact_.end(), 0);
  std::fill(censored_.begin(), censored_.end(), 0);
  std::fill(km_tail_.begin(), km_tail_.end(), 1.0);
  observations_ = 0;
  cutoff_units_ = 0;
}

void CensoredTailEstimator::observe(std::int64_t sent, std::int64_t filled) noexcept {
  if (sent <= 0) return;
  sent = std::min(sent, max_units_);
  filled = std::clamp<std::int64_t>(filled, 0, sent);
  // Liquidity beyond the support is censored at max_units.
  if (filled < sent) {
    ++exact_[static_cast<std::size_t>(filled)];
  } else {
    ++censored_[static_cast<std::size_t>(sent)];
  }
  ++observations_;
  recompute();
}

// Kaplan-Meier on the discrete support: T(0) = 1, T(s + 1) = T(s) (1 - D(s) / N(s)) with D(s) the
// exact observations at s and N(s) the observations (exact or censored) at or above s.
// Cut-off: hazards are used only where at least cutoff_min_observations are at risk.
void CensoredTailEstimator::recompute() noexcept {
  const auto n = static_cast<std::size_t>(max_units_);
  std::uint64_t at_risk = 0;
  // at_risk(s) is a suffix sum; walk down to find the cut-off, then up for the product.
  cutoff_units_ = 0;
  for (std::size_t s = n + 1; s-- > 0;) {
    at_risk += exact_[s] + censored_[s];
    if (at_risk >= cutoff_min_observations_ && cutoff_units_ == 0)
      cutoff_units_ = static_cast<std::int64_t>(std::min(s + 1, n));
  }
  km_tail_[0] = 1.0;
  at_risk = observations_;
  for (std::size_t s = 0; s < n; ++s) {
    const double hazard =
        at_risk > 0 ? static_cast<double>(exact_[s]) / static_cast<double>(at_risk) : 0.0;
    km_tail_[s + 1] = km_tail_[s] * (1.0 - hazard);
    at_risk -= exact_[s] + censored_[s];
  }
}

double CensoredTailEstimator::kaplan_meier_tail(std::int64_t units) const noexcept {
  if (units <= 0) return 1.0;
  return km_tail_[static_cast<std::size_t>(std::min(units, max_units_))];
}

double CensoredTailEstimator::tail(std::int64_t units) const noexcept {
  if (units <= 0) return 1.0;
  return km_tail_[static_cast<std::size_t>(std::min(units, cutoff_units_))];
}

std::int64_t allocate_greedy(const CensoredTailEstimator* estimators, std::size_t venue_count,
                             std::int64_t units, std::int64_t* allocation) noexcept {
  for (std::size_t i = 0; i < venue_count; ++i) allocation[i] = 0;
  std::int64_t allocated = 0;
  for (; allocated < units; ++allocated) {
    std::size_t best = venue_count;
    double best_tail = -1.0;
    for (std::size_t i = 0; i < venue_count; ++i) {
      if (allocation[i] >= estimators[i].max_units()) continue;
      const double t = estimators[i].tail(allocation[i] + 1);
      if (t > best_tail || (t == best_tail && allocation[i] < allocation[best])) {
        best = i;
        best_tail = t;
      }
    }
    if (best == venue_count) break;
    ++allocation[best];
  }
  return allocated;
}

// ---------------------------------------------------------------------------------------------

const char* DarkAllocatorPolicy::validate(const Config& c) noexcept {
  if (c.decision_interval_ns <= 0) return "decision_interval_ns must be > 0";
  if (c.max_lots_per_venue <= 0 || c.max_lots_per_venue > 1'000'000)
    return "max_lots_per_venue must be in [1, 1000000]";
  if (c.cutoff_min_observations == 0) return "cutoff_min_observations must be >= 1";
  if (c.replace_delay_ns <= 0) return "replace_delay_ns must be > 0";
  return "";
}

DarkAllocatorPolicy::DarkAllocatorPolicy(const Config& config) : config_(config) {
  const char* error = validate(config_);
  if (*error != '\0') throw std::invalid_argument(error);
}

void DarkAllocatorPolicy::reset(const ParentState& parent, const PolicyVenue* venues,
                                std::size_t venue_count) {
  venue_count = std::min(venue_count, kMaxPolicyVenues);
  // Dark venues in tie-break order: static rank, then midpoint fee.
  std::vector<std::size_t> order;
  for (std::size_t v = 0; v < venue_count; ++v)
    if (!venues[v].lit) order.push_back(v);
  std::stable_sort(order.begin(), order.end(), [venues](std::size_t a, std::size_t b) {
    if (venues[a].static_rank != venues[b].static_rank)
      return venues[a].static_rank < venues[b].static_rank;
    return venues[a].midpoint_fee_usd_per_share < venues[b].midpoint_fee_usd_per_share;
  });
  std::vector<std::uint8_t> ids;
  for (std::size_t v : order) ids.push_back(venues[v].venue_id);
  const std::int64_t lot = std::max<std::int64_t>(parent.lot_shares, 1);
  const bool keep = config_.keep_estimates_across_parents && ids == dark_venue_ids_ &&
                    lot == lot_shares_;
  if (!keep) {
    dark_venue_ids_ = ids;
    estimators_.assign(ids.size(), CensoredTailEstimator(config_.max_lots_per_venue,
                                                         config_.cutoff_min_observations));
  }
  allocation_.assign(ids.size(), 0);
  lot_shares_ = lot;
  parent_ = parent;
  placed_period_ = -1;
}

const CensoredTailEstimator* DarkAllocatorPolicy::estimator(std::uint8_t venue_id) const noexcept {
  for (std::size_t i = 0; i < dark_venue_ids_.size(); ++i)
    if (dark_venue_ids_[i] == venue_id) return &estimators_[i];
  return nullptr;
}

void DarkAllocatorPolicy::on_child_done(std::uint64_t, std::uint8_t venue_id,
                                        ChildOrderType type, std::int64_t quantity,
                                        std::int64_t filled) noexcept {
  if (type != ChildOrderType::kMidpoint) return;
  for (std::size_t i = 0; i < dark_venue_ids_.size(); ++i) {
    if (dark_venue_ids_[i] != venue_id) continue;
    // Children are whole lots; a fill short of the size observes floor(filled / lot) exactly.
    estimators_[i].observe(quantity / lot_shares_,
                           filled >= quantity ? quantity / lot_shares_ : filled / lot_shares_);
    return;
  }
}

void DarkAllocatorPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const ParentState& parent = *view.parent;
  const std::int64_t period = config_.decision_interval_ns;
  if (view.now_ns >= parent.end_ns) {
    baseline::cancel_open_children(view, out);
    route_marketable(view, sendable_quantity(parent), out);
    out.next_decision_ns = view.now_ns + config_.replace_delay_ns;
    return;
  }
  const std::int64_t k = baseline::period_index(parent, period, view.now_ns);
  const std::int64_t boundary = baseline::period_end(parent, period, k);
  out.next_decision_ns = boundary;
  if (k == placed_period_) return;
  // Each period starts from a clean slate: last period's pegs are done (their outcome is the
  // censored observation) before the next allocation.
  if (baseline::cancel_open_children(view, out)) {
    out.next_decision_ns = std::min(boundary, view.now_ns + config_.replace_delay_ns);
    return;
  }
  placed_period_ = k;
  const std::int64_t sendable = sendable_quantity(parent);
  const std::int64_t shortfall = baseline::twap_target(parent, period, k) - parent.filled;
  const std::int64_t lit = route_marketable(
      view, baseline::lot_slice(shortfall, sendable, parent.lot_shares), out);
  if (k + 1 >= baseline::period_count(parent, period) || dark_venue_ids_.empty()) return;
  const std::int64_t units = (sendable - lit) / lot_shares_;
  if (units <= 0) return;
  allocate_greedy(estimators_.data(), estimators_.size(), units, allocation_.data());
  for (std::size_t i = 0; i < dark_venue_ids_.size(); ++i) {
    if (allocation_[i] > 0)
      out.add_child(dark_venue_ids_[i], ChildOrderType::kMidpoint, parent.limit_price_ticks,
                    allocation_[i] * lot_shares_);
  }
}

}  // namespace sor
