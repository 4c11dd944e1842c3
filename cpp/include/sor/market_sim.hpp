// The multi-venue market simulator: a discrete-event simulation of one or more instruments
// across lit venues (price-time matching on an L3 book) and dark pools (midpoint matching
// against hidden liquidity), driven by state-dependent background flow, informed traders and
// regimes, with an agent whose orders consume liquidity and change the flow after them.
// The model is described in docs/sim.md; the same spec and seed give the same events bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sor/book.hpp"
#include "sor/sim_types.hpp"
#include "sor/types.hpp"

namespace sor::sim {

// Kind of a simulated venue.
enum class VenueKind : std::uint8_t {
  kLit = 0,   // Displayed price-time book; publishes every book change.
  kDark = 1,  // Hidden midpoint crossing; publishes only its trade prints.
};

// Latencies of one venue, each with a random extra of up to `jitter_fraction` of its base.
struct LatencySpec {
  std::int64_t market_data_ns = 20'000;  // Venue to observer (feed ts_recv - ts_event).
  std::int64_t order_entry_ns = 30'000;  // Agent to venue (order arrival - ts_send).
  std::int64_t ack_ns = 30'000;          // Venue to agent (report ts_recv - ts_event).
  double jitter_fraction = 0.2;          // Mean exponential extra as a fraction of the base.
};

// One simulated venue.
struct VenueSpec {
  std::uint8_t venue_id = 0;             // Venue id (distinct, < 64).
  std::string name = "VENUE";            // Name, for errors and reports.
  VenueKind kind = VenueKind::kLit;      // Lit or dark.
  std::int64_t tick_size_ticks = 1;      // Quoting grid in price ticks (lit venues).
  double maker_fee_usd_per_share = -0.0020;   // Fee for resting liquidity (negative: rebate).
  double taker_fee_usd_per_share = 0.0030;    // Fee for taking liquidity.
  double midpoint_fee_usd_per_share = 0.0010; // Fee for a midpoint execution.
  LatencySpec latency;                   // Latencies and jitter.
  double flow_share = 1.0;               // Relative share of the background flow (lit venues).
  double informed_share = 0.0;           // Relative share of informed orders sent here.
  double hidden_arrival_per_s = 0.0;     // Hidden order arrivals per second (dark pools).
  double hidden_mean_quantity = 2'000.0; // Mean hidden order size in shares (dark pools).
  double hidden_lifetime_s = 60.0;       // Mean life of a hidden order (dark pools).
  std::int64_t min_quantity = 0;         // Minimum execution size the pool enforces (dark).
};

// Background order flow of every lit venue, before the venue's share, regime and time of day.
struct FlowSpec {
  double limit_rate_per_s = 40.0;          // Limit order arrivals per second per lit venue.
  double cancel_rate_per_order_per_s = 0.05; // Cancel intensity of each resting order.
  double partial_cancel_probability = 0.1; // Share of cancels that remove half an order.
  double market_rate_per_s = 2.0;          // Base market order intensity per instrument.
  double hawkes_branching_ratio = 0.5;     // Expected market orders triggered by one.
  double hawkes_decay_per_s = 1.0;         // Decay rate of the excitation.
  double sign_persistence = 0.6;           // Chance a market order has the side of the last.
  std::int32_t placement_levels = 12;      // Limit orders land 1..placement_levels grid ticks away.
  double depth_slope = 0.35;               // Placement weight grows by this per grid tick away.
  double half_spread_ticks = 0.5;          // Fundamental to first level, in grid ticks.
  double join_best_boost = 2.0;            // Queue-reactive: extra weight to join a thin best.
  double join_best_scale_shares = 300.0;   // Queue size at which that boost has decayed by e.
  double mean_limit_quantity = 200.0;      // Mean limit order size in shares.
  double mean_market_quantity = 150.0;     // Mean market order size (lognormal body).
  double market_quantity_sigma = 1.0;      // Lognormal sigma of market order sizes.
  std::int32_t market_collar_ticks = 5;    // Market orders trade at most this many grid ticks deep.
  std::int64_t lot_shares = 100;           // Round lot; sizes are whole lots.
  double stale_pull_probability = 0.5;     // Chance a quote made stale by news is pulled at once.
};

// Fundamental value and the news that moves it.
struct FundamentalSpec {
  double news_rate_per_s = 0.05;            // News arrivals per second (calm regime).
  double news_mean_ticks = 2.0;             // Scale of a news move in price ticks.
  double news_tail_exponent = 3.0;          // Pareto exponent of news sizes (heavy tails).
  double news_branching_ratio = 0.0;        // Self-excitation: expected news triggered by one.
  double news_decay_per_s = 0.01;           // Decay rate of that excitation.
  double permanent_impact_ticks_per_share = 0.0005; // Fundamental shift per signed share taken.
  // Latent liquidity (Donier, Bonart, Mastromatteo, Bouchaud 2015): providers' latent supply
  // grows linearly with the distance from the value, so taking Z net shares shifts the value
  // they quote around by sign(Z) sqrt(2|Z| / density); the consumed supply renews over
  // latent_renewal_s. 0 turns it off.
  double latent_density_shares_per_tick2 = 0.0;
  double latent_renewal_s = 1'800.0;     // Renewal time of the latent supply.
};

// Informed traders who trade ahead of news.
struct InformedSpec {
  double probability = 0.3;       // Chance a news event is preceded by informed trading.
  double lead_s = 20.0;           // They trade up to this long before the news.
  std::int32_t orders = 3;        // Informed orders per informed news event.
  double mean_quantity = 300.0;   // Mean informed order size in shares.
};

// One market regime.
struct RegimeSpec {
  std::string name = "calm";           // Name.
  double rate_multiplier = 1.0;        // Multiplies every background intensity.
  double news_multiplier = 1.0;        // Multiplies the news rate.
  double news_size_multiplier = 1.0;   // Multiplies news sizes.
  double half_spread_multiplier = 1.0; // Multiplies the distance of the first level.
  double mean_duration_s = 1'800.0;    // Mean time before switching to the next regime.
};

// Everything that defines a simulated market.
struct MarketSpec {
  std::uint64_t seed = 1;                        // Same spec and seed: same events, bit for bit.
  std::int64_t session_start_ns = 1'700'040'600'000'000'000; // Epoch ns of the open.
  std::int64_t session_length_ns = 23'400'000'000'000;       // 6.5 hours.
  std::uint32_t instrument_count = 1;            // Instruments 0..instrument_count-1.
  std::int64_t initial_price_ticks = 20'000;     // Initial fundamental of every instrument.
  double price_tick_usd = 0.005;                 // USD per price tick (fees and notionals).
  double u_shape_amplitude = 2.0;                // Activity at the open/close vs midday, minus 1.
  FlowSpec flow;                                 // Background flow.
  FundamentalSpec fundamental;                   // News and permanent impact.
  InformedSpec informed;                         // Informed traders.
  std::vector<RegimeSpec> regimes{RegimeSpec{}}; // Regimes, visited in a cycle.
  std::vector<VenueSpec> venues;                 // Venues (at least one lit).
  bool record_feeds = false;                     // Keep each venue's ITCH 5.0 bytes.
  bool record_events = false;                    // Keep each venue's MdEvents.
  bool record_trades = true;                     // Keep the tape of every trade.
  std::int64_t quote_sample_interval_ns = 0;     // Sample the NBBO every interval (0 = off).
  std::int32_t quote_sample_levels = 10;         // Depth levels per side in a quote sample.
  std::uint32_t reserve_orders = 4096;           // Orders preallocated per venue book (grows).
  bool fifo_order_entry = false;                 // Agent orders, cancels and replaces reach a
                                                 // venue in the order sent (one session, as
                                                 // over TCP); false lets jitter reorder them.
};

// One sample of the consolidated quote of instrument 0 (quote_sample_interval_ns).
struct QuoteSample {
  std::int64_t ts_ns;            // Sample time.
  std::int64_t bid_price_ticks;  // NBBO bid (0 when none).
  std::int64_t ask_price_ticks;  // NBBO ask (0 when none).
  std::int64_t bid_quantity;     // Shares at the NBBO bid, all lit venues.
  std::int64_t ask_quantity;     // Shares at the NBBO ask, all lit venues.
  double fundamental_ticks;      // The hidden fundamental value at the sample.
  std::int32_t regime;           // Regime index.
  std::int32_t reserved;         // 0.
};

static_assert(sizeof(QuoteSample) == 56);

// Counters of a simulation run.
struct SimCounters {
  std::uint64_t events = 0;            // Market events (every feed message and dark print).
  std::uint64_t limit_orders = 0;      // Background limit orders.
  std::uint64_t cancels = 0;           // Background cancels (full and partial).
  std::uint64_t market_orders = 0;     // Background market orders.
  std::uint64_t informed_orders = 0;   // Informed orders.
  std::uint64_t trades = 0;            // Executions on every venue.
  std::uint64_t news = 0;              // News events.
  std::uint64_t regime_switches = 0;   // Regime changes.
  std::uint64_t hidden_orders = 0;     // Hidden orders that arrived in dark pools.
  std::uint64_t agent_orders = 0;      // Agent orders that reached a venue.
  std::uint64_t agent_rejects = 0;     // Agent orders or cancels refused.
  std::uint64_t agent_fills = 0;       // Agent fills.
  std::uint64_t thinned = 0;           // Candidate market events rejected by Hawkes thinning.
  std::uint64_t book_errors = 0;       // Events the simulator's own books refused (a bug; 0).
};

// Returns "" when the spec is usable, else a message naming the first problem.
std::string validate(const MarketSpec& spec);

// The simulator. Prepare once (the constructor validates and preallocates); then advance time
// with run_until and talk to it as an agent with submit and cancel.
class MarketSimulator {
 public:
  // Builds the market at the open with the books at their expected depth; throws
  // std::invalid_argument naming the problem when validate(spec) is not empty.
  explicit MarketSimulator(const MarketSpec& spec);
  ~MarketSimulator();
  MarketSimulator(const MarketSimulator&) = delete;
  MarketSimulator& operator=(const MarketSimulator&) = delete;

