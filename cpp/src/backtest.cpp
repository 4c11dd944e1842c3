#include "sor/backtest.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "sor/consolidated.hpp"
#include "sor/policies.hpp"

namespace sor {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kArrivalWaitStepNs = 10'000'000;
// Bounds the market data buffered between two pumps during the warm-up.
constexpr std::int64_t kMaxStepNs = 1'000'000'000;

std::int64_t floor_to(std::int64_t price, std::int64_t tick) {
  return price >= 0 ? price / tick * tick : -((-price + tick - 1) / tick) * tick;
}
std::int64_t ceil_to(std::int64_t price, std::int64_t tick) {
  return -floor_to(-price, tick);
}

struct ChildState {
  std::int64_t leaves = 0;
  bool cancel_sent = false;
  bool reported = false;  // the first order report (latency sample) arrived
  bool done = false;
};

class Run {
 public:
  Run(const BacktestSpec& spec, ExecutionPolicy& policy, const PolicyModels& models)
      : spec_(spec),
        market_(with_recording(spec.market)),
        options_(spec.features.venues.empty() ? feature_options_for(spec.market, spec.features)
                                              : spec.features),
        book_(book_venues(options_)),
        features_(options_),
        policy_(policy),
        models_(models),
        sim_(market_) {
    venues_ = spec.venues.empty() ? policy_venues(spec.market) : spec.venues;
    std::fill(std::begin(venue_slot_), std::end(venue_slot_), -1);
    for (const PolicyVenue& v : venues_) venue_slot_[v.venue_id] = static_cast<int>(&v - venues_.data());
    for (const auto& v : market_.venues) market_venue_ids_.push_back(v.venue_id);
    now_ = market_.session_start_ns;
    lot_ = spec.lot_shares > 0 ? spec.lot_shares : market_.flow.lot_shares;
    adv_ = spec.adv_shares > 0 ? spec.adv_shares : options_.default_adv_shares;
    features_.set_adv(spec.instrument_id, adv_);
    open_view_.reserve(1024);
    open_ids_.reserve(1024);
    pending_.reserve(1 << 16);
    scratch_events_.reserve(1 << 14);
    result_.policy_name = policy.name();
    result_.venues = venues_;
    result_.price_tick_usd = market_.price_tick_usd;
    result_.seed = market_.seed;
  }

  BacktestResult run() {
    begin();
    while (!done()) {
      PolicyOutput& out = output_;
      out.child_count = 0;
      out.cancel_count = 0;
      out.next_decision_ns = 0;
      const PolicyView view = make_view(t_);
      policy_.decide(view, out);
      step(out);
    }
    return finish_run();
  }

  // Advances to the parent's arrival (two-sided book) and resets the policy.
  void begin() {
    const std::int64_t open = market_.session_start_ns;
    std::int64_t start = open + spec_.start_offset_ns;
    next_mid_ns_ = std::max(open, start - spec_.mid_lookback_ns);
    tape_from_ns_ = start;
    advance_to(start);
    // A one-sided book at arrival is rare: wait for two sides, as a trader would.
    const std::int64_t wait_until = start + spec_.max_arrival_wait_ns;
    while (!two_sided(book_.nbbo(spec_.instrument_id)) && now_ < wait_until) {
      advance_to(now_ + kArrivalWaitStepNs);
    }
    start = now_;
    const std::int64_t end = start + spec_.horizon_ns;
    const Nbbo seen = book_.nbbo(spec_.instrument_id);
    const Nbbo truth = sim_.nbbo(spec_.instrument_id);

    ParentState& p = parent_;
    p.parent_order_id = spec_.parent_order_id;
    p.instrument_id = spec_.instrument_id;
    p.side = spec_.side;
    p.quantity = spec_.quantity;
    p.filled = 0;
    p.open_quantity = 0;
    p.limit_price_ticks = spec_.limit_price_ticks;
    p.start_ns = start;
    p.end_ns = end;
    p.arrival_mid_ticks = mid_of(seen);
    p.adv_shares = adv_;
    p.lot_shares = lot_;
    result_.arrival_mid_ticks = p.arrival_mid_ticks;
    result_.true_arrival_mid_ticks = mid_of(truth);
    result_.start_ns = start;
    result_.end_ns = end;
    volume_cursor_ = 0;
    printed_volume_ = 0;
    policy_.reset(p, venues_.data(), venues_.size());
    t_ = start;
  }

