#include <pybind11/numpy.h>

#include <memory>
#include <string>

#include "bindings.hpp"
#include "sor/decision.hpp"
#include "errors.hpp"
#include "sor/ring.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

// The Python handle. The mapping lives as long as this object, so numpy views handed out by
// peek/claim (which keep it alive as their base) never point at unmapped memory.
struct PyRing {
  Ring ring;
  py::dtype dtype;
  bool closed = false;

  void check_open() const {
    if (closed) raise_usage_error("ring '" + ring.name() + "' is closed");
  }
  void check_role(RingRole role, const char* what) const {
    check_open();
    if (ring.role() != role) {
      raise_usage_error(std::string(what) + " needs the " +
                        (role == RingRole::kProducer ? "producer" : "consumer") +
                        " end of ring '" + ring.name() + "'");
    }
  }
  const std::uint8_t* checked_records(const py::array& records, std::uint64_t* count) const {
    if (!records.dtype().attr("__eq__")(dtype).cast<bool>()) {
      raise_usage_error("records for ring '" + ring.name() + "' must have dtype " +
                        py::str(dtype).cast<std::string>() + ", got " +
                        py::str(records.dtype()).cast<std::string>());
    }
    if (records.ndim() != 1 || !(records.flags() & py::array::c_style)) {
      raise_usage_error("records must be a one-dimensional C-contiguous array");
    }
    *count = static_cast<std::uint64_t>(records.shape(0));
    return static_cast<const std::uint8_t*>(records.data());
  }
};

RecordType record_type_for(const py::dtype& dtype) {
  auto same = [&](const py::dtype& other) { return dtype.attr("__eq__")(other).cast<bool>(); };
  if (same(py::dtype::of<MdEvent>())) return RecordType::kMdEvent;
  if (same(py::dtype::of<Command>())) return RecordType::kCommand;
  if (same(py::dtype::of<ExecReport>())) return RecordType::kExecReport;
  if (same(py::dtype::of<OrderIntent>())) return RecordType::kOrderIntent;
  if (same(py::dtype::of<AuditRecord>())) return RecordType::kAuditRecord;
  if (same(py::dtype::of<DecisionRecord>())) return RecordType::kDecisionRecord;
  return RecordType::kRaw;
}

std::unique_ptr<PyRing> finish(RingResult result, Ring&& ring, const py::dtype& dtype) {
  if (!result) raise_ring_error(std::string(ring_status_name(result.status)), result.detail);
  auto handle = std::make_unique<PyRing>();
  handle->ring = std::move(ring);
  handle->dtype = dtype;
  return handle;
}

std::uint32_t record_size_of(const py::dtype& dtype) {
  const auto size = static_cast<std::uint32_t>(dtype.itemsize());
  if (size == 0 || size % 8 != 0) {
    raise_usage_error("ring records must be a multiple of 8 bytes, dtype " +
                      py::str(dtype).cast<std::string>() + " has " + std::to_string(size));
  }
  return size;
}

py::array view(PyRing& self, py::handle owner, void* data, std::uint64_t count, bool writable) {
  py::array out(self.dtype, {static_cast<py::ssize_t>(count)}, {}, data, owner);
  if (!writable) out.attr("setflags")(py::arg("write") = false);
  return out;
}

py::dict stats_dict(const RingStats& s) {
  py::dict d;
  d["capacity_records"] = s.capacity_records;
  d["record_size"] = s.record_size;
  d["record_type"] = static_cast<std::uint32_t>(s.record_type);
  d["overflow_policy"] = s.overflow_policy == OverflowPolicy::kSpin ? "spin" : "refuse";
  d["written_records"] = s.written_records;
  d["read_records"] = s.read_records;
  d["refused_records"] = s.refused_records;
  d["full_events"] = s.full_events;
  d["creator_pid"] = s.creator_pid;
  d["producer_pid"] = s.producer_pid;
  d["consumer_pid"] = s.consumer_pid;
  d["producer_heartbeat_age_ns"] = s.producer_heartbeat_age_ns;
  d["consumer_heartbeat_age_ns"] = s.consumer_heartbeat_age_ns;
  d["producer_takeovers"] = s.producer_takeovers;
  d["consumer_takeovers"] = s.consumer_takeovers;
  return d;
}

}  // namespace

