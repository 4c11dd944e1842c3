#include <algorithm>
#include <cstdint>

#include "sor/policies.hpp"

namespace sor {

void TwapPolicy::reset(const ParentState& parent, const PolicyVenue* venues,
                       std::size_t venue_count) {
  (void)venues;
  (void)venue_count;
  parent_ = parent;
  last_slice_ = -1;
}

std::int64_t TwapPolicy::slice_time_ns(std::int64_t index) const noexcept {
  const std::int64_t horizon = parent_.end_ns - parent_.start_ns;
  // horizon * slices stays far below 2^63 for any session (slices <= 100000).
  return parent_.start_ns + horizon * index / config_.slices;
}

std::int64_t TwapPolicy::slice_target(std::int64_t index) const noexcept {
  if (index >= config_.slices - 1) return parent_.quantity;
  const std::int64_t lot = std::max<std::int64_t>(parent_.lot_shares, 1);
  const std::int64_t lots = parent_.quantity / lot;
  return lots * (index + 1) / config_.slices * lot;
}

void TwapPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const std::int64_t now = view.now_ns;
  if (now < parent_.start_ns || parent_.end_ns <= parent_.start_ns) return;
  const std::int64_t horizon = parent_.end_ns - parent_.start_ns;
  std::int64_t slice = std::min(config_.slices - 1,
                                (now - parent_.start_ns) * config_.slices / horizon);
  while (slice + 1 < config_.slices && slice_time_ns(slice + 1) <= now) ++slice;
  if (slice + 1 < config_.slices) out.next_decision_ns = slice_time_ns(slice + 1);
  if (slice <= last_slice_) return;
  last_slice_ = slice;
  const ParentState& p = *view.parent;
  const std::int64_t want = std::min(slice_target(slice), p.quantity) - p.filled - p.open_quantity;
  if (want <= 0) return;
  add_best_price_takes(view, want, static_cast<std::size_t>(config_.depth_levels), out);
}

std::unique_ptr<ExecutionPolicy> make_twap_policy(const PolicyParams& params, std::string& error) {
  PolicyParamReader reader(params, error);
  TwapConfig config;
  config.slices = reader.integer("slices", config.slices, 1, 100'000);
  config.depth_levels = reader.integer("depth_levels", config.depth_levels, 1,
                                       static_cast<std::int64_t>(kMaxBestPriceLevels));
  if (!reader.finish()) return nullptr;
  return std::make_unique<TwapPolicy>(config);
}

}  // namespace sor
