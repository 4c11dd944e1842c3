#include <pybind11/numpy.h>

#include "bindings.hpp"
#include "sor/ring_bench.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

py::dict result_dict(const RingBenchResult& r) {
  py::dict d;
  d["status"] = ring_bench_status_name(r.status);
  d["detail"] = r.detail;
  d["pinned"] = r.pinned;
  d["ns_per_tick"] = r.ns_per_tick;
  d["timer_overhead_ns"] = r.timer_overhead_ns;
  d["negative_samples"] = r.negative_samples;
  d["records"] = r.records;
  d["elapsed_ns"] = r.elapsed_ns;
  d["throughput_per_s"] = r.throughput_per_s;
  return d;
}

template <class Run>
py::dict latency(const RingBenchOptions& options, Run&& run) {
  py::array_t<double> one_way(static_cast<py::ssize_t>(options.samples));
  py::array_t<double> round_trip_half(static_cast<py::ssize_t>(options.samples));
  RingBenchResult r;
  {
    py::gil_scoped_release release;
    r = run(one_way.mutable_data(), round_trip_half.mutable_data());
  }
  py::dict d = result_dict(r);
  d["one_way_ns"] = one_way;
  d["round_trip_half_ns"] = round_trip_half;
  return d;
}

template <class Run>
py::dict without_gil(Run&& run) {
  RingBenchResult r;
  {
    py::gil_scoped_release release;
    r = run();
  }
  return result_dict(r);
}

}  // namespace

void bind_bench(py::module_& m) {
  py::class_<RingBenchOptions>(m, "RingBenchOptions",
                               "Parameters of a ring benchmark run (both sides alike).")
      .def(py::init<>())
      .def_readwrite("name", &RingBenchOptions::name)
      .def_readwrite("samples", &RingBenchOptions::samples)
      .def_readwrite("warmup", &RingBenchOptions::warmup)
      .def_readwrite("gap_ns", &RingBenchOptions::gap_ns)
      .def_readwrite("throughput_records", &RingBenchOptions::throughput_records)
      .def_readwrite("batch_records", &RingBenchOptions::batch_records)
      .def_readwrite("capacity_records", &RingBenchOptions::capacity_records)
      .def_readwrite("cpu", &RingBenchOptions::cpu)
      .def_readwrite("peer_timeout_ns", &RingBenchOptions::peer_timeout_ns);
  m.attr("RING_BENCH_RECORD_SIZE") = kRingBenchRecordSize;
  m.def("pin_current_thread", &pin_current_thread, py::arg("cpu"),
        "Pins the calling thread to `cpu`; returns False when the host does not allow it.");
  m.def("bench_ring_latency_send", [](const RingBenchOptions& o) {
          return latency(o, [&](double* a, double* b) { return ring_latency_send(o, a, b); });
        }, py::arg("options"),
        "Sender of a paced latency run; returns status, one_way_ns and round_trip_half_ns.");
  m.def("bench_ring_latency_echo", [](const RingBenchOptions& o) {
          return without_gil([&] { return ring_latency_echo(o); });
        }, py::arg("options"), "Echo side of a latency run, attached by name.");
  m.def("bench_ring_throughput_send", [](const RingBenchOptions& o) {
          return without_gil([&] { return ring_throughput_send(o); });
        }, py::arg("options"), "Sender of a throughput run; returns status and records/s.");
  m.def("bench_ring_throughput_receive", [](const RingBenchOptions& o) {
          return without_gil([&] { return ring_throughput_receive(o); });
        }, py::arg("options"), "Receiver of a throughput run, attached by name.");
  m.def("bench_ring_latency_threads", [](const RingBenchOptions& o, int echo_cpu) {
          return latency(o, [&](double* a, double* b) {
            return ring_latency_threads(o, echo_cpu, a, b);
          });
        }, py::arg("options"), py::arg("echo_cpu"),
        "Latency run with the echo on a second thread pinned to `echo_cpu`.");
  m.def("bench_ring_throughput_threads", [](const RingBenchOptions& o, int receiver_cpu) {
          return without_gil([&] { return ring_throughput_threads(o, receiver_cpu); });
        }, py::arg("options"), py::arg("receiver_cpu"),
        "Throughput run with the receiver on a second thread pinned to `receiver_cpu`.");
}

}  // namespace sor::bindings
