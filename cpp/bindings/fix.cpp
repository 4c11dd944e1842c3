// sor.fix.codec: the FIX framer, parser, encoder, timestamps and prices of sor/fix.hpp.
// Python objects are made with the C API where pybind11's conversions would cost more than the
// parse itself (see docs/fix.md, "Codec").
#include <pybind11/pybind11.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

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

// ---- prices (used by FixMessage.get_price too) ---------------------------------------------

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

// Returns the ticks of a FIX decimal price, or raises FixFieldError naming `tag` (-1: none).
std::int64_t ticks_from_text(std::string_view value, double tick_usd, std::int64_t tag) {
  const fix::TickSize tick = tick_size(tick_usd);
  std::int64_t ticks = 0;
  const fix::PriceStatus status = fix::price_from_fix(value, tick, ticks);
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
  PyObject* shown = PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()),
                                         "surrogateescape");
  if (shown == nullptr) throw py::error_already_set();
  raise_fix_field_error(tag, py::reinterpret_steal<py::object>(shown), reason);
}

// ---- FixMessage: a CPython type -------------------------------------------------------------
// A variable-size object holding the frame's bytes object (kept, not copied) and its field
// table inline, so one parse is one small allocation, and methods are METH_FASTCALL: pybind11's
// instance registry and argument dispatch would cost more than the parse itself.

struct MessageObject {
  PyObject_VAR_HEAD                                // ob_size: the field count.
  PyObject* raw;                                   // The frame (bytes).
  std::array<std::int16_t, kHeaderTags.size()> header;  // First index of each header tag, or -1.
  Field fields[1];                                 // ob_size fields in wire order.
};

PyTypeObject* message_type = nullptr;  // Created in bind_fix; never freed.
PyObject* parse_function = nullptr;    // sor._core.fix_parse, for __reduce__.

MessageObject* as_message(PyObject* self) noexcept { return reinterpret_cast<MessageObject*>(self); }

std::size_t field_count(const MessageObject* m) noexcept {
  return static_cast<std::size_t>(Py_SIZE(m));
}

std::string_view message_bytes(const MessageObject* m) noexcept {
  return std::string_view(PyBytes_AS_STRING(m->raw),
                          static_cast<std::size_t>(PyBytes_GET_SIZE(m->raw)));
}

std::string_view value_at(const MessageObject* m, std::size_t index) noexcept {
  return message_bytes(m).substr(m->fields[index].offset, m->fields[index].length);
}

int find(const MessageObject* m, std::int64_t tag) noexcept {
  if (tag <= 0 || tag > fix::kMaxTag) return -1;
  const auto t = static_cast<std::uint32_t>(tag);
  const int slot = header_slot(t);
  if (slot >= 0) return m->header[static_cast<std::size_t>(slot)];
  const std::size_t count = field_count(m);
  for (std::size_t i = 0; i < count; ++i) {
    if (m->fields[i].tag == t) return static_cast<int>(i);
  }
  return -1;
}

std::string_view header_value(const MessageObject* m, std::uint32_t tag) noexcept {
  const int index = m->header[static_cast<std::size_t>(header_slot(tag))];
  return index < 0 ? std::string_view() : value_at(m, static_cast<std::size_t>(index));
}

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

// Returns a new FixMessage parsed from `frame`, or raises FixParseError.
py::object parse_message(py::handle frame) {
  py::object bytes = as_bytes(frame);
  fix::FixMessage& parser = scratch_parser();
  const fix::ParseStatus status =
      parser.parse(PyBytes_AS_STRING(bytes.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.ptr())));
  if (status != fix::ParseStatus::kOk) {
    raise_fix_parse_error(std::string(fix::parse_status_name(status)), parser.error_offset(),
                          parser.error_reason());
  }
  const std::size_t count = parser.field_count();
  PyObject* object = message_type->tp_alloc(message_type, static_cast<Py_ssize_t>(count));
  if (object == nullptr) throw py::error_already_set();
  MessageObject* m = as_message(object);
  m->raw = bytes.release().ptr();
  if (count != 0) std::memcpy(m->fields, parser.fields(), count * sizeof(Field));
  for (std::size_t slot = 0; slot < kHeaderTags.size(); ++slot) {
    m->header[slot] = static_cast<std::int16_t>(parser.find(kHeaderTags[slot]));
  }
  return py::reinterpret_steal<py::object>(object);
}

