// One episode of the routing problem as a reinforcement-learning environment: the backtester's
// session stepped one decision at a time, observations and actions from RlActionSet, and the
// reward minus the implementation shortfall of the step's fills (bps of the parent's arrival
// notional, fees included; the horizon sweep lands in the last step), so an episode's return
// is minus its total shortfall. Python wraps it as a Gymnasium environment (sor.rl.routing).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "sor/backtest.hpp"
#include "sor/rl_policy.hpp"

namespace sor {

// What one step returned.
struct RlStepResult {
  double reward_bps;  // Minus the step's shortfall, bps of arrival notional.
  bool done;          // The episode ended (the result is ready).
};

// One episode (see the file comment).
class RlEnvironment {
 public:
  // Prepares the episode of `spec`; throws std::invalid_argument when it is not usable.
  RlEnvironment(const BacktestSpec& spec, const RlActionConfig& actions, const PolicyModels& models);
  ~RlEnvironment();
  RlEnvironment(const RlEnvironment&) = delete;
  RlEnvironment& operator=(const RlEnvironment&) = delete;
  // Runs to the arrival and observes the first decision.
  void reset();
  // Acts, advances one decision and observes; at the end finishes the episode.
  RlStepResult step(std::size_t action);
  // Returns the number of actions.
  std::size_t action_count() const noexcept;
  // Returns the rows of the current decision (action_count() x kFeatureCount).
  const float* rows() const noexcept { return rows_.data(); }
  // Returns which actions are feasible now.
  const bool* feasible() const noexcept { return feasible_.data(); }
  // Returns true once the episode ended.
  bool done() const noexcept { return done_; }
  // Returns the episode's result (valid once done()).
  const BacktestResult& result() const noexcept { return result_; }

 private:
  void observe();

  struct Listener;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<BacktestSession> session_;
  RlActionSet actions_{nullptr, 0, RlActionConfig{}};
  std::vector<float> rows_;
  std::array<bool, kMaxRlActions> feasible_{};
  std::int64_t child_shares_ = 0;
  std::size_t fills_seen_ = 0;
  double arrival_notional_usd_ = 0;
  bool done_ = false;
  BacktestResult result_;
};

}  // namespace sor
