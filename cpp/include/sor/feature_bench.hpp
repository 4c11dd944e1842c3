// The feature-engine benchmark harness: the cost of FeatureEngine::on_event per market-data
// event and of build_row per decision, on a synthetic multi-venue stream.
#pragma once

#include <cstdint>
#include <string>

namespace sor {

// What one feature benchmark run measured (nanoseconds, timer overhead subtracted).
struct FeatureBenchResult {
  double p50_ns = 0;              // Median on_event cost.
  double p99_ns = 0;              // 99th percentile on_event cost.
  double p999_ns = 0;             // 99.9th percentile on_event cost.
  double mean_ns = 0;             // Mean on_event cost.
  double build_row_p50_ns = 0;    // Median build_row cost.
  double build_row_p99_ns = 0;    // 99th percentile build_row cost.
  double build_row_p999_ns = 0;   // 99.9th percentile build_row cost.
  double build_row_mean_ns = 0;   // Mean build_row cost.
  std::uint64_t events = 0;       // Events timed.
  std::uint64_t rows = 0;         // Rows timed.
  double timer_overhead_ns = 0;   // Mean cost of an empty timed pair, subtracted per sample.
  std::string method;             // How the figures were taken.
};

// Generates `events` synthetic events (4 lit L3 venues and a dark pool, 4 instruments, about
// 50,000 events per second of market time), applies each to a ConsolidatedBook outside the
// timed region and times FeatureEngine::on_event alone, per event; every 64th event it also
// times one build_row for a random candidate child.
FeatureBenchResult bench_feature_update(std::uint64_t events, std::uint64_t seed);

}  // namespace sor
