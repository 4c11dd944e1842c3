#include "sor/synthetic_flow.hpp"

#include <algorithm>
#include <array>
#include <memory>

#include "sor/book.hpp"
#include "sor/random.hpp"

namespace sor {
namespace {

class FlowGenerator {
 public:
  explicit FlowGenerator(const SyntheticFlowParams& p) : p_(p), rng_(p.seed) {
    BookOptions options;
    options.reserve_orders = static_cast<std::uint32_t>(
        std::min<std::size_t>(p.target_orders * 3 * p.instrument_count, 1u << 24));
    for (std::uint8_t v = 0; v < p.venue_count; ++v) books_.emplace_back(v, options);
    live_.resize(static_cast<std::size_t>(p.venue_count) * p.instrument_count);
    fundamental_.assign(p.instrument_count, p.start_price_ticks);
    sequence_.assign(p.venue_count, 0);
    last_recv_.assign(p.venue_count, 0);
    const double total = p.add_weight + p.delete_weight + p.cancel_weight + p.execute_weight +
                         p.replace_weight;
    double acc = 0;
    const double weights[5] = {p.add_weight, p.delete_weight, p.cancel_weight, p.execute_weight,
                               p.replace_weight};
    for (int k = 0; k < 5; ++k) {
      acc += weights[k] / total;
      cum_[static_cast<std::size_t>(k)] = acc;
    }
  }

  std::vector<MdEvent> run() {
    std::vector<MdEvent> out;
    out.reserve(p_.event_count);
    std::int64_t ts = p_.start_ts_ns;
    while (out.size() < p_.event_count) {
      ts += 1 + static_cast<std::int64_t>(rng_.exponential(p_.mean_gap_ns));
      const auto venue = static_cast<std::uint8_t>(rng_.below(p_.venue_count));
      const auto instrument = static_cast<std::uint32_t>(rng_.below(p_.instrument_count));
      if (rng_.uniform() < p_.fundamental_move_probability) {
        std::int64_t& f = fundamental_[instrument];
        f = std::max<std::int64_t>(20, f + (rng_.uniform() < 0.5 ? -1 : 1));
      }
      MdEvent e{};
      e.ts_event = ts;
      e.ts_recv = ts + p_.recv_latency_ns +
                  static_cast<std::int64_t>(rng_.below(
                      static_cast<std::uint64_t>(p_.recv_latency_ns / 4 + 1)));
      e.venue_id = venue;
      e.instrument_id = instrument;
      e.sequence = sequence_[venue] + 1;
      if (!build(e)) continue;
      if (books_[venue].apply(e) != Status::kOk) continue;
      // A venue's feed arrives in sequence order: jitter never reorders it.
      e.ts_recv = std::max(e.ts_recv, last_recv_[venue] + 1);
      last_recv_[venue] = e.ts_recv;
      sequence_[venue] = e.sequence;
      if (e.kind == EventKind::kAdd) live(venue, instrument).push_back(e.order_id);
      if (e.kind == EventKind::kReplace) live(venue, instrument).push_back(e.related_id);
      out.push_back(e);
    }
    return out;
  }

 private:
  std::vector<std::uint64_t>& live(std::uint8_t v, std::uint32_t i) {
    return live_[static_cast<std::size_t>(v) * p_.instrument_count + i];
  }

  // Picks a random resting order, dropping ids that executions or replaces already removed.
  bool pick(L3Book& book, std::vector<std::uint64_t>& ids, OrderView& view) {
    while (!ids.empty()) {
      const std::size_t k = rng_.below(ids.size());
      if (book.find_order(ids[k], view, false)) return true;
      ids[k] = ids.back();
      ids.pop_back();
    }
    return false;
  }

  std::int64_t lot() {
    if (rng_.uniform() < 0.1) return 1 + static_cast<std::int64_t>(rng_.below(99));
    return 100 * (1 + rng_.geometric(0.45));
  }

  // Places a new limit price a few ticks from the fundamental, never locking or crossing the
  // opposite side of any venue (as Reg NMS requires of displayed quotes).
  std::int64_t place(std::uint32_t instrument, Side side) {
    const std::int64_t f = fundamental_[instrument];
    const std::int64_t distance = 1 + rng_.geometric(0.3);
    const Side other = side == Side::kBuy ? Side::kSell : Side::kBuy;
    std::int64_t price = side == Side::kBuy ? f - distance : f + distance;
    for (const L3Book& book : books_) {
      const PriceLadder* opposite = book.ladder(instrument, other);
      if (opposite == nullptr || opposite->empty()) continue;
      const std::int64_t best = opposite->best()->price_ticks;
      price = side == Side::kBuy ? std::min(price, best - 1) : std::max(price, best + 1);
    }
    return std::max<std::int64_t>(1, price);
  }

