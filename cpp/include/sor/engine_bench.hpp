// Tick-to-decision benchmark: a market-data record written to an engine's md ring, until the
// child-order intent it triggers is visible in the engine's order ring.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sor {

// What the benchmark drives: an engine (thread or process) already running a parent order
// that buys `instrument_id` with no limit, on a book seeded by seed_engine_book_events().
struct EngineBenchOptions {
  std::string engine_name;           // Engine whose rings are attached by name.
  std::uint32_t instrument_id = 0;   // Instrument of the parent order.
  std::vector<std::uint8_t> venues;  // Lit venues to add liquidity on, in rotation.
  std::int64_t ask_price_ticks = 1'000'100;  // Best ask the seeded book has.
  std::uint64_t samples = 100'000;   // Ticks measured.
  std::uint64_t warmup = 5'000;      // Ticks run before measuring.
  int cpu = -1;                      // Core for the benchmark thread (-1: do not pin).
  std::int64_t timeout_ns = 1'000'000'000;  // Longest wait for one decision.
};

// Result of the tick-to-decision benchmark.
struct EngineBenchResult {
  std::vector<double> latency_ns;  // One per measured tick.
  std::uint64_t timeouts = 0;      // Ticks that produced no decision in time.
  bool pinned = false;             // Whether the benchmark thread was pinned.
  std::string error;               // Why the run could not start (empty on success).
};

// Runs the benchmark; each tick adds a sell order at the best ask on the next venue, waits for
// the engine's IOC child, then (unmeasured) fills it and deletes the order so the book stays
// the same size.
EngineBenchResult bench_tick_to_decision(const EngineBenchOptions& options);

}  // namespace sor
