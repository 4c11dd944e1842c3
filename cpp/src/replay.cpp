#include "sor/replay.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <utility>

namespace sor::sim {
namespace {

constexpr std::int64_t kUnset = INT64_MIN;
constexpr std::uint32_t kBookInstruments = 1u << 20;

Side opposite(Side side) noexcept { return side == Side::kBuy ? Side::kSell : Side::kBuy; }

// Ordering of the action heap: std::push_heap builds a max-heap, so "less" means "later".
struct ActionLater {
  template <class A>
  bool operator()(const A& a, const A& b) const noexcept {
    return a.ts != b.ts ? a.ts > b.ts : a.seq > b.seq;
  }
};

std::string format(const char* fmt, long long a, long long b = 0, long long c = 0) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, fmt, a, b, c);
  return buffer;
}

}  // namespace

std::string validate(const ReplayOptions& o) {
  if (o.venues.empty()) return "venues must hold at least one venue";
  if (o.venues.size() > kMaxReplayVenues) return "venues must hold at most 64 venues";
  for (std::size_t i = 0; i < o.venues.size(); ++i) {
    const ReplayVenueOptions& v = o.venues[i];
    const std::string at = "venues[" + std::to_string(i) + "].";
    if (v.order_entry_latency_ns < 0) return at + "order_entry_latency_ns must be >= 0";
    if (v.ack_latency_ns < 0) return at + "ack_latency_ns must be >= 0";
    if (v.market_data_latency_ns < 0) return at + "market_data_latency_ns must be >= 0";
    if (v.latency_jitter_ns < 0) return at + "latency_jitter_ns must be >= 0";
    if (v.tick_size_ticks < 1) return at + "tick_size_ticks must be >= 1";
    if (!std::isfinite(v.maker_fee_usd_per_share) || !std::isfinite(v.taker_fee_usd_per_share)) {
      return at + "fees must be finite";
    }
  }
  if (o.queue_model > QueueModel::kFifo) return "queue_model is not a known model";
  if (o.impact_model > ImpactModel::kPropagator) return "impact_model is not a known model";
  const PropagatorOptions& p = o.propagator;
  if (!std::isfinite(p.eta_ticks) || p.eta_ticks < 0) return "propagator.eta_ticks must be >= 0";
  if (!(p.delta > 0 && p.delta <= 1)) return "propagator.delta must be in (0, 1]";
  if (!(p.beta >= 0 && p.beta <= 2)) return "propagator.beta must be in [0, 2]";
  if (!(p.t0_ns > 0) || !std::isfinite(p.t0_ns)) return "propagator.t0_ns must be > 0";
  if (!(p.permanent_fraction >= 0 && p.permanent_fraction <= 1)) {
    return "propagator.permanent_fraction must be in [0, 1]";
  }
  if (!(p.daily_volume_shares > 0) || !std::isfinite(p.daily_volume_shares)) {
    return "propagator.daily_volume_shares must be > 0";
  }
  return "";
}

const char* load_error_name(LoadError error) noexcept {
  switch (error) {
    case LoadError::kOk: return "ok";
    case LoadError::kUnknownVenue: return "unknown_venue";
    case LoadError::kVenueMismatch: return "venue_mismatch";
    case LoadError::kUnsorted: return "unsorted";
    case LoadError::kBookRejected: return "book_rejected";
    case LoadError::kAlreadyLoaded: return "already_loaded";
    case LoadError::kAlreadyStarted: return "already_started";
  }
  return "unknown_error";
}

ReplayMarket::Venue::Venue(std::uint8_t id, std::uint64_t seed)
    : book(id), seen(id), md_random(seed) {}

ReplayMarket::ReplayMarket(ReplayOptions options)
    : options_(std::move(options)),
      entry_random_(options_.seed * 3 + 1),
      report_random_(options_.seed * 3 + 2) {
  venues_.reserve(options_.venues.size());
  for (std::size_t i = 0; i < options_.venues.size(); ++i) {
    venues_.emplace_back(static_cast<std::uint8_t>(i), options_.seed * 3 + 3 + 1000 * i);
  }
  orders_.reserve(1024);
  actions_.reserve(1024);
  reports_.reserve(4096);
  scratch_.reserve(64);
}

