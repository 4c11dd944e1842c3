// Classical execution baselines as ExecutionPolicy implementations: VWAP on an intraday volume
// curve, the Almgren-Chriss optimal liquidation trajectory, the Cont-Kukanov optimal order
// placement (stochastic approximation), and the Ganchev-Kearns-Nevmyvaka-Vaughan censored
// exploration dark pool allocator. Formulas, sources and simplifications: docs/baselines.md.
// Each policy has a Config with units in the names and explicit defaults, a static validate()
// that returns "" or a message starting with the bad field's name, and a constructor that
// throws std::invalid_argument with that message. reset() allocates; decide() never does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sor/policy.hpp"
#include "sor/random.hpp"

namespace sor {

// ---------------------------------------------------------------------------------------------
// Shared pieces: the best-price rule for marketable shares.

// Returns the shares a policy may still request: quantity - filled - open (never negative).
std::int64_t sendable_quantity(const ParentState& parent) noexcept;

// Rounds `shares` to the nearest multiple of `lot_shares` (lot_shares <= 1: unchanged).
std::int64_t round_to_lot(double shares, std::int64_t lot_shares) noexcept;

// Requests marketable IOCs (kTake) for up to `quantity` shares against the displayed far side
// of the lit venues, best-price rule: better price first, then lower taker fee, then lower
// static rank; within the parent's limit; one child per venue priced at the worst level it
// takes. Each child is a whole number of lots unless the request completes the parent's
// sendable quantity. Never requests more than the displayed shares. Returns the shares requested.
std::int64_t route_marketable(const PolicyView& view, std::int64_t quantity,
                              PolicyOutput& out) noexcept;

// Returns the taker fee (USD per share) of the venue the best-price rule would take from first,
// or the lowest taker fee of the lit venues when nothing is displayed.
double best_taker_fee_usd_per_share(const PolicyView& view) noexcept;

// ---------------------------------------------------------------------------------------------
// VWAP: marketable catch-up to a volume-profile schedule.

// Configuration of VwapPolicy.
struct VwapConfig {
  std::int64_t decision_interval_ns = 5'000'000'000;   // Schedule grid (one slice per interval).
  double u_shape_amplitude = 2.0;                      // a in the simulator's activity curve
                                                       // 1 + a (2x - 1)^2 (>= 0).
  std::vector<double> volume_profile_bins;             // Relative volume of equal-width bins
                                                       // of the session (empty: the U shape).
  std::int64_t session_open_ns_since_midnight = 34'200'000'000'000; // Open, on the decision
                                                       // clock modulo 24 h (09:30 = the sim's).
  std::int64_t session_length_ns = 23'400'000'000'000; // Session length (0: the profile spans
                                                       // the parent's horizon instead).
  double max_participation = 0.0;                      // Cap of (filled + open) / market volume
                                                       // since start, in (0, 1]; 0: no cap.
};

// VWAP: the target cumulative fraction at time t follows the volume profile over the parent's
// horizon; each decision sends marketable IOCs to reach the target at the end of the current
// interval.
class VwapPolicy final : public ExecutionPolicy {
 public:
  using Config = VwapConfig;
  // Returns "" when `config` is usable, else a message naming the first bad field.
  static const char* validate(const Config& config) noexcept;
  // Builds the policy; throws std::invalid_argument with validate()'s message.
  explicit VwapPolicy(const Config& config = Config{});
  // Returns "vwap".
  const char* name() const noexcept override { return "vwap"; }
  // Prepares for a new parent order.
  void reset(const ParentState& parent, const PolicyVenue* venues,
             std::size_t venue_count) override;
  // Sends the catch-up slice to the schedule.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Returns the target cumulative fraction of the parent (0..1) to be done by `t_ns`.
  double target_fraction(std::int64_t t_ns) const noexcept;
  // Returns the configuration.
  const Config& config() const noexcept { return config_; }

 private:
  double profile_cumulative(std::int64_t t_ns) const noexcept;

