#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "sor/policies.hpp"

namespace sor {
namespace {

using MakePolicy = std::unique_ptr<ExecutionPolicy> (*)(const PolicyParams&, std::string&);

struct FactoryEntry {
  const char* name;
  MakePolicy make;
};

// The policies the factory makes; one line per policy.
constexpr FactoryEntry kFactory[] = {
    {"best_price", &make_best_price_policy},
    {"twap", &make_twap_policy},
    {"vwap", &make_vwap_policy},
    {"almgren_chriss", &make_almgren_chriss_policy},
    {"cont_kukanov", &make_cont_kukanov_policy},
    {"dark_allocator", &make_dark_allocator_policy},
    {"ml_router", &make_ml_router_policy},
    {"rl", &make_rl_policy},
};

std::string format_number(double value) {
  std::ostringstream s;
  s << value;
  return s.str();
}

}  // namespace

PolicyParamReader::PolicyParamReader(const PolicyParams& params, std::string& error)
    : params_(params), error_(error) {
  error_.clear();
}

double PolicyParamReader::number(const char* key, double default_value, double min_value,
                                 double max_value) {
  known_.emplace_back(key);
  const auto it = params_.find(key);
  if (it == params_.end()) return default_value;
  const double value = it->second;
  if (!std::isfinite(value) || value < min_value || value > max_value) {
    if (error_.empty()) {
      error_ = std::string(key) + ": must be in [" + format_number(min_value) + ", " +
               format_number(max_value) + "], got " + format_number(value);
    }
    return default_value;
  }
  return value;
}

std::int64_t PolicyParamReader::integer(const char* key, std::int64_t default_value,
                                        std::int64_t min_value, std::int64_t max_value) {
  known_.emplace_back(key);
  const auto it = params_.find(key);
  if (it == params_.end()) return default_value;
  const double value = it->second;
  if (!std::isfinite(value) || value != std::floor(value) ||
      value < static_cast<double>(min_value) || value > static_cast<double>(max_value)) {
    if (error_.empty()) {
      error_ = std::string(key) + ": must be an integer in [" + std::to_string(min_value) + ", " +
               std::to_string(max_value) + "], got " + format_number(value);
    }
    return default_value;
  }
  return static_cast<std::int64_t>(value);
}

bool PolicyParamReader::finish() {
  if (!error_.empty()) return false;
  for (const auto& [key, value] : params_) {
    (void)value;
    bool found = false;
    for (const std::string& k : known_) found = found || k == key;
    if (!found) {
      error_ = key;
      error_.append(": unknown parameter; this policy takes: ");
      if (known_.empty()) error_.append("none");
      for (std::size_t n = 0; n < known_.size(); ++n) {
        if (n != 0) error_.append(", ");
        error_.append(known_[n]);
      }
      return false;
    }
  }
  return true;
}

std::unique_ptr<ExecutionPolicy> make_policy(const std::string& name, const PolicyParams& params,
                                             std::string& error) {
  error.clear();
  for (const FactoryEntry& entry : kFactory) {
    if (name == entry.name) {
      std::unique_ptr<ExecutionPolicy> policy = entry.make(params, error);
      if (!policy && error.empty()) error = name + ": could not be made";
      return error.empty() ? std::move(policy) : nullptr;
    }
  }
  error = "policy: unknown policy '";
  error.append(name).append("'; known: ");
  bool first = true;
  for (const FactoryEntry& entry : kFactory) {
    if (!first) error.append(", ");
    error.append(entry.name);
    first = false;
  }
  return nullptr;
}

std::vector<std::string> policy_names() {
  std::vector<std::string> out;
  for (const FactoryEntry& entry : kFactory) out.emplace_back(entry.name);
  return out;
}

}  // namespace sor