LoadResult ReplayMarket::load(std::uint8_t venue_id, const MdEvent* events, std::size_t count) {
  LoadResult r;
  auto fail = [&](LoadError error, std::size_t index, std::string message) {
    r.error = error;
    r.index = index;
    r.message = std::move(message);
    return r;
  };
  if (venue_id >= venues_.size()) {
    return fail(LoadError::kUnknownVenue, 0,
                format("venue %lld is not configured (the options have %lld venues)", venue_id,
                       static_cast<long long>(venues_.size())));
  }
  if (started_) {
    return fail(LoadError::kAlreadyStarted, 0,
                format("venue %lld: streams must be loaded before the first run_until", venue_id));
  }
  Venue& v = venues_[venue_id];
  if (v.loaded) {
    return fail(LoadError::kAlreadyLoaded, 0, format("venue %lld already has a stream", venue_id));
  }
  L3Book check(venue_id);
  std::vector<bool> instruments;
  for (std::size_t i = 0; i < count; ++i) {
    const MdEvent& e = events[i];
    if (e.venue_id != venue_id) {
      return fail(LoadError::kVenueMismatch, i,
                  format("event %lld has venue_id %lld, not %lld", static_cast<long long>(i),
                         e.venue_id, venue_id));
    }
    if (i > 0 && e.ts_event < events[i - 1].ts_event) {
      return fail(LoadError::kUnsorted, i,
                  format("event %lld: ts_event %lld is earlier than the previous event's %lld",
                         static_cast<long long>(i), e.ts_event, events[i - 1].ts_event));
    }
    const Status s = check.apply(e);
    if (s != Status::kOk) {
      r.book_status = s;
      return fail(LoadError::kBookRejected, i,
                  "event " + std::to_string(i) + " does not apply to an L3 book (" +
                      std::string(status_name(s)) + ")");
    }
    if (e.kind != EventKind::kStatus && e.instrument_id < kBookInstruments) {
      if (e.instrument_id >= instruments.size()) instruments.resize(e.instrument_id + 1, false);
      instruments[e.instrument_id] = true;
    }
  }
  v.events.assign(events, events + count);
  v.instruments = std::move(instruments);
  v.loaded = true;
  load_order_.push_back(venue_id);
  return r;
}

void ReplayMarket::start() noexcept {
  started_ = true;
  std::size_t total = 0;
  for (const Venue& v : venues_) total += v.events.size();
  merged_.reserve(total);
  for (std::uint8_t id : load_order_) {
    const auto& events = venues_[id].events;
    merged_.insert(merged_.end(), events.begin(), events.end());
  }
  // Each stream is sorted, so a stable sort keeps load order, then input order, at equal ts.
  std::stable_sort(merged_.begin(), merged_.end(),
                   [](const MdEvent& a, const MdEvent& b) { return a.ts_event < b.ts_event; });
  std::size_t max_instrument = 0;
  for (const Venue& v : venues_) max_instrument = std::max(max_instrument, v.instruments.size());
  impact_.resize(max_instrument);
}

std::int64_t ReplayMarket::next_event_ts() const noexcept {
  if (!started_) {
    std::int64_t first = INT64_MAX;
    for (const Venue& v : venues_) {
      if (!v.events.empty()) first = std::min(first, v.events.front().ts_event);
    }
    return first;
  }
  return cursor_ < merged_.size() ? merged_[cursor_].ts_event : INT64_MAX;
}

std::int64_t ReplayMarket::jitter(Random& random, std::int64_t jitter_ns) noexcept {
  if (jitter_ns <= 0) return 0;
  return static_cast<std::int64_t>(random.below(static_cast<std::uint64_t>(jitter_ns) + 1));
}

void ReplayMarket::push_action(const Action& a) noexcept {
  actions_.push_back(a);
  std::push_heap(actions_.begin(), actions_.end(), ActionLater{});
}

void ReplayMarket::submit(const AgentOrder& order) noexcept {
  ++counters_.orders_submitted;
  std::int64_t ts = order.ts_send;
  if (ts < now_) {
    ts = now_;
    ++counters_.late_sends;
  }
  Venue* v = venue(order.venue_id);
  if (v == nullptr) {
    ++counters_.orders_rejected;
    reject(order, ts, SimRejectReason::kUnknownVenue, false);
    return;
  }
  const auto index = static_cast<std::uint32_t>(orders_.size());
  orders_.emplace_back();
  orders_.back().order = order;
  sent_[order.client_order_id] = index;
  const ReplayVenueOptions& vo = options_.venues[order.venue_id];
  const std::int64_t arrival =
      std::max(v->last_arrival_ts,
               ts + vo.order_entry_latency_ns + jitter(entry_random_, vo.latency_jitter_ns));
  v->last_arrival_ts = arrival;
  push_action(Action{arrival, action_seq_++, index, order.client_order_id, order.venue_id, false});
}

