// The backtester: one parent order worked by an ExecutionPolicy in the multi-venue market
// simulator. The router's view is a consolidated book and a feature engine fed the venues'
// market data in ts_recv order (events later than the decision time are held back), exactly
// as the training datasets are built; the policy decides on a time grid (or earlier when it
// asks), its requests become simulator orders, and the run records every child, every fill
// and the true NBBO mid for markouts. The same spec and policy give the same result bit for
// bit. docs/backtest.md describes the episode and the rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "sor/features.hpp"
#include "sor/market_sim.hpp"
#include "sor/policy.hpp"
#include "sor/sim_types.hpp"
#include "sor/types.hpp"

namespace sor {

// Everything that defines one backtest episode; checked by validate().
struct BacktestSpec {
  sim::MarketSpec market;                          // The simulated market, its seed included.
  std::uint32_t instrument_id = 0;                 // Instrument the parent trades.
  std::uint64_t parent_order_id = 1;               // Parent id (the children's tag).
  Side side = Side::kBuy;                          // Parent side.
  std::int64_t quantity = 50'000;                  // Parent shares.
  std::int64_t limit_price_ticks = 0;              // Parent limit (0: none).
  std::int64_t start_offset_ns = 600'000'000'000;  // Arrival after the open (warm-up before it).
  std::int64_t horizon_ns = 1'800'000'000'000;     // Deadline after the arrival.
  std::int64_t decision_interval_ns = 1'000'000'000; // Decision grid from the arrival.
  std::int64_t markout_tail_ns = 60'000'000'000;   // Mids are sampled this long after the end.
  std::int64_t mid_sample_interval_ns = 100'000'000; // Grid of the true NBBO mid samples.
  std::int64_t mid_lookback_ns = 60'000'000'000;   // Mid samples start this long before arrival.
  std::int64_t max_arrival_wait_ns = 100'000'000'000; // Wait this long at most for a two-sided
                                                   // NBBO at arrival (in 10 ms steps).
  bool finish_at_horizon = true;                   // Sweep the remainder at the deadline.
  std::int32_t max_sweep_rounds = 200;             // Sweep rounds at most.
  std::int64_t sweep_wait_ns = 100'000'000;        // Wait after a round that found no liquidity.
  std::int64_t sweep_depth_levels = 10;            // Book levels per venue one round takes.
  std::int64_t settle_timeout_ns = 2'000'000'000;  // Wait this long at most for open children
                                                   // to finish after their cancels.
  std::int64_t settle_step_ns = 1'000'000;         // Step of that wait.
  FeatureOptions features;                         // Feature options (GARCH...); empty venues:
                                                   // derived from the market's venues.
  double adv_shares = 0.0;                         // ADV given to the features (0: the options'
                                                   // default_adv_shares).
  std::int64_t lot_shares = 0;                     // Round lot (0: the market's flow lot).
  std::vector<PolicyVenue> venues;                 // Venues the parent may use (empty: every
                                                   // venue of the market, rank = venue order).
};

// Returns "" when the spec is usable, else a message naming the first problem.
std::string validate(const BacktestSpec& spec);

// Returns the policy venues derived from a market: fees, grids, order-entry plus ack latency,
// lit or dark, static rank in venue order.
std::vector<PolicyVenue> policy_venues(const sim::MarketSpec& market);

// Returns the feature options of a market: its venues (L3, fees, latency) and price tick, with
// every other option taken from `settings`.
FeatureOptions feature_options_for(const sim::MarketSpec& market, const FeatureOptions& settings);

// One fill of one child of the parent: 48 bytes, numpy backtest_fill_dtype.
struct BacktestFill {
  std::int64_t ts_ns;            // When the report arrived (decision clock).
  std::uint64_t child_id;        // Child.
  std::int64_t price_ticks;      // Execution price.
  std::int64_t quantity;         // Shares.
  double fee_usd;                // Fee (negative: rebate).
  std::uint8_t venue_id;         // Venue.
  ChildOrderType type;           // Child type (take, post, midpoint).
  sim::SimLiquidity liquidity;   // Added, removed or midpoint.
  bool swept;                    // A fill of the horizon sweep.
  std::uint8_t pad_[4];          // Explicit padding.
};

static_assert(sizeof(BacktestFill) == 48);
static_assert(std::is_trivially_copyable_v<BacktestFill>);

// One child order of the parent: 64 bytes, numpy backtest_child_dtype.
struct BacktestChild {
  std::uint64_t child_id;        // Id (the simulator's client order id), from 1.
  std::int64_t price_ticks;      // Limit sent (0 for an unlimited midpoint peg).
  std::int64_t quantity;         // Shares sent.
  std::int64_t filled;           // Shares filled.
  std::int64_t sent_ns;          // When it was sent (decision clock).
  std::int64_t done_ns;          // When its last report arrived (0 while open).
  double fee_usd;                // Fees of its fills.
  std::uint8_t venue_id;         // Venue.
  ChildOrderType type;           // Take (IOC), post-only or midpoint.
  bool swept;                    // Sent by the horizon sweep.
  bool rejected;                 // The venue refused it.
  sim::SimRejectReason reject_reason; // Why (kNone unless rejected).
  std::uint8_t pad_[3];          // Explicit padding.
};

static_assert(sizeof(BacktestChild) == 64);
static_assert(std::is_trivially_copyable_v<BacktestChild>);

// One sample of the true NBBO of the instrument: 32 bytes, numpy mid_sample_dtype.
struct MidSample {
  std::int64_t ts_ns;            // Sample time.
  std::int64_t bid_price_ticks;  // NBBO bid (0 when none).
  std::int64_t ask_price_ticks;  // NBBO ask (0 when none).
  double mid_ticks;              // (bid + ask) / 2; NaN when not two-sided.
};

static_assert(sizeof(MidSample) == 32);
static_assert(std::is_trivially_copyable_v<MidSample>);

// Counters of one backtest.
struct BacktestCounters {
  std::uint64_t decisions = 0;          // decide() calls.
  std::uint64_t child_requests = 0;     // Child requests returned by the policy.
  std::uint64_t requests_refused = 0;   // Requests not sent (bad venue/type/price, no quote,
                                        // nothing free).
  std::uint64_t requests_clipped = 0;   // Requests cut to the free quantity or the limit.
  std::uint64_t children_sent = 0;      // Children sent (sweep included).
  std::uint64_t children_rejected = 0;  // Children the venues refused.
  std::uint64_t cancels_sent = 0;       // Cancels sent.
  std::uint64_t cancels_ignored = 0;    // Policy cancels naming no open child.
  std::uint64_t cancel_rejects = 0;     // Cancels the venue did not know (late or early).
  std::uint64_t sweep_rounds = 0;       // Rounds of the horizon sweep.
  std::uint64_t md_events = 0;          // Market-data events the router's book took.
  std::uint64_t book_errors = 0;        // Events the router's book refused.
};

// What one backtest produced.
struct BacktestResult {
  std::string policy_name;              // ExecutionPolicy::name().
  ParentState parent;                   // The parent at the end (filled, arrival mid...).
  std::vector<PolicyVenue> venues;      // Venues used.
  std::vector<BacktestFill> fills;      // Fills in arrival order.
  std::vector<BacktestChild> children;  // Children in id order.
  std::vector<MidSample> mids;          // True NBBO every mid_sample_interval_ns.
  double arrival_mid_ticks = 0.0;       // Router-view NBBO mid at the arrival.
  double true_arrival_mid_ticks = 0.0;  // True NBBO mid at the arrival.
  double end_mid_ticks = 0.0;           // True NBBO mid when the episode finished (NaN if none).
  std::int64_t start_ns = 0;            // Arrival.
  std::int64_t end_ns = 0;              // Deadline.
  std::int64_t finished_ns = 0;         // When the last child finished (sweep included).
  std::int64_t filled = 0;              // Shares filled.
  double fees_usd = 0.0;                // Fees paid (negative: rebates).
  double market_vwap_ticks = 0.0;       // Tape VWAP over [start, end] without our trades (NaN
                                        // when nothing printed).
  std::int64_t market_volume_shares = 0; // Tape volume over [start, end] without our trades.
  std::int64_t own_tape_volume_shares = 0; // Our trades on the tape over [start, end].
  double price_tick_usd = 0.0;          // USD per price tick.
  std::uint64_t seed = 0;               // Market seed.
  BacktestCounters counters;            // Counters.
};

// Runs one episode of `spec` with `policy` (reset first) and `models`; throws
// std::invalid_argument with validate()'s message when the spec is not usable.
BacktestResult run_backtest(const BacktestSpec& spec, ExecutionPolicy& policy,
                            const PolicyModels& models);

// One episode driven step by step from outside (the RL environment): begin(), then view() /
// step(output) until done(), then finish(). `policy` only receives reset, fills and finished
// children; the caller decides. run_backtest is this loop with policy.decide().
class BacktestSession {
 public:
  // Prepares the episode; throws std::invalid_argument when the spec is not usable.
  BacktestSession(const BacktestSpec& spec, ExecutionPolicy& policy, const PolicyModels& models);
  ~BacktestSession();
  BacktestSession(const BacktestSession&) = delete;
  BacktestSession& operator=(const BacktestSession&) = delete;
  // Runs to the parent's arrival.
  void begin();
  // Returns true when the horizon is reached or the parent is filled.
  bool done() const noexcept;
  // Returns the view at the current decision time (valid until the next step).
  PolicyView view();
  // Applies one decision and advances to the next decision time.
  void step(const PolicyOutput& output);
  // Sweeps what is left (when configured), runs the markout tail, returns the result.
  BacktestResult finish();
  // Returns the fills so far.
  const std::vector<BacktestFill>& fills() const noexcept;
  // Returns the parent order.
  const ParentState& parent() const noexcept;
  // Returns the market's USD per price tick.
  double price_tick_usd() const noexcept;
  // Returns the venues the policy sees.
  const std::vector<PolicyVenue>& venues() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sor
