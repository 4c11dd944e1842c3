// Factory makers of the classical baselines, the ML router and the learned policy: each reads
// its parameters (name -> number) into its Config, validated, and builds the policy.
#include <string>

#include "sor/baseline_policies.hpp"
#include "sor/ml_router.hpp"
#include "sor/policies.hpp"
#include "sor/rl_policy.hpp"

namespace sor {
namespace {

constexpr std::int64_t kMaxIntervalNs = 3'600'000'000'000;  // one hour

template <typename Policy, typename Config>
std::unique_ptr<ExecutionPolicy> finish(PolicyParamReader& reader, const Config& config,
                                        std::string& error) {
  if (!reader.finish()) return nullptr;
  if (const char* problem = Policy::validate(config); problem[0] != '\0') {
    error = problem;
    return nullptr;
  }
  return std::make_unique<Policy>(config);
}

}  // namespace

std::unique_ptr<ExecutionPolicy> make_vwap_policy(const PolicyParams& params, std::string& error) {
  PolicyParamReader reader(params, error);
  VwapConfig c;
  c.decision_interval_ns = reader.integer("decision_interval_ns", c.decision_interval_ns, 1, kMaxIntervalNs);
  c.u_shape_amplitude = reader.number("u_shape_amplitude", c.u_shape_amplitude, 0.0, 100.0);
  c.session_length_ns = reader.integer("session_length_ns", c.session_length_ns, 0, 86'400'000'000'000);
  c.session_open_ns_since_midnight = reader.integer(
      "session_open_ns_since_midnight", c.session_open_ns_since_midnight, 0, 86'400'000'000'000);
  c.max_participation = reader.number("max_participation", c.max_participation, 0.0, 1.0);
  return finish<VwapPolicy>(reader, c, error);
}

std::unique_ptr<ExecutionPolicy> make_almgren_chriss_policy(const PolicyParams& params,
                                                            std::string& error) {
  PolicyParamReader reader(params, error);
  AlmgrenChrissConfig c;
  c.decision_interval_ns = reader.integer("decision_interval_ns", c.decision_interval_ns, 1, kMaxIntervalNs);
  c.risk_aversion_per_tick_share =
      reader.number("risk_aversion_per_tick_share", c.risk_aversion_per_tick_share, 0.0, 1e6);
  c.volatility_bps_per_sqrt_second =
      reader.number("volatility_bps_per_sqrt_second", c.volatility_bps_per_sqrt_second, 0.0, 1e4);
  c.volatility_from_features =
      reader.integer("volatility_from_features", c.volatility_from_features ? 1 : 0, 0, 1) != 0;
  c.temporary_impact_ticks_per_share_per_second =
      reader.number("temporary_impact_ticks_per_share_per_second",
                    c.temporary_impact_ticks_per_share_per_second, 1e-12, 1e6);
  c.permanent_impact_ticks_per_share =
      reader.number("permanent_impact_ticks_per_share", c.permanent_impact_ticks_per_share, 0.0, 1e6);
  return finish<AlmgrenChrissPolicy>(reader, c, error);
}

std::unique_ptr<ExecutionPolicy> make_cont_kukanov_policy(const PolicyParams& params,
                                                          std::string& error) {
  PolicyParamReader reader(params, error);
  ContKukanovConfig c;
  c.price_tick_usd = 0.0001;  // the router's tick (ITCH price unit)
  c.decision_interval_ns = reader.integer("decision_interval_ns", c.decision_interval_ns, 1, kMaxIntervalNs);
  c.underfill_penalty_usd_per_share = reader.number(
      "underfill_penalty_usd_per_share", c.underfill_penalty_usd_per_share, 1e-9, 100.0);
  c.overfill_penalty_usd_per_share = reader.number(
      "overfill_penalty_usd_per_share", c.overfill_penalty_usd_per_share, 0.0, 100.0);
  c.price_tick_usd = reader.number("price_tick_usd", c.price_tick_usd, 1e-9, 100.0);
  c.sa_iterations = static_cast<std::size_t>(
      reader.integer("sa_iterations", static_cast<std::int64_t>(c.sa_iterations), 1, 1'000'000));
  c.outflow_history_periods = static_cast<std::size_t>(reader.integer(
      "outflow_history_periods", static_cast<std::int64_t>(c.outflow_history_periods), 1, 100'000));
  c.min_outflow_samples = static_cast<std::size_t>(reader.integer(
      "min_outflow_samples", static_cast<std::int64_t>(c.min_outflow_samples), 1, 100'000));
  c.seed = static_cast<std::uint64_t>(reader.integer("seed", static_cast<std::int64_t>(c.seed), 0,
                                                     1'000'000'000));
  c.replace_delay_ns = reader.integer("replace_delay_ns", c.replace_delay_ns, 0, kMaxIntervalNs);
  return finish<ContKukanovPolicy>(reader, c, error);
}

std::unique_ptr<ExecutionPolicy> make_dark_allocator_policy(const PolicyParams& params,
                                                            std::string& error) {
  PolicyParamReader reader(params, error);
  DarkAllocatorConfig c;
  c.decision_interval_ns = reader.integer("decision_interval_ns", c.decision_interval_ns, 1, kMaxIntervalNs);
  c.max_lots_per_venue = reader.integer("max_lots_per_venue", c.max_lots_per_venue, 1, 1'000'000);
  c.cutoff_min_observations = static_cast<std::uint32_t>(
      reader.integer("cutoff_min_observations", c.cutoff_min_observations, 1, 1'000'000));
  c.keep_estimates_across_parents = reader.integer(
      "keep_estimates_across_parents", c.keep_estimates_across_parents ? 1 : 0, 0, 1) != 0;
  c.replace_delay_ns = reader.integer("replace_delay_ns", c.replace_delay_ns, 0, kMaxIntervalNs);
  return finish<DarkAllocatorPolicy>(reader, c, error);
}

namespace {

struct MlRouterMaker {
  static const char* validate(const MlRouterConfig& c) { return sor::validate(c); }
};

}  // namespace

std::unique_ptr<ExecutionPolicy> make_ml_router_policy(const PolicyParams& params,
                                                       std::string& error) {
  PolicyParamReader reader(params, error);
  MlRouterConfig c;
  c.schedule_power = reader.number("schedule_power", c.schedule_power, 1e-3, 100.0);
  c.passive_cover_s = reader.number("passive_cover_s", c.passive_cover_s, 0.0, 86'400.0);
  c.passive_lifetime_s = reader.number("passive_lifetime_s", c.passive_lifetime_s, 1e-3, 86'400.0);
  c.min_fill_probability = reader.number("min_fill_probability", c.min_fill_probability, 0.0, 1.0);
  c.adverse_weight = reader.number("adverse_weight", c.adverse_weight, 0.0, 100.0);
  c.impact_weight = reader.number("impact_weight", c.impact_weight, 0.0, 100.0);
  c.max_child_shares = reader.number("max_child_shares", c.max_child_shares, 1.0, 1e9);
  c.take_slack_lots = reader.number("take_slack_lots", c.take_slack_lots, 0.0, 1e6);
  if (!reader.finish()) return nullptr;
  if (const char* problem = MlRouterMaker::validate(c); problem[0] != '\0') {
    error = problem;
    return nullptr;
  }
  return std::make_unique<MlRouterPolicy>(c);
}

std::unique_ptr<ExecutionPolicy> make_rl_policy(const PolicyParams& params, std::string& error) {
  PolicyParamReader reader(params, error);
  RlActionConfig c;
  c.child_shares = reader.number("child_shares", c.child_shares, 1.0, 1e9);
  c.passive_lifetime_s = reader.number("passive_lifetime_s", c.passive_lifetime_s, 1e-3, 86'400.0);
  c.decision_interval_s = reader.number("decision_interval_s", c.decision_interval_s, 1e-3, 3600.0);
  if (!reader.finish()) return nullptr;
  if (const char* problem = validate(c); problem[0] != '\0') {
    error = problem;
    return nullptr;
  }
  return std::make_unique<RlPolicy>(c);
}

}  // namespace sor
