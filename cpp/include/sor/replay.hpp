// Replay market: recorded L3 streams (one per venue, e.g. decoded ITCH 5.0) replayed as the
// market, with the agent's orders inserted at a queue position after an order-entry latency,
// and an optional transient impact model shifting the prices the agent's orders meet. The
// rules (queue models, depletion, trade-through, impact) are described in docs/sim-replay.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "sor/book.hpp"
#include "sor/random.hpp"
#include "sor/sim_types.hpp"
#include "sor/status.hpp"
#include "sor/types.hpp"

namespace sor::sim {

// Most venues a replay market holds (NBBO venue masks are 64 bits).
inline constexpr std::size_t kMaxReplayVenues = 64;

// How recorded cancels at the agent's price move the agent's queue position.
enum class QueueModel : std::uint8_t {
  kConservative = 0,  // Cancels come from behind the agent: shares ahead only fall by executions.
  kProportional = 1,  // A cancel of c shares removes c * ahead / level_total of the shares ahead.
  kOptimistic = 2,    // Cancels come from ahead of the agent first.
  kFifo = 3,          // Exact for L3: only cancels of orders that were ahead on arrival count.
};

// Which impact model shifts the replayed prices the agent's orders meet.
enum class ImpactModel : std::uint8_t {
  kNone = 0,        // The agent's trades move nothing.
  kPropagator = 1,  // Transient power-law propagator with an optional permanent part.
};

// Latency, fee and price-grid settings of one replayed venue.
struct ReplayVenueOptions {
  std::int64_t order_entry_latency_ns = 0;     // Agent -> venue for orders and cancels.
  std::int64_t ack_latency_ns = 0;             // Venue -> agent for every report.
  std::int64_t market_data_latency_ns = 0;     // Venue -> agent for recorded market data.
  std::int64_t latency_jitter_ns = 0;          // Each latency gets + uniform [0, jitter] ns.
  double maker_fee_usd_per_share = 0.0;        // Fee when resting liquidity fills (< 0: rebate).
  double taker_fee_usd_per_share = 0.0;        // Fee when the agent takes (< 0: rebate).
  std::int64_t tick_size_ticks = 1;            // Limit prices must be multiples of this.
};

// Parameters of the propagator impact model, I(t) = sum_i sign_i * eta * (q_i / V)^delta *
// ((1 - permanent_fraction) * (1 + (t - t_i) / t0)^(-beta) + permanent_fraction), in ticks.
struct PropagatorOptions {
  double eta_ticks = 1.0;                  // Impact in ticks of a trade of one daily volume.
  double delta = 0.5;                      // Concavity in the traded size.
  double beta = 0.5;                       // Decay exponent of the kernel G.
  double t0_ns = 1'000'000.0;              // Time scale of the kernel G in ns.
  double permanent_fraction = 0.0;         // Part of each trade's impact that never decays.
  double daily_volume_shares = 1'000'000;  // V: daily volume estimate of the instrument.
};

// Everything a replay market is configured with; fixed at construction.
struct ReplayOptions {
  std::vector<ReplayVenueOptions> venues;            // Venue v is venues[v].
  QueueModel queue_model = QueueModel::kConservative;  // Queue position model.
  ImpactModel impact_model = ImpactModel::kNone;       // Impact model.
  PropagatorOptions propagator;                        // Used by ImpactModel::kPropagator.
  std::uint64_t seed = 1;                              // Seeds the latency jitter.
};

// Returns "" when the options are usable, else a sentence naming the first bad field.
std::string validate(const ReplayOptions& options);

// Why loading a recorded stream failed.
enum class LoadError : std::uint8_t {
  kOk = 0,              // Loaded.
  kUnknownVenue = 1,    // The venue id is not in the options.
  kVenueMismatch = 2,   // An event's venue_id differs from the venue being loaded.
  kUnsorted = 3,        // ts_event decreases within the stream.
  kBookRejected = 4,    // An event does not apply to an L3 book (book_status says why).
  kAlreadyLoaded = 5,   // The venue already has a stream.
  kAlreadyStarted = 6,  // The replay already ran; streams are loaded before the first run.
};

// Returns a short, stable name for a load error ("unsorted").
const char* load_error_name(LoadError error) noexcept;

// Outcome of ReplayMarket::load.
struct LoadResult {
  LoadError error = LoadError::kOk;       // kOk or what went wrong.
  Status book_status = Status::kOk;       // The book's status for kBookRejected.
  std::size_t index = 0;                  // Index of the offending event.
  std::string message;                    // A sentence naming the problem ("" when ok).
};

// Which book a quote is taken from.
enum class QuoteView : std::uint8_t {
  kVenue = 0,  // What an order arriving now meets: recorded book minus depletion, impact-shifted.
  kAgent = 1,  // What the agent has received: the raw recorded book, market-data latency behind.
};

// Counters of a replay run.
struct ReplayCounters {
  std::uint64_t recorded_events = 0;    // Recorded events applied at the venues.
  std::uint64_t orders_submitted = 0;   // Agent orders submitted.
  std::uint64_t orders_rejected = 0;    // Agent orders rejected.
  std::uint64_t cancels_submitted = 0;  // Agent cancels submitted.
  std::uint64_t cancels_rejected = 0;   // Agent cancels rejected (order no longer open).
  std::uint64_t fills = 0;              // Fill reports.
  std::int64_t shares_taken = 0;        // Shares the agent took (liquidity removed).
  std::int64_t shares_made = 0;         // Shares of the agent's resting orders that filled.
  std::uint64_t late_sends = 0;         // Orders/cancels sent before now(), treated as sent now.
  std::uint64_t reports_emitted = 0;    // Reports generated (drained or not).
};

// A recorded multi-venue market replayed with the agent's orders inserted into it.
class ReplayMarket {
 public:
  // Prepares a market; options must pass validate() (checked by the caller).
  explicit ReplayMarket(ReplayOptions options);