void ReplayMarket::cancel(std::uint64_t client_order_id, std::int64_t ts_send) noexcept {
  ++counters_.cancels_submitted;
  if (ts_send < now_) {
    ts_send = now_;
    ++counters_.late_sends;
  }
  const auto it = sent_.find(client_order_id);
  if (it == sent_.end()) {
    AgentOrder unknown{};
    unknown.ts_send = ts_send;
    unknown.client_order_id = client_order_id;
    unknown.venue_id = 0xFF;  // No venue: the id was never sent.
    ++counters_.cancels_rejected;
    reject(unknown, ts_send, SimRejectReason::kUnknownOrder, false);
    return;
  }
  const AgentOrder& order = orders_[it->second].order;
  Venue& v = venues_[order.venue_id];
  const ReplayVenueOptions& vo = options_.venues[order.venue_id];
  const std::int64_t arrival =
      std::max(v.last_arrival_ts,
               ts_send + vo.order_entry_latency_ns + jitter(entry_random_, vo.latency_jitter_ns));
  v.last_arrival_ts = arrival;
  push_action(Action{arrival, action_seq_++, it->second, client_order_id, order.venue_id, true});
}

void ReplayMarket::run_until(std::int64_t ts_ns) noexcept {
  if (!started_) start();
  if (ts_ns < now_) return;
  for (;;) {
    const bool has_recorded = cursor_ < merged_.size();
    if (!has_recorded && actions_.empty()) break;
    const std::int64_t recorded = has_recorded ? merged_[cursor_].ts_event : INT64_MAX;
    const std::int64_t action = actions_.empty() ? INT64_MAX : actions_.front().ts;
    if (std::min(recorded, action) > ts_ns) break;
    // At equal times the recorded event happened first: the agent's order arrives after it.
    if (has_recorded && (actions_.empty() || recorded <= action)) {
      process_recorded(merged_[cursor_++]);
    } else {
      std::pop_heap(actions_.begin(), actions_.end(), ActionLater{});
      const Action a = actions_.back();
      actions_.pop_back();
      process_action(a);
    }
  }
  now_ = ts_ns;
  advance_seen(ts_ns);
}

void ReplayMarket::advance_seen(std::int64_t ts) noexcept {
  for (std::size_t id = 0; id < venues_.size(); ++id) {
    Venue& v = venues_[id];
    const ReplayVenueOptions& vo = options_.venues[id];
    while (v.seen_cursor < v.events.size()) {
      const MdEvent& e = v.events[v.seen_cursor];
      if (v.pending_seen_ts == kUnset) {
        // A venue's feed is FIFO: jitter never reorders it.
        v.pending_seen_ts =
            std::max(v.last_seen_ts, e.ts_event + vo.market_data_latency_ns +
                                         jitter(v.md_random, vo.latency_jitter_ns));
      }
      if (v.pending_seen_ts > ts) break;
      v.seen.apply(e);
      v.last_seen_ts = v.pending_seen_ts;
      v.pending_seen_ts = kUnset;
      ++v.seen_cursor;
    }
  }
}

std::int64_t ReplayMarket::level_quantity(const Venue& v, std::uint32_t instrument_id, Side side,
                                          std::int64_t price) const noexcept {
  const PriceLadder* ladder = v.book.ladder(instrument_id, side);
  if (ladder == nullptr) return 0;
  const PriceLevel* level = ladder->find(price);
  return level == nullptr ? 0 : level->quantity;
}

std::int64_t ReplayMarket::depletion(const Venue& v, std::uint32_t instrument_id, Side side,
                                     std::int64_t price) const noexcept {
  if (v.depleted.empty()) return 0;
  const auto it = v.depleted.find(LevelKey{instrument_id, side, price});
  return it == v.depleted.end() ? 0 : it->second;
}

std::int64_t ReplayMarket::visible(const Venue& v, std::uint32_t instrument_id, Side side,
                                   std::int64_t price) const noexcept {
  return std::max<std::int64_t>(
      0, level_quantity(v, instrument_id, side, price) - depletion(v, instrument_id, side, price));
}

void ReplayMarket::drop_empty_depletion(Venue& v, std::uint32_t instrument_id, Side side,
                                        std::int64_t price) noexcept {
  if (v.depleted.empty() || level_quantity(v, instrument_id, side, price) > 0) return;
  v.depleted.erase(LevelKey{instrument_id, side, price});
}

void ReplayMarket::compact_resting(Venue& v) noexcept {
  std::erase_if(v.resting, [this](std::uint32_t i) { return !orders_[i].resting; });
}

