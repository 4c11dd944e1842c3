#include "arrays.hpp"
#include "bindings.hpp"
#include "sor/book_bench.hpp"
#include "sor/synthetic_flow.hpp"

namespace py = pybind11;

namespace sor::bindings {

void bind_sim(py::module_& m) {
  m.def("generate_order_flow",
        [](std::uint64_t seed, std::size_t event_count, std::uint8_t venue_count,
           std::uint32_t instrument_count, std::int64_t start_price_ticks, std::int64_t start_ts_ns,
           double mean_gap_ns, std::size_t target_orders) {
          SyntheticFlowParams p;
          p.seed = seed;
          p.event_count = event_count;
          p.venue_count = venue_count;
          p.instrument_count = instrument_count;
          p.start_price_ticks = start_price_ticks;
          p.start_ts_ns = start_ts_ns;
          p.mean_gap_ns = mean_gap_ns;
          p.target_orders = target_orders;
          if (venue_count == 0 || instrument_count == 0) {
            raise_usage_error("venue_count and instrument_count must be at least 1");
          }
          if (start_price_ticks < 100) raise_usage_error("start_price_ticks must be at least 100");
          std::vector<MdEvent> events;
          {
            py::gil_scoped_release release;
            events = generate_order_flow(p);
          }
          return records_copy(events.data(), events.size());
        },
        py::arg("seed") = 1, py::arg("event_count") = 100000, py::arg("venue_count") = 1,
        py::arg("instrument_count") = 1, py::arg("start_price_ticks") = 10000,
        py::arg("start_ts_ns") = 1'700'000'000'000'000'000LL, py::arg("mean_gap_ns") = 2000.0,
        py::arg("target_orders") = 2000,
        "Returns a valid synthetic L3 stream (md_event_dtype) with a realistic message mix.");
  m.def("to_level_updates",
        [](const py::array& events) {
          const auto [data, count] = records_view<MdEvent>(events, "events");
          std::vector<MdEvent> out;
          {
            py::gil_scoped_release release;
            out = to_level_updates(data, count);
          }
          return records_copy(out.data(), out.size());
        },
        py::arg("events"), "Returns the L2 (LEVEL) stream that a valid L3 stream implies.");
  m.def("bench_book",
        [](const py::array& events, bool l3) {
          const auto [data, count] = records_view<MdEvent>(events, "events");
          py::array_t<double> latency(static_cast<py::ssize_t>(count));
          BookBenchResult r;
          {
            py::gil_scoped_release release;
            r = bench_book(l3, data, count, latency.mutable_data());
          }
          if (r.status != Status::kOk) raise_book_error(r.status, r.failed_index, data[r.failed_index], 0);
          py::dict d;
          d["latency_ns"] = latency;
          d["throughput_per_s"] = r.throughput_per_s;
          d["timer_overhead_ns"] = r.timer_overhead_ns;
          d["ns_per_tick"] = r.ns_per_tick;
          return d;
        },
        py::arg("events"), py::arg("l3"),
        "Times each event through a fresh L3 (or L2) book in C++; returns per-event latency "
        "(ns, timer overhead subtracted) and batch throughput.");
}

}  // namespace sor::bindings
