#include "sor/market_sim.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include "sor/itch.hpp"
#include "sor/random.hpp"

namespace sor::sim {

namespace {

// Agent orders carry this bit in their venue order id, so a match can tell them apart with a
// bit test instead of a lookup on every execution.
constexpr std::uint64_t kAgentIdBit = 1ull << 62;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr std::int64_t kProfileStepNs = kNsPerS;

enum class TimedKind : std::uint8_t {
  kAgentArrive,
  kAgentCancel,
  kAgentReplace,
  kNews,
  kInformed,
  kRegime,
  kProfile,
  kQuoteSample,
};

struct Timed {
  std::int64_t ts;
  std::uint64_t seq;  // Ties keep the order events were scheduled in.
  std::uint64_t ref;
  std::int64_t quantity;
  std::uint32_t instrument;
  std::uint8_t venue;
  TimedKind kind;
  Side side;
};

struct Later {
  bool operator()(const Timed& a, const Timed& b) const noexcept {
    return a.ts != b.ts ? a.ts > b.ts : a.seq > b.seq;
  }
};

struct PendingReport {
  SimReport report;
  std::uint64_t seq;
};

struct ReportLater {
  bool operator()(const PendingReport& a, const PendingReport& b) const noexcept {
    return a.report.ts_recv != b.report.ts_recv ? a.report.ts_recv > b.report.ts_recv
                                                : a.seq > b.seq;
  }
};

// A self-exciting intensity: a value that decays exponentially from the time it was last set.
struct Excitation {
  double value = 0;
  std::int64_t ts = 0;
  // Returns the value at `now`.
  double at(std::int64_t now, double decay_per_s) const noexcept {
    return value * std::exp(-decay_per_s * static_cast<double>(now - ts) * 1e-9);
  }
  // Decays the value to `now` and adds `jump`.
  void advance(std::int64_t now, double decay_per_s, double jump = 0.0) noexcept {
    value = at(now, decay_per_s) + jump;
    ts = now;
  }
};

Side opposite(Side s) noexcept { return s == Side::kBuy ? Side::kSell : Side::kBuy; }
double sign_of(Side s) noexcept { return s == Side::kBuy ? 1.0 : -1.0; }

}  // namespace

std::string validate(const MarketSpec& spec) {
  auto positive = [](double x) { return std::isfinite(x) && x > 0.0; };
  auto non_negative = [](double x) { return std::isfinite(x) && x >= 0.0; };
  if (spec.venues.empty()) return "the market has no venue";
  if (spec.venues.size() > 64) return "at most 64 venues";
  if (spec.instrument_count == 0 || spec.instrument_count > 65'000) {
    return "instrument_count must be between 1 and 65000";
  }
  if (spec.session_length_ns <= 0) return "session_length_ns must be positive";
  if (spec.initial_price_ticks < 1000) return "initial_price_ticks must be at least 1000";
  if (!positive(spec.price_tick_usd)) return "price_tick_usd must be positive";
  if (!non_negative(spec.u_shape_amplitude)) return "u_shape_amplitude must be >= 0";
  if (spec.regimes.empty()) return "at least one regime is needed";
  for (const RegimeSpec& r : spec.regimes) {
    if (!positive(r.rate_multiplier) || !non_negative(r.news_multiplier) ||
        !positive(r.news_size_multiplier) || !positive(r.half_spread_multiplier) ||
        !positive(r.mean_duration_s)) {
      return "regime '" + r.name + "': multipliers and mean_duration_s must be positive";
    }
  }
  const FlowSpec& f = spec.flow;
  if (!positive(f.limit_rate_per_s)) return "flow.limit_rate_per_s must be positive";
  if (!positive(f.cancel_rate_per_order_per_s)) {
    return "flow.cancel_rate_per_order_per_s must be positive";
  }
  if (f.partial_cancel_probability < 0 || f.partial_cancel_probability > 1) {
    return "flow.partial_cancel_probability must be in [0, 1]";
  }
  if (!non_negative(f.market_rate_per_s)) return "flow.market_rate_per_s must be >= 0";
  if (!(f.hawkes_branching_ratio >= 0 && f.hawkes_branching_ratio < 1)) {
    return "flow.hawkes_branching_ratio must be in [0, 1) (1 or more explodes)";
  }
  if (!positive(f.hawkes_decay_per_s)) return "flow.hawkes_decay_per_s must be positive";
  if (f.sign_persistence < 0 || f.sign_persistence > 1) {
    return "flow.sign_persistence must be in [0, 1]";
  }
  if (f.placement_levels < 1 || f.placement_levels > 1000) {
    return "flow.placement_levels must be between 1 and 1000";
  }
  if (!non_negative(f.depth_slope)) return "flow.depth_slope must be >= 0";
  if (!non_negative(f.half_spread_ticks)) return "flow.half_spread_ticks must be >= 0";
  if (!non_negative(f.join_best_boost) || !positive(f.join_best_scale_shares)) {
    return "flow.join_best_boost must be >= 0 and flow.join_best_scale_shares positive";
  }
  if (f.lot_shares <= 0) return "flow.lot_shares must be positive";
  if (f.stale_pull_probability < 0 || f.stale_pull_probability > 1) {
    return "flow.stale_pull_probability must be in [0, 1]";
  }
  if (!(f.mean_limit_quantity >= static_cast<double>(f.lot_shares)) ||
      !(f.mean_market_quantity >= static_cast<double>(f.lot_shares))) {
    return "flow.mean_limit_quantity and flow.mean_market_quantity must be at least one lot";
  }
  if (!non_negative(f.market_quantity_sigma)) return "flow.market_quantity_sigma must be >= 0";
  if (f.market_collar_ticks < 1) return "flow.market_collar_ticks must be at least 1";
  const FundamentalSpec& n = spec.fundamental;
  if (!non_negative(n.news_rate_per_s) || !non_negative(n.news_mean_ticks) ||
      !non_negative(n.permanent_impact_ticks_per_share)) {
    return "fundamental rates, sizes and impact must be >= 0";
  }
  if (!(n.news_branching_ratio >= 0 && n.news_branching_ratio < 1) || !positive(n.news_decay_per_s)) {
    return "fundamental.news_branching_ratio must be in [0, 1) and news_decay_per_s positive";
  }
  if (!(n.news_tail_exponent > 1.0) || !std::isfinite(n.news_tail_exponent)) {
    return "fundamental.news_tail_exponent must be above 1 (finite mean)";
  }
  if (!(n.latent_density_shares_per_tick2 >= 0) || !std::isfinite(n.latent_density_shares_per_tick2) ||
      !positive(n.latent_renewal_s)) {
    return "fundamental.latent_density_shares_per_tick2 must be >= 0 and latent_renewal_s positive";
  }
  const InformedSpec& inf = spec.informed;
  if (inf.probability < 0 || inf.probability > 1) return "informed.probability must be in [0, 1]";
  if (!non_negative(inf.lead_s) || inf.orders < 0 ||
      !(inf.mean_quantity >= static_cast<double>(f.lot_shares))) {
    return "informed: lead_s >= 0, orders >= 0 and mean_quantity at least one lot";
  }
  if (spec.quote_sample_interval_ns < 0) return "quote_sample_interval_ns must be >= 0";
  if (spec.quote_sample_levels < 1 || spec.quote_sample_levels > 100) {
    return "quote_sample_levels must be between 1 and 100";
  }
  std::uint64_t seen = 0;
  bool any_lit = false;
  bool any_dark = false;
  for (const VenueSpec& v : spec.venues) {
    const std::string at = "venue '" + v.name + "' (id " + std::to_string(v.venue_id) + ")";
    if (v.venue_id >= 64) return at + ": venue_id must be below 64";
    if (seen & (1ull << v.venue_id)) return at + ": venue_id is used twice";
    seen |= 1ull << v.venue_id;
    if (!std::isfinite(v.maker_fee_usd_per_share) || !std::isfinite(v.taker_fee_usd_per_share) ||
        !std::isfinite(v.midpoint_fee_usd_per_share)) {
      return at + ": fees must be finite";
    }
    if (v.latency.market_data_ns < 0 || v.latency.order_entry_ns < 0 || v.latency.ack_ns < 0 ||
        !non_negative(v.latency.jitter_fraction)) {
      return at + ": latencies and jitter must be >= 0";
    }
    if (!non_negative(v.informed_share)) return at + ": informed_share must be >= 0";
    if (v.kind == VenueKind::kLit) {
      any_lit = true;
      if (v.tick_size_ticks <= 0 || v.tick_size_ticks % 2 != 0) {
        return at + ": tick_size_ticks must be positive and even, so that the NBBO midpoint "
                    "is on the price grid (use a finer price_tick_usd)";
      }
      if (!positive(v.flow_share)) return at + ": flow_share must be positive for a lit venue";
    } else {
      any_dark = true;
      if (!non_negative(v.hidden_arrival_per_s) || !positive(v.hidden_mean_quantity) ||
          !positive(v.hidden_lifetime_s) || v.min_quantity < 0) {
        return at + ": hidden_arrival_per_s >= 0, hidden_mean_quantity and hidden_lifetime_s "
                    "positive, min_quantity >= 0";
      }
    }
  }
  (void)any_dark;
  if (!any_lit) return "the market needs at least one lit venue (the NBBO comes from lit books)";
  return "";
}

struct MarketSimulator::Impl {
  struct LitCell {
    std::vector<std::uint64_t> live;  // Background order ids; executed ones removed lazily.
    std::int64_t live_count = 0;      // Background orders resting.
    std::vector<std::uint64_t> pegs;  // Agent midpoint peg orders (client ids), time priority.
  };
  struct HiddenOrder {
    std::uint64_t client_id;  // Agent client id, or 0 for background liquidity.
    std::int64_t quantity;
    std::int64_t min_quantity;
    std::int64_t limit_ticks;  // 0: no limit.
    Side side;
  };
  struct DarkCell {
    std::vector<HiddenOrder> orders;  // Time priority.
    std::int64_t background_count = 0;
  };
  struct Venue {
    VenueSpec spec;
    std::unique_ptr<L3Book> book;
    std::vector<LitCell> lit;
    std::vector<DarkCell> dark;
    std::uint64_t next_order_id = 1;
    std::uint64_t sequence = 0;
    std::uint64_t next_match = 1;
    std::unique_ptr<itch::ItchEncoder> encoder;
    std::vector<MdEvent> events;
    double limit_rate = 0;  // Before the activity multiplier.
    std::int64_t last_md_recv = 0;
  };
  struct Instrument {
    double fundamental = 0;
    Excitation market;            // Hawkes excitation of market orders.
    Side last_market_side = Side::kBuy;
    double next_news_ticks = 0;   // Signed size of the scheduled news.
    double latent_taken = 0;      // Net signed shares taken from the latent supply, renewing.
    double latent_shift = 0;      // The value shift it causes, in ticks.
    Excitation news;              // News intensity added by past news.
  };
  struct AgentState {
    AgentOrder order;
    std::int64_t leaves = 0;
    std::uint64_t venue_order_id = 0;  // Lit resting orders.
    bool resting = false;
  };
  struct TakerInfo {
    std::uint64_t client_id;  // 0 for background.
    std::uint64_t tag;
    bool informed;
    bool moves_value;  // Market, informed and agent orders; not a provider's repricing.
  };