  // Returns true when the horizon is reached or the parent is filled.
  bool done() const noexcept { return t_ >= parent_.end_ns || parent_.filled >= parent_.quantity; }

  // Returns the policy's view at the current decision time.
  PolicyView current_view() { return make_view(t_); }

  // Applies one decision's output and advances to the next decision time.
  void step(const PolicyOutput& out) {
    ++result_.counters.decisions;
    apply_output(out, false);
    const std::int64_t start = parent_.start_ns;
    const std::int64_t k = (t_ - start) / spec_.decision_interval_ns + 1;
    std::int64_t next = start + k * spec_.decision_interval_ns;
    if (out.next_decision_ns > t_ && out.next_decision_ns < next) next = out.next_decision_ns;
    next = std::min(next, parent_.end_ns);
    advance_to(next);
    t_ = next;
  }

  // Sweeps what is left (when configured), runs the markout tail and returns the result.
  BacktestResult finish_run() {
    ParentState& p = parent_;
    const std::int64_t start = p.start_ns;
    const std::int64_t end = p.end_ns;
    if (p.filled < p.quantity) finish();
    result_.finished_ns = now_;
    const Nbbo last = sim_.nbbo(spec_.instrument_id);
    result_.end_mid_ticks = two_sided(last) ? mid_of(last) : last_valid_mid_;
    advance_to(std::max(now_, end) + spec_.markout_tail_ns);

    double notional = 0;
    std::int64_t volume = 0;
    std::int64_t own = 0;
    for (const sim::SimTrade& trade : tape_) {
      if (trade.ts_event < start || trade.ts_event > end) continue;
      if (trade.agent != 0) {
        own += trade.quantity;
        continue;
      }
      volume += trade.quantity;
      notional += static_cast<double>(trade.price_ticks) * static_cast<double>(trade.quantity);
    }
    result_.market_volume_shares = volume;
    result_.own_tape_volume_shares = own;
    result_.market_vwap_ticks = volume > 0 ? notional / static_cast<double>(volume) : kNaN;
    result_.parent = p;
    result_.filled = p.filled;
    return std::move(result_);
  }

 // Returns the fills recorded so far.
  const std::vector<BacktestFill>& fills() const noexcept { return result_.fills; }
  // Returns the parent order.
  const ParentState& parent() const noexcept { return parent_; }
  // Returns the market's USD per price tick.
  double price_tick_usd() const noexcept { return market_.price_tick_usd; }
  // Returns the venues the policy sees.
  const std::vector<PolicyVenue>& venues() const noexcept { return venues_; }

 private:
  std::int64_t t_ = 0;
  static sim::MarketSpec with_recording(const sim::MarketSpec& market) {
    sim::MarketSpec m = market;
    m.record_events = true;
    m.record_trades = true;
    m.record_feeds = false;
    m.quote_sample_interval_ns = 0;
    return m;
  }
  static bool two_sided(const Nbbo& q) {
    return q.bid_price_ticks > 0 && q.ask_price_ticks > q.bid_price_ticks;
  }
  static double mid_of(const Nbbo& q) {
    return two_sided(q) ? 0.5 * static_cast<double>(q.bid_price_ticks + q.ask_price_ticks) : kNaN;
  }

