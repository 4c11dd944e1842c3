// Built-in execution policies (the classical baselines) and the factory that makes any policy
// by name from a small table of numeric parameters. Each policy validates its parameters when
// it is made; decide() then never allocates. Adding a policy is one line in the factory table
// (cpp/src/policy_factory.cpp) plus its make function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sor/policy.hpp"

namespace sor {

// Numeric parameters of a policy by name (e.g. {"slices": 30}).
using PolicyParams = std::map<std::string, double>;

// Most book levels per venue the best-price rule looks at.
inline constexpr std::size_t kMaxBestPriceLevels = 32;

// Reads and validates policy parameters; the first problem is kept in `error`, prefixed with
// the parameter's name ("slices: must be an integer in [1, 100000], got 0").
class PolicyParamReader {
 public:
  // Starts reading `params`; problems are written into `error` (left empty when none).
  PolicyParamReader(const PolicyParams& params, std::string& error);
  // Returns the value of `key` (or `default_value` when absent); it must lie in [min, max].
  double number(const char* key, double default_value, double min_value, double max_value);
  // Returns the value of `key` (or `default_value`); it must be an integer in [min, max].
  std::int64_t integer(const char* key, std::int64_t default_value, std::int64_t min_value,
                       std::int64_t max_value);
  // Returns true when every parameter was read and valid; otherwise sets the error (unknown
  // keys are named with the keys the policy takes).
  bool finish();

 private:
  const PolicyParams& params_;
  std::string& error_;
  std::vector<std::string> known_;
};

// Sends marketable IOC children for up to `quantity` shares by the best-price rule: the
// displayed far-side levels of every lit venue (up to `depth_levels` each, within the parent
// limit) ordered by price, then all-in taker fee, then static venue rank; one IOC per venue
// at the worst price allocated there. With `lot_shares` > 1 each child is whole lots and the
// odd shares go to the best venue only when `odd_lots_to_best`. Returns the shares requested.
std::int64_t add_best_price_takes(const PolicyView& view, std::int64_t quantity,
                                  std::size_t depth_levels, PolicyOutput& out,
                                  std::int64_t lot_shares = 1, bool odd_lots_to_best = true) noexcept;

// Configuration of the best-price policy.
struct BestPriceConfig {
  std::int64_t depth_levels = 10;  // Book levels per venue swept at each decision.
};

// The best-price rule SOR: at every decision while shares remain, sweeps the displayed lit
// liquidity by price, then all-in fee, then static venue rank, within the parent limit.
class BestPricePolicy final : public ExecutionPolicy {
 public:
  // Builds the policy with `config`.
  explicit BestPricePolicy(const BestPriceConfig& config) : config_(config) {}
  // Returns "best_price".
  const char* name() const noexcept override { return "best_price"; }
  // Prepares for a new parent (nothing to remember).
  void reset(const ParentState& parent, const PolicyVenue* venues,
             std::size_t venue_count) override;
  // Sweeps what the book shows for the free shares.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;

 private:
  BestPriceConfig config_;
};

// Configuration of the TWAP policy.
struct TwapConfig {
  std::int64_t slices = 30;        // Equal slices over the horizon.
  std::int64_t depth_levels = 10;  // Book levels per venue a slice may take.
};

// Time-weighted average price: `slices` equal slices at start + k * horizon / slices, each sent
// as marketable IOCs routed by the best-price rule; what a slice could not take rolls over.
class TwapPolicy final : public ExecutionPolicy {
 public:
  // Builds the policy with `config`.
  explicit TwapPolicy(const TwapConfig& config) : config_(config) {}
  // Returns "twap".
  const char* name() const noexcept override { return "twap"; }
  // Prepares the slice schedule of the parent.
  void reset(const ParentState& parent, const PolicyVenue* venues,
             std::size_t venue_count) override;
  // Sends the slices that are due and asks to wake at the next slice time.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Returns the time of slice `index` (0-based) of the current parent.
  std::int64_t slice_time_ns(std::int64_t index) const noexcept;
  // Returns the cumulative target in shares after slice `index` (whole lots, the last is all).
  std::int64_t slice_target(std::int64_t index) const noexcept;

 private:
  TwapConfig config_;
  ParentState parent_{};
  std::int64_t last_slice_ = -1;  // Last slice sent.
};

// Makes the policy `name` with `params`; returns null and sets `error` (naming the policy or
// parameter) when the name is unknown or a parameter is unknown or impossible.
std::unique_ptr<ExecutionPolicy> make_policy(const std::string& name, const PolicyParams& params,
                                             std::string& error);

// Returns the names the factory knows, in table order.
std::vector<std::string> policy_names();

// Makes a best-price policy (factory entry); parameter: depth_levels.
std::unique_ptr<ExecutionPolicy> make_best_price_policy(const PolicyParams& params,
                                                        std::string& error);
// Makes a TWAP policy (factory entry); parameters: slices, depth_levels.
std::unique_ptr<ExecutionPolicy> make_twap_policy(const PolicyParams& params, std::string& error);
// Makes the VWAP baseline (baseline_policies.hpp) from its parameters.
std::unique_ptr<ExecutionPolicy> make_vwap_policy(const PolicyParams& params, std::string& error);
// Makes the Almgren-Chriss baseline from its parameters.
std::unique_ptr<ExecutionPolicy> make_almgren_chriss_policy(const PolicyParams& params,
                                                            std::string& error);
// Makes the Cont-Kukanov baseline from its parameters (price_tick_usd defaults to 0.0001).
std::unique_ptr<ExecutionPolicy> make_cont_kukanov_policy(const PolicyParams& params,
                                                          std::string& error);
// Makes the dark-pool allocator baseline from its parameters.
std::unique_ptr<ExecutionPolicy> make_dark_allocator_policy(const PolicyParams& params,
                                                            std::string& error);
// Makes the ML router (ml_router.hpp) from its parameters.
std::unique_ptr<ExecutionPolicy> make_ml_router_policy(const PolicyParams& params,
                                                       std::string& error);
// Makes the learned policy (rl_policy.hpp) from its parameters.
std::unique_ptr<ExecutionPolicy> make_rl_policy(const PolicyParams& params, std::string& error);

}  // namespace sor
