// The model benchmark harness behind `sor bench model`: single-row prediction latency of the
// tree-ensemble evaluator and of a tl2cgen-compiled library, timed the same way on the same
// rows (a different row every call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sor/tree_model.hpp"

namespace sor {

// How many calls to time.
struct ModelBenchOptions {
  std::size_t calls = 200'000;  // Timed calls, each on the next row of the pool (cycled).
  std::size_t warmup = 20'000;  // Untimed calls before timing.
};

// What one benchmark run measured.
struct ModelBenchResult {
  std::vector<double> latency_ns;   // Per call, the mean timer overhead subtracted.
  double timer_overhead_ns = 0;     // Mean cost of an empty timed pair, subtracted above.
  double ns_per_tick = 0;           // Calibration of the cycle counter.
  double loop_ns_per_call = 0;      // Mean of an untimed loop over the same rows (no timer).
  std::vector<float> predictions;   // One per pool row (untimed), to check the peers agree.
  std::string error;                // Why the run could not happen (empty on success).
};

// Times TreeEnsemble::predict on `row_count` rows of feature_count() floats, row i % row_count
// on call i.
ModelBenchResult bench_tree_ensemble(const TreeEnsemble& ensemble, const float* rows,
                                     std::size_t row_count, const ModelBenchOptions& options);

// Loads the tl2cgen-compiled shared library at `library_path` (dlopen) and times its C entry
// point `void predict(union Entry* data, int pred_margin, float* result)` the same way, with
// pred_margin = 0 (probabilities for a classifier).
ModelBenchResult bench_tl2cgen_library(const std::string& library_path, const float* rows,
                                       std::size_t row_count, std::size_t feature_count,
                                       const ModelBenchOptions& options);

}  // namespace sor
