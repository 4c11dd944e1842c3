#include "bindings.hpp"

#ifndef SOR_VERSION
#define SOR_VERSION "0.0.0+dev"
#endif

PYBIND11_MODULE(_core, m) {
  m.doc() = "sor C++ core: books, feeds and the hot path";
  m.attr("__version__") = SOR_VERSION;
  sor::bindings::bind_types(m);
  sor::bindings::bind_book(m);
  sor::bindings::bind_sim(m);
  sor::bindings::bind_replay(m);
  sor::bindings::bind_feed(m);
  sor::bindings::bind_ring(m);
  sor::bindings::bind_engine(m);
  sor::bindings::bind_bench(m);
  sor::bindings::bind_model(m);
  sor::bindings::bind_features(m);
  sor::bindings::bind_backtest(m);
  sor::bindings::bind_fix(m);
}