  // Copies and checks `count` recorded events of `venue_id` (sorted by ts_event, applying to an
  // L3 book); nothing is kept on an error. Must be called before the first run_until.
  LoadResult load(std::uint8_t venue_id, const MdEvent* events, std::size_t count);

  // Sends an order at order.ts_send (now() when earlier); it reaches its venue after the order
  // entry latency. Bad orders are rejected by a report, never by an exception.
  void submit(const AgentOrder& order) noexcept;

  // Sends a cancel of the agent's order `client_order_id` at ts_send (now() when earlier).
  void cancel(std::uint64_t client_order_id, std::int64_t ts_send) noexcept;

  // Processes recorded events and agent actions at the venues up to and including ts_ns.
  void run_until(std::int64_t ts_ns) noexcept;

  // Moves up to `max` reports with ts_recv <= now() into `out` in ts_recv order; returns how many.
  std::size_t drain_reports(SimReport* out, std::size_t max) noexcept;

  // Returns the reports generated but not yet drained (some may have ts_recv > now()).
  std::size_t pending_reports() const noexcept { return reports_.size(); }

  // Returns the replay clock: the last ts given to run_until (or the first event's ts).
  std::int64_t now() const noexcept { return now_; }

  // Returns the ts_event of the next recorded event, or INT64_MAX when the streams are done.
  std::int64_t next_event_ts() const noexcept;

  // Returns the best bid and ask of one venue (venue mask = that venue; zeros when empty).
  Nbbo quote(std::uint8_t venue_id, std::uint32_t instrument_id,
             QuoteView view = QuoteView::kVenue) const noexcept;

  // Returns the best bid and ask across venues with the venues at each.
  Nbbo nbbo(std::uint32_t instrument_id, QuoteView view = QuoteView::kVenue) const noexcept;

  // Returns the impact of the agent's trades on `instrument_id` at now(), in ticks.
  double impact_ticks(std::uint32_t instrument_id) const noexcept;

  // Returns the recorded shares ahead of the agent's resting order, or -1 when it is not resting.
  std::int64_t shares_ahead(std::uint64_t client_order_id) const noexcept;

  // Returns the open quantity of the agent's order at its venue, or -1 when it is not open.
  std::int64_t leaves_quantity(std::uint64_t client_order_id) const noexcept;

  // Returns the recorded (raw) book of a venue as of now(); venue_id must be < venue_count().
  const L3Book& venue_book(std::uint8_t venue_id) const noexcept { return venues_[venue_id].book; }

  // Returns the number of venues.
  std::size_t venue_count() const noexcept { return venues_.size(); }

  // Returns the counters.
  const ReplayCounters& counters() const noexcept { return counters_; }

  // Returns the options the market was built with.
  const ReplayOptions& options() const noexcept { return options_; }

 private:
  struct Order {
    AgentOrder order;
    std::int64_t leaves = 0;
    std::int64_t ahead = 0;  // Recorded shares ahead while resting.
    std::vector<std::uint64_t> ahead_ids;  // kFifo: recorded orders ahead on arrival, sorted.
    bool open = false;       // Accepted at the venue and not done.
    bool resting = false;    // Open and resting in the book.
  };
  struct Action {
    std::int64_t ts;        // Arrival at the venue.
    std::uint64_t seq;      // Submission order, for ties.
    std::uint32_t order;    // Index into orders_ (orders), or kNoOrder for an unknown cancel.
    std::uint64_t client_order_id;
    std::uint8_t venue_id;
    bool is_cancel;
  };
  struct LevelKey {
    std::uint32_t instrument_id;
    Side side;
    std::int64_t price_ticks;
    bool operator==(const LevelKey&) const = default;
  };
  struct LevelKeyHash {
    std::size_t operator()(const LevelKey& k) const noexcept {
      return static_cast<std::size_t>(
          (static_cast<std::uint64_t>(k.price_ticks) * 0x9E3779B97F4A7C15ull) ^
          (static_cast<std::uint64_t>(k.instrument_id) << 2) ^ static_cast<std::uint64_t>(k.side));
    }
  };
  struct Venue {
    explicit Venue(std::uint8_t id, std::uint64_t seed);
    L3Book book;                 // Recorded book at the venue.
    L3Book seen;                 // Recorded book as the agent has received it.
    std::vector<MdEvent> events;
    std::size_t seen_cursor = 0;
    std::int64_t pending_seen_ts = INT64_MIN;  // Arrival at the agent of events[seen_cursor].
    std::int64_t last_seen_ts = INT64_MIN;
    Random md_random;
    std::int64_t last_arrival_ts = INT64_MIN;  // Order entry is FIFO per venue.
    std::int64_t last_report_ts = INT64_MIN;   // Reports are FIFO per venue.
    bool loaded = false;
    std::vector<bool> instruments;               // Instruments present in the stream.
    std::unordered_map<LevelKey, std::int64_t, LevelKeyHash> depleted;  // Taken by the agent.
    std::vector<std::uint32_t> resting;          // Agent orders resting, in arrival order.
  };
  struct ImpactTrade {
    std::int64_t ts;
    double amplitude_ticks;
  };
  struct Pending {
    SimReport report;
    std::uint64_t seq;  // Emission order, for ties.
  };
  struct Impact {
    std::vector<ImpactTrade> trades;
    double permanent_ticks = 0.0;
  };

