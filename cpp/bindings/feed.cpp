#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "errors.hpp"
#include "sor/itch.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

using itch::ItchDecoder;
using itch::ItchEncoder;

// Hands the vector to numpy without a copy; the capsule owns it.
py::array_t<MdEvent> to_array(std::vector<MdEvent>&& events) {
  auto* owned = new std::vector<MdEvent>(std::move(events));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<MdEvent>*>(p); });
  return py::array_t<MdEvent>({owned->size()}, {sizeof(MdEvent)}, owned->data(), owner);
}

py::buffer_info contiguous_bytes(const py::buffer& data) {
  py::buffer_info info = data.request();
  if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize)) {
    raise_usage_error("feed bytes must be a C-contiguous one-dimensional buffer");
  }
  return info;
}

py::array_t<MdEvent> decode(ItchDecoder& decoder, const py::buffer& data) {
  const py::buffer_info info = contiguous_bytes(data);
  const auto* bytes = static_cast<const std::uint8_t*>(info.ptr);
  const auto size = static_cast<std::size_t>(info.size * info.itemsize);
  std::vector<MdEvent> events;
  events.reserve(decoder.max_events(size));
  Status status;
  {
    py::gil_scoped_release release;
    status = decoder.decode(bytes, size, events);
  }
  if (status != Status::kOk) {
    raise_feed_error(status, decoder.error_offset(), std::string(decoder.error_reason()),
                     to_array(std::move(events)));
  }
  return to_array(std::move(events));
}

void finish(ItchDecoder& decoder) {
  const Status status = decoder.finish();
  if (status != Status::kOk) {
    raise_feed_error(status, decoder.error_offset(), std::string(decoder.error_reason()),
                     to_array({}));
  }
}

py::list directory(const ItchDecoder& decoder) {
  py::list entries;
  for (const auto& e : decoder.directory()) {
    entries.append(py::make_tuple(e.stock_locate, std::string(e.symbol_view()), e.round_lot_size,
                                  std::string(1, e.market_category),
                                  std::string(1, e.financial_status), e.instrument_id));
  }
  return entries;
}

py::dict message_counts(const ItchDecoder& decoder) {
  py::dict counts;
  const auto& table = decoder.message_counts();
  for (std::size_t type = 0; type < table.size(); ++type) {
    if (table[type] != 0) counts[py::str(std::string(1, static_cast<char>(type)))] = table[type];
  }
  return counts;
}

void check_encoded(const ItchEncoder& encoder, Status status, const char* what) {
  if (status != Status::kOk) {
    raise_usage_error(std::string(what) + " cannot be encoded (" +
                      std::string(status_name(status)) + "): " +
                      std::string(encoder.error_reason()));
  }
}

void encode_events(ItchEncoder& encoder, const py::array& events) {
  const auto [data, count] = records_view<MdEvent>(events, "events");
  const BatchResult result = encoder.encode(data, count);
  check_encoded(encoder, result.status, ("event " + std::to_string(result.applied)).c_str());
}

py::list packets(const ItchEncoder& encoder) {
  py::list out;
  for (const auto& packet : encoder.packets()) {
    out.append(py::bytes(reinterpret_cast<const char*>(packet.data()), packet.size()));
  }
  return out;
}

}  // namespace

void bind_feed(py::module_& m) {
  py::class_<ItchDecoder>(m, "ItchDecoder")
      .def(py::init([](int framing, std::uint8_t venue_id, std::int64_t session_date_ns,
                       std::int64_t ts_recv,
                       std::optional<std::unordered_map<std::string, std::uint32_t>> instruments) {
             return new ItchDecoder(itch::DecoderOptions{static_cast<itch::Framing>(framing),
                                                         venue_id, session_date_ns, ts_recv,
                                                         std::move(instruments)});
           }),
           py::arg("framing"), py::arg("venue_id"), py::arg("session_date_ns"),
           py::arg("ts_recv"), py::arg("instruments"))
      .def("decode", &decode, py::arg("data"))
      .def("finish", &finish)
      .def("directory", &directory)
      .def("message_counts", &message_counts)
      .def_property_readonly("unmapped_messages", &ItchDecoder::unmapped_messages)
      .def_property_readonly("bytes_fed", &ItchDecoder::bytes_fed)
      .def_property_readonly("pending_bytes", &ItchDecoder::pending_bytes)
      .def_property_readonly("end_of_session", &ItchDecoder::end_of_session);

  py::class_<ItchEncoder>(m, "ItchEncoder")
      .def(py::init([](int framing, std::int64_t session_date_ns, std::string session,
                       std::uint64_t first_sequence, std::size_t max_packet_bytes,
                       std::size_t max_messages_per_packet,
                       std::optional<std::unordered_map<std::uint32_t, std::uint16_t>> locates) {
             return new ItchEncoder(itch::EncoderOptions{
                 static_cast<itch::Framing>(framing), session_date_ns, std::move(session),
                 first_sequence, max_packet_bytes, max_messages_per_packet, std::move(locates)});
           }),
           py::arg("framing"), py::arg("session_date_ns"), py::arg("session"),
           py::arg("first_sequence"), py::arg("max_packet_bytes"),
           py::arg("max_messages_per_packet"), py::arg("stock_locates"))
      .def("system_event", [](ItchEncoder& e, char code, std::int64_t ts_event) {
        check_encoded(e, e.system_event(code, ts_event), "system event");
      })
      .def("stock_directory", [](ItchEncoder& e, std::uint16_t locate, std::string symbol,
                                 std::uint32_t round_lot_size, std::int64_t ts_event,
                                 char market_category, char financial_status) {
        check_encoded(e, e.stock_directory(locate, symbol, round_lot_size, ts_event,
                                           market_category, financial_status),
                      "stock directory entry");
      })
      .def("encode", &encode_events, py::arg("events").noconvert())
      .def("flush", &ItchEncoder::flush)
      .def("end_session", &ItchEncoder::end_session)
      .def("bytes", [](const ItchEncoder& e) {
        return py::bytes(reinterpret_cast<const char*>(e.bytes().data()), e.bytes().size());
      })
      .def("packets", &packets)
      .def_property_readonly("messages_written", &ItchEncoder::messages_written);
}

}  // namespace sor::bindings
