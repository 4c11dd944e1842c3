// Zero-copy views of numpy arrays of the core's record dtypes.
#pragma once

#include <pybind11/numpy.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "errors.hpp"
#include "sor/types.hpp"

namespace sor::bindings {

// Returns (pointer, count) over a C-contiguous 1-D array of `Record`'s dtype, or raises
// sor.UsageError naming what is wrong with it.
template <class Record>
std::pair<const Record*, std::size_t> records_view(const pybind11::array& array,
                                                   const char* what) {
  const pybind11::dtype expected = pybind11::dtype::of<Record>();
  if (!array.dtype().attr("__eq__")(expected).template cast<bool>()) {
    raise_usage_error(std::string(what) + " must have dtype " +
                      pybind11::str(expected).cast<std::string>() + ", got " +
                      pybind11::str(array.dtype()).cast<std::string>());
  }
  if (array.ndim() != 1) raise_usage_error(std::string(what) + " must be one-dimensional");
  if (!(array.flags() & pybind11::array::c_style)) {
    raise_usage_error(std::string(what) + " must be C-contiguous (use numpy.ascontiguousarray)");
  }
  return {static_cast<const Record*>(array.data()), static_cast<std::size_t>(array.shape(0))};
}

// Returns a new 1-D numpy array holding a copy of `count` records.
template <class Record>
pybind11::array_t<Record> records_copy(const Record* records, std::size_t count) {
  pybind11::array_t<Record> out(static_cast<pybind11::ssize_t>(count));
  if (count != 0) std::memcpy(out.mutable_data(), records, count * sizeof(Record));
  return out;
}

}  // namespace sor::bindings
