// Helpers shared by the baseline policies (private to cpp/src).
#pragma once

#include <algorithm>
#include <cstdint>

#include "sor/baseline_policies.hpp"

namespace sor::baseline {

// Returns the number of periods of `period_ns` covering the parent's horizon (>= 1).
inline std::int64_t period_count(const ParentState& parent, std::int64_t period_ns) noexcept {
  const std::int64_t horizon = std::max<std::int64_t>(parent.end_ns - parent.start_ns, 1);
  return std::max<std::int64_t>(1, (horizon + period_ns - 1) / period_ns);
}

// Returns the period holding `now_ns`, clamped to [0, count - 1].
inline std::int64_t period_index(const ParentState& parent, std::int64_t period_ns,
                                 std::int64_t now_ns) noexcept {
  const std::int64_t count = period_count(parent, period_ns);
  if (now_ns <= parent.start_ns) return 0;
  return std::min<std::int64_t>((now_ns - parent.start_ns) / period_ns, count - 1);
}

// Returns the end of period `k` (the deadline for the last one).
inline std::int64_t period_end(const ParentState& parent, std::int64_t period_ns,
                               std::int64_t k) noexcept {
  return std::min(parent.start_ns + (k + 1) * period_ns, parent.end_ns);
}

// Returns the TWAP target filled shares at the end of period `k` (whole lots, X at the last).
inline std::int64_t twap_target(const ParentState& parent, std::int64_t period_ns,
                                std::int64_t k) noexcept {
  const std::int64_t count = period_count(parent, period_ns);
  if (k + 1 >= count) return parent.quantity;
  const double fraction = static_cast<double>(k + 1) / static_cast<double>(count);
  return std::min(parent.quantity,
                  round_to_lot(fraction * static_cast<double>(parent.quantity), parent.lot_shares));
}

// Cancels every open child without a cancel on its way; returns true when any child is open.
inline bool cancel_open_children(const PolicyView& view, PolicyOutput& out) noexcept {
  for (std::size_t i = 0; i < view.open_child_count; ++i) {
    if (!view.open_children[i].cancel_sent) out.add_cancel(view.open_children[i].child_id);
  }
  return view.open_child_count > 0;
}

// Rounds a slice down to whole lots unless it is everything the parent may still send.
inline std::int64_t lot_slice(std::int64_t slice, std::int64_t sendable,
                              std::int64_t lot_shares) noexcept {
  slice = std::min(slice, sendable);
  if (slice <= 0) return 0;
  if (slice == sendable || lot_shares <= 1) return slice;
  return slice - slice % lot_shares;
}

}  // namespace sor::baseline