  PolicyView make_view(std::int64_t t) {
    open_view_.clear();
    for (std::uint64_t id : open_ids_) {
      const BacktestChild& c = result_.children[id - 1];
      const ChildState& s = state_[id - 1];
      open_view_.push_back(OpenChild{c.child_id, c.venue_id, c.type, c.price_ticks, c.quantity,
                                     s.leaves, c.sent_ns, s.cancel_sent});
    }
    for (; volume_cursor_ < tape_.size(); ++volume_cursor_) {
      const sim::SimTrade& trade = tape_[volume_cursor_];
      if (trade.ts_event >= parent_.start_ns) printed_volume_ += trade.quantity;
    }
    PolicyView view{};
    view.now_ns = t;
    view.book = &book_;
    view.features = &features_;
    view.parent = &parent_;
    view.open_children = open_view_.data();
    view.open_child_count = open_view_.size();
    view.venues = venues_.data();
    view.venue_count = venues_.size();
    view.models = models_;
    view.market_volume_shares = static_cast<double>(printed_volume_);
    return view;
  }

  // Moves the clock to `until`, sampling the true mid on its grid and pumping market data,
  // the tape and the reports at every stop.
  void advance_to(std::int64_t until) {
    while (now_ < until) {
      std::int64_t next = std::min(until, now_ + kMaxStepNs);
      const bool sample = next_mid_ns_ <= next;
      if (sample) next = std::max(next_mid_ns_, now_);
      if (next > now_) sim_.run_until(next);
      now_ = std::max(now_, next);
      if (sample) {
        const Nbbo q = sim_.nbbo(spec_.instrument_id);
        const double mid = mid_of(q);
        if (!std::isnan(mid)) last_valid_mid_ = mid;
        result_.mids.push_back(MidSample{next_mid_ns_, q.bid_price_ticks, q.ask_price_ticks, mid});
        next_mid_ns_ += spec_.mid_sample_interval_ns;
      }
      pump();
    }
  }

  void pump() {
    // The market data the router has seen by now, in arrival order (as the dataset builder).
    for (std::uint8_t venue_id : market_venue_ids_) {
      sim_.take_events(venue_id, scratch_events_);
      pending_.insert(pending_.end(), scratch_events_.begin(), scratch_events_.end());
      scratch_events_.clear();
    }
    std::stable_sort(pending_.begin(), pending_.end(),
                     [](const MdEvent& a, const MdEvent& b) { return a.ts_recv < b.ts_recv; });
    std::size_t n = 0;
    for (; n < pending_.size() && pending_[n].ts_recv <= now_; ++n) {
      const MdEvent& e = pending_[n];
      if (book_.apply(e) == Status::kOk) {
        features_.on_event(e, book_);
        ++result_.counters.md_events;
      } else {
        ++result_.counters.book_errors;
      }
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));

    sim_.take_trades(scratch_trades_);
    for (const sim::SimTrade& trade : scratch_trades_) {
      if (trade.instrument_id == spec_.instrument_id && trade.ts_event >= tape_from_ns_) {
        tape_.push_back(trade);
      }
    }
    scratch_trades_.clear();
    process_reports();
  }

  void process_reports() {
    sim_.take_reports(reports_);
    for (const sim::SimReport& r : reports_) {
      const std::uint64_t id = r.client_order_id;
      if (id == 0 || id > state_.size()) continue;
      BacktestChild& c = result_.children[id - 1];
      ChildState& s = state_[id - 1];
      const bool cancel_reject =
          r.kind == sim::SimReportKind::kRejected &&
          r.detail == static_cast<std::uint8_t>(sim::SimRejectReason::kUnknownOrder);
      if (cancel_reject) {
        // The cancel arrived before the order (jitter) or after it finished.
        ++result_.counters.cancel_rejects;
        if (!s.done) s.cancel_sent = false;
        continue;
      }
      if (s.done) continue;
      if (!s.reported) {
        s.reported = true;
        features_.on_latency_sample(c.venue_id, r.ts_recv - c.sent_ns);
      }
      switch (r.kind) {
        case sim::SimReportKind::kFill: {
          const std::int64_t q = std::min(r.quantity, s.leaves);
          s.leaves -= q;
          c.filled += q;
          c.fee_usd += r.fee_usd;
          parent_.filled += q;
          parent_.open_quantity -= q;
          result_.fees_usd += r.fee_usd;
          result_.fills.push_back(BacktestFill{r.ts_recv, id, r.price_ticks, q, r.fee_usd,
                                               c.venue_id, c.type,
                                               static_cast<sim::SimLiquidity>(r.detail), c.swept,
                                               {0, 0, 0, 0}});
          policy_.on_fill(ChildFill{id, c.venue_id, c.type, r.price_ticks, q, r.ts_recv, r.fee_usd});
          if (r.leaves_quantity == 0 || s.leaves == 0) finish_child(id, r.ts_recv);
          break;
        }
        case sim::SimReportKind::kCancelled:
          finish_child(id, r.ts_recv);
          break;
        case sim::SimReportKind::kRejected:
          c.rejected = true;
          c.reject_reason = static_cast<sim::SimRejectReason>(r.detail);
          ++result_.counters.children_rejected;
          finish_child(id, r.ts_recv);
          break;
        default:
          break;
      }
    }
    reports_.clear();
  }

