#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "errors.hpp"
#include "sor/model_bench.hpp"
#include "sor/tree_model.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

template <class T>
std::vector<T> to_vector(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

// Returns (pointer, row count) over a C-contiguous float32 [n, feature_count] array.
std::pair<const float*, std::size_t> rows_view(const py::array& rows, std::size_t feature_count) {
  if (!rows.dtype().is(py::dtype::of<float>())) {
    raise_usage_error("rows must be float32, got " + py::str(rows.dtype()).cast<std::string>());
  }
  if (rows.ndim() != 2 || static_cast<std::size_t>(rows.shape(1)) != feature_count) {
    raise_usage_error("rows must have shape [n, " + std::to_string(feature_count) + "]");
  }
  if (!(rows.flags() & py::array::c_style)) {
    raise_usage_error("rows must be C-contiguous (use numpy.ascontiguousarray)");
  }
  return {static_cast<const float*>(rows.data()), static_cast<std::size_t>(rows.shape(0))};
}

using Ensemble = std::shared_ptr<TreeEnsemble>;

template <class Predict>
py::array_t<float> predict_rows(const TreeEnsemble& e, const py::array& rows, Predict&& predict) {
  const auto [data, count] = rows_view(rows, e.feature_count());
  py::array_t<float> out(static_cast<py::ssize_t>(count));
  float* result = out.mutable_data();
  {
    py::gil_scoped_release release;
    predict(data, count, result);
  }
  return out;
}

py::dict bench_dict(ModelBenchResult&& r) {
  py::dict d;
  d["error"] = r.error;
  d["timer_overhead_ns"] = r.timer_overhead_ns;
  d["ns_per_tick"] = r.ns_per_tick;
  d["loop_ns_per_call"] = r.loop_ns_per_call;
  d["latency_ns"] = py::array_t<double>(static_cast<py::ssize_t>(r.latency_ns.size()),
                                        r.latency_ns.data());
  d["predictions"] = py::array_t<float>(static_cast<py::ssize_t>(r.predictions.size()),
                                        r.predictions.data());
  return d;
}

ModelBenchOptions bench_options(std::size_t calls, std::size_t warmup) {
  ModelBenchOptions o;
  o.calls = calls;
  o.warmup = warmup;
  return o;
}

}  // namespace