  const MarketSpec& spec;
  // Separate streams: the agent's actions change how much of the flow stream is used, but not
  // the news, informed traders or regimes, so a run with and without an agent order shares
  // its exogenous path (common random numbers for impact experiments).
  Random rng;          // Background flow.
  Random news_rng;     // News, informed traders.
  Random regime_rng;   // Regime durations.
  Random latency_rng;  // Feed and report timestamps: recording settings never move the market.
  std::int64_t now = 0;
  std::size_t regime = 0;
  SimCounters counters;
  double activity = 1.0;  // U-shape times the regime's rate multiplier.
  bool closed = false;

  std::vector<Venue> venues;
  std::vector<std::int32_t> venue_index;  // venue_id -> index, -1 when absent.
  std::vector<std::size_t> lit_venues;
  std::vector<std::size_t> dark_venues;
  std::vector<Instrument> instruments;
  std::int64_t quote_grid = 2;

  std::vector<double> placement_cdf;  // Cumulative placement weight by distance (1..K).
  double lit_share_total = 0;
  double informed_share_total = 0;
  double hawkes_alpha = 0;

  std::priority_queue<Timed, std::vector<Timed>, Later> timed;
  std::uint64_t timed_seq = 0;
  std::vector<AgentOrder> in_flight;  // Orders between submit and arrival.
  std::vector<std::size_t> in_flight_free;
  std::unordered_map<std::uint64_t, AgentState> agents;
  std::unordered_map<std::uint64_t, std::uint64_t> agent_by_venue_order;
  struct PendingReplace {
    std::uint64_t client_id;
    std::int64_t quantity;
    std::int64_t price_ticks;
    std::uint8_t venue_id;
  };
  std::vector<PendingReplace> replaces;  // Replaces between send and arrival.
  std::vector<std::size_t> replaces_free;
  std::int64_t last_entry_arrival[64] = {};  // fifo_order_entry: last arrival per venue.
  std::uint64_t next_agent_venue_order = 1;
  std::priority_queue<PendingReport, std::vector<PendingReport>, ReportLater> reports;
  std::uint64_t report_seq = 0;
  std::int64_t last_report_recv[64] = {};

  std::vector<SimTrade> trades;
  std::vector<QuoteSample> quotes;
  std::vector<std::int64_t> depth_rows;

  // Candidate next stochastic event: its time and the rates it was drawn with (valid while no
  // event happens, so the run does not depend on how run_until slices time).
  std::int64_t candidate_ts = kNever;
  std::vector<double> rates;
  double rate_total = 0;

  explicit Impl(const MarketSpec& s)
      : spec(s),
        rng(s.seed),
        news_rng(s.seed ^ 0xA24BAED4963EE407ull),
        regime_rng(s.seed ^ 0x9FB21C651E98DF25ull),
        latency_rng(s.seed ^ 0x5DEECE66Dull) {}

  // --- set-up ---------------------------------------------------------------------------

  void build() {
    now = spec.session_start_ns;
    venue_index.assign(64, -1);
    const std::int64_t session_date = spec.session_start_ns - spec.session_start_ns % (86'400 * kNsPerS);
    quote_grid = std::numeric_limits<std::int64_t>::max();
    for (const VenueSpec& vs : spec.venues) {
      Venue v;
      v.spec = vs;
      if (vs.kind == VenueKind::kLit) {
        BookOptions options;
        options.max_instruments = spec.instrument_count;
        options.reserve_orders = spec.reserve_orders;
        v.book = std::make_unique<L3Book>(vs.venue_id, options);
        v.lit.resize(spec.instrument_count);
        v.limit_rate = spec.flow.limit_rate_per_s * vs.flow_share;
        lit_share_total += vs.flow_share;
        quote_grid = std::min(quote_grid, vs.tick_size_ticks);
        lit_venues.push_back(venues.size());
      } else {
        v.dark.resize(spec.instrument_count);
        dark_venues.push_back(venues.size());
      }
      informed_share_total += vs.informed_share;
      if (spec.record_feeds) {
        itch::EncoderOptions eo;
        eo.session_date_ns = session_date;
        eo.stock_locates.emplace();
        for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
          (*eo.stock_locates)[i] = static_cast<std::uint16_t>(i + 1);
        }
        v.encoder = std::make_unique<itch::ItchEncoder>(std::move(eo));
        v.encoder->system_event('O', now);
        for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
          v.encoder->stock_directory(static_cast<std::uint16_t>(i + 1),
                                     "SIM" + std::to_string(i), 100, now);
        }
      }
      venue_index[vs.venue_id] = static_cast<std::int32_t>(venues.size());
      venues.push_back(std::move(v));
    }
    double cumulative = 0;
    for (std::int32_t k = 0; k < spec.flow.placement_levels; ++k) {
      cumulative += 1.0 + spec.flow.depth_slope * k;
      placement_cdf.push_back(cumulative);
    }
    for (double& c : placement_cdf) c /= cumulative;
    hawkes_alpha = spec.flow.hawkes_branching_ratio * spec.flow.hawkes_decay_per_s;
    instruments.resize(spec.instrument_count);
    for (Instrument& ins : instruments) {
      ins.fundamental = static_cast<double>(spec.initial_price_ticks);
      ins.market.ts = now;
      ins.news.ts = now;
    }
    update_activity();
    seed_books();
    for (std::uint32_t i = 0; i < spec.instrument_count; ++i) schedule_news(i);
    if (spec.regimes.size() > 1) {
      schedule(Timed{now + duration_ns(regime_rng, spec.regimes[0].mean_duration_s), 0, 0, 0, 0, 0,
                     TimedKind::kRegime, Side::kNone});
    }
    schedule(Timed{now + kProfileStepNs, 0, 0, 0, 0, 0, TimedKind::kProfile, Side::kNone});
    if (spec.quote_sample_interval_ns > 0) {
      schedule(Timed{now, 0, 0, 0, 0, 0, TimedKind::kQuoteSample, Side::kNone});
    }
    rates.assign(lit_venues.size() * spec.instrument_count * 2 + spec.instrument_count +
                     dark_venues.size() * spec.instrument_count * 2,
                 0.0);
  }

