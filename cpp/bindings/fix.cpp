// sor.fix.codec: the FIX framer, parser, encoder, timestamps and prices of sor/fix.hpp.
// Python objects are made with the C API where pybind11's conversions would cost more than the
// parse itself (see docs/fix.md, "Codec").
#include <pybind11/pybind11.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "errors.hpp"
#include "sor/fix.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

using fix::Field;
using fix::FrameStatus;

// Header tags a Python FixMessage finds without a scan, in slot order.
constexpr std::array<std::uint32_t, 10> kHeaderTags = {8, 9, 35, 49, 56, 34, 52, 43, 122, 10};

int header_slot(std::uint32_t tag) noexcept {
  switch (tag) {
    case 8: return 0;
    case 9: return 1;
    case 35: return 2;
    case 49: return 3;
    case 56: return 4;
    case 34: return 5;
    case 52: return 6;
    case 43: return 7;
    case 122: return 8;
    case 10: return 9;
    default: return -1;
  }
}

// A parsed message as Python holds it: the frame's bytes object (kept, not copied) and a
// compact copy of the parser's field table, so a kept message costs its field count, not
// kMaxFields.
struct PyFixMessage {
  py::object raw;
  std::vector<Field> fields;
  std::array<std::int16_t, kHeaderTags.size()> header{};

  std::string_view data() const noexcept {
    return std::string_view(PyBytes_AS_STRING(raw.ptr()),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(raw.ptr())));
  }

  std::string_view value(std::size_t index) const noexcept {
    return data().substr(fields[index].offset, fields[index].length);
  }

  int find(std::int64_t tag) const noexcept {
    if (tag <= 0 || tag > fix::kMaxTag) return -1;
    const auto t = static_cast<std::uint32_t>(tag);
    const int slot = header_slot(t);
    if (slot >= 0) return header[static_cast<std::size_t>(slot)];
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].tag == t) return static_cast<int>(i);
    }
    return -1;
  }
};

fix::FixMessage& scratch_parser() {
  static auto* parser = new fix::FixMessage();  // Leaked: outlives interpreter shutdown.
  return *parser;
}

// Returns `frame` as a bytes object: itself when it is one, else a copy of its buffer.
py::object as_bytes(py::handle frame) {
  if (PyBytes_CheckExact(frame.ptr())) return py::reinterpret_borrow<py::object>(frame);
  if (!PyObject_CheckBuffer(frame.ptr())) {
    raise_usage_error(std::string("a FIX frame must be bytes-like, not ") +
                      Py_TYPE(frame.ptr())->tp_name);
  }
  return py::reinterpret_steal<py::object>(PyBytes_FromObject(frame.ptr()));
}

// Parses `frame` (a bytes object) into `message`, or raises FixParseError leaving it unchanged.
void parse_into(PyFixMessage& message, py::object frame) {
  fix::FixMessage& parser = scratch_parser();
  const char* data = PyBytes_AS_STRING(frame.ptr());
  const auto size = static_cast<std::size_t>(PyBytes_GET_SIZE(frame.ptr()));
  const fix::ParseStatus status = parser.parse(data, size);
  if (status != fix::ParseStatus::kOk) {
    raise_fix_parse_error(std::string(fix::parse_status_name(status)), parser.error_offset(),
                          parser.error_reason());
  }
  const std::size_t count = parser.field_count();
  message.fields.assign(parser.fields(), parser.fields() + count);
  message.header.fill(-1);
  for (std::size_t i = 0; i < count; ++i) {
    const int slot = header_slot(message.fields[i].tag);
    if (slot >= 0 && message.header[static_cast<std::size_t>(slot)] < 0) {
      message.header[static_cast<std::size_t>(slot)] = static_cast<std::int16_t>(i);
    }
  }
  message.raw = std::move(frame);
}

// The last message parse() returned. When nothing else holds it any more (reference count 1),
// the next parse() refills it instead of making a new Python object. Guarded by the GIL.
struct Spare {
  py::object object;
  PyFixMessage* message = nullptr;
};