  void finish_child(std::uint64_t id, std::int64_t ts) {
    BacktestChild& c = result_.children[id - 1];
    ChildState& s = state_[id - 1];
    parent_.open_quantity -= s.leaves;
    s.leaves = 0;
    s.done = true;
    c.done_ns = ts;
    open_ids_.erase(std::find(open_ids_.begin(), open_ids_.end(), id));
    if (!c.rejected) {
      features_.on_child_done(c.venue_id, spec_.side, c.type, c.quantity, c.filled);
    }
    policy_.on_child_done(id, c.venue_id, c.type, c.quantity, c.filled);
  }

  // Turns a policy's output into cancels and orders; returns the shares sent.
  std::int64_t apply_output(const PolicyOutput& out, bool swept) {
    for (std::size_t n = 0; n < std::min(out.cancel_count, kMaxPolicyRequests); ++n) {
      const std::uint64_t id = out.cancels[n];
      if (id == 0 || id > state_.size() || state_[id - 1].done || state_[id - 1].cancel_sent) {
        ++result_.counters.cancels_ignored;
        continue;
      }
      send_cancel(id);
    }
    std::int64_t sent = 0;
    for (std::size_t n = 0; n < std::min(out.child_count, kMaxPolicyRequests); ++n) {
      ++result_.counters.child_requests;
      sent += send_child(out.children[n], swept);
    }
    return sent;
  }

  void send_cancel(std::uint64_t id) {
    sim_.cancel(id, now_);
    state_[id - 1].cancel_sent = true;
    ++result_.counters.cancels_sent;
  }

  std::int64_t refuse() {
    ++result_.counters.requests_refused;
    return 0;
  }

