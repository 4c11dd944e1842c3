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
  // Returns the mean cost of an empty timed pair, in ticks (the mean, not the median: the
  // counter may step in units of several ns, and the mean of a stepped reading is unbiased).
  double overhead_ticks() const noexcept { return overhead_ticks_; }
  // Returns the steady clock in nanoseconds.
  static std::int64_t steady_ns() noexcept;

 private:
  double ns_per_tick_ = 1.0;
  double overhead_ticks_ = 0;
};

// Calls fn(i) for i in [0, n) and writes each call's latency in ns to out_ns[i], minus the
// mean timer overhead (clamped at 0).
template <class Fn>
void time_each(const CycleClock& clock, std::size_t n, Fn&& fn, double* out_ns) noexcept {
  const double scale = clock.ns_per_tick();
  const double overhead = clock.overhead_ticks();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t t0 = CycleClock::now();
    fn(i);
    const std::uint64_t t1 = CycleClock::now();
    const double ticks = static_cast<double>(t1 - t0) - overhead;
    out_ns[i] = ticks > 0 ? ticks * scale : 0.0;
  }
}

}  // namespace sor
