#include "sor/latency.hpp"

#include <chrono>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace sor {

std::int64_t CycleClock::steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t CycleClock::now() noexcept {
#if defined(__x86_64__)
  _mm_lfence();
  const std::uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
#else
  return static_cast<std::uint64_t>(steady_ns());
#endif
}

CycleClock::CycleClock(int calibration_ms) {
  const std::int64_t ns0 = steady_ns();
  const std::uint64_t t0 = now();
  while (steady_ns() - ns0 < static_cast<std::int64_t>(calibration_ms) * 1'000'000) {
  }
  const std::int64_t ns1 = steady_ns();
  const std::uint64_t t1 = now();
  ns_per_tick_ = static_cast<double>(ns1 - ns0) / static_cast<double>(t1 - t0);
  constexpr int kSamples = 1 << 16;
  std::uint64_t total = 0;
  for (int i = 0; i < kSamples; ++i) {
    const std::uint64_t a = now();
    const std::uint64_t b = now();
    total += b - a;
  }
  overhead_ticks_ = static_cast<double>(total) / kSamples;
}

}  // namespace sor
