// Registration functions, one per core area; each lives in its own file of this folder.
#pragma once

#include <pybind11/pybind11.h>

namespace sor::bindings {

// Registers the record dtypes; must run before the other registrations.
void bind_types(pybind11::module_& m);
void bind_book(pybind11::module_& m);
void bind_sim(pybind11::module_& m);
void bind_replay(pybind11::module_& m);
void bind_feed(pybind11::module_& m);
void bind_ring(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_bench(pybind11::module_& m);
void bind_model(pybind11::module_& m);
void bind_features(pybind11::module_& m);
// Registers the backtester and the policy factory; after bind_features and bind_model.
void bind_backtest(pybind11::module_& m);
void bind_fix(pybind11::module_& m);

}  // namespace sor::bindings