void bind_ring(py::module_& m) {
  py::enum_<RingRole>(m, "RingRole")
      .value("PRODUCER", RingRole::kProducer)
      .value("CONSUMER", RingRole::kConsumer)
      .value("OBSERVER", RingRole::kObserver);
  py::enum_<OverflowPolicy>(m, "OverflowPolicy")
      .value("REFUSE", OverflowPolicy::kRefuse)
      .value("SPIN", OverflowPolicy::kSpin);
  py::enum_<StalePolicy>(m, "StalePolicy")
      .value("ERROR", StalePolicy::kError)
      .value("TAKEOVER", StalePolicy::kTakeover);
  py::enum_<PeerState>(m, "PeerState")
      .value("ABSENT", PeerState::kAbsent)
      .value("ALIVE", PeerState::kAlive)
      .value("STALLED", PeerState::kStalled)
      .value("DEAD", PeerState::kDead)
      .value("CLOSED", PeerState::kClosed);
  m.attr("RING_LAYOUT_VERSION") = kRingLayoutVersion;

  py::class_<PyRing>(m, "Ring")
      .def_static(
          "create",
          [](const std::string& name, const py::dtype& dtype, std::uint64_t capacity_records,
             RingRole role, OverflowPolicy overflow, std::int64_t spin_limit_ns,
             StalePolicy stale) {
            RingOptions o;
            o.name = name;
            o.capacity_records = capacity_records;
            o.record_size = record_size_of(dtype);
            o.record_type = record_type_for(dtype);
            o.overflow_policy = overflow;
            o.overflow_spin_limit_ns = spin_limit_ns;
            o.stale_policy = stale;
            Ring ring;
            RingResult r = Ring::create(o, role, ring);
            return finish(std::move(r), std::move(ring), dtype);
          },
          py::arg("name"), py::arg("dtype"), py::arg("capacity_records"), py::arg("role"),
          py::arg("overflow"), py::arg("spin_limit_ns"), py::arg("stale"))
      .def_static(
          "attach",
          [](const std::string& name, const py::dtype& dtype, RingRole role, StalePolicy stale) {
            Ring ring;
            RingResult r = Ring::attach(name, role, record_type_for(dtype), record_size_of(dtype),
                                        stale, ring);
            return finish(std::move(r), std::move(ring), dtype);
          },
          py::arg("name"), py::arg("dtype"), py::arg("role"), py::arg("stale"))
      .def_static("unlink", [](const std::string& name) { return Ring::unlink(name); })
      .def_property_readonly("name", [](const PyRing& self) { return self.ring.name(); })
      .def_property_readonly("dtype", [](const PyRing& self) { return self.dtype; })
      .def_property_readonly("role", [](const PyRing& self) { return self.ring.role(); })
      .def_property_readonly("capacity_records",
                             [](const PyRing& self) { return self.ring.capacity(); })
      .def_property_readonly("closed", [](const PyRing& self) { return self.closed; })
      .def("write",
           [](PyRing& self, const py::array& records) {
             self.check_role(RingRole::kProducer, "write");
             std::uint64_t count = 0;
             const std::uint8_t* data = self.checked_records(records, &count);
             std::uint64_t written = 0;
             {
               py::gil_scoped_release release;
               self.ring.heartbeat();
               written = self.ring.write(data, count);
             }
             return written;
           })
      .def("claim",
           [](py::object owner, std::uint64_t max) {
             PyRing& self = owner.cast<PyRing&>();
             self.check_role(RingRole::kProducer, "claim");
             void* slots = nullptr;
             const std::uint64_t n = self.ring.claim(max, &slots);
             return view(self, owner, slots, n, true);
           })
      .def("publish",
           [](PyRing& self, std::uint64_t count) {
             self.check_role(RingRole::kProducer, "publish");
             void* slots = nullptr;
             if (self.ring.claim(count, &slots) < count) {
               raise_usage_error("publish(" + std::to_string(count) +
                                 ") exceeds the slots claimed");
             }
             self.ring.heartbeat();
             self.ring.publish(count);
           })
      .def("count_refused",
           [](PyRing& self, std::uint64_t count) {
             self.check_role(RingRole::kProducer, "count_refused");
             self.ring.count_refused(count);
           })
      .def("read",
           [](PyRing& self, std::uint64_t max) {
             self.check_role(RingRole::kConsumer, "read");
             const std::uint64_t ready = std::min<std::uint64_t>(self.ring.size(), max);
             py::array out = py::module_::import("numpy").attr("empty")(ready, self.dtype);
             {
               // Only this handle consumes, so all `ready` records are still there.
               py::gil_scoped_release release;
               self.ring.heartbeat();
               self.ring.read(out.mutable_data(), ready);
             }
             return out;
           })
      .def("read_into",
           [](PyRing& self, py::array& out) {
             self.check_role(RingRole::kConsumer, "read_into");
             std::uint64_t capacity = 0;
             self.checked_records(out, &capacity);
             if (!out.writeable()) raise_usage_error("read_into needs a writable array");
             py::gil_scoped_release release;
             self.ring.heartbeat();
             return self.ring.read(out.mutable_data(), capacity);
           })
      .def("peek",
           [](py::object owner, std::uint64_t max) {
             PyRing& self = owner.cast<PyRing&>();
             self.check_role(RingRole::kConsumer, "peek");
             const void* records = nullptr;
             const std::uint64_t n = self.ring.peek(max, &records);
             return view(self, owner, const_cast<void*>(records), n, false);
           })
      .def("release",
           [](PyRing& self, std::uint64_t count) {
             self.check_role(RingRole::kConsumer, "release");
             const void* records = nullptr;
             if (self.ring.peek(count, &records) < count) {
               raise_usage_error("release(" + std::to_string(count) +
                                 ") exceeds the records peeked");
             }
             self.ring.heartbeat();
             self.ring.release(count);
           })
      .def("__len__",
           [](const PyRing& self) {
             self.check_open();
             return self.ring.size();
           })
      .def("heartbeat",
           [](PyRing& self) {
             self.check_open();
             self.ring.heartbeat();
           })
      .def("end_state",
           [](const PyRing& self, RingRole end, std::int64_t timeout_ns) {
             self.check_open();
             return self.ring.end_state(end, timeout_ns);
           })
      .def("peer_state",
           [](const PyRing& self, std::int64_t timeout_ns) {
             self.check_open();
             return self.ring.peer_state(timeout_ns);
           })
      .def("stats",
           [](const PyRing& self) {
             self.check_open();
             return stats_dict(self.ring.stats());
           })
      .def("set_unlink_on_close",
           [](PyRing& self, bool unlink) { self.ring.set_unlink_on_close(unlink); })
      .def("close", [](PyRing& self) {
        self.ring.release_role();
        self.closed = true;
      });
}

}  // namespace sor::bindings