  // Processes every event up to and including `ts_ns` and sets the clock there.
  void run_until(std::int64_t ts_ns) noexcept;
  // Processes events until the session end; returns the number of market events.
  std::uint64_t run_session() noexcept;
  // Queues an agent order; it reaches its venue after the order-entry latency.
  void submit(const AgentOrder& order) noexcept;
  // Queues a cancel of an agent order sent at `ts_send`; it reaches the venue after latency.
  void cancel(std::uint64_t client_order_id, std::int64_t ts_send) noexcept;
  // Queues a replace of an open agent order sent at `ts_send`: `quantity` is the new total
  // order quantity (shares already filled count toward it) and `price_ticks` the new limit.
  // At the venue a smaller size at the same price keeps priority; a new price or a larger
  // size loses it (a marketable new price trades first, except post-only: refused). Answered
  // by a kReplaced report, or kRejected with the reason (the order then stands unchanged).
  void replace(std::uint64_t client_order_id, std::int64_t quantity, std::int64_t price_ticks,
               std::int64_t ts_send) noexcept;
  // Moves the reports whose ts_recv is <= now into `out`, in ts_recv order.
  void take_reports(std::vector<SimReport>& out);
  // Moves the recorded trades into `out`.
  void take_trades(std::vector<SimTrade>& out);
  // Moves the recorded quote samples and their depth rows (bid then ask, levels each) into out.
  void take_quotes(std::vector<QuoteSample>& out, std::vector<std::int64_t>& depth_out);
  // Moves venue `venue_id`'s recorded ITCH bytes into `out`.
  void take_feed(std::uint8_t venue_id, std::vector<std::uint8_t>& out);
  // Moves venue `venue_id`'s recorded MdEvents into `out`.
  void take_events(std::uint8_t venue_id, std::vector<MdEvent>& out);