  std::int64_t send_child(const ChildRequest& request, bool swept) {
    const int slot = venue_slot_[request.venue_id];
    if (slot < 0) return refuse();
    const PolicyVenue& venue = venues_[static_cast<std::size_t>(slot)];
    const bool buy = spec_.side == Side::kBuy;
    const std::int64_t tick = venue.lit ? std::max<std::int64_t>(venue.tick_size_ticks, 1) : 1;
    const std::int64_t free = parent_.quantity - parent_.filled - parent_.open_quantity;
    if (request.quantity <= 0 || free <= 0 || request.price_ticks < 0) return refuse();
    const Nbbo q = book_.nbbo(spec_.instrument_id);
    const std::int64_t far = buy ? q.ask_price_ticks : q.bid_price_ticks;
    const std::int64_t near = buy ? q.bid_price_ticks : q.ask_price_ticks;
    sim::SimOrderType type;
    std::int64_t price = request.price_ticks;
    switch (request.type) {
      case ChildOrderType::kTake:
        type = sim::SimOrderType::kIoc;
        if (price == 0) {
          if (far <= 0) return refuse();
          // A buy limit rounds up to the venue's grid (still marketable), a sell down.
          price = buy ? ceil_to(far, tick) : floor_to(far, tick);
        }
        break;
      case ChildOrderType::kPost:
        if (!venue.lit) return refuse();
        type = sim::SimOrderType::kPostOnly;
        if (price == 0) {
          if (near <= 0) return refuse();
          price = buy ? floor_to(near, tick) : ceil_to(near, tick);
        }
        break;
      case ChildOrderType::kMidpoint:
        type = sim::SimOrderType::kMidpointPeg;
        break;
      default:
        return refuse();
    }
    if (venue.lit && price != 0 && price % tick != 0) return refuse();
    bool clipped = false;
    const std::int64_t limit = parent_.limit_price_ticks;
    if (limit > 0) {
      if (price == 0) {
        price = limit;  // an unlimited peg gets the parent's limit
      } else if (buy ? price > limit : price < limit) {
        price = buy ? floor_to(limit, tick) : ceil_to(limit, tick);
        clipped = true;
      }
      if (price <= 0) return refuse();
    }
    std::int64_t quantity = request.quantity;
    if (quantity > free) {
      quantity = free;
      clipped = true;
    }
    if (clipped) ++result_.counters.requests_clipped;

    const std::uint64_t id = result_.children.size() + 1;
    sim::AgentOrder order{};
    order.ts_send = now_;
    order.client_order_id = id;
    order.price_ticks = price;
    order.quantity = quantity;
    order.tag = spec_.parent_order_id;
    order.instrument_id = spec_.instrument_id;
    order.venue_id = request.venue_id;
    order.type = type;
    order.side = spec_.side;
    BacktestChild record{};
    record.child_id = id;
    record.price_ticks = price;
    record.quantity = quantity;
    record.sent_ns = now_;
    record.venue_id = request.venue_id;
    record.type = request.type;
    record.swept = swept;
    result_.children.push_back(record);
    ChildState state;
    state.leaves = quantity;
    state_.push_back(state);
    open_ids_.push_back(id);
    parent_.open_quantity += quantity;
    ++result_.counters.children_sent;
    sim_.submit(order);
    return quantity;
  }

  // Cancels every open resting child and waits for every open child to finish (IOCs finish
  // by themselves; cancels that arrived before their order are sent again).
  void settle() {
    const std::int64_t until = now_ + spec_.settle_timeout_ns;
    while (!open_ids_.empty() && now_ < until) {
      for (std::size_t n = 0; n < open_ids_.size(); ++n) {
        const std::uint64_t id = open_ids_[n];
        if (!state_[id - 1].cancel_sent && result_.children[id - 1].type != ChildOrderType::kTake) {
          send_cancel(id);
        }
      }
      advance_to(now_ + spec_.settle_step_ns);
    }
  }

  void finish() {
    settle();
    if (!spec_.finish_at_horizon) return;
    for (std::int32_t round = 0; round < spec_.max_sweep_rounds; ++round) {
      const std::int64_t remaining = parent_.quantity - parent_.filled - parent_.open_quantity;
      if (remaining <= 0 && open_ids_.empty()) return;
      if (remaining <= 0) {
        settle();
        continue;
      }
      ++result_.counters.sweep_rounds;
      PolicyOutput& out = output_;
      out.child_count = 0;
      out.cancel_count = 0;
      out.next_decision_ns = 0;
      const PolicyView view = make_view(now_);
      add_best_price_takes(view, remaining, static_cast<std::size_t>(spec_.sweep_depth_levels),
                           out);
      if (apply_output(out, true) == 0) {
        advance_to(now_ + spec_.sweep_wait_ns);
        continue;
      }
      settle();
    }
  }

  const BacktestSpec spec_;  // a copy: a session outlives the caller's spec
  sim::MarketSpec market_;
  FeatureOptions options_;
  ConsolidatedBook book_;
  FeatureEngine features_;
  ExecutionPolicy& policy_;
  PolicyModels models_;
  sim::MarketSimulator sim_;
  std::vector<PolicyVenue> venues_;
  int venue_slot_[256] = {};
  std::vector<std::uint8_t> market_venue_ids_;
  std::int64_t lot_ = 100;
  double adv_ = 0;
  std::int64_t now_ = 0;
  std::int64_t next_mid_ns_ = 0;
  std::int64_t tape_from_ns_ = 0;
  double last_valid_mid_ = kNaN;
  ParentState parent_{};
  PolicyOutput output_;
  std::vector<OpenChild> open_view_;
  std::vector<std::uint64_t> open_ids_;
  std::vector<ChildState> state_;
  std::vector<MdEvent> pending_;
  std::vector<MdEvent> scratch_events_;
  std::vector<sim::SimTrade> scratch_trades_;
  std::vector<sim::SimTrade> tape_;
  std::vector<sim::SimReport> reports_;
  std::size_t volume_cursor_ = 0;
  std::int64_t printed_volume_ = 0;
  BacktestResult result_;
};

}  // namespace