void ReplayMarket::process_recorded(const MdEvent& e) noexcept {
  ++counters_.recorded_events;
  Venue& v = venues_[e.venue_id];
  if (v.resting.empty() && v.depleted.empty()) {
    v.book.apply(e);
    return;
  }
  const std::uint32_t instrument = e.instrument_id;
  OrderView old{};
  std::int64_t before = 0;
  const bool touches_order = e.kind == EventKind::kExecute || e.kind == EventKind::kCancel ||
                             e.kind == EventKind::kDelete || e.kind == EventKind::kReplace ||
                             e.kind == EventKind::kModify;
  if (touches_order) {
    v.book.find_order(e.order_id, old, false);
    before = level_quantity(v, old.instrument_id, old.side, old.price_ticks);
  }
  if (v.book.apply(e) != Status::kOk) return;  // Cannot happen: load() checked the stream.
  switch (e.kind) {
    case EventKind::kAdd:
      crossing_add(v, instrument, e.side, e.price_ticks, e.quantity, e.ts_event);
      break;
    case EventKind::kExecute: {
      level_reduced(v, instrument, old.side, old.price_ticks, before, e.quantity, true,
                    e.order_id, e.ts_event);
      const std::int64_t price = e.price_ticks != 0 ? e.price_ticks : old.price_ticks;
      trade_through(v, instrument, old.side, price, e.ts_event);
      drop_empty_depletion(v, instrument, old.side, old.price_ticks);
      break;
    }
    case EventKind::kCancel:
    case EventKind::kDelete: {
      const std::int64_t q = e.kind == EventKind::kCancel ? e.quantity : old.quantity;
      level_reduced(v, instrument, old.side, old.price_ticks, before, q, false, e.order_id,
                    e.ts_event);
      drop_empty_depletion(v, instrument, old.side, old.price_ticks);
      break;
    }
    case EventKind::kReplace:
      level_reduced(v, instrument, old.side, old.price_ticks, before, old.quantity, false,
                    e.order_id, e.ts_event);
      drop_empty_depletion(v, instrument, old.side, old.price_ticks);
      crossing_add(v, instrument, old.side, e.price_ticks, e.quantity, e.ts_event);
      break;
    case EventKind::kModify:
      if (e.price_ticks == old.price_ticks && e.quantity <= old.quantity) {
        level_reduced(v, instrument, old.side, old.price_ticks, before,
                      old.quantity - e.quantity, false, e.order_id, e.ts_event);
      } else {
        // Loses priority: leaves its level and joins the back of the new one.
        level_reduced(v, instrument, old.side, old.price_ticks, before, old.quantity, false,
                      e.order_id, e.ts_event);
        // Same id, now at the back: it is no longer ahead of anyone.
        for (const std::uint32_t index : v.resting) {
          std::erase(orders_[index].ahead_ids, e.order_id);
        }
        drop_empty_depletion(v, instrument, old.side, old.price_ticks);
        crossing_add(v, instrument, old.side, e.price_ticks, e.quantity, e.ts_event);
      }
      break;
    case EventKind::kTrade:
      if ((e.flags & kFlagCross) == 0 && e.side != Side::kNone) {
        trade_through(v, instrument, e.side, e.price_ticks, e.ts_event);
      }
      break;
    case EventKind::kClear:
      std::erase_if(v.depleted, [instrument](const auto& kv) {
        return kv.first.instrument_id == instrument;
      });
      clamp_ahead(v, instrument, e.ts_event);
      break;
    default:
      break;
  }
  compact_resting(v);
}

void ReplayMarket::level_reduced(Venue& v, std::uint32_t instrument_id, Side side,
                                 std::int64_t price, std::int64_t level_before,
                                 std::int64_t quantity, bool execution, std::uint64_t order_id,
                                 std::int64_t ts) noexcept {
  std::int64_t from_queue = quantity;
  std::int64_t depleted_before = 0;
  if (!v.depleted.empty()) {
    const auto it = v.depleted.find(LevelKey{instrument_id, side, price});
    if (it != v.depleted.end()) {
      depleted_before = it->second;
      const std::int64_t d = std::min(quantity, it->second);
      it->second -= d;
      from_queue -= d;
      if (it->second == 0) v.depleted.erase(it);
    }
  }
  if (v.resting.empty()) return;
  const std::int64_t visible_before = std::max<std::int64_t>(0, level_before - depleted_before);
  const std::int64_t visible_after = visible(v, instrument_id, side, price);
  const std::int64_t our_price = price + shift_ticks(instrument_id, ts);
  std::int64_t ours_ahead = 0;  // Leaves of the agent's earlier orders at this level.
  for (const std::uint32_t index : v.resting) {
    Order& o = orders_[index];
    if (!o.resting || o.order.instrument_id != instrument_id || o.order.side != side ||
        o.order.price_ticks != our_price) {
      continue;
    }
    if (execution) {
      const std::int64_t leaves_before = o.leaves;
      // The recorded taker reaches us after the recorded shares ahead and our earlier orders.
      const std::int64_t reach = from_queue - o.ahead - ours_ahead;
      o.ahead = std::max<std::int64_t>(0, o.ahead - from_queue);
      ours_ahead += leaves_before;
      if (reach > 0) fill(o, ts, o.order.price_ticks, std::min(o.leaves, reach), SimLiquidity::kAdded);
    } else if (options_.queue_model == QueueModel::kProportional) {
      if (visible_before > 0) {
        __extension__ using Wide = __int128;
        o.ahead -= static_cast<std::int64_t>(static_cast<Wide>(from_queue) * o.ahead /
                                             visible_before);
      }
    } else if (options_.queue_model == QueueModel::kOptimistic) {
      o.ahead = std::max<std::int64_t>(0, o.ahead - from_queue);
    } else if (options_.queue_model == QueueModel::kFifo) {
      if (std::binary_search(o.ahead_ids.begin(), o.ahead_ids.end(), order_id)) {
        o.ahead = std::max<std::int64_t>(0, o.ahead - from_queue);
      }
    }
    o.ahead = std::min(o.ahead, visible_after);
  }
}

