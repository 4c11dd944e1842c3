// The incremental feature engine: one decision row (float32, schema order) per candidate child
// order, computed from the consolidated book at decision time and from state kept up to date
// event by event (trade-flow windows, NBBO mid samples, realized and GARCH volatility, venue
// fill rates and latencies). The same code serves online (the engine) and offline (training
// datasets from recorded events). Windows, clocks and fallbacks are described in docs/features.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <vector>

#include "sor/consolidated.hpp"
#include "sor/types.hpp"

namespace sor {

// Name of the feature schema (part of its version hash).
inline constexpr const char* kFeatureSchemaName = "sor.features";
// Revision of the schema; bump when a formula changes without a name or unit changing.
inline constexpr std::uint32_t kFeatureSchemaRevision = 1;

// Position of each feature in a decision row.
enum class FeatureIndex : std::uint16_t {
  kOrderSide = 0,
  kOrderQuantityRemainingFraction,
  kOrderTimeRemainingFraction,
  kOrderParentAdvFraction,
  kOrderMidMoveSinceArrivalBps,
  kChildOrderType,
  kChildQuantityShares,
  kChildSizeBucket,
  kChildAdvFraction,
  kChildPriceOffsetTicks,
  kChildFeeBps,
  kNbboTwoSided,
  kNbboSpreadTicks,
  kNbboSpreadBps,
  kNbboImbalanceTop,
  kBookImbalanceDepth,
  kBookNearDepth1,
  kBookNearDepth2,
  kBookNearDepth3,
  kBookNearDepth4,
  kBookNearDepth5,
  kBookFarDepth1,
  kBookFarDepth2,
  kBookFarDepth3,
  kBookFarDepth4,
  kBookFarDepth5,
  kFlowImbalance1s,
  kFlowImbalance10s,
  kFlowImbalance60s,
  kFlowVolume60sShares,
  kVolRealized5mBps,
  kVolRealized30mBps,
  kVolGarchBps,
  kVolImpliedAnnual,
  kVolImpliedAvailable,
  kVenueIsDark,
  kVenueSpreadTicks,
  kVenueAtNbboNear,
  kVenueAtNbboFar,
  kVenueNearTouchShares,
  kVenueFarTouchShares,
  kVenueImbalanceTop,
  kVenueNearDepth5Shares,
  kVenueFarDepth5Shares,
  kVenueFlowImbalance10s,
  kVenueVolume60sShares,
  kVenueVolumeShare60s,
  kVenueFillRate,
  kVenueLatencyUs,
  kVenueMakerFeeBps,
  kVenueTakerFeeBps,
  kVenueMidpointFeeBps,
  kCount,
};

// Number of features in a decision row.
inline constexpr std::size_t kFeatureCount = static_cast<std::size_t>(FeatureIndex::kCount);

// One feature of the schema.
struct FeatureInfo {
  FeatureIndex index;       // Position in the row.
  const char* name;         // Stable dotted name ("nbbo.spread_ticks").
  const char* unit;         // Unit of the value ("ticks", "bps", "shares", "fraction"...).
  const char* description;  // How it is computed, including its fallback.
};

// Returns the schema: kFeatureCount entries in row order.
const FeatureInfo* feature_schema() noexcept;

// The order types a candidate child order can have.
enum class ChildOrderType : std::uint8_t {
  kTake = 0,      // Immediate-or-cancel order that takes displayed liquidity.
  kPost = 1,      // Post-only order that rests at its limit price.
  kMidpoint = 2,  // Midpoint peg (hidden, rests at the NBBO mid).
};

// Outcome of a feature-engine call.
enum class FeatureStatus : std::uint8_t {
  kOk = 0,                 // Done.
  kUnknownVenue = 1,       // The venue id is not one of the engine's venues.
  kUnknownInstrument = 2,  // The instrument id is not below max_instruments.
  kInvalidSide = 3,        // Side is neither buy nor sell.
  kInvalidOrderType = 4,   // Order type is not a ChildOrderType.
  kInvalidQuantity = 5,    // A quantity is zero, negative or inconsistent (remaining > parent).
  kInvalidTime = 6,        // end_ns is not after start_ns.
  kInvalidPrice = 7,       // A price is negative or not finite.
  kInvalidValue = 8,       // A setter got a negative, zero or non-finite value.
};

// Returns a short, stable name for a feature status ("unknown_venue").
constexpr std::string_view feature_status_name(FeatureStatus status) noexcept {
  switch (status) {
    case FeatureStatus::kOk: return "ok";
    case FeatureStatus::kUnknownVenue: return "unknown_venue";
    case FeatureStatus::kUnknownInstrument: return "unknown_instrument";
    case FeatureStatus::kInvalidSide: return "invalid_side";
    case FeatureStatus::kInvalidOrderType: return "invalid_order_type";
    case FeatureStatus::kInvalidQuantity: return "invalid_quantity";
    case FeatureStatus::kInvalidTime: return "invalid_time";
    case FeatureStatus::kInvalidPrice: return "invalid_price";
    case FeatureStatus::kInvalidValue: return "invalid_value";
  }
  return "unknown_status";
}

// One venue as the feature engine sees it.
struct FeatureVenueSpec {
  std::uint8_t venue_id = 0;                  // Venue id carried by its events.
  bool lit = true;                            // Lit venues form the NBBO; dark ones only print.
  BookType book_type = BookType::kL3;         // Feed type, for owners that build the book.
  double maker_fee_usd_per_share = 0.0;       // Fee for resting liquidity (negative: rebate).
  double taker_fee_usd_per_share = 0.0;       // Fee for taking liquidity.
  double midpoint_fee_usd_per_share = 0.0;    // Fee for a midpoint execution.
  std::int64_t latency_ns = 100'000;          // Configured order-to-ack latency (EWMA start).
};

// GARCH(1,1) parameters of the mid return over one sampling interval, in bps:
// variance_next = omega_bps2 + alpha * return_bps^2 + beta * variance.
struct GarchParams {
  double omega_bps2 = 0.0;                          // Constant term, bps squared.
  double alpha = 0.0;                               // Weight of the last squared return.
  double beta = 0.0;                                // Weight of the last variance.
  std::int64_t sample_interval_ns = 60'000'000'000; // Return interval (a multiple of the vol
                                                    // sample interval).
  double initial_variance_bps2 = 0.0;               // Variance before the first return; 0 means
                                                    // the unconditional omega / (1 - alpha - beta).
};

// Everything the feature engine is built from; checked by validate().
struct FeatureOptions {
  std::vector<FeatureVenueSpec> venues;               // Venues, at most 64, distinct ids.
  std::uint32_t max_instruments = 16;                 // Instrument ids must be below this.
  double price_tick_usd = 0.0001;                     // USD per price tick (fees in bps).
  std::int64_t vol_sample_interval_ns = 1'000'000'000; // NBBO mid sampling grid.
  std::int64_t flow_bucket_ns = 100'000'000;          // Trade-flow window granularity.
  double default_adv_shares = 1'000'000.0;            // ADV until set_adv is called.
  double fill_rate_prior = 0.5;                       // Fill rate with no history.
  double fill_rate_prior_weight_orders = 5.0;         // Weight of the prior, in child orders.
  double fill_rate_half_life_orders = 50.0;           // Child orders after which one weighs half.
  double latency_ewma_weight = 0.1;                   // Weight of each new latency sample.
  GarchParams garch;                                  // GARCH(1,1) recursion parameters.
};

// Returns "" when the options are usable, else a message naming the first impossible value.
const char* validate(const FeatureOptions& options) noexcept;

// Returns the bytes of state a FeatureEngine built from `options` preallocates.
std::size_t feature_state_bytes(const FeatureOptions& options) noexcept;

// Returns the venues of `options` as consolidated-book venue specs (same order).
std::vector<VenueSpec> book_venues(const FeatureOptions& options);

// One candidate child order at one decision time: 72 bytes, numpy decision_context_dtype.
struct DecisionContext {
  std::int64_t now_ns;             // Decision time (same clock as MdEvent::ts_recv).
  std::int64_t start_ns;           // Parent order start.
  std::int64_t end_ns;             // Parent order deadline (> start_ns).
  std::int64_t child_price_ticks;  // Limit price; 0 = type default (far touch for take, near
                                   // touch for post, NBBO mid for midpoint).
  std::int64_t child_quantity;     // Child shares (> 0).
  std::int64_t parent_quantity;    // Parent shares (> 0).
  std::int64_t remaining_quantity; // Parent shares not yet filled (0..parent_quantity).
  double arrival_mid_ticks;        // NBBO mid when the parent arrived (0 = unknown).
  std::uint32_t instrument_id;     // Instrument.
  std::uint8_t venue_id;           // Candidate venue.
  Side side;                       // Parent side (kBuy or kSell).
  ChildOrderType order_type;       // Candidate order type.
  std::uint8_t reserved;           // 0.
};

static_assert(sizeof(DecisionContext) == 72);
static_assert(std::is_trivially_copyable_v<DecisionContext>);
static_assert(std::is_standard_layout_v<DecisionContext>);

// Result of a batch of build_row calls.
struct FeatureBatchResult {
  std::uint64_t failed = 0;                    // Rows that could not be built (zero-filled).
  std::uint64_t first_failed_index = 0;        // Index of the first of them.
  FeatureStatus status = FeatureStatus::kOk;   // Status of the first of them.
};

// Returns the size bucket of a child quantity: 0 <= 100, 1 <= 500, 2 <= 2000, 3 <= 10000, 4 more.
constexpr int child_size_bucket(std::int64_t quantity) noexcept {
  return quantity <= 100 ? 0 : quantity <= 500 ? 1 : quantity <= 2'000 ? 2
                                                 : quantity <= 10'000 ? 3 : 4;
}

// The feature engine. Prepare once (the constructor validates and allocates every table); then
// on_event per market-data event and build_row per candidate child, both noexcept and
// allocation-free. Not thread-safe: one owner thread calls everything.
class FeatureEngine {
 public:
  // Builds the engine; throws std::invalid_argument with validate()'s message when not usable.
  explicit FeatureEngine(const FeatureOptions& options);