  // Returns the clock.
  std::int64_t now() const noexcept;
  // Returns the session end.
  std::int64_t session_end() const noexcept { return spec_.session_start_ns + spec_.session_length_ns; }
  // Returns the consolidated best bid and offer of `instrument_id` across lit venues.
  Nbbo nbbo(std::uint32_t instrument_id) const noexcept;
  // Copies up to `depth` levels of (venue, instrument, side) best first; returns how many.
  std::size_t levels(std::uint8_t venue_id, std::uint32_t instrument_id, Side side,
                     LevelView* out, std::size_t depth) const noexcept;
  // Appends the resting orders of (lit venue, instrument, side) to `out`, best price first
  // and in time priority within a price (what a snapshot of an order-by-order feed shows).
  void resting_orders(std::uint8_t venue_id, std::uint32_t instrument_id, Side side,
                      std::vector<OrderView>& out) const;
  // Returns the hidden fundamental value of `instrument_id` in ticks (ground truth, for studies).
  double fundamental(std::uint32_t instrument_id) const noexcept;
  // Returns the index of the current regime.
  std::size_t regime() const noexcept;
  // Returns the counters.
  const SimCounters& counters() const noexcept;
  // Returns the spec the simulator was built with.
  const MarketSpec& spec() const noexcept { return spec_; }
  // Returns the number of agent orders still open (resting or in flight).
  std::size_t open_agent_orders() const noexcept;
  // Returns the shares of hidden liquidity resting in dark venue `venue_id` on `side`.
  std::int64_t hidden_quantity(std::uint8_t venue_id, std::uint32_t instrument_id,
                               Side side) const noexcept;

 private:
  struct Impl;
  MarketSpec spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sor::sim