  // Places each lit book at its expected depth: arrivals over cancels, level by level.
  void seed_books() {
    const FlowSpec& f = spec.flow;
    double previous = 0;
    for (std::size_t vi : lit_venues) {
      Venue& v = venues[vi];
      for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
        previous = 0;
        for (std::int32_t k = 0; k < f.placement_levels; ++k) {
          const double weight = placement_cdf[k] - previous;
          previous = placement_cdf[k];
          const double expected_orders = v.limit_rate * 0.5 * weight / f.cancel_rate_per_order_per_s;
          const auto orders = static_cast<std::int64_t>(std::llround(expected_orders));
          for (Side side : {Side::kBuy, Side::kSell}) {
            const std::int64_t price = placement_price(v, i, side, k);
            for (std::int64_t n = 0; n < orders; ++n) {
              add_background(v, i, side, price, limit_quantity());
            }
          }
        }
      }
    }
  }

  // --- helpers --------------------------------------------------------------------------

  static std::int64_t duration_ns(Random& r, double seconds) noexcept {
    return static_cast<std::int64_t>(r.exponential(seconds) * 1e9) + 1;
  }

  void schedule(Timed t) {
    t.seq = ++timed_seq;
    timed.push(t);
  }

  std::int64_t jitter(std::int64_t base, double fraction) noexcept {
    if (base == 0 || fraction <= 0) return base;
    return base + static_cast<std::int64_t>(latency_rng.exponential(static_cast<double>(base) * fraction));
  }

  void update_activity() noexcept {
    const double x = std::clamp(static_cast<double>(now - spec.session_start_ns) /
                                    static_cast<double>(spec.session_length_ns),
                                0.0, 1.0);
    const double a = spec.u_shape_amplitude;
    const double u = (1.0 + a * (2 * x - 1) * (2 * x - 1)) / (1.0 + a / 3.0);
    activity = u * spec.regimes[regime].rate_multiplier;
  }

  std::int64_t lots(double mean_shares) noexcept { return lots(rng, mean_shares); }
  std::int64_t lots(Random& r, double mean_shares) noexcept {
    const double mean_lots = mean_shares / static_cast<double>(spec.flow.lot_shares);
    const auto extra = static_cast<std::int64_t>(r.exponential(std::max(mean_lots - 1.0, 0.0)));
    return (1 + extra) * spec.flow.lot_shares;
  }
  std::int64_t limit_quantity() noexcept { return lots(spec.flow.mean_limit_quantity); }
  std::int64_t market_quantity() noexcept {
    const double sigma = spec.flow.market_quantity_sigma;
    const double u1 = 1.0 - rng.uniform();
    const double u2 = rng.uniform();
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    const double shares = spec.flow.mean_market_quantity * std::exp(sigma * z - 0.5 * sigma * sigma);
    const auto l = std::max<std::int64_t>(
        1, std::llround(shares / static_cast<double>(spec.flow.lot_shares)));
    return std::min<std::int64_t>(l, 10'000) * spec.flow.lot_shares;
  }

  std::int64_t placement_price(const Venue& v, std::uint32_t i, Side side, std::int32_t k) const noexcept {
    const std::int64_t g = v.spec.tick_size_ticks;
    const double h = spec.flow.half_spread_ticks * spec.regimes[regime].half_spread_multiplier *
                     static_cast<double>(g);
    const double f = instruments[i].fundamental + instruments[i].latent_shift;
    if (side == Side::kSell) {
      const auto base = static_cast<std::int64_t>(std::ceil((f + h) / static_cast<double>(g))) * g;
      return std::max(base, g) + k * g;
    }
    const auto base = static_cast<std::int64_t>(std::floor((f - h) / static_cast<double>(g))) * g;
    return std::max(base - k * g, g);
  }

  Nbbo nbbo(std::uint32_t i) const noexcept {
    Nbbo q{};
    for (std::size_t vi : lit_venues) {
      const Venue& v = venues[vi];
      const std::uint64_t bit = 1ull << v.spec.venue_id;
      if (const PriceLadder* b = v.book->ladder(i, Side::kBuy); b && !b->empty()) {
        const PriceLevel& l = *b->best();
        if (q.bid_price_ticks == 0 || l.price_ticks > q.bid_price_ticks) {
          q.bid_price_ticks = l.price_ticks;
          q.bid_quantity = l.quantity;
          q.bid_venue_mask = bit;
        } else if (l.price_ticks == q.bid_price_ticks) {
          q.bid_quantity += l.quantity;
          q.bid_venue_mask |= bit;
        }
      }
      if (const PriceLadder* a = v.book->ladder(i, Side::kSell); a && !a->empty()) {
        const PriceLevel& l = *a->best();
        if (q.ask_price_ticks == 0 || l.price_ticks < q.ask_price_ticks) {
          q.ask_price_ticks = l.price_ticks;
          q.ask_quantity = l.quantity;
          q.ask_venue_mask = bit;
        } else if (l.price_ticks == q.ask_price_ticks) {
          q.ask_quantity += l.quantity;
          q.ask_venue_mask |= bit;
        }
      }
    }
    return q;
  }

  // Returns the NBBO midpoint, or 0 when the NBBO is not two-sided and uncrossed.
  std::int64_t midpoint(std::uint32_t i) const noexcept {
    const Nbbo q = nbbo(i);
    if (q.bid_price_ticks <= 0 || q.ask_price_ticks <= 0 || q.bid_price_ticks >= q.ask_price_ticks) {
      return 0;
    }
    return (q.bid_price_ticks + q.ask_price_ticks) / 2;
  }

  // --- output ---------------------------------------------------------------------------

  void emit(Venue& v, MdEvent e) noexcept {
    e.ts_event = now;
    // A feed is one ordered channel: jitter delays messages but never reorders them.
    e.ts_recv = std::max(jitter(v.spec.latency.market_data_ns, v.spec.latency.jitter_fraction) + now,
                         v.last_md_recv);
    v.last_md_recv = e.ts_recv;
    e.sequence = ++v.sequence;
    e.venue_id = v.spec.venue_id;
    ++counters.events;
    if (v.book) {  // Trade prints (midpoint pegs) have no book effect but take a sequence.
      // The simulator only emits events its own book accepts; a refusal is a bug, counted.
      if (v.book->apply(e) != Status::kOk) ++counters.book_errors;
    }
    if (spec.record_events) v.events.push_back(e);
    if (v.encoder) (void)v.encoder->encode(e);
  }

  void report(const AgentState& a, SimReportKind kind, std::int64_t price, std::int64_t quantity,
              double fee, std::uint8_t detail) {
    const Venue* v = venue_of(a.order.venue_id);
    const LatencySpec lat = v ? v->spec.latency : LatencySpec{};
    SimReport r{};
    r.ts_event = now;
    // Reports of one venue session arrive in the order they were sent, as over TCP.
    std::int64_t& last = last_report_recv[a.order.venue_id & 63];
    r.ts_recv = std::max(now + jitter(lat.ack_ns, lat.jitter_fraction), last);
    last = r.ts_recv;
    r.client_order_id = a.order.client_order_id;
    r.tag = a.order.tag;
    r.price_ticks = price;
    r.quantity = quantity;
    r.leaves_quantity = a.leaves;
    r.fee_usd = fee;
    r.instrument_id = a.order.instrument_id;
    r.venue_id = a.order.venue_id;
    r.kind = kind;
    r.side = a.order.side;
    r.detail = detail;
    reports.push(PendingReport{r, ++report_seq});
    if (kind == SimReportKind::kFill) ++counters.agent_fills;
    if (kind == SimReportKind::kRejected) ++counters.agent_rejects;
  }

  void reject(const AgentOrder& o, SimRejectReason reason) {
    AgentState a;
    a.order = o;
    a.leaves = 0;
    report(a, SimReportKind::kRejected, o.price_ticks, 0, 0.0, static_cast<std::uint8_t>(reason));
  }

  void tape(const Venue& v, std::uint32_t i, std::int64_t price, std::int64_t quantity,
            Side aggressor, std::uint64_t aggressor_client, std::uint8_t agent, bool informed) {
    ++counters.trades;
    if (!spec.record_trades) return;
    SimTrade t{};
    t.ts_event = now;
    t.price_ticks = price;
    t.quantity = quantity;
    t.aggressor_id = aggressor_client;
    t.instrument_id = i;
    t.venue_id = v.spec.venue_id;
    t.aggressor_side = aggressor;
    t.agent = agent;
    t.informed = informed ? 1 : 0;
    trades.push_back(t);
  }

  Venue* venue_of(std::uint8_t venue_id) noexcept {
    if (venue_id >= venue_index.size() || venue_index[venue_id] < 0) return nullptr;
    return &venues[static_cast<std::size_t>(venue_index[venue_id])];
  }

  // --- book changes ---------------------------------------------------------------------

  void add_background(Venue& v, std::uint32_t i, Side side, std::int64_t price, std::int64_t quantity) {
    const std::uint64_t id = v.next_order_id++;
    MdEvent e{};
    e.kind = EventKind::kAdd;
    e.order_id = id;
    e.side = side;
    e.price_ticks = price;
    e.quantity = quantity;
    e.instrument_id = i;
    emit(v, e);
    LitCell& c = v.lit[i];
    c.live.push_back(id);
    ++c.live_count;
  }

  void excite(std::uint32_t i) noexcept {
    instruments[i].market.advance(now, spec.flow.hawkes_decay_per_s, hawkes_alpha);
  }

  // Matches a taker against agent midpoint pegs resting on venue `v`; returns shares matched.
  std::int64_t match_pegs(Venue& v, std::uint32_t i, Side side, std::int64_t limit,
                          std::int64_t quantity, const TakerInfo& taker) {
    LitCell& c = v.lit[i];
    if (c.pegs.empty() || taker.client_id != 0) return 0;
    const std::int64_t mid = midpoint(i);
    if (mid == 0) return 0;
    if (limit != 0 && (side == Side::kBuy ? mid > limit : mid < limit)) return 0;
    std::int64_t done = 0;
    for (std::size_t n = 0; n < c.pegs.size() && quantity > 0;) {
      auto it = agents.find(c.pegs[n]);
      AgentState& a = it->second;
      const std::int64_t peg_limit = a.order.price_ticks;
      const bool peg_ok = a.order.side != side &&
                          (peg_limit == 0 || (a.order.side == Side::kBuy ? mid <= peg_limit : mid >= peg_limit));
      if (!peg_ok) {
        ++n;
        continue;
      }
      const std::int64_t q = std::min(quantity, a.leaves);
      a.leaves -= q;
      quantity -= q;
      done += q;
      MdEvent t{};
      t.kind = EventKind::kTrade;
      t.side = a.order.side;
      t.price_ticks = mid;
      t.quantity = q;
      t.instrument_id = i;
      t.related_id = v.next_match++;
      t.flags = kFlagPrintable;
      emit(v, t);
      tape(v, i, mid, q, side, 0, 2, taker.informed);
      report(a, SimReportKind::kFill, mid, q,
             static_cast<double>(q) * v.spec.midpoint_fee_usd_per_share,
             static_cast<std::uint8_t>(SimLiquidity::kMidpoint));
      if (a.leaves == 0) {
        agents.erase(it);
        c.pegs.erase(c.pegs.begin() + static_cast<std::ptrdiff_t>(n));
      } else {
        ++n;
      }
    }
    return done;
  }

  // Takes displayed liquidity on lit venue `v` up to `limit` (0: no limit); returns shares taken.
  std::int64_t take(Venue& v, std::uint32_t i, Side side, std::int64_t limit, std::int64_t quantity,
                    const TakerInfo& taker) {
    std::int64_t taken = match_pegs(v, i, side, limit, quantity, taker);
    quantity -= taken;
    const Side resting = opposite(side);
    const PriceLadder* contra = v.book->ladder(i, resting);
    while (quantity > 0 && contra && !contra->empty()) {
      const PriceLevel& best = *contra->best();
      if (limit != 0 && (side == Side::kBuy ? best.price_ticks > limit : best.price_ticks < limit)) break;
      std::uint64_t order_id = 0;
      v.book->front_order(i, resting, order_id);
      OrderView view{};
      v.book->find_order(order_id, view, false);
      const bool agent_resting = (order_id & kAgentIdBit) != 0;
      if (agent_resting && taker.client_id != 0) {
        // Self-trade prevention: the resting agent order is cancelled, the taker goes on.
        cancel_agent_resting(order_id, v);
        continue;
      }
      const std::int64_t q = std::min(quantity, view.quantity);
      const std::int64_t price = view.price_ticks;
      MdEvent e{};
      e.kind = EventKind::kExecute;
      e.order_id = order_id;
      e.related_id = v.next_match++;
      e.side = resting;
      e.quantity = q;
      e.instrument_id = i;
      e.flags = kFlagPrintable;
      emit(v, e);
      if (agent_resting) {
        auto it = agents.find(agent_by_venue_order[order_id]);
        AgentState& a = it->second;
        a.leaves -= q;
        tape(v, i, price, q, side, 0, 2, taker.informed);
        report(a, SimReportKind::kFill, price, q,
               static_cast<double>(q) * v.spec.maker_fee_usd_per_share,
               static_cast<std::uint8_t>(SimLiquidity::kAdded));
        if (a.leaves == 0) {
          agent_by_venue_order.erase(order_id);
          agents.erase(it);
        }
      } else {
        if (q == view.quantity) --v.lit[i].live_count;
        tape(v, i, price, q, side, taker.client_id, taker.client_id ? 1 : 0, taker.informed);
      }
      if (taker.client_id != 0) {
        AgentState& a = agents.find(taker.client_id)->second;
        a.leaves -= q;
        report(a, SimReportKind::kFill, price, q,
               static_cast<double>(q) * v.spec.taker_fee_usd_per_share,
               static_cast<std::uint8_t>(SimLiquidity::kRemoved));
      }
      quantity -= q;
      taken += q;
      contra = v.book->ladder(i, resting);
    }
    if (taken > 0 && taker.moves_value) {
      Instrument& ins = instruments[i];
      ins.fundamental +=
          sign_of(side) * spec.fundamental.permanent_impact_ticks_per_share * static_cast<double>(taken);
      ins.latent_taken += sign_of(side) * static_cast<double>(taken);
      update_latent_shift(ins);
    }
    return taken;
  }

  void update_latent_shift(Instrument& ins) const noexcept {
    const double density = spec.fundamental.latent_density_shares_per_tick2;
    if (density <= 0) return;
    const double z = ins.latent_taken;
    ins.latent_shift = (z >= 0 ? 1.0 : -1.0) * std::sqrt(2.0 * std::fabs(z) / density);
  }

  void cancel_agent_resting(std::uint64_t venue_order_id, Venue& v, std::uint8_t detail = 0) {
    auto by = agent_by_venue_order.find(venue_order_id);
    auto it = agents.find(by->second);
    MdEvent e{};
    e.kind = EventKind::kDelete;
    e.order_id = venue_order_id;
    e.instrument_id = it->second.order.instrument_id;
    e.side = it->second.order.side;
    emit(v, e);
    it->second.leaves = 0;
    report(it->second, SimReportKind::kCancelled, it->second.order.price_ticks, 0, 0.0, detail);
    agents.erase(it);
    agent_by_venue_order.erase(by);
  }

  // Crosses an arriving dark order against resting contra orders at the midpoint.
  std::int64_t cross_dark(Venue& v, std::uint32_t i, HiddenOrder& in, bool informed) {
    DarkCell& c = v.dark[i];
    const std::int64_t mid = midpoint(i);
    if (mid == 0) return 0;
    if (in.limit_ticks != 0 && (in.side == Side::kBuy ? mid > in.limit_ticks : mid < in.limit_ticks)) {
      return 0;
    }
    std::int64_t done = 0;
    for (std::size_t n = 0; n < c.orders.size() && in.quantity > 0;) {
      HiddenOrder& r = c.orders[n];
      const bool limit_ok = r.limit_ticks == 0 ||
                            (r.side == Side::kBuy ? mid <= r.limit_ticks : mid >= r.limit_ticks);
      const std::int64_t q = std::min(in.quantity, r.quantity);
      const std::int64_t floor_q = std::max({r.min_quantity, in.min_quantity, v.spec.min_quantity});
      if (r.side == in.side || !limit_ok || q < floor_q || (r.client_id != 0 && r.client_id == in.client_id)) {
        ++n;
        continue;
      }
      in.quantity -= q;
      r.quantity -= q;
      done += q;
      MdEvent t{};
      t.kind = EventKind::kTrade;
      t.side = r.side;  // ITCH convention: a print carries the resting order's side.
      t.price_ticks = mid;
      t.quantity = q;
      t.instrument_id = i;
      t.related_id = v.next_match++;
      t.flags = kFlagPrintable;
      emit(v, t);
      const std::uint8_t agent_flag = in.client_id ? 1 : (r.client_id ? 2 : 0);
      tape(v, i, mid, q, in.side, in.client_id, agent_flag, informed);
      const double fee = static_cast<double>(q) * v.spec.midpoint_fee_usd_per_share;
      for (HiddenOrder* h : {&in, &r}) {
        if (h->client_id == 0) continue;
        auto it = agents.find(h->client_id);
        it->second.leaves = h->quantity;
        report(it->second, SimReportKind::kFill, mid, q, fee,
               static_cast<std::uint8_t>(SimLiquidity::kMidpoint));
      }
      if (r.quantity == 0) {
        if (r.client_id != 0) agents.erase(r.client_id);
        else --c.background_count;
        c.orders.erase(c.orders.begin() + static_cast<std::ptrdiff_t>(n));
      } else {
        ++n;
      }
    }
    return done;
  }

  // --- background events ----------------------------------------------------------------

  void lit_add(Venue& v, std::uint32_t i) {
    ++counters.limit_orders;
    const Side side = rng.uniform() < 0.5 ? Side::kBuy : Side::kSell;
    std::int64_t price = 0;
    const PriceLadder* own = v.book->ladder(i, side);
    if (spec.flow.join_best_boost > 0 && own && !own->empty()) {
      const double thin = spec.flow.join_best_boost *
                          std::exp(-static_cast<double>(own->best()->quantity) / spec.flow.join_best_scale_shares);
      if (rng.uniform() * (1.0 + thin) < thin) price = own->best()->price_ticks;
    }
    if (price == 0) {
      const double u = rng.uniform();
      std::int32_t k = 0;
      while (k + 1 < static_cast<std::int32_t>(placement_cdf.size()) && placement_cdf[k] < u) ++k;
      price = placement_price(v, i, side, k);
    }
    std::int64_t quantity = limit_quantity();
    // A quote that would lock or cross any venue takes there first: after news the providers'
    // new quotes pick off stale ones, and no venue is left locked or crossed against another.
    for (std::size_t wi : lit_venues) {
      Venue& w = venues[wi];
      const PriceLadder* contra = w.book->ladder(i, opposite(side));
      if (!contra || contra->empty()) continue;
      const std::int64_t best = contra->best()->price_ticks;
      if (side == Side::kBuy ? price >= best : price <= best) {
        quantity -= take(w, i, side, price, quantity, TakerInfo{0, 0, false, false});
        if (quantity <= 0) return;
      }
    }
    add_background(v, i, side, price, quantity);
  }

  // After news the providers pull their quotes that the new value makes stale (asks below it,
  // bids above it). Agent orders stay where they are and can be picked off.
  void pull_stale_quotes(Venue& v, std::uint32_t i) {
    for (Side side : {Side::kBuy, Side::kSell}) {
      const std::int64_t first = placement_price(v, i, side, 0);
      stale_prices.clear();
      const PriceLadder* ladder = v.book->ladder(i, side);
      if (!ladder) continue;
      for (std::size_t d = 0; d < ladder->size(); ++d) {
        const std::int64_t price = ladder->at_depth(d).price_ticks;
        if (side == Side::kBuy ? price <= first : price >= first) break;
        stale_prices.push_back(price);
      }
      for (std::int64_t price : stale_prices) {
        const PriceLevel* level = ladder->find(price);
        if (!level) continue;
        stale_ids.resize(level->order_count);
        const std::size_t n = v.book->orders_at(i, side, price, stale_ids.data(), stale_ids.size());
        for (std::size_t k = 0; k < n; ++k) {
          if ((stale_ids[k] & kAgentIdBit) || rng.uniform() >= spec.flow.stale_pull_probability) continue;
          MdEvent e{};
          e.kind = EventKind::kDelete;
          e.order_id = stale_ids[k];
          e.instrument_id = i;
          e.side = side;
          emit(v, e);
          --v.lit[i].live_count;
          ++counters.cancels;
        }
      }
    }
  }
  std::vector<std::int64_t> stale_prices;
  std::vector<std::uint64_t> stale_ids;

  void lit_cancel(Venue& v, std::uint32_t i) {
    LitCell& c = v.lit[i];
    while (!c.live.empty()) {
      const std::size_t n = rng.below(c.live.size());
      const std::uint64_t id = c.live[n];
      OrderView view{};
      if (!v.book->find_order(id, view, false)) {
        c.live[n] = c.live.back();
        c.live.pop_back();
        continue;
      }
      ++counters.cancels;
      MdEvent e{};
      e.order_id = id;
      e.instrument_id = i;
      e.side = view.side;
      if (view.quantity > spec.flow.lot_shares && rng.uniform() < spec.flow.partial_cancel_probability) {
        e.kind = EventKind::kCancel;
        e.quantity = (view.quantity / spec.flow.lot_shares / 2) * spec.flow.lot_shares;
        if (e.quantity <= 0) e.quantity = spec.flow.lot_shares;
        emit(v, e);
        return;
      }
      e.kind = EventKind::kDelete;
      emit(v, e);
      c.live[n] = c.live.back();
      c.live.pop_back();
      --c.live_count;
      return;
    }
  }

  // Chooses the lit venue a background or informed market order goes to: drawn by flow share,
  // then sent to a venue at the NBBO when the drawn one is worse (no trade-through).
  Venue& route(std::uint32_t i, Side side) noexcept {
    double u = rng.uniform() * lit_share_total;
    std::size_t chosen = lit_venues.front();
    for (std::size_t vi : lit_venues) {
      u -= venues[vi].spec.flow_share;
      chosen = vi;
      if (u < 0) break;
    }
    const Nbbo q = nbbo(i);
    const std::uint64_t mask = side == Side::kBuy ? q.ask_venue_mask : q.bid_venue_mask;
    if (mask != 0 && !(mask & (1ull << venues[chosen].spec.venue_id))) {
      for (std::size_t vi : lit_venues) {
        if (mask & (1ull << venues[vi].spec.venue_id)) return venues[vi];
      }
    }
    return venues[chosen];
  }

  std::int64_t collar_limit(const Venue& v, std::uint32_t i, Side side) const noexcept {
    const PriceLadder* contra = v.book->ladder(i, opposite(side));
    if (!contra || contra->empty()) return 0;
    const std::int64_t best = contra->best()->price_ticks;
    const std::int64_t depth = spec.flow.market_collar_ticks * v.spec.tick_size_ticks;
    return side == Side::kBuy ? best + depth : std::max<std::int64_t>(best - depth, 1);
  }

  void market_order(std::uint32_t i) {
    Instrument& ins = instruments[i];
    const Side side = rng.uniform() < spec.flow.sign_persistence ? ins.last_market_side
                                                                 : opposite(ins.last_market_side);
    ins.last_market_side = side;
    Venue& v = route(i, side);
    const std::int64_t limit = collar_limit(v, i, side);
    if (limit == 0) return;
    ++counters.market_orders;
    excite(i);
    take(v, i, side, limit, market_quantity(), TakerInfo{0, 0, false, true});
  }

  void dark_arrival(Venue& v, std::uint32_t i) {
    ++counters.hidden_orders;
    HiddenOrder h{0, lots(v.spec.hidden_mean_quantity), 0, 0,
                  rng.uniform() < 0.5 ? Side::kBuy : Side::kSell};
    cross_dark(v, i, h, false);
    if (h.quantity > 0) {
      v.dark[i].orders.push_back(h);
      ++v.dark[i].background_count;
    }
  }

  void dark_cancel(Venue& v, std::uint32_t i) {
    DarkCell& c = v.dark[i];
    if (c.background_count == 0) return;
    std::int64_t pick = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(c.background_count)));
    for (std::size_t n = 0; n < c.orders.size(); ++n) {
      if (c.orders[n].client_id != 0) continue;
      if (pick-- == 0) {
        c.orders.erase(c.orders.begin() + static_cast<std::ptrdiff_t>(n));
        --c.background_count;
        return;
      }
    }
  }

  // --- timed events ---------------------------------------------------------------------

  void schedule_news(std::uint32_t i) {
    // News excite news (information arrives in clusters): the intensity is evaluated at each
    // news event and held until the next one is drawn.
    Instrument& ins = instruments[i];
    ins.news.advance(now, spec.fundamental.news_decay_per_s);
    const double rate = spec.fundamental.news_rate_per_s * spec.regimes[regime].news_multiplier +
                        ins.news.value;
    if (rate <= 0) return;
    const std::int64_t ts = now + duration_ns(news_rng, 1.0 / rate);
    const double a = spec.fundamental.news_tail_exponent;
    const double scale = spec.fundamental.news_mean_ticks * (a - 1.0) / a *
                         spec.regimes[regime].news_size_multiplier;
    const double size = std::min(scale * std::pow(1.0 - news_rng.uniform(), -1.0 / a), 200.0 * scale);
    const Side side = news_rng.uniform() < 0.5 ? Side::kBuy : Side::kSell;
    instruments[i].next_news_ticks = sign_of(side) * size;
    schedule(Timed{ts, 0, 0, 0, i, 0, TimedKind::kNews, side});
    if (informed_share_total > 0 && spec.informed.orders > 0 && news_rng.uniform() < spec.informed.probability) {
      const std::int64_t lead = static_cast<std::int64_t>(spec.informed.lead_s * 1e9);
      const std::int64_t from = std::max(now, ts - lead);
      for (std::int32_t n = 0; n < spec.informed.orders; ++n) {
        const std::int64_t at = from + static_cast<std::int64_t>(news_rng.uniform() * static_cast<double>(ts - from));
        double u = news_rng.uniform() * informed_share_total;
        std::uint8_t venue_id = venues.front().spec.venue_id;
        for (const Venue& v : venues) {
          u -= v.spec.informed_share;
          venue_id = v.spec.venue_id;
          if (u < 0 && v.spec.informed_share > 0) break;
        }
        schedule(Timed{at, 0, 0, lots(news_rng, spec.informed.mean_quantity), i, venue_id,
                       TimedKind::kInformed, side});
      }
    }
  }

  void informed_order(const Timed& t) {
    Venue* v = venue_of(t.venue);
    ++counters.informed_orders;
    if (v->spec.kind == VenueKind::kDark) {
      HiddenOrder h{0, t.quantity, 0, 0, t.side};
      cross_dark(*v, t.instrument, h, true);
      return;
    }
    const std::int64_t limit = collar_limit(*v, t.instrument, t.side);
    if (limit == 0) return;
    excite(t.instrument);
    take(*v, t.instrument, t.side, limit, t.quantity, TakerInfo{0, 0, true, true});
  }

  void sample_quotes() {
    const Nbbo q = nbbo(0);
    QuoteSample s{};
    s.ts_ns = now;
    s.bid_price_ticks = q.bid_price_ticks;
    s.ask_price_ticks = q.ask_price_ticks;
    s.bid_quantity = q.bid_quantity;
    s.ask_quantity = q.ask_quantity;
    s.fundamental_ticks = instruments[0].fundamental + instruments[0].latent_shift;
    s.regime = static_cast<std::int32_t>(regime);
    quotes.push_back(s);
    for (Side side : {Side::kBuy, Side::kSell}) {
      const std::int64_t best = side == Side::kBuy ? q.bid_price_ticks : q.ask_price_ticks;
      for (std::int32_t d = 0; d < spec.quote_sample_levels; ++d) {
        std::int64_t total = 0;
        if (best > 0) {
          const std::int64_t price = side == Side::kBuy ? best - d * quote_grid : best + d * quote_grid;
          for (std::size_t vi : lit_venues) {
            const PriceLadder* l = venues[vi].book->ladder(0, side);
            if (const PriceLevel* level = l ? l->find(price) : nullptr) total += level->quantity;
          }
        }
        depth_rows.push_back(total);
      }
    }
  }

  void process_timed(const Timed& t) {
    switch (t.kind) {
      case TimedKind::kAgentArrive: {
        const AgentOrder o = in_flight[t.ref];
        in_flight[t.ref].client_order_id = 0;  // A freed slot names no order.
        in_flight_free.push_back(t.ref);
        agent_arrive(o);
        return;
      }
      case TimedKind::kAgentCancel:
        agent_cancel_arrive(t.ref, t.venue);
        return;
      case TimedKind::kAgentReplace:
        agent_replace_arrive(static_cast<std::size_t>(t.ref));
        return;
      case TimedKind::kNews: {
        Instrument& ins = instruments[t.instrument];
        ins.fundamental = std::max(ins.fundamental + ins.next_news_ticks, 100.0);
        ++counters.news;
        ins.news.advance(now, spec.fundamental.news_decay_per_s,
                         spec.fundamental.news_branching_ratio * spec.fundamental.news_decay_per_s);
        for (std::size_t vi : lit_venues) pull_stale_quotes(venues[vi], t.instrument);
        schedule_news(t.instrument);
        return;
      }
      case TimedKind::kInformed:
        informed_order(t);
        return;
      case TimedKind::kRegime:
        regime = (regime + 1) % spec.regimes.size();
        ++counters.regime_switches;
        update_activity();
        schedule(Timed{now + duration_ns(regime_rng, spec.regimes[regime].mean_duration_s), 0, 0, 0, 0, 0,
                       TimedKind::kRegime, Side::kNone});
        return;
      case TimedKind::kProfile:
        update_activity();
        if (spec.fundamental.latent_density_shares_per_tick2 > 0) {
          const double keep = std::exp(-static_cast<double>(kProfileStepNs) * 1e-9 /
                                       spec.fundamental.latent_renewal_s);
          for (Instrument& ins : instruments) {
            ins.latent_taken *= keep;
            update_latent_shift(ins);
          }
        }
        schedule(Timed{now + kProfileStepNs, 0, 0, 0, 0, 0, TimedKind::kProfile, Side::kNone});
        return;
      case TimedKind::kQuoteSample:
        sample_quotes();
        schedule(Timed{now + spec.quote_sample_interval_ns, 0, 0, 0, 0, 0, TimedKind::kQuoteSample,
                       Side::kNone});
        return;
    }
  }

  // --- the agent ------------------------------------------------------------------------

  void submit(const AgentOrder& o) {
    Venue* v = venue_of(o.venue_id);
    const std::int64_t ts = std::max(o.ts_send, now);
    std::size_t slot;
    if (!in_flight_free.empty()) {
      slot = in_flight_free.back();
      in_flight_free.pop_back();
      in_flight[slot] = o;
    } else {
      slot = in_flight.size();
      in_flight.push_back(o);
    }
    const std::int64_t arrive = entry_arrival(v, o.venue_id, ts);
    schedule(Timed{arrive, 0, slot, 0, o.instrument_id, o.venue_id, TimedKind::kAgentArrive, o.side});
  }

  void agent_arrive(const AgentOrder& o) {
    Venue* v = venue_of(o.venue_id);
    if (!v) return reject(o, SimRejectReason::kUnknownVenue);
    if (o.instrument_id >= spec.instrument_count) return reject(o, SimRejectReason::kUnknownInstrument);
    if (o.side != Side::kBuy && o.side != Side::kSell) return reject(o, SimRejectReason::kBadSide);
    if (o.quantity <= 0 || o.min_quantity < 0 || o.min_quantity > o.quantity) {
      return reject(o, SimRejectReason::kBadQuantity);
    }
    if (agents.count(o.client_order_id) || o.client_order_id == 0) {
      return reject(o, SimRejectReason::kDuplicateOrder);
    }
    if (closed) return reject(o, SimRejectReason::kSessionClosed);
    const bool dark = v->spec.kind == VenueKind::kDark;
    const bool needs_price = o.type == SimOrderType::kLimit || o.type == SimOrderType::kIoc ||
                             o.type == SimOrderType::kPostOnly;
    if (dark && (o.type == SimOrderType::kMarket || o.type == SimOrderType::kPostOnly)) {
      return reject(o, SimRejectReason::kUnsupportedType);
    }
    if (o.price_ticks < 0 || (needs_price && o.price_ticks == 0) ||
        (!dark && o.price_ticks != 0 && o.price_ticks % v->spec.tick_size_ticks != 0 &&
         o.type != SimOrderType::kMidpointPeg)) {
      return reject(o, SimRejectReason::kBadPrice);
    }
    ++counters.agent_orders;
    AgentState& a = agents[o.client_order_id];
    a.order = o;
    a.leaves = o.quantity;
    const std::uint32_t i = o.instrument_id;
    if (dark || o.type == SimOrderType::kMidpointPeg) {
      if (dark && o.type == SimOrderType::kIoc && midpoint(i) == 0) {
        agents.erase(o.client_order_id);
        return reject(o, SimRejectReason::kNoReference);
      }
      report(a, SimReportKind::kAck, o.price_ticks, 0, 0.0, 0);
      if (!dark) {
        v->lit[i].pegs.push_back(o.client_order_id);
        return;
      }
      HiddenOrder h{o.client_order_id, o.quantity, o.min_quantity, o.price_ticks, o.side};
      cross_dark(*v, i, h, false);
      auto it = agents.find(o.client_order_id);
      if (h.quantity == 0) {
        agents.erase(it);
        return;
      }
      if (o.type == SimOrderType::kIoc) {
        it->second.leaves = 0;
        report(it->second, SimReportKind::kCancelled, o.price_ticks, 0, 0.0, 0);
        agents.erase(it);
        return;
      }
      v->dark[i].orders.push_back(h);
      return;
    }
    const PriceLadder* contra = v->book->ladder(i, opposite(o.side));
    const bool marketable =
        contra && !contra->empty() &&
        (o.type == SimOrderType::kMarket ||
         (o.side == Side::kBuy ? o.price_ticks >= contra->best()->price_ticks
                               : o.price_ticks <= contra->best()->price_ticks));
    if (o.type == SimOrderType::kPostOnly && marketable) {
      agents.erase(o.client_order_id);
      return reject(o, SimRejectReason::kWouldTake);
    }
    report(a, SimReportKind::kAck, o.price_ticks, 0, 0.0, 0);
    if (marketable) {
      const std::int64_t limit = o.type == SimOrderType::kMarket ? 0 : o.price_ticks;
      excite(i);
      take(*v, i, o.side, limit, o.quantity, TakerInfo{o.client_order_id, o.tag, false, true});
    }
    auto it = agents.find(o.client_order_id);
    if (it->second.leaves == 0) {
      agents.erase(it);
      return;
    }
    if (o.type == SimOrderType::kMarket || o.type == SimOrderType::kIoc) {
      it->second.leaves = 0;
      report(it->second, SimReportKind::kCancelled, o.price_ticks, 0, 0.0, 0);
      agents.erase(it);
      return;
    }
    const std::uint64_t venue_order_id = kAgentIdBit | next_agent_venue_order++;
    it->second.venue_order_id = venue_order_id;
    it->second.resting = true;
    agent_by_venue_order[venue_order_id] = o.client_order_id;
    MdEvent e{};
    e.kind = EventKind::kAdd;
    e.order_id = venue_order_id;
    e.side = o.side;
    e.price_ticks = o.price_ticks;
    e.quantity = it->second.leaves;
    e.instrument_id = i;
    emit(*v, e);
  }

  void cancel(std::uint64_t client_id, std::int64_t ts_send) {
    auto it = agents.find(client_id);
    std::uint8_t venue_id = 0xFF;
    Venue* v = nullptr;
    if (it != agents.end()) {
      venue_id = it->second.order.venue_id;
      v = venue_of(venue_id);
    } else {
      for (const AgentOrder& o : in_flight) {
        if (o.client_order_id == client_id) venue_id = o.venue_id;
      }
      v = venue_of(venue_id);
    }
    const std::int64_t arrive = entry_arrival(v, venue_id, std::max(ts_send, now));
    schedule(Timed{arrive, 0, client_id, 0, 0, venue_id, TimedKind::kAgentCancel, Side::kNone});
  }

  // Returns when an agent message sent at `ts` reaches venue `v`; with fifo_order_entry never
  // before the previous message to the same venue.
  std::int64_t entry_arrival(Venue* v, std::uint8_t venue_id, std::int64_t ts) noexcept {
    std::int64_t arrive =
        v ? ts + jitter(v->spec.latency.order_entry_ns, v->spec.latency.jitter_fraction) : ts;
    if (spec.fifo_order_entry) {
      std::int64_t& last = last_entry_arrival[venue_id & 63];
      arrive = std::max(arrive, last);
      last = arrive;
    }
    return arrive;
  }

  // Returns the venue an open or in-flight agent order goes to (0xFF when unknown).
  std::uint8_t agent_venue(std::uint64_t client_id) const noexcept {
    if (auto it = agents.find(client_id); it != agents.end()) return it->second.order.venue_id;
    std::uint8_t venue_id = 0xFF;
    for (const AgentOrder& o : in_flight) {
      if (o.client_order_id == client_id) venue_id = o.venue_id;
    }
    return venue_id;
  }

  void replace(std::uint64_t client_id, std::int64_t quantity, std::int64_t price_ticks,
               std::int64_t ts_send) {
    const std::uint8_t venue_id = agent_venue(client_id);
    Venue* v = venue_of(venue_id);
    std::size_t slot;
    const PendingReplace r{client_id, quantity, price_ticks, venue_id};
    if (!replaces_free.empty()) {
      slot = replaces_free.back();
      replaces_free.pop_back();
      replaces[slot] = r;
    } else {
      slot = replaces.size();
      replaces.push_back(r);
    }
    const std::int64_t arrive = entry_arrival(v, venue_id, std::max(ts_send, now));
    schedule(Timed{arrive, 0, slot, 0, 0, venue_id, TimedKind::kAgentReplace, Side::kNone});
  }

  // Takes an open agent order off its venue (book, midpoint pegs or dark pool); no report.
  void unrest(AgentState& a, Venue& v) {
    const std::uint32_t i = a.order.instrument_id;
    if (a.resting) {
      MdEvent e{};
      e.kind = EventKind::kDelete;
      e.order_id = a.venue_order_id;
      e.instrument_id = i;
      e.side = a.order.side;
      emit(v, e);
      agent_by_venue_order.erase(a.venue_order_id);
      a.resting = false;
      a.venue_order_id = 0;
      return;
    }
    const std::uint64_t client_id = a.order.client_order_id;
    if (v.spec.kind == VenueKind::kDark) {
      auto& orders = v.dark[i].orders;
      for (std::size_t n = 0; n < orders.size(); ++n) {
        if (orders[n].client_id == client_id) {
          orders.erase(orders.begin() + static_cast<std::ptrdiff_t>(n));
          break;
        }
      }
    } else {
      auto& pegs = v.lit[i].pegs;
      pegs.erase(std::remove(pegs.begin(), pegs.end(), client_id), pegs.end());
    }
  }

  // Rests the open quantity of agent order `a` on lit venue `v` as a new displayed order.
  void rest_lit(AgentState& a, Venue& v) {
    const std::uint64_t venue_order_id = kAgentIdBit | next_agent_venue_order++;
    a.venue_order_id = venue_order_id;
    a.resting = true;
    agent_by_venue_order[venue_order_id] = a.order.client_order_id;
    MdEvent e{};
    e.kind = EventKind::kAdd;
    e.order_id = venue_order_id;
    e.side = a.order.side;
    e.price_ticks = a.order.price_ticks;
    e.quantity = a.leaves;
    e.instrument_id = a.order.instrument_id;
    emit(v, e);
  }

  void agent_replace_arrive(std::size_t slot) {
    const PendingReplace r = replaces[slot];
    replaces_free.push_back(slot);
    auto it = agents.find(r.client_id);
    if (it == agents.end()) {
      AgentOrder o{};
      o.client_order_id = r.client_id;
      o.venue_id = r.venue_id;
      o.price_ticks = r.price_ticks;
      return reject(o, SimRejectReason::kUnknownOrder);
    }
    AgentState& a = it->second;
    Venue& v = *venue_of(a.order.venue_id);
    auto refuse = [&](SimRejectReason reason) {
      report(a, SimReportKind::kRejected, a.order.price_ticks, 0, 0.0, static_cast<std::uint8_t>(reason));
    };
    if (closed) return refuse(SimRejectReason::kSessionClosed);
    const bool dark = v.spec.kind == VenueKind::kDark;
    const SimOrderType type = a.order.type;
    if (r.quantity <= 0) return refuse(SimRejectReason::kBadQuantity);
    const bool needs_price = type == SimOrderType::kLimit || type == SimOrderType::kIoc ||
                             type == SimOrderType::kPostOnly;
    if (r.price_ticks < 0 || (needs_price && r.price_ticks == 0) ||
        (!dark && type != SimOrderType::kMidpointPeg && r.price_ticks % v.spec.tick_size_ticks != 0)) {
      return refuse(SimRejectReason::kBadPrice);
    }
    const std::uint32_t i = a.order.instrument_id;
    const Side side = a.order.side;
    const std::int64_t new_leaves = r.quantity - (a.order.quantity - a.leaves);
    // Same price and no more shares: the order keeps its place in the queue.
    const bool keeps_priority = r.price_ticks == a.order.price_ticks && new_leaves <= a.leaves;
    const bool marketable_lit = [&] {
      if (dark || !a.resting) return false;
      const PriceLadder* contra = v.book->ladder(i, opposite(side));
      if (!contra || contra->empty()) return false;
      const std::int64_t best = contra->best()->price_ticks;
      return side == Side::kBuy ? r.price_ticks >= best : r.price_ticks <= best;
    }();
    if (!keeps_priority && type == SimOrderType::kPostOnly && marketable_lit) {
      return refuse(SimRejectReason::kWouldTake);
    }
    const std::int64_t old_leaves = a.leaves;
    a.order.quantity = r.quantity;
    a.order.price_ticks = r.price_ticks;
    a.order.min_quantity = std::min(a.order.min_quantity, std::max<std::int64_t>(new_leaves, 0));
    if (new_leaves <= 0) {  // Replaced down to what is filled: the order is done.
      unrest(a, v);
      a.leaves = 0;
      report(a, SimReportKind::kReplaced, r.price_ticks, 0, 0.0, 0);
      agents.erase(it);
      return;
    }
    if (a.resting) {
      if (keeps_priority) {
        if (new_leaves < old_leaves) {
          MdEvent e{};
          e.kind = EventKind::kCancel;
          e.order_id = a.venue_order_id;
          e.quantity = old_leaves - new_leaves;
          e.instrument_id = i;
          e.side = side;
          emit(v, e);
        }
        a.leaves = new_leaves;
        report(a, SimReportKind::kReplaced, r.price_ticks, 0, 0.0, 0);
        return;
      }
      if (!marketable_lit) {
        const std::uint64_t new_id = kAgentIdBit | next_agent_venue_order++;
        MdEvent e{};
        e.kind = EventKind::kReplace;
        e.order_id = a.venue_order_id;
        e.related_id = new_id;
        e.price_ticks = r.price_ticks;
        e.quantity = new_leaves;
        e.instrument_id = i;
        e.side = side;
        emit(v, e);
        agent_by_venue_order.erase(a.venue_order_id);
        agent_by_venue_order[new_id] = r.client_id;
        a.venue_order_id = new_id;
        a.leaves = new_leaves;
        report(a, SimReportKind::kReplaced, r.price_ticks, 0, 0.0, 0);
        return;
      }
      // A marketable new price: the order leaves the book, takes, and rests what is left.
      unrest(a, v);
      a.leaves = new_leaves;
      report(a, SimReportKind::kReplaced, r.price_ticks, 0, 0.0, 0);
      excite(i);
      take(v, i, side, r.price_ticks, new_leaves, TakerInfo{r.client_id, a.order.tag, false, true});
      auto after = agents.find(r.client_id);
      if (after->second.leaves == 0) {
        agents.erase(after);
        return;
      }
      rest_lit(after->second, v);
      return;
    }
    if (dark) {
      auto& orders = v.dark[i].orders;
      std::size_t n = 0;
      while (n < orders.size() && orders[n].client_id != r.client_id) ++n;
      a.leaves = new_leaves;
      report(a, SimReportKind::kReplaced, r.price_ticks, 0, 0.0, 0);
      if (n == orders.size()) return;  // Not resting (cannot happen for an open dark order).
      HiddenOrder h = orders[n];
      h.quantity = new_leaves;
      h.limit_ticks = r.price_ticks;
      h.min_quantity = a.order.min_quantity;
      if (keeps_priority) {
        orders[n] = h;
        return;
      }
      // A new limit or more shares: to the back of the queue, crossing what it now can.
      orders.erase(orders.begin() + static_cast<std::ptrdiff_t>(n));
      cross_dark(v, i, h, false);
      if (h.quantity == 0) {
        agents.erase(r.client_id);
        return;
      }
      orders.push_back(h);
      return;
    }
    // A midpoint peg on a lit venue: changed in place, to the back unless it keeps priority.
    if (type != SimOrderType::kMidpointPeg) return refuse(SimRejectReason::kUnknownOrder);
    a.leaves = new_leaves;
    if (!keeps_priority) {
      auto& pegs = v.lit[i].pegs;
      pegs.erase(std::remove(pegs.begin(), pegs.end(), r.client_id), pegs.end());
      pegs.push_back(r.client_id);
    }
    report(a, SimReportKind::kReplaced, r.price_ticks, 0, 0.0, 0);
  }

  void agent_cancel_arrive(std::uint64_t client_id, std::uint8_t venue_id) {
    auto it = agents.find(client_id);
    if (it == agents.end()) {
      AgentOrder o{};
      o.client_order_id = client_id;
      o.venue_id = venue_id;
      return reject(o, SimRejectReason::kUnknownOrder);
    }
    AgentState& a = it->second;
    Venue* v = venue_of(a.order.venue_id);
    const std::uint32_t i = a.order.instrument_id;
    if (a.resting) {
      cancel_agent_resting(a.venue_order_id, *v, kCancelRequested);
      return;
    }
    if (v->spec.kind == VenueKind::kDark) {
      auto& orders = v->dark[i].orders;
      for (std::size_t n = 0; n < orders.size(); ++n) {
        if (orders[n].client_id == client_id) {
          orders.erase(orders.begin() + static_cast<std::ptrdiff_t>(n));
          break;
        }
      }
    } else {
      auto& pegs = v->lit[i].pegs;
      pegs.erase(std::remove(pegs.begin(), pegs.end(), client_id), pegs.end());
    }
    a.leaves = 0;
    report(a, SimReportKind::kCancelled, a.order.price_ticks, 0, 0.0, kCancelRequested);
    agents.erase(it);
  }

  // --- the loop -------------------------------------------------------------------------

  void draw_candidate() noexcept {
    std::size_t n = 0;
    double total = 0;
    const double cancel = spec.flow.cancel_rate_per_order_per_s * activity;
    for (std::size_t vi : lit_venues) {
      Venue& v = venues[vi];
      for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
        const double add = v.limit_rate * activity;
        const double can = cancel * static_cast<double>(v.lit[i].live_count);
        rates[n++] = add;
        rates[n++] = can;
        total += add + can;
      }
    }
    for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
      Instrument& ins = instruments[i];
      ins.market.advance(now, spec.flow.hawkes_decay_per_s);
      const double m = spec.flow.market_rate_per_s * activity + ins.market.value;
      rates[n++] = m;
      total += m;
    }
    for (std::size_t vi : dark_venues) {
      Venue& v = venues[vi];
      for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
        const double arrive = v.spec.hidden_arrival_per_s * activity;
        const double leave = static_cast<double>(v.dark[i].background_count) / v.spec.hidden_lifetime_s;
        rates[n++] = arrive;
        rates[n++] = leave;
        total += arrive + leave;
      }
    }
    rate_total = total;
    if (total <= 0) {
      candidate_ts = kNever;
      return;
    }
    const double dt_ns = rng.exponential(1e9 / total);
    candidate_ts = now + std::max<std::int64_t>(1, static_cast<std::int64_t>(dt_ns));
  }

  void fire_candidate() {
    double u = rng.uniform() * rate_total;
    std::size_t n = 0;
    for (std::size_t vi : lit_venues) {
      for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
        if ((u -= rates[n++]) < 0) return lit_add(venues[vi], i);
        if ((u -= rates[n++]) < 0) return lit_cancel(venues[vi], i);
      }
    }
    for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
      const double bound = rates[n];
      if ((u -= rates[n++]) < 0) {
        // Thinning: the excitation decayed since the bound was taken.
        const Instrument& ins = instruments[i];
        const double actual = spec.flow.market_rate_per_s * activity +
                              ins.market.at(now, spec.flow.hawkes_decay_per_s);
        if (rng.uniform() * bound <= actual) return market_order(i);
        ++counters.thinned;
        return;
      }
    }
    for (std::size_t vi : dark_venues) {
      for (std::uint32_t i = 0; i < spec.instrument_count; ++i) {
        if ((u -= rates[n++]) < 0) return dark_arrival(venues[vi], i);
        if ((u -= rates[n++]) < 0) return dark_cancel(venues[vi], i);
      }
    }
    // Rounding left u just above zero: the last category.
    if (!dark_venues.empty()) return dark_cancel(venues[dark_venues.back()], spec.instrument_count - 1);
    market_order(spec.instrument_count - 1);
  }

  void run_until(std::int64_t ts) {
    const std::int64_t end = spec.session_start_ns + spec.session_length_ns;
    while (true) {
      if (candidate_ts == kNever && !closed) draw_candidate();
      const std::int64_t next_timed = timed.empty() ? kNever : timed.top().ts;
      const std::int64_t stochastic = closed ? kNever : std::min(candidate_ts, end);
      const std::int64_t next = std::min(next_timed, stochastic);
      if (next > ts || next == kNever) break;
      if (next_timed <= stochastic) {
        const Timed t = timed.top();
        timed.pop();
        now = std::max(now, t.ts);
        if (closed && t.kind != TimedKind::kAgentArrive && t.kind != TimedKind::kAgentCancel &&
            t.kind != TimedKind::kAgentReplace) {
          continue;
        }
        process_timed(t);
        if (!closed) candidate_ts = kNever;
        continue;
      }
      if (candidate_ts >= end) {
        now = end;
        close_session();
        continue;
      }
      now = candidate_ts;
      fire_candidate();
      candidate_ts = kNever;
    }
    now = std::max(now, ts);
    if (!closed && now >= end) close_session();
  }

  void close_session() {
    closed = true;
    candidate_ts = kNever;
    for (Venue& v : venues) {
      if (v.encoder) v.encoder->system_event('C', now);
    }
  }

  void take_reports(std::vector<SimReport>& out) {
    while (!reports.empty() && reports.top().report.ts_recv <= now) {
      out.push_back(reports.top().report);
      reports.pop();
    }
  }
};