void ReplayMarket::trade_through(Venue& v, std::uint32_t instrument_id, Side side,
                                 std::int64_t price, std::int64_t ts) noexcept {
  if (v.resting.empty()) return;
  const std::int64_t seen_at = price + shift_ticks(instrument_id, ts);
  for (const std::uint32_t index : v.resting) {
    Order& o = orders_[index];
    if (!o.resting || o.order.instrument_id != instrument_id || o.order.side != side) continue;
    const bool through = side == Side::kBuy ? o.order.price_ticks > seen_at
                                            : o.order.price_ticks < seen_at;
    if (through) fill(o, ts, o.order.price_ticks, o.leaves, SimLiquidity::kAdded);
  }
}

void ReplayMarket::crossing_add(Venue& v, std::uint32_t instrument_id, Side side,
                                std::int64_t price, std::int64_t quantity,
                                std::int64_t ts) noexcept {
  if (v.resting.empty()) return;
  const std::int64_t seen_at = price + shift_ticks(instrument_id, ts);
  const Side ours = opposite(side);
  scratch_.clear();
  for (const std::uint32_t index : v.resting) {
    const Order& o = orders_[index];
    if (!o.resting || o.order.instrument_id != instrument_id || o.order.side != ours) continue;
    const bool crossed = ours == Side::kBuy ? o.order.price_ticks >= seen_at
                                            : o.order.price_ticks <= seen_at;
    if (crossed) scratch_.push_back(index);
  }
  if (scratch_.empty()) return;
  // The incoming order would have matched the agent's orders in price, then time, priority.
  std::stable_sort(scratch_.begin(), scratch_.end(), [this, ours](std::uint32_t a, std::uint32_t b) {
    const std::int64_t pa = orders_[a].order.price_ticks;
    const std::int64_t pb = orders_[b].order.price_ticks;
    return ours == Side::kBuy ? pa > pb : pa < pb;
  });
  std::int64_t left = quantity;
  for (const std::uint32_t index : scratch_) {
    if (left == 0) break;
    Order& o = orders_[index];
    const std::int64_t q = std::min(left, o.leaves);
    fill(o, ts, o.order.price_ticks, q, SimLiquidity::kAdded);
    left -= q;
  }
  // Those shares traded with the agent: the recorded order shows them, the agent cannot take them.
  if (left < quantity) v.depleted[LevelKey{instrument_id, side, price}] += quantity - left;
}

void ReplayMarket::clamp_ahead(Venue& v, std::uint32_t instrument_id, std::int64_t ts) noexcept {
  const std::int64_t shift = shift_ticks(instrument_id, ts);
  for (const std::uint32_t index : v.resting) {
    Order& o = orders_[index];
    if (o.order.instrument_id != instrument_id) continue;
    o.ahead = std::min(o.ahead, visible(v, instrument_id, o.order.side, o.order.price_ticks - shift));
  }
}

double ReplayMarket::impact_at(std::uint32_t instrument_id, std::int64_t ts) const noexcept {
  if (options_.impact_model == ImpactModel::kNone || instrument_id >= impact_.size()) return 0.0;
  const Impact& impact = impact_[instrument_id];
  const PropagatorOptions& p = options_.propagator;
  double total = impact.permanent_ticks;
  for (const ImpactTrade& t : impact.trades) {
    if (t.ts > ts) break;
    const double elapsed = static_cast<double>(ts - t.ts);
    total += t.amplitude_ticks * std::pow(1.0 + elapsed / p.t0_ns, -p.beta);
  }
  return total;
}