// Runs `body`, turning a C++ exception into the pending Python error (C API entry points).
template <class Body>
PyObject* guarded(Body&& body) noexcept {
  try {
    return body();
  } catch (py::error_already_set& error) {
    error.restore();
  } catch (const py::builtin_exception& error) {
    error.set_error();
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
  }
  return nullptr;
}

PyObject* text(std::string_view value) noexcept {
  return PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()),
                              "surrogateescape");
}

PyObject* bytes_of(std::string_view value) noexcept {
  return PyBytes_FromStringAndSize(value.data(), static_cast<Py_ssize_t>(value.size()));
}

// Owning versions for pybind11 code: raise instead of returning nullptr.
py::object text_object(std::string_view value) {
  PyObject* object = text(value);
  if (object == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

py::object bytes_object(std::string_view value) {
  PyObject* object = bytes_of(value);
  if (object == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(object);
}

// Reads a tag argument: any int (tags out of range are simply absent); false on a non-int.
bool tag_of(PyObject* object, std::int64_t& tag) noexcept {
  if (!PyLong_Check(object)) {
    PyErr_Format(PyExc_TypeError, "a FIX tag must be an int, not %.100s", Py_TYPE(object)->tp_name);
    return false;
  }
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
  if (value == -1 && PyErr_Occurred()) return false;
  tag = overflow != 0 ? -1 : value;
  return true;
}

// Reads (tag, default=None) of a METH_FASTCALL | METH_KEYWORDS call, and the keyword-only
// tick_usd when `tick_usd` is given.
bool tag_and_default(const char* name, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames, std::int64_t& tag, PyObject*& fallback,
                     double* tick_usd = nullptr) noexcept {
  PyObject* tag_object = nargs > 0 ? args[0] : nullptr;
  fallback = nargs > 1 ? args[1] : Py_None;
  if (nargs > 2) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments (%zd given)", name, nargs);
    return false;
  }
  const Py_ssize_t keywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < keywords; ++k) {
    PyObject* key = PyTuple_GET_ITEM(kwnames, k);
    PyObject* value = args[nargs + k];
    if (tag_object == nullptr && PyUnicode_CompareWithASCIIString(key, "tag") == 0) {
      tag_object = value;
    } else if (nargs < 2 && PyUnicode_CompareWithASCIIString(key, "default") == 0) {
      fallback = value;
    } else if (tick_usd != nullptr && PyUnicode_CompareWithASCIIString(key, "tick_usd") == 0) {
      *tick_usd = PyFloat_AsDouble(value);
      if (*tick_usd == -1.0 && PyErr_Occurred()) return false;
    } else {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", name, key);
      return false;
    }
  }
  if (tag_object == nullptr) {
    PyErr_Format(PyExc_TypeError, "%s() missing required argument 'tag'", name);
    return false;
  }
  return tag_of(tag_object, tag);
}

PyObject* message_get(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  std::int64_t tag = 0;
  PyObject* fallback = nullptr;
  if (!tag_and_default("get", args, nargs, kwnames, tag, fallback)) return nullptr;
  const int index = find(as_message(self), tag);
  if (index < 0) return Py_NewRef(fallback);
  return text(value_at(as_message(self), static_cast<std::size_t>(index)));
}

PyObject* message_get_bytes(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  std::int64_t tag = 0;
  PyObject* fallback = nullptr;
  if (!tag_and_default("get_bytes", args, nargs, kwnames, tag, fallback)) return nullptr;
  const int index = find(as_message(self), tag);
  if (index < 0) return Py_NewRef(fallback);
  return bytes_of(value_at(as_message(self), static_cast<std::size_t>(index)));
}

PyObject* message_get_int(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames) {
  std::int64_t tag = 0;
  PyObject* fallback = nullptr;
  if (!tag_and_default("get_int", args, nargs, kwnames, tag, fallback)) return nullptr;
  const int index = find(as_message(self), tag);
  if (index < 0) return Py_NewRef(fallback);
  const std::string_view value = value_at(as_message(self), static_cast<std::size_t>(index));
  std::int64_t number = 0;
  if (fix::parse_int(value, number)) return PyLong_FromLongLong(number);
  return guarded([&]() -> PyObject* {
    raise_fix_field_error(tag, py::reinterpret_steal<py::object>(text(value)), "not an integer");
  });
}

PyObject* message_get_price(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                            PyObject* kwnames) {
  std::int64_t tag = 0;
  PyObject* fallback = nullptr;
  double tick_usd = 0.0001;
  if (!tag_and_default("get_price", args, nargs, kwnames, tag, fallback, &tick_usd)) {
    return nullptr;
  }
  const int index = find(as_message(self), tag);
  if (index < 0) return Py_NewRef(fallback);
  const std::string_view value = value_at(as_message(self), static_cast<std::size_t>(index));
  return guarded([&] { return PyLong_FromLongLong(ticks_from_text(value, tick_usd, tag)); });
}

PyObject* message_get_all(PyObject* self, PyObject* tag_object) {
  std::int64_t tag = 0;
  if (!tag_of(tag_object, tag)) return nullptr;
  const MessageObject* m = as_message(self);
  PyObject* out = PyList_New(0);
  if (out == nullptr || tag <= 0 || tag > fix::kMaxTag) return out;
  const std::size_t count = field_count(m);
  for (std::size_t i = 0; i < count; ++i) {
    if (m->fields[i].tag != static_cast<std::uint32_t>(tag)) continue;
    PyObject* value = text(value_at(m, i));
    if (value == nullptr || PyList_Append(out, value) != 0) {
      Py_XDECREF(value);
      Py_DECREF(out);
      return nullptr;
    }
    Py_DECREF(value);
  }
  return out;
}

PyObject* message_count(PyObject* self, PyObject* tag_object) {
  std::int64_t tag = 0;
  if (!tag_of(tag_object, tag)) return nullptr;
  const MessageObject* m = as_message(self);
  std::size_t n = 0;
  if (tag > 0 && tag <= fix::kMaxTag) {
    const std::size_t count = field_count(m);
    for (std::size_t i = 0; i < count; ++i) n += m->fields[i].tag == static_cast<std::uint32_t>(tag);
  }
  return PyLong_FromSize_t(n);
}

PyObject* message_fields(PyObject* self, PyObject*) {
  const MessageObject* m = as_message(self);
  const std::size_t count = field_count(m);
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(count));
  if (out == nullptr) return nullptr;
  for (std::size_t i = 0; i < count; ++i) {
    PyObject* tag = PyLong_FromUnsignedLong(m->fields[i].tag);
    PyObject* value = bytes_of(value_at(m, i));
    PyObject* pair = tag != nullptr && value != nullptr ? PyTuple_Pack(2, tag, value) : nullptr;
    Py_XDECREF(tag);
    Py_XDECREF(value);
    if (pair == nullptr) {
      Py_DECREF(out);
      return nullptr;
    }
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), pair);
  }
  return out;
}