  Config config_;
  ParentState parent_{};
  double profile_start_ = 0.0;
  double profile_span_ = 0.0;
};

// ---------------------------------------------------------------------------------------------
// Almgren-Chriss optimal liquidation trajectory.

// Configuration of AlmgrenChrissPolicy (prices in ticks, quantities in shares).
struct AlmgrenChrissConfig {
  std::int64_t decision_interval_ns = 5'000'000'000;   // tau: trading interval.
  double risk_aversion_per_tick_share = 1e-8;          // lambda, 1 / (tick x share).
  double volatility_bps_per_sqrt_second = 1.0;         // sigma, of the mid, bps per sqrt(s).
  bool volatility_from_features = false;               // At the first decision use
                                                       // vol.realized_5m_bps / sqrt(300 s)
                                                       // when it is > 0 (else the value above).
  double temporary_impact_ticks_per_share_per_second = 0.01; // eta: price concession per unit
                                                       // trading rate (shares per second).
  double permanent_impact_ticks_per_share = 0.0;       // gamma: permanent impact.
};

// Almgren-Chriss: holdings x_j = X sinh(kappa (T - t_j)) / sinh(kappa T) on the grid t_j = j tau,
// kappa from the discrete-time relation 2 (cosh(kappa tau) - 1) / tau^2 = lambda sigma^2 /
// eta_tilde, eta_tilde = eta - gamma tau / 2; each interval's difference is taken with
// marketable IOCs at the interval's start.
class AlmgrenChrissPolicy final : public ExecutionPolicy {
 public:
  using Config = AlmgrenChrissConfig;
  // Returns "" when `config` is usable, else a message naming the first bad field.
  static const char* validate(const Config& config) noexcept;
  // Builds the policy; throws std::invalid_argument with validate()'s message.
  explicit AlmgrenChrissPolicy(const Config& config = Config{});
  // Returns "almgren_chriss".
  const char* name() const noexcept override { return "almgren_chriss"; }
  // Prepares for a new parent order (kappa from the configured volatility and arrival mid).
  void reset(const ParentState& parent, const PolicyVenue* venues,
             std::size_t venue_count) override;
  // Sends the difference between the scheduled and the done quantity.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Returns kappa (per second) for a mid volatility in ticks per sqrt(second).
  double kappa_per_second(double volatility_ticks_per_sqrt_second) const noexcept;
  // Returns the kappa in use (per second).
  double kappa_per_second() const noexcept { return kappa_per_second_; }
  // Returns the scheduled holdings x(t) / X (1 at start, 0 at the deadline).
  double holdings_fraction(std::int64_t t_ns) const noexcept;
  // Returns the target filled shares by `t_ns` (X - x(t), rounded to lots).
  std::int64_t target_filled(std::int64_t t_ns) const noexcept;
  // Returns the configuration.
  const Config& config() const noexcept { return config_; }

