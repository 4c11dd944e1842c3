#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "dtypes.hpp"
#include "sor/types.hpp"

namespace py = pybind11;

namespace sor::bindings {

void bind_types(py::module_& m) {
  register_dtypes();
  m.attr("md_event_dtype") = py::dtype::of<MdEvent>();
  m.attr("level_dtype") = py::dtype::of<LevelView>();
  m.attr("nbbo_dtype") = py::dtype::of<Nbbo>();
  py::enum_<EventKind>(m, "EventKind")
      .value("NONE", EventKind::kNone)
      .value("ADD", EventKind::kAdd)
      .value("MODIFY", EventKind::kModify)
      .value("REPLACE", EventKind::kReplace)
      .value("CANCEL", EventKind::kCancel)
      .value("DELETE", EventKind::kDelete)
      .value("EXECUTE", EventKind::kExecute)
      .value("TRADE", EventKind::kTrade)
      .value("CLEAR", EventKind::kClear)
      .value("LEVEL", EventKind::kLevel)
      .value("BROKEN_TRADE", EventKind::kBrokenTrade)
      .value("STATUS", EventKind::kStatus);
  py::enum_<Side>(m, "Side")
      .value("NONE", Side::kNone)
      .value("BUY", Side::kBuy)
      .value("SELL", Side::kSell);
  m.attr("FLAG_PRINTABLE") = static_cast<int>(kFlagPrintable);
  m.attr("FLAG_CROSS") = static_cast<int>(kFlagCross);
  m.attr("FLAG_SNAPSHOT") = static_cast<int>(kFlagSnapshot);
}

}  // namespace sor::bindings