void bind_model(py::module_& m) {
  py::enum_<TreeNodeMode>(m, "TreeNodeMode", "Decision of a tree node (ONNX nodes_modes).")
      .value("LEAF", TreeNodeMode::kLeaf)
      .value("BRANCH_LT", TreeNodeMode::kBranchLt)
      .value("BRANCH_LEQ", TreeNodeMode::kBranchLeq)
      .value("BRANCH_GT", TreeNodeMode::kBranchGt)
      .value("BRANCH_GTE", TreeNodeMode::kBranchGte);
  py::enum_<PostTransform>(m, "PostTransform", "Transform applied to the margin.")
      .value("NONE", PostTransform::kNone)
      .value("LOGISTIC", PostTransform::kLogistic);
  py::enum_<TreeEnsembleKind>(m, "TreeEnsembleKind", "What a tree ensemble predicts.")
      .value("REGRESSOR", TreeEnsembleKind::kRegressor)
      .value("BINARY_CLASSIFIER", TreeEnsembleKind::kBinaryClassifier);
  py::enum_<SimdPath>(m, "SimdPath", "Instruction-set path of tree-ensemble prediction.")
      .value("SCALAR", SimdPath::kScalar)
      .value("AVX2", SimdPath::kAvx2)
      .value("AVX512", SimdPath::kAvx512);
  m.attr("MAX_TREE_DEPTH") = kMaxTreeDepth;
  m.def("best_supported_simd_path", []() { return std::string(simd_path_name(best_supported_simd_path())); },
        "Returns the widest prediction path this CPU supports: 'avx512', 'avx2' or 'scalar'.");

  py::class_<TreeEnsemble, Ensemble>(
      m, "TreeEnsemble",
      "A validated, flattened tree ensemble (immutable; predictions release the GIL).")
      .def(py::init([](py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> treeids,
                       py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> nodeids,
                       py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> featureids,
                       py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast> modes,
                       py::array_t<float, py::array::c_style | py::array::forcecast> values,
                       py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> trueids,
                       py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> falseids,
                       py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> leaf_treeids,
                       py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> leaf_nodeids,
                       py::array_t<float, py::array::c_style | py::array::forcecast> leaf_weights,
                       double base_value, PostTransform post_transform, TreeEnsembleKind kind,
                       std::int64_t feature_count, SimdPath widest_simd_path) {
             TreeEnsembleSpec spec;
             spec.nodes_treeids = to_vector(treeids);
             spec.nodes_nodeids = to_vector(nodeids);
             spec.nodes_featureids = to_vector(featureids);
             for (const std::uint8_t mode : to_vector(modes)) {
               spec.nodes_modes.push_back(static_cast<TreeNodeMode>(mode));
             }
             spec.nodes_values = to_vector(values);
             spec.nodes_truenodeids = to_vector(trueids);
             spec.nodes_falsenodeids = to_vector(falseids);
             spec.leaf_treeids = to_vector(leaf_treeids);
             spec.leaf_nodeids = to_vector(leaf_nodeids);
             spec.leaf_weights = to_vector(leaf_weights);
             spec.base_value = base_value;
             spec.post_transform = post_transform;
             spec.kind = kind;
             spec.feature_count = feature_count;
             TreeEnsembleOptions options;
             options.widest_path = widest_simd_path;
             TreeEnsembleBuild built = TreeEnsemble::build(spec, options);
             if (!built.ensemble) raise_tree_spec_error(built.error);
             return std::const_pointer_cast<TreeEnsemble>(built.ensemble);
           }),
           py::kw_only(), py::arg("nodes_treeids"), py::arg("nodes_nodeids"),
           py::arg("nodes_featureids"), py::arg("nodes_modes"), py::arg("nodes_values"),
           py::arg("nodes_truenodeids"), py::arg("nodes_falsenodeids"), py::arg("leaf_treeids"),
           py::arg("leaf_nodeids"), py::arg("leaf_weights"), py::arg("base_value"),
           py::arg("post_transform"), py::arg("kind"), py::arg("feature_count"),
           py::arg("widest_simd_path") = SimdPath::kAvx512,
           "Validates the arrays (ONNX TreeEnsemble attributes of one target; nodes_modes as "
           "TreeNodeMode values) and builds the evaluator. Raises InvalidModelError or "
           "UnsupportedModelError naming the tree and node.")
      .def("predict", [](const TreeEnsemble& e, const py::array& rows) {
             return predict_rows(e, rows, [&](const float* d, std::size_t n, float* out) {
               e.predict_batch(d, n, out);
             });
           }, py::arg("rows"),
           "Returns float32 [n] predictions (probability of class 1, or the value) of float32 "
           "[n, feature_count] rows.")
      .def("predict_margin", [](const TreeEnsemble& e, const py::array& rows) {
             return predict_rows(e, rows, [&](const float* d, std::size_t n, float* out) {
               for (std::size_t r = 0; r < n; ++r) out[r] = e.predict_margin(d + r * e.feature_count());
             });
           }, py::arg("rows"), "Returns float32 [n] margins (before the post transform).")
      .def("predict_one", [](const TreeEnsemble& e, const py::array& row) {
             if (row.ndim() != 1) raise_usage_error("row must be one-dimensional");
             const py::array as_rows = row.attr("reshape")(1, -1);
             return e.predict(rows_view(as_rows, e.feature_count()).first);
           }, py::arg("row"), "Returns the prediction of one float32 [feature_count] row.")
      .def_property_readonly("tree_count", &TreeEnsemble::tree_count, "Trees in the model.")
      .def_property_readonly("depth", &TreeEnsemble::depth, "Depth every tree is padded to.")
      .def_property_readonly("feature_count", &TreeEnsemble::feature_count, "Values in a row.")
      .def_property_readonly("padded_tree_count", &TreeEnsemble::padded_tree_count,
                             "Trees rounded up to a multiple of 16 (padding adds 0).")
      .def_property_readonly("kind", &TreeEnsemble::kind, "Regressor or binary classifier.")
      .def_property_readonly("post_transform", &TreeEnsemble::post_transform, "Transform.")
      .def_property_readonly("base_value", &TreeEnsemble::base_value, "Added to the leaf sum.")
      .def_property_readonly("simd_path", [](const TreeEnsemble& e) {
             return std::string(simd_path_name(e.simd_path()));
           }, "Prediction path: 'avx512', 'avx2' or 'scalar'.");

  m.def("bench_tree_ensemble", [](const TreeEnsemble& e, const py::array& rows, std::size_t calls,
                                  std::size_t warmup) {
          const auto [data, count] = rows_view(rows, e.feature_count());
          ModelBenchResult r;
          {
            py::gil_scoped_release release;
            r = bench_tree_ensemble(e, data, count, bench_options(calls, warmup));
          }
          return bench_dict(std::move(r));
        }, py::arg("ensemble"), py::arg("rows"), py::arg("calls") = 200'000,
        py::arg("warmup") = 20'000,
        "Times TreeEnsemble::predict per call in C++ (row i % n on call i); returns latency_ns, "
        "timer_overhead_ns, loop_ns_per_call, predictions (one per row) and error.");
  m.def("bench_tl2cgen_library", [](const std::string& path, const py::array& rows,
                                    std::size_t calls, std::size_t warmup) {
          if (rows.ndim() != 2) raise_usage_error("rows must have shape [n, feature_count]");
          const std::size_t features = static_cast<std::size_t>(rows.shape(1));
          const auto [data, count] = rows_view(rows, features);
          ModelBenchResult r;
          {
            py::gil_scoped_release release;
            r = bench_tl2cgen_library(path, data, count, features, bench_options(calls, warmup));
          }
          return bench_dict(std::move(r));
        }, py::arg("library_path"), py::arg("rows"), py::arg("calls") = 200'000,
        py::arg("warmup") = 20'000,
        "Loads a tl2cgen-compiled library and times its C predict() the same way.");
}

}  // namespace sor::bindings