  bool build(MdEvent& e) {
    L3Book& book = books_[e.venue_id];
    auto& ids = live(e.venue_id, e.instrument_id);
    const double u = rng_.uniform();
    int kind = 0;
    if (ids.size() < 8) {
      kind = 0;
    } else if (ids.size() > 2 * p_.target_orders) {
      kind = 1;
    } else {
      while (kind < 4 && u >= cum_[static_cast<std::size_t>(kind)]) ++kind;
      // Hover around the target depth: more adds below it, more deletes above it.
      if (kind == 0 && ids.size() > p_.target_orders && rng_.uniform() < 0.1) kind = 1;
    }
    OrderView view{};
    switch (kind) {
      case 0: {
        e.kind = EventKind::kAdd;
        e.side = rng_.uniform() < 0.5 ? Side::kBuy : Side::kSell;
        e.order_id = next_order_id_++;
        e.quantity = lot();
        e.price_ticks = place(e.instrument_id, e.side);
        return true;
      }
      case 1:
      case 2: {
        if (!pick(book, ids, view)) return false;
        e.order_id = view.order_id;
        e.side = view.side;
        e.price_ticks = view.price_ticks;
        if (kind == 1 || view.quantity <= 1) {
          e.kind = EventKind::kDelete;
          e.quantity = view.quantity;
        } else {
          e.kind = EventKind::kCancel;
          e.quantity = 1 + static_cast<std::int64_t>(
                               rng_.below(static_cast<std::uint64_t>(view.quantity - 1)));
        }
        return true;
      }
      case 3: {
        const PriceLadder* bids = book.ladder(e.instrument_id, Side::kBuy);
        const PriceLadder* asks = book.ladder(e.instrument_id, Side::kSell);
        if (bids == nullptr || asks == nullptr || bids->empty() || asks->empty()) return false;
        const std::int64_t mid2 = bids->best()->price_ticks + asks->best()->price_ticks;
        const std::int64_t f2 = 2 * fundamental_[e.instrument_id];
        const double buy_probability = f2 > mid2 ? 0.8 : (f2 < mid2 ? 0.2 : 0.5);
        const Side resting = rng_.uniform() < buy_probability ? Side::kSell : Side::kBuy;
        std::uint64_t id = 0;
        if (!book.front_order(e.instrument_id, resting, id)) return false;
        book.find_order(id, view, false);
        e.kind = EventKind::kExecute;
        e.order_id = id;
        e.side = resting;
        e.quantity = std::min(view.quantity, lot());
        e.related_id = next_match_++;
        e.flags = kFlagPrintable;
        return true;
      }
      default: {
        if (!pick(book, ids, view)) return false;
        e.kind = EventKind::kReplace;
        e.order_id = view.order_id;
        e.related_id = next_order_id_++;
        e.side = view.side;
        e.quantity = lot();
        e.price_ticks = place(e.instrument_id, view.side);
        return true;
      }
    }
  }

  SyntheticFlowParams p_;
  Random rng_;
  std::vector<L3Book> books_;
  std::vector<std::vector<std::uint64_t>> live_;
  std::vector<std::int64_t> fundamental_;
  std::vector<std::uint64_t> sequence_;
  std::vector<std::int64_t> last_recv_;
  std::array<double, 5> cum_{};
  std::uint64_t next_order_id_ = 1;
  std::uint64_t next_match_ = 1;
};

struct Touched {
  std::uint32_t instrument_id;
  Side side;
  std::int64_t price_ticks;
};

}  // namespace

std::vector<MdEvent> generate_order_flow(const SyntheticFlowParams& params) {
  if (params.venue_count == 0 || params.instrument_count == 0) return {};
  return FlowGenerator(params).run();
}

std::vector<MdEvent> to_level_updates(const MdEvent* events, std::size_t count) {
  std::array<std::unique_ptr<L3Book>, 256> books;
  std::array<std::uint64_t, 256> sequence{};
  std::vector<MdEvent> out;
  out.reserve(count + count / 4);
  std::vector<Touched> touched;
  for (std::size_t n = 0; n < count; ++n) {
    const MdEvent& e = events[n];
    auto& book = books[e.venue_id];
    if (!book) book = std::make_unique<L3Book>(e.venue_id);
    touched.clear();
    OrderView view{};
    switch (e.kind) {
      case EventKind::kAdd:
        touched.push_back({e.instrument_id, e.side, e.price_ticks});
        break;
      case EventKind::kCancel:
      case EventKind::kDelete:
      case EventKind::kExecute:
      case EventKind::kReplace:
      case EventKind::kModify:
        if (book->find_order(e.order_id, view, false)) {
          touched.push_back({view.instrument_id, view.side, view.price_ticks});
          if ((e.kind == EventKind::kReplace || e.kind == EventKind::kModify) &&
              e.price_ticks != view.price_ticks) {
            touched.push_back({view.instrument_id, view.side, e.price_ticks});
          }
        }
        break;
      case EventKind::kClear:
        for (Side side : {Side::kBuy, Side::kSell}) {
          if (const PriceLadder* l = book->ladder(e.instrument_id, side)) {
            for (std::size_t d = 0; d < l->size(); ++d) {
              touched.push_back({e.instrument_id, side, l->at_depth(d).price_ticks});
            }
          }
        }
        break;
      default:
        break;
    }
    if (book->apply(e) != Status::kOk) continue;
    if (e.kind == EventKind::kTrade) {
      MdEvent t = e;
      t.sequence = ++sequence[e.venue_id];
      out.push_back(t);
      continue;
    }
    for (const Touched& t : touched) {
      const PriceLadder* l = book->ladder(t.instrument_id, t.side);
      const PriceLevel* level = l != nullptr ? l->find(t.price_ticks) : nullptr;
      MdEvent u{};
      u.ts_event = e.ts_event;
      u.ts_recv = e.ts_recv;
      u.sequence = ++sequence[e.venue_id];
      u.price_ticks = t.price_ticks;
      u.quantity = level != nullptr ? level->quantity : 0;
      u.related_id = level != nullptr ? level->order_count : 0;
      u.instrument_id = t.instrument_id;
      u.venue_id = e.venue_id;
      u.kind = EventKind::kLevel;
      u.side = t.side;
      out.push_back(u);
    }
  }
  return out;
}

}  // namespace sor
