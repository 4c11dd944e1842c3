#include <cmath>
#include <limits>

#include "sor/policy.hpp"

namespace sor {

bool ModelGuard::check_row(ModelSlot where, const float* row, std::size_t count) noexcept {
  bool finite = true;
  for (std::size_t i = 0; i < count; ++i) finite = finite && std::isfinite(row[i]);
  if (!finite) trip(ModelGuardReason::kNonFiniteInput, where);
  return finite;
}

bool ModelGuard::check_output(ModelSlot where, float output) noexcept {
  ++checks;
  if (!std::isfinite(output)) {
    trip(ModelGuardReason::kNonFiniteOutput, where);
    return false;
  }
  const auto s = static_cast<std::size_t>(where);
  const double value = output;
  if (value < output_min[s] || value > output_max[s]) {
    trip(ModelGuardReason::kOutputOutOfRange, where);
    return false;
  }
  return true;
}

float PolicyModels::predict(ModelSlot slot, const float* row) const noexcept {
  const TreeEnsemble* m = model(slot);
  if (m == nullptr) return std::numeric_limits<float>::quiet_NaN();
  if (guard != nullptr && !guard->check_row(slot, row, m->feature_count())) {
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float output = m->predict(row);
  if (guard != nullptr) guard->check_output(slot, output);
  return output;
}

}  // namespace sor