std::vector<PolicyVenue> policy_venues(const sim::MarketSpec& market) {
  std::vector<PolicyVenue> out;
  std::uint32_t rank = 0;
  for (const sim::VenueSpec& v : market.venues) {
    PolicyVenue p{};
    p.venue_id = v.venue_id;
    p.lit = v.kind == sim::VenueKind::kLit;
    p.tick_size_ticks = v.tick_size_ticks;
    p.maker_fee_usd_per_share = v.maker_fee_usd_per_share;
    p.taker_fee_usd_per_share = v.taker_fee_usd_per_share;
    p.midpoint_fee_usd_per_share = v.midpoint_fee_usd_per_share;
    p.latency_ns = v.latency.order_entry_ns + v.latency.ack_ns;
    p.static_rank = rank++;
    out.push_back(p);
  }
  return out;
}

FeatureOptions feature_options_for(const sim::MarketSpec& market, const FeatureOptions& settings) {
  FeatureOptions options = settings;
  options.venues.clear();
  for (const sim::VenueSpec& v : market.venues) {
    FeatureVenueSpec f;
    f.venue_id = v.venue_id;
    f.lit = v.kind == sim::VenueKind::kLit;
    f.book_type = BookType::kL3;
    f.maker_fee_usd_per_share = v.maker_fee_usd_per_share;
    f.taker_fee_usd_per_share = v.taker_fee_usd_per_share;
    f.midpoint_fee_usd_per_share = v.midpoint_fee_usd_per_share;
    f.latency_ns = v.latency.order_entry_ns + v.latency.ack_ns;
    options.venues.push_back(f);
  }
  options.price_tick_usd = market.price_tick_usd;
  options.max_instruments = std::max<std::uint32_t>(market.instrument_count, 1);
  return options;
}