 private:
  Config config_;
  ParentState parent_{};
  double kappa_per_second_ = 0.0;
  bool volatility_checked_ = false;
};

// ---------------------------------------------------------------------------------------------
// Cont-Kukanov optimal order placement.

// The market-wide inputs of one Cont-Kukanov allocation (USD per share).
struct ContKukanovProblem {
  double target_shares;                    // S: shares to buy (or sell) this period.
  double half_spread_usd_per_share;        // h.
  double taker_fee_usd_per_share;          // f.
  double underfill_penalty_usd_per_share;  // lambda_u.
  double overfill_penalty_usd_per_share;   // lambda_o.
};

// Solves min E[v(M, L; xi)] over the box [0, S]^(K+1) by projected stochastic gradient descent
// (constant step D / (G sqrt(N)), averaging of the second half of the iterates). Venue k has
// queue `queue_shares[k]` and rebate `rebate_usd_per_share[k]`; outflow samples are rows of
// `outflow_rows` (row-major, row_count x venue_count, one joint observation of xi per row),
// drawn uniformly with `rng`. Writes M to `market_shares` and L_k to `limit_shares[k]`.
void cont_kukanov_allocate(const ContKukanovProblem& problem, const double* queue_shares,
                           const double* rebate_usd_per_share, std::size_t venue_count,
                           const double* outflow_rows, std::size_t row_count,
                           std::size_t iterations, Random& rng, double& market_shares,
                           double* limit_shares) noexcept;

// Returns the expected cost E[v(M, L; xi)] over the sample rows (the objective, for checks).
double cont_kukanov_expected_cost(const ContKukanovProblem& problem, const double* queue_shares,
                                  const double* rebate_usd_per_share, std::size_t venue_count,
                                  const double* outflow_rows, std::size_t row_count,
                                  double market_shares, const double* limit_shares) noexcept;

// Returns the single-venue optimal quantile level (2h + f + r) / (lambda_u + h + r).
double cont_kukanov_single_venue_quantile(const ContKukanovProblem& problem,
                                          double rebate_usd_per_share) noexcept;

// Returns the single-venue optimal limit order L* = clamp(F^-1(q) - Q, 0, S) with F the
// empirical distribution of `outflow_samples` (F^-1(q) = the smallest sample x with F(x) >= q);
// the market order is M* = S - L*. Copies and sorts the samples (allocates; not for decide()).
double cont_kukanov_single_venue_limit_shares(const ContKukanovProblem& problem,
                                              double queue_shares, double rebate_usd_per_share,
                                              const double* outflow_samples,
                                              std::size_t sample_count);

// Configuration of ContKukanovPolicy.
struct ContKukanovConfig {
  std::int64_t decision_interval_ns = 10'000'000'000;  // Period: one placement per period.
  double underfill_penalty_usd_per_share = 0.02;       // lambda_u (> 0).
  double overfill_penalty_usd_per_share = 0.02;        // lambda_o (>= 0).
  double price_tick_usd = 0.005;                       // USD per tick (for the half-spread h).
  std::size_t sa_iterations = 2'000;                   // Stochastic gradient steps per period.
  std::size_t outflow_history_periods = 64;            // Joint outflow observations kept.
  std::size_t min_outflow_samples = 3;                 // Observations before limit orders.
  std::uint64_t seed = 1;                              // Seed of the sampling RNG.
  std::int64_t replace_delay_ns = 1'000'000;           // Wait for cancels before re-placing.
};

// Cont-Kukanov: per period, the TWAP slice S of the parent is split into a market order M
// (marketable IOCs by the best-price rule) and post-only limit orders L_k at the near touch of
// each lit venue, (M, L) from the stochastic approximation on empirical outflow samples;
// stale limit orders are cancelled and re-placed every period; the last period is all market.
class ContKukanovPolicy final : public ExecutionPolicy {
 public:
  using Config = ContKukanovConfig;
  // Returns "" when `config` is usable, else a message naming the first bad field.
  static const char* validate(const Config& config) noexcept;
  // Builds the policy; throws std::invalid_argument with validate()'s message.
  explicit ContKukanovPolicy(const Config& config = Config{});
  // Returns "cont_kukanov".
  const char* name() const noexcept override { return "cont_kukanov"; }
  // Prepares for a new parent order (allocates the outflow history).
  void reset(const ParentState& parent, const PolicyVenue* venues,
             std::size_t venue_count) override;
  // Observes outflows, cancels stale orders, then places the period's split.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Counts passive fills per venue (an outflow lower bound).
  void on_fill(const ChildFill& fill) noexcept override;
  // Returns the number of joint outflow observations held.
  std::size_t outflow_observations() const noexcept { return row_count_; }
  // Returns observation `row` (0 = oldest) of the venue at position `venue_index`, shares.
  double outflow_observation(std::size_t row, std::size_t venue_index) const noexcept;
  // Records one joint outflow observation (shares per venue position), as decide() does.
  void record_outflow(const double* outflow_shares) noexcept;
  // Returns the configuration.
  const Config& config() const noexcept { return config_; }

 private:
  struct Snapshot {
    std::int64_t price_ticks;
    std::int64_t quantity;
    bool valid;
  };
  void observe(const PolicyView& view) noexcept;
  void take_snapshot(const PolicyView& view) noexcept;

  Config config_;
  ParentState parent_{};
  std::vector<PolicyVenue> venues_;
  std::vector<Snapshot> snapshot_;
  std::vector<double> passive_filled_;
  std::vector<double> rows_;           // Ring: outflow_history_periods x venue count.
  std::vector<double> ordered_rows_;   // Rows oldest first, for the solver.
  std::vector<double> scratch_;        // Per venue: queue, rebate, limit, row column.
  std::size_t row_count_ = 0;
  std::size_t row_next_ = 0;
  std::int64_t placed_period_ = -1;
  std::int64_t observed_period_ = -1;
  bool snapshot_taken_ = false;
  Random rng_;
};

// ---------------------------------------------------------------------------------------------
// Ganchev-Kearns-Nevmyvaka-Vaughan censored exploration dark pool allocator.

// Kaplan-Meier estimate of one dark venue's tail T(s) = P(liquidity >= s), liquidity in units
// (lots), from censored observations, with the optimistic cut-off of Ganchev et al.
class CensoredTailEstimator {
 public:
  // Creates an estimator over 0..max_units; the cut-off needs `cutoff_min_observations` at risk.
  explicit CensoredTailEstimator(std::int64_t max_units = 0,
                                 std::uint32_t cutoff_min_observations = 1);
  // Forgets every observation.
  void clear() noexcept;
  // Records one period: `sent_units` sent, `filled_units` filled; a fill below the sent size
  // observes the liquidity exactly, a complete fill is censored at the sent size.
  void observe(std::int64_t sent_units, std::int64_t filled_units) noexcept;
  // Returns the plain Kaplan-Meier estimate of P(liquidity >= units).
  double kaplan_meier_tail(std::int64_t units) const noexcept;
  // Returns the optimistic tail used to allocate: Kaplan-Meier up to the cut-off, flat beyond.
  double tail(std::int64_t units) const noexcept;
  // Returns the cut-off c: the tail is estimated on 0..c and held at T(c) beyond (0: no data).
  std::int64_t cutoff_units() const noexcept { return cutoff_units_; }
  // Returns the number of observations recorded.
  std::uint64_t observation_count() const noexcept { return observations_; }
  // Returns the largest unit count the estimator covers.
  std::int64_t max_units() const noexcept { return max_units_; }