std::int64_t ReplayMarket::shift_ticks(std::uint32_t instrument_id, std::int64_t ts) const noexcept {
  if (options_.impact_model == ImpactModel::kNone) return 0;
  return static_cast<std::int64_t>(std::llround(impact_at(instrument_id, ts)));
}

double ReplayMarket::impact_ticks(std::uint32_t instrument_id) const noexcept {
  return impact_at(instrument_id, now_);
}

void ReplayMarket::record_impact(std::uint32_t instrument_id, Side side, std::int64_t quantity,
                                 std::int64_t ts) noexcept {
  if (options_.impact_model == ImpactModel::kNone) return;
  if (instrument_id >= impact_.size()) impact_.resize(instrument_id + 1);
  const PropagatorOptions& p = options_.propagator;
  const double sign = side == Side::kBuy ? 1.0 : -1.0;
  const double amplitude =
      sign * p.eta_ticks *
      std::pow(static_cast<double>(quantity) / p.daily_volume_shares, p.delta);
  Impact& impact = impact_[instrument_id];
  impact.permanent_ticks += p.permanent_fraction * amplitude;
  impact.trades.push_back(ImpactTrade{ts, (1.0 - p.permanent_fraction) * amplitude});
}

void ReplayMarket::report(const Order& o, SimReportKind kind, std::int64_t ts,
                          std::uint8_t detail) noexcept {
  SimReport r{};
  r.ts_event = ts;
  r.client_order_id = o.order.client_order_id;
  r.tag = o.order.tag;
  r.price_ticks = o.order.price_ticks;
  r.leaves_quantity = o.leaves;
  r.instrument_id = o.order.instrument_id;
  r.venue_id = o.order.venue_id;
  r.kind = kind;
  r.side = o.order.side;
  r.detail = detail;
  emit(r);
}

void ReplayMarket::emit(SimReport& r, bool has_venue) noexcept {
  if (Venue* v = has_venue ? venue(r.venue_id) : nullptr; v != nullptr) {
    const ReplayVenueOptions& vo = options_.venues[r.venue_id];
    r.ts_recv = std::max(v->last_report_ts,
                         r.ts_event + vo.ack_latency_ns +
                             jitter(report_random_, vo.latency_jitter_ns));
    v->last_report_ts = r.ts_recv;
  } else {
    r.ts_recv = r.ts_event;
  }
  ++counters_.reports_emitted;
  reports_.push_back(Pending{r, report_seq_++});
}

void ReplayMarket::reject(const AgentOrder& order, std::int64_t ts, SimRejectReason reason,
                          bool has_venue) noexcept {
  SimReport r{};
  r.ts_event = ts;
  r.client_order_id = order.client_order_id;
  r.tag = order.tag;
  r.price_ticks = order.price_ticks;
  r.instrument_id = order.instrument_id;
  r.venue_id = order.venue_id;
  r.kind = SimReportKind::kRejected;
  r.side = order.side;
  r.detail = static_cast<std::uint8_t>(reason);
  emit(r, has_venue);
}

void ReplayMarket::fill(Order& o, std::int64_t ts, std::int64_t price, std::int64_t quantity,
                        SimLiquidity liquidity) noexcept {
  if (quantity <= 0) return;
  o.leaves -= quantity;
  const ReplayVenueOptions& vo = options_.venues[o.order.venue_id];
  SimReport r{};
  r.ts_event = ts;
  r.client_order_id = o.order.client_order_id;
  r.tag = o.order.tag;
  r.price_ticks = price;
  r.quantity = quantity;
  r.leaves_quantity = o.leaves;
  r.fee_usd = static_cast<double>(quantity) * (liquidity == SimLiquidity::kRemoved
                                                   ? vo.taker_fee_usd_per_share
                                                   : vo.maker_fee_usd_per_share);
  r.instrument_id = o.order.instrument_id;
  r.venue_id = o.order.venue_id;
  r.kind = SimReportKind::kFill;
  r.side = o.order.side;
  r.detail = static_cast<std::uint8_t>(liquidity);
  ++counters_.fills;
  (liquidity == SimLiquidity::kRemoved ? counters_.shares_taken : counters_.shares_made) += quantity;
  emit(r);
  if (o.leaves == 0) {
    o.open = false;
    o.resting = false;
    open_.erase(o.order.client_order_id);
  }
}

void ReplayMarket::process_action(const Action& a) noexcept {
  if (a.is_cancel) {
    arrive_cancel(a);
  } else {
    arrive(orders_[a.order], a.order, a.ts);
  }
}