MarketSimulator::MarketSimulator(const MarketSpec& spec) : spec_(spec) {
  if (std::string problem = validate(spec_); !problem.empty()) throw std::invalid_argument(problem);
  impl_ = std::make_unique<Impl>(spec_);
  impl_->build();
}

MarketSimulator::~MarketSimulator() = default;

void MarketSimulator::run_until(std::int64_t ts_ns) noexcept { impl_->run_until(ts_ns); }

std::uint64_t MarketSimulator::run_session() noexcept {
  const std::uint64_t before = impl_->counters.events;
  impl_->run_until(session_end());
  return impl_->counters.events - before;
}

void MarketSimulator::submit(const AgentOrder& order) noexcept { impl_->submit(order); }

void MarketSimulator::cancel(std::uint64_t client_order_id, std::int64_t ts_send) noexcept {
  impl_->cancel(client_order_id, ts_send);
}

void MarketSimulator::replace(std::uint64_t client_order_id, std::int64_t quantity,
                              std::int64_t price_ticks, std::int64_t ts_send) noexcept {
  impl_->replace(client_order_id, quantity, price_ticks, ts_send);
}

void MarketSimulator::take_reports(std::vector<SimReport>& out) { impl_->take_reports(out); }

void MarketSimulator::take_trades(std::vector<SimTrade>& out) {
  out.insert(out.end(), impl_->trades.begin(), impl_->trades.end());
  impl_->trades.clear();
}

