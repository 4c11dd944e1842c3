// C++ feature-engine benchmark: FeatureEngine::on_event per market-data event (the book's own
// apply untimed) and build_row per decision, percentiles in ns. Usage: feature_bench [events] [seed]
#include <cstdio>
#include <cstdlib>

#include "sor/feature_bench.hpp"

int main(int argc, char** argv) {
  const std::uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  const sor::FeatureBenchResult r = sor::bench_feature_update(events, seed);
  std::printf("on_event   events=%llu  p50=%.1f ns  p99=%.1f ns  p99.9=%.1f ns  mean=%.1f ns\n",
              static_cast<unsigned long long>(r.events), r.p50_ns, r.p99_ns, r.p999_ns,
              r.mean_ns);
  std::printf("build_row  rows=%llu  p50=%.1f ns  p99=%.1f ns  p99.9=%.1f ns  mean=%.1f ns\n",
              static_cast<unsigned long long>(r.rows), r.build_row_p50_ns, r.build_row_p99_ns,
              r.build_row_p999_ns, r.build_row_mean_ns);
  std::printf("timer overhead %.1f ns subtracted; %s\n", r.timer_overhead_ns, r.method.c_str());
  return 0;
}