  void start() noexcept;
  void process_recorded(const MdEvent& e) noexcept;
  void process_action(const Action& a) noexcept;
  void arrive(Order& o, std::uint32_t index, std::int64_t ts) noexcept;
  void arrive_cancel(const Action& a) noexcept;
  void advance_seen(std::int64_t ts) noexcept;
  // Recorded shares leave level (instrument, side, price): depletion first, then the queue.
  void level_reduced(Venue& v, std::uint32_t instrument_id, Side side, std::int64_t price,
                     std::int64_t level_before, std::int64_t quantity, bool execution,
                     std::uint64_t order_id, std::int64_t ts) noexcept;
  void trade_through(Venue& v, std::uint32_t instrument_id, Side side, std::int64_t price,
                     std::int64_t ts) noexcept;
  void crossing_add(Venue& v, std::uint32_t instrument_id, Side side, std::int64_t price,
                    std::int64_t quantity, std::int64_t ts) noexcept;
  void clamp_ahead(Venue& v, std::uint32_t instrument_id, std::int64_t ts) noexcept;
  void drop_empty_depletion(Venue& v, std::uint32_t instrument_id, Side side,
                            std::int64_t price) noexcept;
  std::int64_t visible(const Venue& v, std::uint32_t instrument_id, Side side,
                       std::int64_t price) const noexcept;
  std::int64_t level_quantity(const Venue& v, std::uint32_t instrument_id, Side side,
                              std::int64_t price) const noexcept;
  std::int64_t depletion(const Venue& v, std::uint32_t instrument_id, Side side,
                         std::int64_t price) const noexcept;
  std::int64_t shift_ticks(std::uint32_t instrument_id, std::int64_t ts) const noexcept;
  double impact_at(std::uint32_t instrument_id, std::int64_t ts) const noexcept;
  void record_impact(std::uint32_t instrument_id, Side side, std::int64_t quantity,
                     std::int64_t ts) noexcept;
  void fill(Order& o, std::int64_t ts, std::int64_t price, std::int64_t quantity,
            SimLiquidity liquidity) noexcept;
  void report(const Order& o, SimReportKind kind, std::int64_t ts, std::uint8_t detail) noexcept;
  void emit(SimReport& r, bool has_venue = true) noexcept;
  void compact_resting(Venue& v) noexcept;
  void reject(const AgentOrder& order, std::int64_t ts, SimRejectReason reason,
              bool has_venue) noexcept;
  void unrest(Venue& v, std::uint32_t index) noexcept;
  std::int64_t jitter(Random& random, std::int64_t jitter_ns) noexcept;
  void push_action(const Action& a) noexcept;
  Venue* venue(std::uint8_t venue_id) noexcept {
    return venue_id < venues_.size() ? &venues_[venue_id] : nullptr;
  }

  ReplayOptions options_;
  std::vector<Venue> venues_;
  std::vector<MdEvent> merged_;
  std::size_t cursor_ = 0;
  bool started_ = false;
  std::int64_t now_ = INT64_MIN;
  std::vector<Order> orders_;
  std::unordered_map<std::uint64_t, std::uint32_t> sent_;  // client id -> last order sent.
  std::unordered_map<std::uint64_t, std::uint32_t> open_;  // client id -> open order.
  std::vector<Action> actions_;  // Min-heap by (ts, seq).
  std::uint64_t action_seq_ = 0;
  Random entry_random_;
  Random report_random_;
  std::vector<Pending> reports_;
  std::uint64_t report_seq_ = 0;
  std::vector<std::uint8_t> load_order_;
  std::vector<std::uint32_t> scratch_;
  std::vector<Impact> impact_;  // By instrument id.
  ReplayCounters counters_;
};

}  // namespace sor::sim