void MarketSimulator::take_quotes(std::vector<QuoteSample>& out, std::vector<std::int64_t>& depth_out) {
  out.insert(out.end(), impl_->quotes.begin(), impl_->quotes.end());
  depth_out.insert(depth_out.end(), impl_->depth_rows.begin(), impl_->depth_rows.end());
  impl_->quotes.clear();
  impl_->depth_rows.clear();
}

void MarketSimulator::take_feed(std::uint8_t venue_id, std::vector<std::uint8_t>& out) {
  Impl::Venue* v = impl_->venue_of(venue_id);
  if (!v || !v->encoder) return;
  const auto& bytes = v->encoder->bytes();
  out.insert(out.end(), bytes.begin(), bytes.end());
  // The encoder keeps its state (locates, directory); only its byte buffer is handed over.
  v->encoder->clear_bytes();
}

void MarketSimulator::take_events(std::uint8_t venue_id, std::vector<MdEvent>& out) {
  Impl::Venue* v = impl_->venue_of(venue_id);
  if (!v) return;
  out.insert(out.end(), v->events.begin(), v->events.end());
  v->events.clear();
}

std::int64_t MarketSimulator::now() const noexcept { return impl_->now; }
std::size_t MarketSimulator::regime() const noexcept { return impl_->regime; }
const SimCounters& MarketSimulator::counters() const noexcept { return impl_->counters; }

