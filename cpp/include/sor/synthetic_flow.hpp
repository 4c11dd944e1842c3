// Synthetic multi-venue L3 order flow with a realistic message mix, for benchmarks, demos and
// tests; and the conversion of an L3 stream into the L2 (price-level) stream it implies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sor/types.hpp"

namespace sor {

// Parameters of a synthetic order-flow stream.
struct SyntheticFlowParams {
  std::uint64_t seed = 1;                 // Same seed, same stream, bit for bit.
  std::size_t event_count = 1'000'000;    // Events to generate (all venues together).
  std::uint8_t venue_count = 1;           // Venues 0..venue_count-1.
  std::uint32_t instrument_count = 1;     // Instruments 0..instrument_count-1.
  std::int64_t start_price_ticks = 10'000;// Initial fundamental price of every instrument.
  std::int64_t start_ts_ns = 1'700'000'000'000'000'000; // ts_event of the first event.
  double mean_gap_ns = 2'000.0;           // Mean time between events.
  std::int64_t recv_latency_ns = 25'000;  // ts_recv - ts_event, plus jitter up to 25%.
  double add_weight = 0.44;               // Message mix (normalised): new orders,
  double delete_weight = 0.38;            // full cancels,
  double cancel_weight = 0.04;            // partial cancels,
  double execute_weight = 0.05;           // executions against the front of the best level,
  double replace_weight = 0.09;           // cancel-replaces to a new price/size.
  std::size_t target_orders = 2'000;      // Resting orders per venue and instrument to hover at.
  double fundamental_move_probability = 0.01; // Chance per event that the fundamental moves 1 tick.
};

// Generates a valid L3 stream: every event applies cleanly to an L3Book per venue (no unknown
// ids; new prices never lock or cross any venue, so the NBBO stays uncrossed), with per-venue sequence numbers starting at 1 and per-venue ts_recv
// increasing with them.
std::vector<MdEvent> generate_order_flow(const SyntheticFlowParams& params);

// Returns the price-level stream an L3 stream implies: one kLevel event per changed level (new
// total, 0 when the level empties; related_id = orders left), per-venue sequences from 1.
// Events that change no level produce nothing; trades pass through. The L3 stream must be valid.
std::vector<MdEvent> to_level_updates(const MdEvent* events, std::size_t count);

}  // namespace sor