void ReplayMarket::arrive_cancel(const Action& a) noexcept {
  const auto it = open_.find(a.client_order_id);
  if (it == open_.end() || orders_[it->second].order.venue_id != a.venue_id) {
    ++counters_.cancels_rejected;
    AgentOrder order = orders_[a.order].order;
    reject(order, a.ts, SimRejectReason::kUnknownOrder, true);
    return;
  }
  Order& o = orders_[it->second];
  o.leaves = 0;
  o.open = false;
  const bool was_resting = o.resting;
  o.resting = false;
  open_.erase(it);
  report(o, SimReportKind::kCancelled, a.ts, 0);
  if (was_resting) compact_resting(venues_[a.venue_id]);
}

void ReplayMarket::arrive(Order& o, std::uint32_t index, std::int64_t ts) noexcept {
  const AgentOrder& order = o.order;
  Venue& v = venues_[order.venue_id];
  const ReplayVenueOptions& vo = options_.venues[order.venue_id];
  SimRejectReason reason = SimRejectReason::kNone;
  const bool priced = order.type != SimOrderType::kMarket;
  if (order.instrument_id >= v.instruments.size() || !v.instruments[order.instrument_id]) {
    reason = SimRejectReason::kUnknownInstrument;
  } else if (order.side != Side::kBuy && order.side != Side::kSell) {
    reason = SimRejectReason::kBadSide;
  } else if (order.quantity <= 0 || order.min_quantity < 0 ||
             order.min_quantity > order.quantity) {
    reason = SimRejectReason::kBadQuantity;
  } else if (order.type > SimOrderType::kMidpointPeg ||
             order.type == SimOrderType::kMidpointPeg) {
    reason = SimRejectReason::kUnsupportedType;
  } else if (priced && (order.price_ticks <= 0 || order.price_ticks % vo.tick_size_ticks != 0)) {
    reason = SimRejectReason::kBadPrice;
  } else if (open_.count(order.client_order_id) != 0) {
    reason = SimRejectReason::kDuplicateOrder;
  }
  const Side side = order.side;
  const Side other = reason == SimRejectReason::kNone ? opposite(side) : Side::kNone;
  const std::int64_t shift = shift_ticks(order.instrument_id, ts);
  const PriceLadder* ladder =
      other == Side::kNone ? nullptr : v.book.ladder(order.instrument_id, other);
  auto within = [&](std::int64_t seen_at) {
    if (!priced) return true;
    return side == Side::kBuy ? seen_at <= order.price_ticks : seen_at >= order.price_ticks;
  };
  if (reason == SimRejectReason::kNone && order.type == SimOrderType::kPostOnly &&
      ladder != nullptr) {
    for (std::size_t d = 0; d < ladder->size(); ++d) {
      const PriceLevel& level = ladder->at_depth(d);
      if (!within(level.price_ticks + shift)) break;
      if (visible(v, order.instrument_id, other, level.price_ticks) > 0) {
        reason = SimRejectReason::kWouldTake;
        break;
      }
    }
  }
  if (reason != SimRejectReason::kNone) {
    ++counters_.orders_rejected;
    reject(order, ts, reason, true);
    return;
  }
  o.open = true;
  o.leaves = order.quantity;
  open_[order.client_order_id] = index;
  report(o, SimReportKind::kAck, ts, 0);

  std::int64_t taken = 0;
  if (ladder != nullptr) {
    for (std::size_t d = 0; d < ladder->size() && o.leaves > 0; ++d) {
      const PriceLevel& level = ladder->at_depth(d);
      const std::int64_t seen_at = level.price_ticks + shift;
      if (!within(seen_at)) break;
      const std::int64_t available = visible(v, order.instrument_id, other, level.price_ticks);
      if (available <= 0) continue;
      const std::int64_t q = std::min(available, o.leaves);
      v.depleted[LevelKey{order.instrument_id, other, level.price_ticks}] += q;
      // The agent took from the front of the level: its own resting orders there move up.
      for (const std::uint32_t r : v.resting) {
        Order& mine = orders_[r];
        if (mine.resting && mine.order.instrument_id == order.instrument_id &&
            mine.order.side == other && mine.order.price_ticks == seen_at) {
          mine.ahead = std::max<std::int64_t>(0, mine.ahead - q);
        }
      }
      fill(o, ts, seen_at, q, SimLiquidity::kRemoved);
      taken += q;
    }
  }
  if (taken > 0) record_impact(order.instrument_id, side, taken, ts);
  if (o.leaves == 0) return;
  if (order.type == SimOrderType::kLimit || order.type == SimOrderType::kPostOnly) {
    o.resting = true;
    o.ahead = visible(v, order.instrument_id, side, order.price_ticks - shift);
    if (options_.queue_model == QueueModel::kFifo && o.ahead > 0) {
      const PriceLadder* own = v.book.ladder(order.instrument_id, side);
      const PriceLevel* level = own == nullptr ? nullptr : own->find(order.price_ticks - shift);
      if (level != nullptr) {
        o.ahead_ids.resize(level->order_count);
        o.ahead_ids.resize(v.book.orders_at(order.instrument_id, side, level->price_ticks,
                                            o.ahead_ids.data(), o.ahead_ids.size()));
        std::sort(o.ahead_ids.begin(), o.ahead_ids.end());
      }
    }
    v.resting.push_back(index);
    return;
  }
  o.leaves = 0;
  o.open = false;
  open_.erase(order.client_order_id);
  report(o, SimReportKind::kCancelled, ts, 0);
}

