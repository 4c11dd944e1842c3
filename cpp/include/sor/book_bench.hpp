// The book benchmark harness shared by `sor bench book` and bench/cpp/book_bench.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sor/status.hpp"
#include "sor/types.hpp"

namespace sor {

// What one benchmark run measured.
struct BookBenchResult {
  Status status = Status::kOk;     // kOk, or why the stream did not apply cleanly.
  std::uint64_t failed_index = 0;  // Index of the event that failed, when status != kOk.
  double throughput_per_s = 0;     // Events per second through apply_batch, untimed per event.
  double timer_overhead_ns = 0;    // Cost of one timed pair, subtracted from each sample.
  double ns_per_tick = 0;          // Calibration of the cycle counter.
};

// Runs `events` through a fresh L3 book (l3 = true) or L2 book: once untimed to warm up, once
// timing each apply into latency_ns[count], and once through apply_batch for throughput.
BookBenchResult bench_book(bool l3, const MdEvent* events, std::size_t count,
                           double* latency_ns) noexcept;

}  // namespace sor
