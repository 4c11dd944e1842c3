#include "sor/engine_bench.hpp"

#include <pthread.h>
#include <sched.h>

#include "sor/engine.hpp"
#include "sor/latency.hpp"
#include "sor/ring.hpp"

namespace sor {

EngineBenchResult bench_tick_to_decision(const EngineBenchOptions& options) {
  EngineBenchResult result;
  if (options.venues.empty()) {
    result.error = "no venues to add liquidity on";
    return result;
  }
  const EngineSegmentNames names = engine_segment_names(options.engine_name);
  Ring md, executions, orders;
  RingResult r = Ring::attach(names.market_data, RingRole::kProducer, RecordType::kMdEvent,
                              sizeof(MdEvent), StalePolicy::kTakeover, md);
  if (r) r = Ring::attach(names.executions, RingRole::kProducer, RecordType::kExecReport,
                          sizeof(ExecReport), StalePolicy::kTakeover, executions);
  if (r) r = Ring::attach(names.orders, RingRole::kConsumer, RecordType::kOrderIntent,
                          sizeof(OrderIntent), StalePolicy::kTakeover, orders);
  if (!r) {
    result.error = r.detail;
    return result;
  }
  // The caller's thread (often Python's main thread) gets its affinity back afterwards, so
  // processes it starts later are not confined to the benchmark core.
  cpu_set_t previous;
  const bool restore = pthread_getaffinity_np(pthread_self(), sizeof(previous), &previous) == 0;
  struct Restore {
    bool active;
    cpu_set_t* set;
    ~Restore() {
      if (active) pthread_setaffinity_np(pthread_self(), sizeof(*set), set);
    }
  } restore_guard{restore && options.cpu >= 0, &previous};
  if (options.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options.cpu, &set);
    result.pinned = pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
  }
  CycleClock clock;
  const double ns_per_tick = clock.ns_per_tick();
  const auto timeout_ticks = static_cast<std::uint64_t>(
      static_cast<double>(options.timeout_ns) / ns_per_tick);
  const std::uint64_t total = options.warmup + options.samples;
  result.latency_ns.reserve(options.samples);
  // Order ids far above any the seeded book uses.
  std::uint64_t order_id = 1ULL << 40;
  for (std::uint64_t i = 0; i < total; ++i) {
    const std::uint8_t venue = options.venues[i % options.venues.size()];
    MdEvent add{};
    add.kind = EventKind::kAdd;
    add.venue_id = venue;
    add.instrument_id = options.instrument_id;
    add.side = Side::kSell;
    add.price_ticks = options.ask_price_ticks;
    add.quantity = 100;
    add.order_id = ++order_id;
    add.sequence = 0;
    const std::uint64_t start = CycleClock::now();
    add.ts_recv = static_cast<std::int64_t>(start);
    add.ts_event = add.ts_recv;
    while (md.write(&add, 1) != 1) {
    }
    OrderIntent intent{};
    bool seen = false;
    for (;;) {
      if (orders.read(&intent, 1) == 1) {
        if (intent.ts_trigger == add.ts_recv) {
          seen = true;
          break;
        }
        continue;  // a decision from an earlier tick that timed out
      }
      if (CycleClock::now() - start > timeout_ticks) break;
    }
    const std::uint64_t end = CycleClock::now();
    if (!seen) {
      ++result.timeouts;
    } else if (i >= options.warmup) {
      result.latency_ns.push_back(static_cast<double>(end - start) * ns_per_tick);
    }
    // Unmeasured: the fill closes the child; the delete keeps the book the same size.
    if (seen) {
      ExecReport fill{};
      fill.kind = ExecKind::kFill;
      fill.child_order_id = intent.child_order_id;
      fill.parent_order_id = intent.parent_order_id;
      fill.last_price_ticks = intent.price_ticks;
      fill.last_quantity = intent.quantity;
      fill.leaves_quantity = 0;
      fill.instrument_id = intent.instrument_id;
      fill.venue_id = intent.venue_id;
      fill.side = intent.side;
      while (executions.write(&fill, 1) != 1) {
      }
    }
    MdEvent del = add;
    del.kind = EventKind::kDelete;
    del.quantity = 0;
    while (md.write(&del, 1) != 1) {
    }
    while (md.size() != 0 || executions.size() != 0) {
    }
  }
  return result;
}

}  // namespace sor