std::string validate(const BacktestSpec& spec) {
  if (std::string problem = sim::validate(spec.market); !problem.empty()) {
    return "market: " + problem;
  }
  if (spec.instrument_id >= spec.market.instrument_count) {
    return "instrument_id: must be below the market's instrument_count (" +
           std::to_string(spec.market.instrument_count) + ")";
  }
  if (spec.side != Side::kBuy && spec.side != Side::kSell) return "side: must be buy or sell";
  if (spec.quantity <= 0) return "quantity: must be > 0 shares";
  if (spec.limit_price_ticks < 0) return "limit_price_ticks: must be >= 0 (0: no limit)";
  if (spec.start_offset_ns < 0) return "start_offset_ns: must be >= 0";
  if (spec.horizon_ns <= 0) return "horizon_ns: must be > 0";
  if (spec.decision_interval_ns <= 0) return "decision_interval_ns: must be > 0";
  if (spec.markout_tail_ns < 0) return "markout_tail_ns: must be >= 0";
  if (spec.mid_sample_interval_ns <= 0) return "mid_sample_interval_ns: must be > 0";
  if (spec.mid_lookback_ns < 0) return "mid_lookback_ns: must be >= 0";
  if (spec.max_arrival_wait_ns < 0) return "max_arrival_wait_ns: must be >= 0";
  if (spec.max_sweep_rounds < 0) return "max_sweep_rounds: must be >= 0";
  if (spec.sweep_wait_ns <= 0) return "sweep_wait_ns: must be > 0";
  if (spec.sweep_depth_levels < 1 ||
      spec.sweep_depth_levels > static_cast<std::int64_t>(kMaxBestPriceLevels)) {
    return "sweep_depth_levels: must be in [1, " + std::to_string(kMaxBestPriceLevels) + "]";
  }
  if (spec.settle_timeout_ns < 0) return "settle_timeout_ns: must be >= 0";
  if (spec.settle_step_ns <= 0) return "settle_step_ns: must be > 0";
  if (!(spec.adv_shares >= 0) || !std::isfinite(spec.adv_shares)) {
    return "adv_shares: must be finite and >= 0 (0: the feature default)";
  }
  if (spec.lot_shares < 0) return "lot_shares: must be >= 0 (0: the market's lot)";
  const std::int64_t needed = spec.start_offset_ns + spec.max_arrival_wait_ns + spec.horizon_ns +
                              spec.markout_tail_ns;
  if (needed > spec.market.session_length_ns) {
    return "horizon_ns: start_offset_ns + max_arrival_wait_ns + horizon_ns + markout_tail_ns (" +
           std::to_string(needed) + " ns) is longer than the session (" +
           std::to_string(spec.market.session_length_ns) + " ns)";
  }
  if (spec.market.venues.size() > kMaxPolicyVenues) {
    return "market: more than " + std::to_string(kMaxPolicyVenues) + " venues";
  }
  for (std::size_t n = 0; n < spec.venues.size(); ++n) {
    const PolicyVenue& v = spec.venues[n];
    bool known = false;
    for (const sim::VenueSpec& m : spec.market.venues) known = known || m.venue_id == v.venue_id;
    if (!known) return "venues[" + std::to_string(n) + "]: venue " +
                       std::to_string(v.venue_id) + " is not a venue of the market";
    for (std::size_t k = 0; k < n; ++k) {
      if (spec.venues[k].venue_id == v.venue_id) {
        return "venues[" + std::to_string(n) + "]: venue " + std::to_string(v.venue_id) +
               " given twice";
      }
    }
    if (v.tick_size_ticks <= 0) return "venues[" + std::to_string(n) + "]: tick_size_ticks must be > 0";
  }
  const FeatureOptions options = spec.features.venues.empty()
                                     ? feature_options_for(spec.market, spec.features)
                                     : spec.features;
  if (const char* problem = validate(options); problem[0] != '\0') {
    return std::string("features: ") + problem;
  }
  return "";
}

struct BacktestSession::Impl {
  Impl(const BacktestSpec& spec, ExecutionPolicy& policy, const PolicyModels& models)
      : run(spec, policy, models) {}
  Run run;
};

BacktestSession::BacktestSession(const BacktestSpec& spec, ExecutionPolicy& policy,
                                 const PolicyModels& models) {
  if (std::string problem = validate(spec); !problem.empty()) throw std::invalid_argument(problem);
  impl_ = std::make_unique<Impl>(spec, policy, models);
}
BacktestSession::~BacktestSession() = default;
void BacktestSession::begin() { impl_->run.begin(); }
bool BacktestSession::done() const noexcept { return impl_->run.done(); }
PolicyView BacktestSession::view() { return impl_->run.current_view(); }
void BacktestSession::step(const PolicyOutput& output) { impl_->run.step(output); }
BacktestResult BacktestSession::finish() { return impl_->run.finish_run(); }
const std::vector<BacktestFill>& BacktestSession::fills() const noexcept { return impl_->run.fills(); }
const ParentState& BacktestSession::parent() const noexcept { return impl_->run.parent(); }
double BacktestSession::price_tick_usd() const noexcept { return impl_->run.price_tick_usd(); }
const std::vector<PolicyVenue>& BacktestSession::venues() const noexcept { return impl_->run.venues(); }

BacktestResult run_backtest(const BacktestSpec& spec, ExecutionPolicy& policy,
                            const PolicyModels& models) {
  if (std::string problem = validate(spec); !problem.empty()) {
    throw std::invalid_argument(problem);
  }
  Run run(spec, policy, models);
  return run.run();
}

}  // namespace sor