Nbbo MarketSimulator::nbbo(std::uint32_t instrument_id) const noexcept {
  if (instrument_id >= spec_.instrument_count) return Nbbo{};
  return impl_->nbbo(instrument_id);
}

std::size_t MarketSimulator::levels(std::uint8_t venue_id, std::uint32_t instrument_id, Side side,
                                    LevelView* out, std::size_t depth) const noexcept {
  const Impl::Venue* v = impl_->venue_of(venue_id);
  if (!v || !v->book || instrument_id >= spec_.instrument_count) return 0;
  const PriceLadder* l = v->book->ladder(instrument_id, side);
  if (!l) return 0;
  const std::size_t n = std::min(depth, l->size());
  for (std::size_t d = 0; d < n; ++d) {
    const PriceLevel& level = l->at_depth(d);
    out[d] = LevelView{level.price_ticks, level.quantity, level.order_count};
  }
  return n;
}

void MarketSimulator::resting_orders(std::uint8_t venue_id, std::uint32_t instrument_id, Side side,
                                     std::vector<OrderView>& out) const {
  const Impl::Venue* v = impl_->venue_of(venue_id);
  if (!v || !v->book || instrument_id >= spec_.instrument_count) return;
  const PriceLadder* l = v->book->ladder(instrument_id, side);
  if (!l) return;
  std::vector<std::uint64_t> ids;
  for (std::size_t d = 0; d < l->size(); ++d) {
    const PriceLevel& level = l->at_depth(d);
    ids.resize(level.order_count);
    const std::size_t n = v->book->orders_at(instrument_id, side, level.price_ticks, ids.data(), ids.size());
    for (std::size_t k = 0; k < n; ++k) {
      OrderView view{};
      if (v->book->find_order(ids[k], view, false)) out.push_back(view);
    }
  }
}

double MarketSimulator::fundamental(std::uint32_t instrument_id) const noexcept {
  if (instrument_id >= spec_.instrument_count) return 0.0;
  const auto& ins = impl_->instruments[instrument_id];
  return ins.fundamental + ins.latent_shift;
}

std::size_t MarketSimulator::open_agent_orders() const noexcept {
  return impl_->agents.size() + (impl_->in_flight.size() - impl_->in_flight_free.size());
}

std::int64_t MarketSimulator::hidden_quantity(std::uint8_t venue_id, std::uint32_t instrument_id,
                                              Side side) const noexcept {
  const Impl::Venue* v = impl_->venue_of(venue_id);
  if (!v || v->dark.empty() || instrument_id >= spec_.instrument_count) return 0;
  std::int64_t total = 0;
  for (const auto& h : v->dark[instrument_id].orders) {
    if (h.side == side && h.client_id == 0) total += h.quantity;
  }
  return total;
}

}  // namespace sor::sim