PyObject* message_reduce(PyObject* self, PyObject*) {
  return Py_BuildValue("O(O)", parse_function, as_message(self)->raw);
}

int message_contains(PyObject* self, PyObject* tag_object) {
  if (!PyLong_Check(tag_object)) return 0;
  std::int64_t tag = 0;
  if (!tag_of(tag_object, tag)) return -1;
  return find(as_message(self), tag) >= 0 ? 1 : 0;
}

Py_ssize_t message_length(PyObject* self) { return Py_SIZE(self); }

PyObject* message_richcompare(PyObject* self, PyObject* other, int op) {
  if ((op != Py_EQ && op != Py_NE) || Py_TYPE(other) != Py_TYPE(self)) {
    Py_RETURN_NOTIMPLEMENTED;
  }
  return PyObject_RichCompare(as_message(self)->raw, as_message(other)->raw, op);
}

Py_hash_t message_hash(PyObject* self) { return PyObject_Hash(as_message(self)->raw); }

PyObject* message_repr(PyObject* self) {
  std::string shown(message_bytes(as_message(self)));
  for (char& c : shown) {
    if (c == fix::kSoh) c = '|';
  }
  PyObject* readable = PyUnicode_DecodeUTF8(shown.data(), static_cast<Py_ssize_t>(shown.size()),
                                            "backslashreplace");
  if (readable == nullptr) return nullptr;
  PyObject* out = PyUnicode_FromFormat("FixMessage(%R)", readable);
  Py_DECREF(readable);
  return out;
}

