#include "errors.hpp"

#include <string_view>
#include <utility>

namespace py = pybind11;

namespace sor::bindings {
namespace {

[[noreturn]] void raise_instance(const char* class_name, py::dict kwargs) {
  py::object cls = py::module_::import("sor.errors").attr(class_name);
  py::object instance = cls(**kwargs);
  PyErr_SetObject(cls.ptr(), instance.ptr());
  throw py::error_already_set();
}

py::dict event_dict(const MdEvent& e) {
  py::dict d;
  d["ts_event"] = e.ts_event;
  d["ts_recv"] = e.ts_recv;
  d["sequence"] = e.sequence;
  d["order_id"] = e.order_id;
  d["related_id"] = e.related_id;
  d["price_ticks"] = e.price_ticks;
  d["quantity"] = e.quantity;
  d["instrument_id"] = e.instrument_id;
  d["venue_id"] = e.venue_id;
  d["kind"] = static_cast<int>(e.kind);
  d["side"] = static_cast<int>(e.side);
  d["flags"] = e.flags;
  return d;
}

}  // namespace

void raise_book_error(Status status, std::uint64_t index, const MdEvent& event,
                      std::uint64_t expected_sequence) {
  py::dict kwargs;
  kwargs["status"] = std::string(status_name(status));
  kwargs["index"] = index;
  kwargs["event"] = event_dict(event);
  if (status == Status::kSequenceGap) {
    kwargs["expected_sequence"] = expected_sequence;
    raise_instance("SequenceGapError", kwargs);
  }
  raise_instance("BookIntegrityError", kwargs);
}

void raise_feed_error(Status status, std::uint64_t offset, const std::string& reason,
                      py::object events) {
  py::dict kwargs;
  kwargs["status"] = std::string(status_name(status));
  kwargs["offset"] = offset;
  kwargs["reason"] = reason;
  kwargs["events"] = events;
  raise_instance("FeedDecodeError", kwargs);
}

void raise_ring_error(const std::string& status, const std::string& detail) {
  py::dict kwargs;
  kwargs["status"] = status;
  kwargs["detail"] = detail;
  raise_instance("RingError", kwargs);
}

void raise_engine_error(const std::string& message) {
  py::object cls = py::module_::import("sor.errors").attr("EngineError");
  PyErr_SetObject(cls.ptr(), cls(message).ptr());
  throw py::error_already_set();
}

void raise_tree_spec_error(const TreeSpecError& error) {
  py::dict kwargs;
  kwargs["message"] = error.message;
  kwargs["reason"] = std::string(tree_spec_problem_name(error.problem));
  kwargs["tree_id"] = error.tree_id < 0 ? py::object(py::none()) : py::cast(error.tree_id);
  kwargs["node_id"] = error.node_id < 0 ? py::object(py::none()) : py::cast(error.node_id);
  const bool unsupported = error.problem == TreeSpecProblem::kTooDeep ||
                           error.problem == TreeSpecProblem::kUnsupported;
  raise_instance(unsupported ? "UnsupportedModelError" : "InvalidModelError", kwargs);
}

void raise_usage_error(const std::string& message) {
  py::dict kwargs;
  kwargs["message"] = message;
  raise_instance("UsageError", kwargs);
}

void raise_feature_config_error(const std::string& message) {
  py::dict kwargs;
  kwargs["message"] = message;
  raise_instance("FeatureConfigError", kwargs);
}

void raise_feature_error(const std::string& status, std::int64_t index,
                         const std::string& detail) {
  py::dict kwargs;
  kwargs["status"] = status;
  kwargs["index"] = index < 0 ? py::object(py::none()) : py::object(py::int_(index));
  kwargs["detail"] = detail;
  raise_instance("FeatureError", kwargs);
}

void raise_policy_config_error(const std::string& message) {
  py::dict kwargs;
  kwargs["message"] = message;
  raise_instance("PolicyConfigError", kwargs);
}

void raise_backtest_config_error(const std::string& message) {
  py::dict kwargs;
  kwargs["message"] = message;
  raise_instance("BacktestConfigError", kwargs);
}

void raise_fix_parse_error(const std::string& status, std::uint64_t offset,
                           const std::string& reason) {
  py::dict kwargs;
  kwargs["status"] = status;
  kwargs["offset"] = offset;
  kwargs["reason"] = reason;
  raise_instance("FixParseError", kwargs);
}

void raise_fix_field_error(std::int64_t tag, py::object value, const std::string& reason) {
  py::dict kwargs;
  kwargs["tag"] = tag < 0 ? py::object(py::none()) : py::object(py::int_(tag));
  kwargs["value"] = std::move(value);
  kwargs["reason"] = reason;
  raise_instance("FixFieldError", kwargs);
}

}  // namespace sor::bindings