 private:
  void recompute() noexcept;

  std::int64_t max_units_;
  std::uint32_t cutoff_min_observations_;
  std::uint64_t observations_ = 0;
  std::int64_t cutoff_units_ = 0;
  std::vector<std::uint64_t> exact_;     // [s]: observations with liquidity exactly s.
  std::vector<std::uint64_t> censored_;  // [s]: observations with liquidity >= s (censored).
  std::vector<double> km_tail_;          // [s]: Kaplan-Meier P(liquidity >= s), s = 0..max.
};

// Allocates `units` one at a time to the venue with the largest tail(allocation + 1) (ties: the
// smaller allocation, then the lower index), never past a venue's max_units(); writes the units
// per venue to `allocation` and returns the units allocated.
std::int64_t allocate_greedy(const CensoredTailEstimator* estimators, std::size_t venue_count,
                             std::int64_t units, std::int64_t* allocation) noexcept;

// Configuration of DarkAllocatorPolicy.
struct DarkAllocatorConfig {
  std::int64_t decision_interval_ns = 10'000'000'000;  // Period: dark orders resubmitted each.
  std::int64_t max_lots_per_venue = 1'000;             // Estimator support and per-venue cap.
  std::uint32_t cutoff_min_observations = 3;           // Observations at risk to trust the tail.
  bool keep_estimates_across_parents = true;           // Keep learning across reset() when the
                                                       // dark venues and the lot are unchanged.
  std::int64_t replace_delay_ns = 1'000'000;           // Wait for cancels before resubmitting.
};

// Dark allocator: each period the shares ahead of a TWAP schedule are allocated lot by lot to
// the dark venues by the greedy rule on optimistic Kaplan-Meier tails and sent as midpoint
// pegs; the schedule's shortfall is taken on lit venues by the best-price rule; the last period
// (and anything after the deadline) goes lit.
class DarkAllocatorPolicy final : public ExecutionPolicy {
 public:
  using Config = DarkAllocatorConfig;
  // Returns "" when `config` is usable, else a message naming the first bad field.
  static const char* validate(const Config& config) noexcept;
  // Builds the policy; throws std::invalid_argument with validate()'s message.
  explicit DarkAllocatorPolicy(const Config& config = Config{});
  // Returns "dark_allocator".
  const char* name() const noexcept override { return "dark_allocator"; }
  // Prepares for a new parent order (allocates the estimators of the dark venues).
  void reset(const ParentState& parent, const PolicyVenue* venues,
             std::size_t venue_count) override;
  // Cancels the last period's pegs, takes the shortfall lit, allocates the rest dark.
  void decide(const PolicyView& view, PolicyOutput& out) noexcept override;
  // Learns from a finished midpoint child on a dark venue (censored when filled in full).
  void on_child_done(std::uint64_t child_id, std::uint8_t venue_id, ChildOrderType type,
                     std::int64_t quantity, std::int64_t filled) noexcept override;
  // Returns the number of dark venues.
  std::size_t dark_venue_count() const noexcept { return dark_venue_ids_.size(); }
  // Returns the estimator of the dark venue `venue_id`, or nullptr.
  const CensoredTailEstimator* estimator(std::uint8_t venue_id) const noexcept;
  // Returns the configuration.
  const Config& config() const noexcept { return config_; }

 private:
  Config config_;
  ParentState parent_{};
  std::vector<std::uint8_t> dark_venue_ids_;
  std::vector<CensoredTailEstimator> estimators_;
  std::vector<std::int64_t> allocation_;
  std::int64_t lot_shares_ = 0;
  std::int64_t placed_period_ = -1;
};

}  // namespace sor
