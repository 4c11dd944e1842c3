// The one place where core statuses become Python exceptions (classes in sor/errors.py).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "sor/status.hpp"
#include "sor/tree_model.hpp"
#include "sor/types.hpp"

namespace sor::bindings {

// Raises sor.BookIntegrityError or sor.SequenceGapError for event `index` of a batch.
[[noreturn]] void raise_book_error(Status status, std::uint64_t index, const MdEvent& event,
                                   std::uint64_t expected_sequence);

// Raises sor.FeedDecodeError at byte `offset`; `events` holds what decoded before it.
[[noreturn]] void raise_feed_error(Status status, std::uint64_t offset, const std::string& reason,
                                   pybind11::object events);

// Raises sor.RingError with the status name and detail of a failed create/attach.
[[noreturn]] void raise_ring_error(const std::string& status, const std::string& detail);

// Raises sor.EngineError with a message.
[[noreturn]] void raise_engine_error(const std::string& message);

// Raises sor.InvalidModelError, or sor.UnsupportedModelError (too deep, unsupported mode),
// for a tree ensemble the core refused.
[[noreturn]] void raise_tree_spec_error(const TreeSpecError& error);

// Raises sor.SorError for a misuse of an API (bad shape, bad dtype, bad argument).
[[noreturn]] void raise_usage_error(const std::string& message);

// Raises sor.FeatureConfigError with validate()'s message about feature options.
[[noreturn]] void raise_feature_config_error(const std::string& message);

// Raises sor.FeatureError for a feature-engine status (its feature_status_name); `index` is
// the row of a batch or -1.
[[noreturn]] void raise_feature_error(const std::string& status, std::int64_t index,
                                      const std::string& detail);

// Raises sor.PolicyConfigError with the factory's message (it starts with the parameter name).
[[noreturn]] void raise_policy_config_error(const std::string& message);

// Raises sor.BacktestConfigError with validate()'s message about a backtest spec.
[[noreturn]] void raise_backtest_config_error(const std::string& message);

// Raises sor.FixParseError: `status` is the parse status name, `offset` the offending field.
[[noreturn]] void raise_fix_parse_error(const std::string& status, std::uint64_t offset,
                                        const std::string& reason);

// Raises sor.FixFieldError for `tag` (-1: a bare value) whose `value` (None when there is none)
// is refused for `reason`.
[[noreturn]] void raise_fix_field_error(std::int64_t tag, pybind11::object value,
                                        const std::string& reason);

}  // namespace sor::bindings
