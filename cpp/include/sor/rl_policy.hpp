// The learned routing policy: a fixed, discrete action set over the venues (wait, or one child
// of a venue x order type), each action described by its decision row, and a learned action
// value Q(row) (a tree ensemble trained by fitted Q-iteration, docs/rl.md). The same action set
// builds the training environment's observations and drives the policy in the backtester and
// the engine, so what was learned is what runs.
#pragma once

#include <cstdint>

#include "sor/policy.hpp"

namespace sor {

// Value of child.order_type in the row of the WAIT action (no child this decision).
inline constexpr float kWaitOrderType = 3.0f;
// Most actions of an action set (wait + venues x 3 types).
inline constexpr std::size_t kMaxRlActions = 1 + kMaxPolicyVenues * 3;

// Parameters of the action set.
struct RlActionConfig {
  double child_shares = 2000.0;       // Smallest child; a child is at least what is left over
                                      // the decisions left, clipped to what is free, in lots.
  double passive_lifetime_s = 10.0;   // Post-only and midpoint children are cancelled after this.
  double decision_interval_s = 5.0;   // The policy acts every this often.
};

// Returns "" when `config` is usable, else a message naming the first bad field.
const char* validate(const RlActionConfig& config) noexcept;

// One action of the set.
struct RlAction {
  std::uint8_t venue_id;   // Venue (the wait action carries the first venue's id).
  ChildOrderType type;     // Order type (ignored for wait).
  bool wait;               // The wait action.
};

// The action set of a list of venues: action 0 waits; then, per venue in order, take, post
// and midpoint on lit venues and midpoint on dark ones.
class RlActionSet {
 public:
  // Builds the set for `venues`.
  RlActionSet(const PolicyVenue* venues, std::size_t venue_count, const RlActionConfig& config);
  // Returns the number of actions.
  std::size_t size() const noexcept { return count_; }
  // Returns action `index`.
  const RlAction& action(std::size_t index) const noexcept { return actions_[index]; }
  // Returns the configuration.
  const RlActionConfig& config() const noexcept { return config_; }
  // Writes one decision row per action into `rows` (size() x kFeatureCount) and the mask of
  // feasible actions into `feasible` (wait is always feasible; a take needs the venue at the
  // NBBO far touch; nothing but wait when no shares are free); returns the child size used.
  std::int64_t observe(const PolicyView& view, float* rows, bool* feasible) const noexcept;
  // Turns action `index` into requests (cancels of passive children past their lifetime are
  // added whatever the action); `child_shares` is what observe() returned.
  void act(const PolicyView& view, std::size_t index, std::int64_t child_shares,
           PolicyOutput& out) const noexcept;

 private:
  RlAction actions_[kMaxRlActions];
  std::size_t count_ = 0;
  RlActionConfig config_;
};

// The learned policy ("rl"): at each decision, the feasible action with the largest Q(row).
class RlPolicy final : public ExecutionPolicy {
 public:
  // Builds the policy; the action set is made at reset() from the parent's venues.
  explicit RlPolicy(const RlActionConfig& config);
  // Returns "rl".
  const char* name() const noexcept override { return "rl"; }
  // Prepares the action set for the venues.
  void reset(const ParentState& parent, const PolicyVenue* venues, std::size_t venue_count) override;
  // Acts greedily on PolicyView::models.action_value (waits when it is missing).
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Returns true: the action-value model chooses.
  bool uses_models() const noexcept override { return true; }

 private:
  RlActionConfig config_;
  RlActionSet actions_{nullptr, 0, RlActionConfig{}};
  float rows_[kMaxRlActions * kFeatureCount];
  bool feasible_[kMaxRlActions];
  std::int64_t next_decision_ns_ = 0;
};

}  // namespace sor