void message_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  Py_XDECREF(as_message(self)->raw);
  type->tp_free(self);
  Py_DECREF(type);
}

PyObject* message_new(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"frame", nullptr};
  PyObject* frame = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:FixMessage", const_cast<char**>(keywords),
                                   &frame)) {
    return nullptr;
  }
  return guarded([&] { return parse_message(frame).release().ptr(); });
}

PyObject* parse_entry(PyObject*, PyObject* frame) {
  return guarded([&] { return parse_message(frame).release().ptr(); });
}

PyObject* get_raw(PyObject* self, void*) { return Py_NewRef(as_message(self)->raw); }

template <std::uint32_t Tag>
PyObject* get_header_text(PyObject* self, void*) {
  return text(header_value(as_message(self), Tag));
}

PyObject* get_seq_num(PyObject* self, void*) {
  std::int64_t number = 0;
  const bool ok = fix::parse_int(header_value(as_message(self), 34), number) && number > 0;
  return PyLong_FromLongLong(ok ? number : 0);
}

PyObject* get_poss_dup(PyObject* self, void*) {
  return PyBool_FromLong(header_value(as_message(self), 43) == "Y");
}

PyMethodDef message_methods[] = {
    {"get", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&message_get)),
     METH_FASTCALL | METH_KEYWORDS,
     "get($self, tag, default=None)\n--\n\n"
     "Returns the first value of `tag` as str, or `default` when absent."},
    {"get_bytes", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&message_get_bytes)),
     METH_FASTCALL | METH_KEYWORDS,
     "get_bytes($self, tag, default=None)\n--\n\n"
     "Returns the first value of `tag` as bytes, or `default` when absent."},
    {"get_int", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&message_get_int)),
     METH_FASTCALL | METH_KEYWORDS,
     "get_int($self, tag, default=None)\n--\n\n"
     "Returns the first value of `tag` as int, or `default` when absent; raises "
     "sor.errors.FixFieldError when it is not an integer."},
    {"get_price", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&message_get_price)),
     METH_FASTCALL | METH_KEYWORDS,
     "get_price($self, tag, default=None, *, tick_usd=0.0001)\n--\n\n"
     "Returns the first value of `tag` as a whole number of ticks, or `default` when absent; "
     "raises sor.errors.FixFieldError when it is not a price in whole ticks."},
    {"get_all", &message_get_all, METH_O,
     "get_all($self, tag, /)\n--\n\nReturns every value of `tag` as str, in wire order."},
    {"count", &message_count, METH_O,
     "count($self, tag, /)\n--\n\nReturns how many fields have `tag`."},
    {"fields", &message_fields, METH_NOARGS,
     "fields($self, /)\n--\n\nReturns every field as (tag, bytes), in wire order."},
    {"__reduce__", &message_reduce, METH_NOARGS, "Pickles as fix_parse(raw)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef message_getset[] = {
    {"raw", &get_raw, nullptr, "Returns the message bytes.", nullptr},
    {"msg_type", &get_header_text<35>, nullptr, "Returns MsgType (35), or '' when absent.",
     nullptr},
    {"seq_num", &get_seq_num, nullptr,
     "Returns MsgSeqNum (34), or 0 when absent or not a positive number.", nullptr},
    {"begin_string", &get_header_text<8>, nullptr, "Returns BeginString (8), or '' when absent.",
     nullptr},
    {"sender_comp_id", &get_header_text<49>, nullptr,
     "Returns SenderCompID (49), or '' when absent.", nullptr},
    {"target_comp_id", &get_header_text<56>, nullptr,
     "Returns TargetCompID (56), or '' when absent.", nullptr},
    {"poss_dup", &get_poss_dup, nullptr, "Returns True when PossDupFlag (43) is Y.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMethodDef parse_definition = {
    "fix_parse", &parse_entry, METH_O,
    "fix_parse(frame, /)\n--\n\n"
    "Returns the FixMessage of one FIX frame (bytes-like); raises sor.errors.FixParseError "
    "naming the offset of the offending field."};

// Creates the FixMessage type and fix_parse in `m`.
void bind_message(py::module_& m) {
  PyType_Slot slots[] = {
      {Py_tp_doc, const_cast<char*>(
                      "FixMessage(frame)\n--\n\n"
                      "A parsed FIX message: the frame's bytes and its fields in wire order; "
                      "values become str only when asked for. Messages are equal when their "
                      "bytes are.")},
      {Py_tp_new, reinterpret_cast<void*>(&message_new)},
      {Py_tp_dealloc, reinterpret_cast<void*>(&message_dealloc)},
      {Py_tp_repr, reinterpret_cast<void*>(&message_repr)},
      {Py_tp_methods, message_methods},
      {Py_tp_getset, message_getset},
      {Py_sq_contains, reinterpret_cast<void*>(&message_contains)},
      {Py_sq_length, reinterpret_cast<void*>(&message_length)},
      {Py_tp_richcompare, reinterpret_cast<void*>(&message_richcompare)},
      {Py_tp_hash, reinterpret_cast<void*>(&message_hash)},
      {0, nullptr}};
  unsigned int flags = Py_TPFLAGS_DEFAULT;
#ifdef Py_TPFLAGS_IMMUTABLETYPE
  flags |= Py_TPFLAGS_IMMUTABLETYPE;
#endif
  PyType_Spec spec = {"sor._core.FixMessage", static_cast<int>(offsetof(MessageObject, fields)),
                      static_cast<int>(sizeof(Field)), flags, slots};
  PyObject* type = PyType_FromSpec(&spec);
  if (type == nullptr) throw py::error_already_set();
  message_type = reinterpret_cast<PyTypeObject*>(type);
  Py_INCREF(type);  // The module attribute and message_type each hold a reference.
  m.attr("FixMessage") = py::reinterpret_steal<py::object>(type);

  py::str module_name = m.attr("__name__");
  parse_function = PyCFunction_NewEx(&parse_definition, nullptr, module_name.ptr());
  if (parse_function == nullptr) throw py::error_already_set();
  Py_INCREF(parse_function);
  m.attr("fix_parse") = py::reinterpret_steal<py::object>(parse_function);
}

// ---- framing ---------------------------------------------------------------------------------

// The FixFrameStatus members, indexed by FrameStatus (leaked: outlive interpreter shutdown).
std::array<PyObject*, 5>& status_members() {
  static std::array<PyObject*, 5> members{};
  return members;
}

void append_frame(py::list& out, FrameStatus status, std::string_view bytes) {
  PyObject* pair = PyTuple_Pack(2, status_members()[static_cast<std::size_t>(status)],
                                bytes_object(bytes).ptr());
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
    raise_fix_field_error(tag, text_object(value), encode_reason(status, max_message_bytes));
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
    if (value_object == Py_None) continue;  // As simplefix's append_pair: no field.
    ValueBytes value;
    if (!value_bytes(value_object, value)) {
      raise_usage_error("body[" + std::to_string(i) + "] (tag " + std::to_string(tag) +
                        "): the value must be str, int, bool or bytes, not " +
                        Py_TYPE(value_object)->tp_name +
                        " (write prices with price_to_fix)");
    }
    status = encoder.add(static_cast<std::uint32_t>(tag), value.view);
    if (status != fix::EncodeStatus::kOk) {
      raise_fix_field_error(tag, text_object(value.view), encode_reason(status, max_message_bytes));
    }
  }
  const std::string_view message = encoder.finish();
  return py::reinterpret_steal<py::bytes>(bytes_object(message).release());
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
  raise_fix_field_error(tag_or_none(tag), text_object(text_value), reason);
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
  return ticks_from_text(text_argument(value, "a price"), tick_usd, tag_or_none(tag));
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

  bind_message(m);

  m.def("fix_encode", &encode, py::arg("begin_string"), py::arg("msg_type"),
        py::arg("sender_comp_id"), py::arg("target_comp_id"), py::arg("seq_num"),
        py::arg("sending_time_ns"), py::arg("body"), py::kw_only(), py::arg("poss_dup") = false,
        py::arg("orig_sending_time_ns") = 0, py::arg("max_message_bytes") = 65536,
        "Returns a whole FIX message: 8, 9, 35, 49, 56, 34, 52 (43, 122 when poss_dup), the body "
        "fields in order (a None value leaves its field out), 10.");
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
