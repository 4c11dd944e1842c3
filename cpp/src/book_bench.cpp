#include "sor/book_bench.hpp"

#include "sor/book.hpp"
#include "sor/latency.hpp"

namespace sor {
namespace {

template <class Book>
BookBenchResult run(const MdEvent* events, std::size_t count, double* latency_ns) noexcept {
  BookBenchResult result;
  if (count == 0) return result;
  const std::uint8_t venue = events[0].venue_id;
  BookOptions options;
  options.reserve_orders = static_cast<std::uint32_t>(count / 2 + 1024);
  {
    Book warm(venue, options);
    const BatchResult r = warm.apply_batch(events, count);
    if (r.status != Status::kOk) {
      result.status = r.status;
      result.failed_index = r.applied;
      return result;
    }
  }
  const CycleClock clock;
  result.timer_overhead_ns = static_cast<double>(clock.overhead_ticks()) * clock.ns_per_tick();
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
