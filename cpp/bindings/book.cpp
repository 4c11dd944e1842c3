#include "bindings.hpp"

namespace sor::bindings {
void bind_book(pybind11::module_&) {}
}  // namespace sor::bindings
