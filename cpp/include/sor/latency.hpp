// Latency measurement for benchmarks: a cycle counter calibrated to nanoseconds and a loop
// that times each call separately with the timer's own cost subtracted.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sor {

// A calibrated cycle counter (rdtsc on x86-64, the steady clock elsewhere).
class CycleClock {
 public:
  // Calibrates ticks per nanosecond against the steady clock over about `calibration_ms`.
  explicit CycleClock(int calibration_ms = 50);
  // Returns the raw counter, ordered against surrounding loads (lfence; rdtsc).
  static std::uint64_t now() noexcept;
  // Returns nanoseconds per tick.
  double ns_per_tick() const noexcept { return ns_per_tick_; }
  // Returns the median cost of an empty timed pair, in ticks.
  std::uint64_t overhead_ticks() const noexcept { return overhead_ticks_; }
  // Returns the steady clock in nanoseconds.
  static std::int64_t steady_ns() noexcept;

 private:
  double ns_per_tick_ = 1.0;
  std::uint64_t overhead_ticks_ = 0;
};

// Calls fn(i) for i in [0, n) and writes each call's latency in ns to out_ns[i], minus the
// timer overhead (clamped at 0).
template <class Fn>
void time_each(const CycleClock& clock, std::size_t n, Fn&& fn, double* out_ns) noexcept {
  const double scale = clock.ns_per_tick();
  const std::uint64_t overhead = clock.overhead_ticks();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t t0 = CycleClock::now();
    fn(i);
    const std::uint64_t t1 = CycleClock::now();
    const std::uint64_t ticks = t1 - t0;
    out_ns[i] = ticks > overhead ? static_cast<double>(ticks - overhead) * scale : 0.0;
  }
}

}  // namespace sor
