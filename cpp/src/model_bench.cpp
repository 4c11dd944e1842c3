#include "sor/model_bench.hpp"

#include <dlfcn.h>

#include "sor/latency.hpp"

namespace sor {
namespace {

// Runs the warmup, the per-call timing and the untimed loop for `predict_row(row)`.
template <class Predict>
ModelBenchResult run(const float* rows, std::size_t row_count, std::size_t feature_count,
                     const ModelBenchOptions& options, Predict&& predict_row) {
  ModelBenchResult result;
  if (row_count == 0 || feature_count == 0) {
    result.error = "no rows to predict";
    return result;
  }
  result.predictions.resize(row_count);
  for (std::size_t r = 0; r < row_count; ++r) {
    result.predictions[r] = predict_row(rows + r * feature_count);
  }
  // The sink keeps every prediction observable, so no call can be dropped as dead code.
  volatile float sink = 0;
  for (std::size_t i = 0; i < options.warmup; ++i) {
    sink = predict_row(rows + (i % row_count) * feature_count);
  }
  const CycleClock clock;
  result.timer_overhead_ns = clock.overhead_ticks() * clock.ns_per_tick();
  result.ns_per_tick = clock.ns_per_tick();
  result.latency_ns.resize(options.calls);
  time_each(clock, options.calls, [&](std::size_t i) {
    sink = predict_row(rows + (i % row_count) * feature_count);
  }, result.latency_ns.data());
  const std::int64_t t0 = CycleClock::steady_ns();
  for (std::size_t i = 0; i < options.calls; ++i) {
    sink = predict_row(rows + (i % row_count) * feature_count);
  }
  const std::int64_t t1 = CycleClock::steady_ns();
  (void)sink;
  if (options.calls != 0) {
    result.loop_ns_per_call = static_cast<double>(t1 - t0) / static_cast<double>(options.calls);
  }
  return result;
}

}  // namespace

ModelBenchResult bench_tree_ensemble(const TreeEnsemble& ensemble, const float* rows,
                                     std::size_t row_count, const ModelBenchOptions& options) {
  return run(rows, row_count, ensemble.feature_count(), options,
             [&](const float* row) { return ensemble.predict(row); });
}

ModelBenchResult bench_tl2cgen_library(const std::string& library_path, const float* rows,
                                       std::size_t row_count, std::size_t feature_count,
                                       const ModelBenchOptions& options) {
  ModelBenchResult result;
  void* library = dlopen(library_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    result.error = "cannot load " + library_path + ": " + (why != nullptr ? why : "unknown");
    return result;
  }
  // tl2cgen 1.0's generated header: union Entry { int missing; float fvalue; int qvalue; };
  // a row of finite floats is an array of Entry (4 bytes each, fvalue set).
  using PredictFn = void (*)(void* data, int pred_margin, float* result);
  using CountFn = std::int32_t (*)();
  auto predict = reinterpret_cast<PredictFn>(dlsym(library, "predict"));
  auto num_feature = reinterpret_cast<CountFn>(dlsym(library, "get_num_feature"));
  auto num_target = reinterpret_cast<CountFn>(dlsym(library, "get_num_target"));
  if (predict == nullptr || num_feature == nullptr || num_target == nullptr) {
    result.error = library_path + " has no tl2cgen predict/get_num_feature/get_num_target";
  } else if (num_target() != 1) {
    result.error = library_path + " predicts " + std::to_string(num_target()) + " targets, not 1";
  } else if (static_cast<std::size_t>(num_feature()) > feature_count) {
    result.error = library_path + " reads " + std::to_string(num_feature()) +
                   " features, rows have " + std::to_string(feature_count);
  } else {
    result = run(rows, row_count, feature_count, options, [&](const float* row) {
      float out = 0.0f;  // The generated code accumulates into result[0].
      predict(const_cast<float*>(row), 0, &out);
      return out;
    });
  }
  dlclose(library);
  return result;
}

}  // namespace sor
