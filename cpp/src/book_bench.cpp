#include "sor/book_bench.hpp"

#include "sor/book.hpp"
#include "sor/latency.hpp"

#include <algorithm>

namespace sor {
namespace {

template <class Book>
BookBenchResult run(const MdEvent* events, std::size_t count, double* latency_ns) noexcept {
  BookBenchResult result;
  if (count == 0) return result;
  const std::uint8_t venue = events[0].venue_id;
  // Size the preallocated tables to the stream's peak live orders, as a deployment would
  // configure them; a table sized to the whole stream would measure cache misses instead.
  BookOptions options;
  {
    Book warm(venue, options);
    std::size_t peak = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const Status s = warm.apply(events[i]);
      if (s != Status::kOk) {
        result.status = s;
        result.failed_index = i;
        return result;
      }
      if constexpr (requires { warm.order_count(); }) peak = std::max(peak, warm.order_count());
    }
    options.reserve_orders = static_cast<std::uint32_t>(peak + 1024);
  }
  const CycleClock clock;
  result.timer_overhead_ns = clock.overhead_ticks() * clock.ns_per_tick();
  result.ns_per_tick = clock.ns_per_tick();
  {
    Book timed(venue, options);
    time_each(clock, count, [&](std::size_t i) { (void)timed.apply(events[i]); }, latency_ns);
  }
  {
    Book batch(venue, options);
    const std::int64_t t0 = CycleClock::steady_ns();
    (void)batch.apply_batch(events, count);
    const std::int64_t t1 = CycleClock::steady_ns();
    result.throughput_per_s = static_cast<double>(count) * 1e9 / static_cast<double>(t1 - t0);
  }
  return result;
}

}  // namespace

BookBenchResult bench_book(bool l3, const MdEvent* events, std::size_t count,
                           double* latency_ns) noexcept {
  return l3 ? run<L3Book>(events, count, latency_ns) : run<L2Book>(events, count, latency_ns);
}

}  // namespace sor