Spare& spare() {
  static auto* held = new Spare();  // Leaked: outlives interpreter shutdown.
  return *held;
}

py::object parse(py::handle frame) {
  py::object bytes = as_bytes(frame);
  Spare& held = spare();
  if (held.message != nullptr && Py_REFCNT(held.object.ptr()) == 1) {
    parse_into(*held.message, std::move(bytes));
    return held.object;
  }
  auto owned = std::make_unique<PyFixMessage>();
  PyFixMessage* message = owned.get();
  parse_into(*message, std::move(bytes));
  py::object object = py::cast(std::move(owned));
  held.object = object;
  held.message = message;
  return object;
}

py::object text(std::string_view value) {
  PyObject* s = PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()),
                                     "surrogateescape");
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(s);
}

py::object bytes_of(std::string_view value) {
  return py::reinterpret_steal<py::object>(
      PyBytes_FromStringAndSize(value.data(), static_cast<Py_ssize_t>(value.size())));
}

std::string_view header_value(const PyFixMessage& message, std::uint32_t tag) {
  const int index = message.header[static_cast<std::size_t>(header_slot(tag))];
  return index < 0 ? std::string_view() : message.value(static_cast<std::size_t>(index));
}

py::object get_int(const PyFixMessage& message, std::int64_t tag, py::object fallback) {
  const int index = message.find(tag);
  if (index < 0) return fallback;
  const std::string_view value = message.value(static_cast<std::size_t>(index));
  std::int64_t number = 0;
  if (!fix::parse_int(value, number)) {
    raise_fix_field_error(tag, text(value), "not an integer");
  }
  return py::int_(number);
}

py::list get_all(const PyFixMessage& message, std::int64_t tag) {
  py::list out;
  if (tag <= 0 || tag > fix::kMaxTag) return out;
  for (std::size_t i = 0; i < message.fields.size(); ++i) {
    if (message.fields[i].tag == static_cast<std::uint32_t>(tag)) out.append(text(message.value(i)));
  }
  return out;
}

py::list fields(const PyFixMessage& message) {
  const std::size_t count = message.fields.size();
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(count));
  if (list == nullptr) throw py::error_already_set();
  py::list out = py::reinterpret_steal<py::list>(list);
  for (std::size_t i = 0; i < count; ++i) {
    PyObject* pair = PyTuple_Pack(2, py::int_(message.fields[i].tag).ptr(),
                                  bytes_of(message.value(i)).ptr());
    if (pair == nullptr) throw py::error_already_set();
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), pair);
  }
  return out;
}

std::size_t count(const PyFixMessage& message, std::int64_t tag) {
  if (tag <= 0 || tag > fix::kMaxTag) return 0;
  std::size_t n = 0;
  for (const Field& field : message.fields) n += field.tag == static_cast<std::uint32_t>(tag);
  return n;
}

py::str repr(const PyFixMessage& message) {
  std::string shown(message.data());
  for (char& c : shown) {
    if (c == fix::kSoh) c = '|';
  }
  py::object readable = py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(
      shown.data(), static_cast<Py_ssize_t>(shown.size()), "backslashreplace"));
  if (!readable) throw py::error_already_set();
  return py::str("FixMessage({!r})").format(readable);
}

// ---- framing ---------------------------------------------------------------------------------

// The FixFrameStatus members, indexed by FrameStatus (leaked: outlive interpreter shutdown).
std::array<PyObject*, 5>& status_members() {
  static std::array<PyObject*, 5> members{};
  return members;
}

void append_frame(py::list& out, FrameStatus status, std::string_view bytes) {
  PyObject* pair = PyTuple_Pack(2, status_members()[static_cast<std::size_t>(status)],
                                bytes_of(bytes).ptr());
  if (pair == nullptr) throw py::error_already_set();
  py::object owned = py::reinterpret_steal<py::object>(pair);
  if (PyList_Append(out.ptr(), pair) != 0) throw py::error_already_set();
}

