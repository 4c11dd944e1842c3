// The ML router: an execution policy that prices every candidate child (venue x order type x
// size) with the learned models and works the parent on a schedule at the lowest expected
// all-in cost. The model and the algorithm are described in docs/ml-router.md.
#pragma once

#include <cstdint>

#include "sor/policy.hpp"

namespace sor {

// Parameters of the ML router (units in the names; defaults are the shipped router's).
struct MlRouterConfig {
  double schedule_power = 1.0;         // Target filled fraction at elapsed fraction u: u^power.
  double passive_cover_s = 120.0;      // Passive children may work shares due this far ahead.
  double passive_lifetime_s = 10.0;    // A passive child is re-priced (cancelled) after this.
  double min_fill_probability = 0.15;  // Passive candidates less likely to fill are skipped.
  double adverse_weight = 1.0;         // Weight of the predicted adverse move (passive cost).
  double impact_weight = 1.0;          // Weight of the predicted impact (take cost).
  double max_child_shares = 5000.0;    // Largest child (the models' training range).
  double take_slack_lots = 1.0;        // Take only when behind schedule by at least this.
};

// Returns "" when `config` is usable, else a message naming the first bad field.
const char* validate(const MlRouterConfig& config) noexcept;

// The ML router policy ("ml_router").
class MlRouterPolicy final : public ExecutionPolicy {
 public:
  // Builds the policy; `config` must pass validate().
  explicit MlRouterPolicy(const MlRouterConfig& config);
  // Returns "ml_router".
  const char* name() const noexcept override { return "ml_router"; }
  // Prepares for a new parent order.
  void reset(const ParentState& parent, const PolicyVenue* venues, std::size_t venue_count) override;
  // Cancels stale passive children, takes what the schedule needs, then places passive
  // children where the models expect the lowest cost.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Returns true: the fill, adverse-move and impact models price its candidates.
  bool uses_models() const noexcept override { return true; }
  // Returns the configuration.
  const MlRouterConfig& config() const noexcept { return config_; }

  // One priced candidate (exposed for tests and the decision journal).
  struct Candidate {
    std::uint8_t venue_id;        // Venue.
    ChildOrderType type;          // Take, post or midpoint.
    std::int64_t quantity;        // Shares priced.
    std::int64_t available;       // Shares a take can reach at the far touch (takes only).
    float fill_probability;       // Model output (or the venue's fill rate without a model).
    float adverse_move_bps;       // Model output (0 without a model).
    float impact_bps;             // Model output (takes; 0 without a model).
    double cost_bps;              // Expected cost per share if filled, bps of the mid.
    double score;                 // Expected saving vs the best take, weighted by fill probability.
  };
  // Prices every candidate of `view` of size `quantity`; returns how many were written.
  std::size_t price_candidates(const PolicyView& view, std::int64_t quantity, Candidate* out,
                               std::size_t capacity) const noexcept;

 private:
  double target_fraction(double elapsed_fraction) const noexcept;

  MlRouterConfig config_;
};

}  // namespace sor