std::size_t ReplayMarket::drain_reports(SimReport* out, std::size_t max) noexcept {
  if (reports_.empty() || max == 0) return 0;
  std::sort(reports_.begin(), reports_.end(), [](const Pending& a, const Pending& b) {
    return a.report.ts_recv != b.report.ts_recv ? a.report.ts_recv < b.report.ts_recv
                                                : a.seq < b.seq;
  });
  std::size_t n = 0;
  while (n < reports_.size() && n < max && reports_[n].report.ts_recv <= now_) {
    out[n] = reports_[n].report;
    ++n;
  }
  reports_.erase(reports_.begin(), reports_.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

Nbbo ReplayMarket::quote(std::uint8_t venue_id, std::uint32_t instrument_id,
                         QuoteView view) const noexcept {
  Nbbo q{};
  if (venue_id >= venues_.size()) return q;
  const Venue& v = venues_[venue_id];
  const std::int64_t shift = view == QuoteView::kVenue ? shift_ticks(instrument_id, now_) : 0;
  for (const Side side : {Side::kBuy, Side::kSell}) {
    const PriceLadder* ladder = (view == QuoteView::kVenue ? v.book : v.seen).ladder(instrument_id, side);
    if (ladder == nullptr) continue;
    for (std::size_t d = 0; d < ladder->size(); ++d) {
      const PriceLevel& level = ladder->at_depth(d);
      const std::int64_t shown = view == QuoteView::kVenue
                                     ? visible(v, instrument_id, side, level.price_ticks)
                                     : level.quantity;
      if (shown <= 0) continue;
      if (side == Side::kBuy) {
        q.bid_price_ticks = level.price_ticks + shift;
        q.bid_quantity = shown;
        q.bid_venue_mask = 1ull << venue_id;
      } else {
        q.ask_price_ticks = level.price_ticks + shift;
        q.ask_quantity = shown;
        q.ask_venue_mask = 1ull << venue_id;
      }
      break;
    }
  }
  return q;
}

Nbbo ReplayMarket::nbbo(std::uint32_t instrument_id, QuoteView view) const noexcept {
  Nbbo n{};
  for (std::size_t id = 0; id < venues_.size(); ++id) {
    const Nbbo q = quote(static_cast<std::uint8_t>(id), instrument_id, view);
    if (q.bid_venue_mask != 0) {
      if (n.bid_venue_mask == 0 || q.bid_price_ticks > n.bid_price_ticks) {
        n.bid_price_ticks = q.bid_price_ticks;
        n.bid_quantity = 0;
        n.bid_venue_mask = 0;
      }
      if (q.bid_price_ticks == n.bid_price_ticks) {
        n.bid_quantity += q.bid_quantity;
        n.bid_venue_mask |= q.bid_venue_mask;
      }
    }
    if (q.ask_venue_mask != 0) {
      if (n.ask_venue_mask == 0 || q.ask_price_ticks < n.ask_price_ticks) {
        n.ask_price_ticks = q.ask_price_ticks;
        n.ask_quantity = 0;
        n.ask_venue_mask = 0;
      }
      if (q.ask_price_ticks == n.ask_price_ticks) {
        n.ask_quantity += q.ask_quantity;
        n.ask_venue_mask |= q.ask_venue_mask;
      }
    }
  }
  return n;
}

std::int64_t ReplayMarket::shares_ahead(std::uint64_t client_order_id) const noexcept {
  const auto it = open_.find(client_order_id);
  if (it == open_.end() || !orders_[it->second].resting) return -1;
  return orders_[it->second].ahead;
}

std::int64_t ReplayMarket::leaves_quantity(std::uint64_t client_order_id) const noexcept {
  const auto it = open_.find(client_order_id);
  return it == open_.end() ? -1 : orders_[it->second].leaves;
}

}  // namespace sor::sim