  // Updates the state with one event the book has just applied (call it after a successful
  // ConsolidatedBook::apply, never for a rejected event). Events of unknown venues, of
  // instruments >= max_instruments, and sequenced events at or below the venue's last sequence
  // (duplicates) are ignored. The clock is the largest ts_recv seen.
  void on_event(const MdEvent& event, const ConsolidatedBook& book) noexcept;
  // Records the outcome of one of our child orders (for venue.fill_rate).
  FeatureStatus on_child_done(std::uint8_t venue_id, Side side, ChildOrderType order_type,
                              std::int64_t quantity, std::int64_t filled_quantity) noexcept;
  // Records one measured order-to-ack latency of a venue (for venue.latency_us).
  FeatureStatus on_latency_sample(std::uint8_t venue_id, std::int64_t latency_ns) noexcept;
  // Sets the average daily volume of an instrument (> 0 shares).
  FeatureStatus set_adv(std::uint32_t instrument_id, double adv_shares) noexcept;
  // Sets the implied volatility of an instrument (annualised fraction, >= 0).
  FeatureStatus set_implied_volatility(std::uint32_t instrument_id, double annual) noexcept;
  // Clears the implied volatility of an instrument (vol.implied_* become 0).
  FeatureStatus clear_implied_volatility(std::uint32_t instrument_id) noexcept;
  // Forgets a venue's last sequence, after its book was resynced (e.g. a new session from 1).
  FeatureStatus reset_sequence(std::uint8_t venue_id) noexcept;