class BufferView {
 public:
  explicit BufferView(py::handle data) {
    if (PyObject_GetBuffer(data.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      raise_usage_error(std::string("FIX bytes must be bytes-like, not ") +
                        Py_TYPE(data.ptr())->tp_name);
    }
  }
  ~BufferView() { PyBuffer_Release(&view_); }
  BufferView(const BufferView&) = delete;
  BufferView& operator=(const BufferView&) = delete;
  const char* data() const { return static_cast<const char*>(view_.buf); }
  std::size_t size() const { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

py::list feed(fix::FixFramer& framer, py::handle data) {
  const BufferView input(data);
  py::list out;
  // Error bytes a skip spreads over several frames come out as one (status, bytes) pair.
  std::string run;
  FrameStatus run_status = FrameStatus::kOk;
  const auto flush_run = [&] {
    if (!run.empty()) append_frame(out, run_status, run);
    run.clear();
  };
  std::size_t given = 0;
  fix::Frame frame;
  do {
    const std::size_t taken = framer.append(input.data() + given, input.size() - given);
    given += taken;
    bool produced = false;
    while (framer.next(frame)) {
      produced = true;
      if (frame.status == FrameStatus::kOk) {
        flush_run();
        append_frame(out, frame.status, frame.bytes());
      } else if (frame.continued && !run.empty() && frame.status == run_status) {
        run.append(frame.bytes());
      } else {
        flush_run();
        run_status = frame.status;
        run.assign(frame.bytes());
      }
    }
    if (taken == 0 && !produced && given < input.size()) {
      raise_usage_error("FIX framer made no progress (internal error)");
    }
  } while (given < input.size());
  flush_run();
  return out;
}

// ---- encoding --------------------------------------------------------------------------------

std::string encode_reason(fix::EncodeStatus status, std::size_t max_message_bytes) {
  switch (status) {
    case fix::EncodeStatus::kBadTag: return "a tag must be between 1 and 999999999";
    case fix::EncodeStatus::kEmptyValue: return "empty value (FIX forbids fields without a value)";
    case fix::EncodeStatus::kValueHasSoh:
      return "the value holds SOH and the tag is not a data field";
    case fix::EncodeStatus::kTooLong:
      return "the message's BodyLength would exceed max_message_bytes " +
             std::to_string(max_message_bytes);
    case fix::EncodeStatus::kBadHeader:
      return "a header value must be non-empty and free of SOH (BeginString at most " +
             std::to_string(fix::kMaxBeginStringBytes) + " bytes)";
    case fix::EncodeStatus::kReservedTag:
      return "the encoder writes this tag itself from its arguments (8, 9, 10, 34, 35, 43, "
             "49, 52, 56, 122)";
    case fix::EncodeStatus::kOk: break;
  }
  return "refused";
}

fix::FixEncoder& encoder_for(std::size_t max_message_bytes) {
  static std::unique_ptr<fix::FixEncoder> encoder;
  static std::size_t size = 0;
  if (!encoder || size != max_message_bytes) {
    encoder = std::make_unique<fix::FixEncoder>(max_message_bytes);
    size = max_message_bytes;
  }
  return *encoder;
}

// A body value as bytes: holds whatever temporary keeps the bytes alive.
struct ValueBytes {
  std::string_view view;
  py::object keep;
  std::unique_ptr<BufferView> buffer;
  char number[24];
};

// Fills `out` with the wire text of `value`, or returns false for an unsupported type.
bool value_bytes(py::handle value, ValueBytes& out) {
  PyObject* v = value.ptr();
  if (PyUnicode_Check(v)) {
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(v, &size);
    if (utf8 == nullptr) {
      PyErr_Clear();
      out.keep = py::reinterpret_steal<py::object>(
          PyUnicode_AsEncodedString(v, "utf-8", "surrogateescape"));
      if (!out.keep) throw py::error_already_set();
      utf8 = PyBytes_AS_STRING(out.keep.ptr());
      size = PyBytes_GET_SIZE(out.keep.ptr());
    }
    out.view = std::string_view(utf8, static_cast<std::size_t>(size));
    return true;
  }
  if (PyBytes_Check(v)) {
    out.view = std::string_view(PyBytes_AS_STRING(v), static_cast<std::size_t>(PyBytes_GET_SIZE(v)));
    return true;
  }
  if (PyBool_Check(v)) {
    out.view = v == Py_True ? "Y" : "N";
    return true;
  }
  if (PyLong_Check(v)) {
    int overflow = 0;
    const long long number = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow == 0) {
      if (number == -1 && PyErr_Occurred()) throw py::error_already_set();
      std::string digits = std::to_string(number);
      std::memcpy(out.number, digits.data(), digits.size());
      out.view = std::string_view(out.number, digits.size());
      return true;
    }
    out.keep = py::reinterpret_steal<py::object>(PyObject_Str(v));
    if (!out.keep) throw py::error_already_set();
    return value_bytes(out.keep, out);
  }
  if (PyObject_CheckBuffer(v)) {
    out.buffer = std::make_unique<BufferView>(value);
    out.view = std::string_view(out.buffer->data(), out.buffer->size());
    return true;
  }
  return false;
}

py::bytes encode(std::string_view begin_string, std::string_view msg_type,
                 std::string_view sender_comp_id, std::string_view target_comp_id,
                 std::int64_t seq_num, std::int64_t sending_time_ns, py::handle body,
                 bool poss_dup, std::int64_t orig_sending_time_ns,
                 std::size_t max_message_bytes) {
  if (seq_num < 0) raise_fix_field_error(34, py::str(std::to_string(seq_num)), "negative MsgSeqNum");
  if (max_message_bytes == 0) raise_usage_error("max_message_bytes must be at least 1");
  fix::FixEncoder& encoder = encoder_for(max_message_bytes);
  const fix::HeaderFields header{begin_string,   msg_type,
                                 sender_comp_id, target_comp_id,
                                 static_cast<std::uint64_t>(seq_num), sending_time_ns,
                                 poss_dup,       orig_sending_time_ns};
  fix::EncodeStatus status = encoder.begin(header);
  if (status != fix::EncodeStatus::kOk) {
    const std::uint32_t tag = encoder.error_tag();
    const std::string_view value = tag == 8    ? begin_string
                                   : tag == 35 ? msg_type
                                   : tag == 49 ? sender_comp_id
                                   : tag == 56 ? target_comp_id
                                               : std::string_view();
    raise_fix_field_error(tag, text(value), encode_reason(status, max_message_bytes));
  }
  PyObject* items = PySequence_Fast(body.ptr(), "body must be a sequence of (tag, value) pairs");
  if (items == nullptr) throw py::error_already_set();
  py::object owned_items = py::reinterpret_steal<py::object>(items);
  const Py_ssize_t size = PySequence_Fast_GET_SIZE(items);
  for (Py_ssize_t i = 0; i < size; ++i) {
    PyObject* item = PySequence_Fast_GET_ITEM(items, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      raise_usage_error("body[" + std::to_string(i) + "] must be a (tag, value) pair");
    }
    PyObject* tag_object = PyTuple_GET_ITEM(item, 0);
    PyObject* value_object = PyTuple_GET_ITEM(item, 1);
    if (!PyLong_Check(tag_object) || PyBool_Check(tag_object)) {
      raise_usage_error("body[" + std::to_string(i) + "]: the tag must be an int");
    }
    int overflow = 0;
    const long long tag = PyLong_AsLongLongAndOverflow(tag_object, &overflow);
    if (overflow != 0 || tag <= 0 || tag > fix::kMaxTag) {
      raise_fix_field_error(-1, py::str(py::handle(tag_object)),
                            encode_reason(fix::EncodeStatus::kBadTag, max_message_bytes));
    }
    ValueBytes value;
    if (!value_bytes(value_object, value)) {
      raise_usage_error("body[" + std::to_string(i) + "] (tag " + std::to_string(tag) +
                        "): the value must be str, int, bool or bytes, not " +
                        Py_TYPE(value_object)->tp_name +
                        " (write prices with price_to_fix)");
    }
    status = encoder.add(static_cast<std::uint32_t>(tag), value.view);
    if (status != fix::EncodeStatus::kOk) {
      raise_fix_field_error(tag, text(value.view), encode_reason(status, max_message_bytes));
    }
  }
  const std::string_view message = encoder.finish();
  return py::reinterpret_steal<py::bytes>(bytes_of(message).release());
}

// ---- timestamps and prices -------------------------------------------------------------------

// Returns the UTF-8 text of a str, or the bytes of a bytes-like value.
std::string text_argument(py::handle value, const char* what) {
  if (PyUnicode_Check(value.ptr())) return value.cast<std::string>();
  if (PyBytes_Check(value.ptr())) {
    return std::string(PyBytes_AS_STRING(value.ptr()),
                       static_cast<std::size_t>(PyBytes_GET_SIZE(value.ptr())));
  }
  raise_usage_error(std::string(what) + " must be str or bytes, not " +
                    Py_TYPE(value.ptr())->tp_name);
}

std::int64_t tag_or_none(const py::object& tag) { return tag.is_none() ? -1 : tag.cast<std::int64_t>(); }

py::str format_timestamp(std::int64_t ns, int fraction_digits) {
  char out[fix::kMaxTimestampBytes];
  const std::size_t size = fix::format_utc_timestamp(ns, fraction_digits, out);
  if (size == 0) {
    raise_usage_error("fraction_digits must be 0, 3, 6 or 9, got " + std::to_string(fraction_digits));
  }
  return py::str(out, size);
}

std::int64_t parse_timestamp(py::handle value, py::object tag) {
  const std::string text_value = text_argument(value, "a UTCTimestamp");
  std::int64_t ns = 0;
  const fix::TimestampStatus status = fix::parse_utc_timestamp(text_value, ns);
  if (status == fix::TimestampStatus::kOk) return ns;
  std::string reason;
  switch (status) {
    case fix::TimestampStatus::kBadFormat:
      reason = "not a UTCTimestamp (YYYYMMDD-HH:MM:SS with 0, 3, 6 or 9 fractional digits)";
      break;
    case fix::TimestampStatus::kBadDate: reason = "month or day out of range"; break;
    case fix::TimestampStatus::kBadTime: reason = "hour, minute or second out of range"; break;
    default: reason = "outside int64 nanoseconds since the epoch (years 1677 to 2262)"; break;
  }
  raise_fix_field_error(tag_or_none(tag), text(text_value), reason);
}

fix::TickSize tick_size(double tick_usd) {
  static double cached_usd = 0.0001;
  static fix::TickSize cached{1, 4};
  if (tick_usd == cached_usd) return cached;
  fix::TickSize tick;
  if (!fix::tick_size_from_usd(tick_usd, tick)) {
    raise_usage_error("tick_usd must be a positive decimal with at most 9 places, got " +
                      py::repr(py::float_(tick_usd)).cast<std::string>());
  }
  cached_usd = tick_usd;
  cached = tick;
  return tick;
}

py::str price_to_text(std::int64_t price_ticks, double tick_usd) {
  char out[fix::kMaxPriceBytes];
  const std::size_t size = fix::price_to_fix(price_ticks, tick_size(tick_usd), out);
  if (size == 0) {
    raise_fix_field_error(-1, py::str(std::to_string(price_ticks)),
                          "the price in USD overflows 64 bits");
  }
  return py::str(out, size);
}

std::int64_t price_from_text(py::handle value, double tick_usd, py::object tag) {
  const std::string text_value = text_argument(value, "a price");
  const fix::TickSize tick = tick_size(tick_usd);
  std::int64_t ticks = 0;
  const fix::PriceStatus status = fix::price_from_fix(text_value, tick, ticks);
  if (status == fix::PriceStatus::kOk) return ticks;
  std::string reason;
  switch (status) {
    case fix::PriceStatus::kSubTick: {
      char one[fix::kMaxPriceBytes];
      reason = "finer than the tick of " +
               std::string(one, fix::price_to_fix(1, tick, one)) + " USD";
      break;
    }
    case fix::PriceStatus::kOverflow: reason = "too many ticks for int64"; break;
    default: reason = "not a FIX decimal price ([-]digits[.digits])"; break;
  }
  raise_fix_field_error(tag_or_none(tag), text(text_value), reason);
}

}  // namespace

void bind_fix(py::module_& m) {
  py::object int_enum = py::module_::import("enum").attr("IntEnum");
  py::list members;
  for (const auto& [name, value] :
       {std::pair<const char*, FrameStatus>{"OK", FrameStatus::kOk},
        {"BAD_CHECKSUM", FrameStatus::kBadChecksum},
        {"BAD_BODY_LENGTH", FrameStatus::kBadBodyLength},
        {"GARBLED", FrameStatus::kGarbled},
        {"TOO_LONG", FrameStatus::kTooLong}}) {
    members.append(py::make_tuple(name, static_cast<int>(value)));
  }
  py::object frame_status = int_enum("FixFrameStatus", members, py::arg("module") = "sor._core");
  frame_status.attr("__doc__") =
      "What a frame from FixFramer.feed holds: OK (a whole message), BAD_CHECKSUM, "
      "BAD_BODY_LENGTH, GARBLED, TOO_LONG (skipped bytes).";
  m.attr("FixFrameStatus") = frame_status;
  for (int value = 0; value < 5; ++value) {
    status_members()[static_cast<std::size_t>(value)] = frame_status(value).release().ptr();
  }

  m.attr("FIX_MAX_FIELDS") = fix::kMaxFields;

  py::class_<fix::FixFramer>(m, "FixFramer",
                             "Splits a FIX byte stream into messages, checking BodyLength and "
                             "CheckSum; bounded memory, resyncs on the next 8=FIX after errors.")
      .def(py::init([](std::int64_t max_message_bytes) {
             if (max_message_bytes < 1) raise_usage_error("max_message_bytes must be at least 1");
             return new fix::FixFramer(static_cast<std::size_t>(max_message_bytes));
           }),
           py::arg("max_message_bytes") = 65536)
      .def("feed", &feed, py::arg("data"),
           "Appends bytes and returns every complete frame in order as (FixFrameStatus, bytes); "
           "an error frame carries the bytes that were skipped.")
      .def("clear", &fix::FixFramer::clear,
           "Drops every buffered byte (for a new connection).")
      .def_property_readonly("buffered_bytes", &fix::FixFramer::buffered_bytes,
                             "Returns the number of bytes held for an incomplete frame.")
      .def_property_readonly("capacity", &fix::FixFramer::capacity,
                             "Returns the most bytes the framer ever holds.")
      .def_property_readonly("max_message_bytes", &fix::FixFramer::max_message_bytes,
                             "Returns the largest BodyLength accepted.");

  py::class_<PyFixMessage>(m, "FixMessage",
                           "A parsed FIX message: the frame's bytes and its fields in wire "
                           "order; values become str only when asked for.")
      .def(py::init([](py::handle frame) {
             auto message = std::make_unique<PyFixMessage>();
             parse_into(*message, as_bytes(frame));
             return message;
           }),
           py::arg("frame"))
      .def_property_readonly("raw", [](const PyFixMessage& s) { return s.raw; },
                             "Returns the message bytes.")
      .def_property_readonly("msg_type", [](const PyFixMessage& s) {
             return text(header_value(s, 35));
           }, "Returns MsgType (35), or '' when absent.")
      .def_property_readonly("seq_num", [](const PyFixMessage& s) {
             std::int64_t number = 0;
             return fix::parse_int(header_value(s, 34), number) && number > 0 ? number : 0;
           }, "Returns MsgSeqNum (34), or 0 when absent or not a positive number.")
      .def_property_readonly("begin_string", [](const PyFixMessage& s) {
             return text(header_value(s, 8));
           }, "Returns BeginString (8), or '' when absent.")
      .def_property_readonly("sender_comp_id", [](const PyFixMessage& s) {
             return text(header_value(s, 49));
           }, "Returns SenderCompID (49), or '' when absent.")
      .def_property_readonly("target_comp_id", [](const PyFixMessage& s) {
             return text(header_value(s, 56));
           }, "Returns TargetCompID (56), or '' when absent.")
      .def_property_readonly("poss_dup", [](const PyFixMessage& s) {
             return header_value(s, 43) == "Y";
           }, "Returns True when PossDupFlag (43) is Y.")
      .def("get", [](const PyFixMessage& s, std::int64_t tag, py::object fallback) {
             const int index = s.find(tag);
             return index < 0 ? fallback : text(s.value(static_cast<std::size_t>(index)));
           }, py::arg("tag"), py::arg("default") = py::none(),
           "Returns the first value of `tag` as str, or `default` when absent.")
      .def("get_bytes", [](const PyFixMessage& s, std::int64_t tag, py::object fallback) {
             const int index = s.find(tag);
             return index < 0 ? fallback : bytes_of(s.value(static_cast<std::size_t>(index)));
           }, py::arg("tag"), py::arg("default") = py::none(),
           "Returns the first value of `tag` as bytes, or `default` when absent.")
      .def("get_int", &get_int, py::arg("tag"), py::arg("default") = py::none(),
           "Returns the first value of `tag` as int, or `default` when absent; raises "
           "FixFieldError when it is not an integer.")
      .def("get_all", &get_all, py::arg("tag"),
           "Returns every value of `tag` as str, in wire order.")
      .def("fields", &fields, "Returns every field as (tag, bytes) in wire order.")
      .def("count", &count, py::arg("tag"), "Returns how many fields have `tag`.")
      .def("__contains__", [](const PyFixMessage& s, std::int64_t tag) { return s.find(tag) >= 0; })
      .def("__contains__", [](const PyFixMessage&, py::handle) { return false; })
      .def("__len__", [](const PyFixMessage& s) { return s.fields.size(); })
      .def("__repr__", &repr)
      .def("__reduce__", [](const PyFixMessage& s) {
        return py::make_tuple(py::module_::import("sor._core").attr("fix_parse"),
                              py::make_tuple(s.raw));
      });

  m.def("fix_parse", &parse, py::arg("frame"),
        "Parses one FIX frame into a FixMessage; raises FixParseError naming the offset.");
  m.def("fix_encode", &encode, py::arg("begin_string"), py::arg("msg_type"),
        py::arg("sender_comp_id"), py::arg("target_comp_id"), py::arg("seq_num"),
        py::arg("sending_time_ns"), py::arg("body"), py::kw_only(), py::arg("poss_dup") = false,
        py::arg("orig_sending_time_ns") = 0, py::arg("max_message_bytes") = 65536,
        "Returns a whole FIX message: 8, 9, 35, 49, 56, 34, 52 (43, 122 when poss_dup), the body "
        "fields in order, 10.");
  m.def("fix_format_utc_timestamp", &format_timestamp, py::arg("ns"),
        py::arg("fraction_digits") = 3,
        "Returns ns since the epoch as a UTCTimestamp (YYYYMMDD-HH:MM:SS.sss by default).");
  m.def("fix_parse_utc_timestamp", &parse_timestamp, py::arg("text"), py::kw_only(),
        py::arg("tag") = py::none(),
        "Returns ns since the epoch of a UTCTimestamp with 0, 3, 6 or 9 fractional digits.");
  m.def("fix_price_to_fix", &price_to_text, py::arg("price_ticks"), py::arg("tick_usd") = 0.0001,
        "Returns a price in ticks as an exact FIX decimal string.");
  m.def("fix_price_from_fix", &price_from_text, py::arg("text"), py::arg("tick_usd") = 0.0001,
        py::kw_only(), py::arg("tag") = py::none(),
        "Returns a FIX decimal price as a whole number of ticks; raises FixFieldError on a "
        "sub-tick price.");
  m.def("fix_checksum", [](py::handle data) {
          const BufferView view(data);
          return fix::checksum(view.data(), view.size());
        }, py::arg("data"), "Returns the FIX CheckSum of bytes: their sum modulo 256.");
}

}  // namespace sor::bindings