  // Writes kFeatureCount floats for `context` into `out`, reading `book` at decision time;
  // on a non-ok status the row is all zeros. Never writes NaN or infinity.
  FeatureStatus build_row(const DecisionContext& context, const ConsolidatedBook& book,
                          float* out) const noexcept;
  // Builds `count` rows into `out` (row-major, count x kFeatureCount).
  FeatureBatchResult build_rows(const DecisionContext* contexts, std::size_t count,
                                const ConsolidatedBook& book, float* out) const noexcept;

  // Returns the options the engine was built with.
  const FeatureOptions& options() const noexcept { return options_; }
  // Returns the clock: the largest ts_recv seen (0 before the first event).
  std::int64_t clock_ns() const noexcept { return clock_ns_; }
  // Returns the number of events that changed the state (not ignored).
  std::uint64_t events_applied() const noexcept { return events_applied_; }

 private:
  struct FlowBucket {
    std::int64_t buy_shares;    // Aggressive buy volume.
    std::int64_t sell_shares;   // Aggressive sell volume.
    std::int64_t total_shares;  // All printed volume (including side unknown).
  };
  struct VenueFlowSums {
    std::int64_t buy_10s;
    std::int64_t sell_10s;
    std::int64_t total_60s;
  };
  struct Top {
    std::int64_t bid_price_ticks;
    std::int64_t ask_price_ticks;
  };
  struct InstrumentState {
    bool started = false;
    std::int64_t bucket_index = 0;       // floor(clock / flow_bucket_ns) at its last event
    std::int64_t next_bucket_ns = 0;
    std::int64_t sample_index = 0;       // boundary index of its last mid sample
    std::int64_t next_sample_ns = 0;
    FlowBucket sums[3]{};                // windows 1 s, 10 s, 60 s
    double last_valid_mid_ticks = 0;     // mid of the last sample that had one
    double sum_squares_5m_bps2 = 0;
    double sum_squares_30m_bps2 = 0;
    std::int64_t nonzero_5m = 0;         // nonzero squared returns in the 5 m window
    std::int64_t nonzero_30m = 0;
    double garch_variance_bps2 = 0;      // for the next interval
    double garch_last_mid_ticks = 0;     // mid at the last GARCH boundary that had one
    double adv_shares = 0;
    double implied_annual = 0;
    bool implied_available = false;
  };
  struct VenueState {
    std::uint64_t last_sequence = 0;
    double latency_ns = 0;
  };
  struct FillRateCell {
    double filled_weight = 0;
    double order_weight = 0;
  };
  struct WindowView;

  void start(InstrumentState& s) noexcept;
  double cached_mid(std::uint32_t instrument_id) const noexcept;
  void take_samples(std::uint32_t instrument_id, InstrumentState& s) noexcept;
  void push_sample(std::uint32_t instrument_id, InstrumentState& s, double square_bps2) noexcept;
  void advance_buckets(std::uint32_t instrument_id, InstrumentState& s) noexcept;
  void add_trade(std::uint32_t instrument_id, std::size_t venue, Side resting_side,
                 std::int64_t quantity, InstrumentState& s) noexcept;
  void flow_view(std::uint32_t instrument_id, std::size_t venue, std::int64_t t_ns,
                 WindowView& out) const noexcept;
  void vol_view(std::uint32_t instrument_id, std::int64_t t_ns, double& realized_5m_bps,
                double& realized_30m_bps, double& garch_bps) const noexcept;
  FeatureStatus check(const DecisionContext& c) const noexcept;
  FillRateCell& fill_cell(std::size_t venue, Side side, int size_bucket,
                          ChildOrderType type) noexcept;
  const FillRateCell& fill_cell(std::size_t venue, Side side, int size_bucket,
                                ChildOrderType type) const noexcept;

  FeatureOptions options_;
  std::size_t venue_count_;
  std::int64_t buckets_per_window_[3];  // 1 s, 10 s, 60 s in flow buckets
  std::int64_t bucket_ring_;            // = buckets_per_window_[2]
  std::int64_t samples_5m_;
  std::int64_t samples_30m_;            // = vol ring length
  std::int64_t garch_every_samples_;
  double fill_decay_;
  double initial_garch_variance_bps2_;
  std::int64_t clock_ns_ = 0;
  std::uint64_t events_applied_ = 0;
  int venue_slot_[256];
  std::vector<InstrumentState> instruments_;
  std::vector<FlowBucket> flow_ring_;         // [instrument][bucket slot]
  std::vector<FlowBucket> venue_ring_;        // [instrument][bucket slot][venue]
  std::vector<VenueFlowSums> venue_sums_;     // [instrument][venue]
  std::vector<double> vol_ring_;              // [instrument][sample slot] squared returns, bps^2
  std::vector<Top> tops_;                     // [instrument][venue] last known best prices
  std::vector<VenueState> venue_state_;       // [venue]
  std::vector<FillRateCell> fill_rates_;      // [venue][side][size bucket][order type]
};

// Result of feeding a batch of events through a book and a feature engine.
struct FeatureApplyResult {
  std::uint64_t applied = 0;               // Events the book took (and the engine saw).
  std::uint64_t rejected = 0;              // Events the book refused (the engine did not see).
  std::uint64_t first_rejected_index = 0;  // Index of the first refused event.
  Status first_status = Status::kOk;       // Why the book refused it.
};

// Applies each event to `book` and, when the book takes it, to `engine`. Stops at the first
// refusal when `stop_on_reject` (events before it stay applied), else skips refused events.
FeatureApplyResult apply_events(ConsolidatedBook& book, FeatureEngine& engine,
                                const MdEvent* events, std::size_t count,
                                bool stop_on_reject) noexcept;

}  // namespace sor
