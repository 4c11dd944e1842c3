#define SOR_TEST_MAIN
#include "check.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sor/tree_model.hpp"

using namespace sor;

namespace {

struct Builder {
  TreeEnsembleSpec spec;
  void branch(std::int64_t tree, std::int64_t node, TreeNodeMode mode, std::int64_t feature,
              float threshold, std::int64_t if_true, std::int64_t if_false) {
    spec.nodes_treeids.push_back(tree);
    spec.nodes_nodeids.push_back(node);
    spec.nodes_featureids.push_back(feature);
    spec.nodes_modes.push_back(mode);
    spec.nodes_values.push_back(threshold);
    spec.nodes_truenodeids.push_back(if_true);
    spec.nodes_falsenodeids.push_back(if_false);
  }
  void leaf(std::int64_t tree, std::int64_t node, float weight) {
    branch(tree, node, TreeNodeMode::kLeaf, 0, 0.0f, 0, 0);
    spec.leaf_treeids.push_back(tree);
    spec.leaf_nodeids.push_back(node);
    spec.leaf_weights.push_back(weight);
  }
};

// Every mode, a single-leaf tree, leaves above the bottom, unsorted tree ids.
Builder small_ensemble() {
  Builder b;
  b.spec.feature_count = 4;
  b.spec.base_value = 0.5;
  // Tree 7: x3 < 2 ? 0.01 : (x3 <= 3 ? 0.02 : (x1 > -1 ? 0.03 : 0.04)), depth 3.
  b.branch(7, 0, TreeNodeMode::kBranchLt, 3, 2.0f, 1, 2);
  b.leaf(7, 1, 0.01f);
  b.branch(7, 2, TreeNodeMode::kBranchLeq, 3, 3.0f, 3, 4);
  b.leaf(7, 3, 0.02f);
  b.branch(7, 4, TreeNodeMode::kBranchGt, 1, -1.0f, 5, 6);
  b.leaf(7, 5, 0.03f);
  b.leaf(7, 6, 0.04f);
  // Tree 0: x0 < 0.5 ? (x1 <= 1 ? 1 : -1) : 2.
  b.branch(0, 0, TreeNodeMode::kBranchLt, 0, 0.5f, 1, 2);
  b.branch(0, 1, TreeNodeMode::kBranchLeq, 1, 1.0f, 3, 4);
  b.leaf(0, 2, 2.0f);
  b.leaf(0, 3, 1.0f);
  b.leaf(0, 4, -1.0f);
  // Tree 1: node ids out of order; x2 > -0.25 ? (x0 >= 0.5 ? 0.25 : 0.125) : -0.5.
  b.leaf(1, 14, 0.125f);
  b.branch(1, 11, TreeNodeMode::kBranchGte, 0, 0.5f, 13, 14);
  b.branch(1, 10, TreeNodeMode::kBranchGt, 2, -0.25f, 11, 12);
  b.leaf(1, 12, -0.5f);
  b.leaf(1, 13, 0.25f);
  // Tree 2: one leaf.
  b.leaf(2, 0, 0.75f);
  return b;
}

// The obvious walk over the spec: find the root, follow the modes as written, sum in tree
// order.
double reference_margin(const TreeEnsembleSpec& s, const float* row) {
  std::map<std::int64_t, std::map<std::int64_t, std::size_t>> nodes;
  std::map<std::int64_t, std::map<std::int64_t, int>> parents;
  for (std::size_t i = 0; i < s.nodes_treeids.size(); ++i) {
    nodes[s.nodes_treeids[i]][s.nodes_nodeids[i]] = i;
    if (s.nodes_modes[i] != TreeNodeMode::kLeaf) {
      parents[s.nodes_treeids[i]][s.nodes_truenodeids[i]] += 1;
      parents[s.nodes_treeids[i]][s.nodes_falsenodeids[i]] += 1;
    }
  }
  double sum = 0;
  for (const auto& [tree, by_id] : nodes) {
    std::int64_t at = -1;
    for (const auto& [id, i] : by_id) {
      if (parents[tree].count(id) == 0) at = id;
    }
    for (;;) {
      const std::size_t i = by_id.at(at);
      const float x = row[s.nodes_featureids[i]], t = s.nodes_values[i];
      bool go_true = false;
      switch (s.nodes_modes[i]) {
        case TreeNodeMode::kLeaf: break;
        case TreeNodeMode::kBranchLt: go_true = x < t; break;
        case TreeNodeMode::kBranchLeq: go_true = x <= t; break;
        case TreeNodeMode::kBranchGt: go_true = x > t; break;
        case TreeNodeMode::kBranchGte: go_true = x >= t; break;
      }
      if (s.nodes_modes[i] == TreeNodeMode::kLeaf) {
        for (std::size_t w = 0; w < s.leaf_treeids.size(); ++w) {
          if (s.leaf_treeids[w] == tree && s.leaf_nodeids[w] == at) sum += s.leaf_weights[w];
        }
        break;
      }
      at = go_true ? s.nodes_truenodeids[i] : s.nodes_falsenodeids[i];
    }
  }
  return sum + s.base_value;
}

std::shared_ptr<const TreeEnsemble> build_or_fail(const TreeEnsembleSpec& spec, SimdPath path) {
  TreeEnsembleOptions options;
  options.widest_path = path;
  TreeEnsembleBuild built = TreeEnsemble::build(spec, options);
  if (!built.ensemble) std::fprintf(stderr, "build failed: %s\n", built.error.message.c_str());
  return built.ensemble;
}

std::vector<SimdPath> paths_here() {
  std::vector<SimdPath> paths{SimdPath::kScalar};
  if (best_supported_simd_path() >= SimdPath::kAvx2) paths.push_back(SimdPath::kAvx2);
  if (best_supported_simd_path() >= SimdPath::kAvx512) paths.push_back(SimdPath::kAvx512);
  return paths;
}

// Values at, just above and just below every threshold used, plus a few others.
std::vector<float> probe_values() {
  std::vector<float> values;
  for (const float t : {0.5f, 1.0f, -0.25f, 2.0f, 3.0f, -1.0f, 0.0f}) {
    values.push_back(t);
    values.push_back(std::nextafter(t, std::numeric_limits<float>::infinity()));
    values.push_back(std::nextafter(t, -std::numeric_limits<float>::infinity()));
  }
  values.push_back(-100.0f);
  values.push_back(100.0f);
  return values;
}

// Checks every path against the scalar path (bit for bit) and the reference walk.
void check_paths(const TreeEnsembleSpec& spec, const std::vector<float>& rows) {
  const auto scalar = build_or_fail(spec, SimdPath::kScalar);
  CHECK(scalar != nullptr);
  if (!scalar) return;
  CHECK(scalar->simd_path() == SimdPath::kScalar);
  const std::size_t f = static_cast<std::size_t>(spec.feature_count);
  const std::size_t n = rows.size() / f;
  for (const SimdPath path : paths_here()) {
    const auto e = build_or_fail(spec, path);
    CHECK(e != nullptr);
    if (!e) return;
    CHECK(e->simd_path() == path);
    std::vector<float> batch(n);
    e->predict_batch(rows.data(), n, batch.data());
    int mismatches = 0, reference_mismatches = 0;
    for (std::size_t r = 0; r < n; ++r) {
      const float* row = rows.data() + r * f;
      const float ours = e->predict_margin(row);
      if (ours != scalar->predict_margin(row) || batch[r] != scalar->predict(row)) ++mismatches;
      const double expected = reference_margin(spec, row);
      if (std::fabs(static_cast<double>(ours) - expected) > 1e-6 * std::max(1.0, std::fabs(expected))) {
        ++reference_mismatches;
      }
    }
    CHECK_EQ(mismatches, 0);
    CHECK_EQ(reference_mismatches, 0);
  }
}

// A random ensemble: `trees` trees of random shape up to `max_depth`, every mode, thresholds
// from a small set so rows land exactly on them.
TreeEnsembleSpec random_ensemble(std::mt19937& rng, int trees, int max_depth, int features) {
  Builder b;
  b.spec.feature_count = features;
  b.spec.base_value = -0.125;
  const float thresholds[] = {-1.0f, -0.25f, 0.0f, 0.5f, 1.0f, 2.0f, 3.0f};
  std::uniform_int_distribution<int> pick_threshold(0, 6), pick_feature(0, features - 1);
  std::uniform_int_distribution<int> pick_mode(1, 4);
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  for (int t = 0; t < trees; ++t) {
    std::int64_t next_id = 0;
    // Depth-first: (node id, depth).
    std::vector<std::pair<std::int64_t, int>> open{{next_id++, 0}};
    while (!open.empty()) {
      const auto [id, depth] = open.back();
      open.pop_back();
      const bool leaf = depth == max_depth || (depth > 0 && rng() % 4 == 0);
      if (leaf) {
        b.leaf(t * 3 + 1, id, weight(rng));  // Tree ids are sparse.
        continue;
      }
      const std::int64_t a = next_id++, c = next_id++;
      b.branch(t * 3 + 1, id, static_cast<TreeNodeMode>(pick_mode(rng)), pick_feature(rng),
               thresholds[pick_threshold(rng)], a, c);
      open.push_back({a, depth + 1});
      open.push_back({c, depth + 1});
    }
  }
  return b.spec;
}

std::vector<float> random_rows(std::mt19937& rng, std::size_t n, int features) {
  const std::vector<float> values = probe_values();
  std::uniform_int_distribution<std::size_t> pick(0, values.size() - 1);
  std::vector<float> rows(n * static_cast<std::size_t>(features));
  for (float& v : rows) v = values[pick(rng)];
  return rows;
}

TreeSpecError refusal(const TreeEnsembleSpec& spec) {
  const TreeEnsembleBuild built = TreeEnsemble::build(spec);
  CHECK(built.ensemble == nullptr);
  return built.error;
}

bool mentions(const std::string& message, const std::string& part) {
  const bool found = message.find(part) != std::string::npos;
  if (!found) std::fprintf(stderr, "message '%s' lacks '%s'\n", message.c_str(), part.c_str());
  return found;
}

}  // namespace

TEST(small_ensemble_layout_is_padded_and_normalised) {
  const auto e = build_or_fail(small_ensemble().spec, SimdPath::kScalar);
  CHECK(e != nullptr);
  if (!e) return;
  CHECK_EQ(e->tree_count(), 4u);
  CHECK_EQ(e->padded_tree_count(), 16u);
  CHECK_EQ(e->depth(), 3);
  // Tree order is by tree id: 0, 1, 2, 7. Tree 1's root is x2 > -0.25, normalised to
  // !(x2 < next(-0.25)) going right to the true child.
  CHECK_EQ(e->level_feature_ids(0)[1], 2);
  CHECK(e->level_thresholds(0)[1] == std::nextafter(-0.25f, 1.0f));
  // Tree 2 is one leaf: its root is a padding node and all 8 bottom leaves hold 0.75.
  CHECK(e->level_thresholds(0)[2] == -std::numeric_limits<float>::infinity());
  for (int k = 0; k < 8; ++k) CHECK(e->leaf_values()[(2 << 3) + k] == 0.75f);
  // Tree 0's false child (2.0) is a leaf at depth 1: its four bottom leaves hold 2.0.
  for (int k = 4; k < 8; ++k) CHECK(e->leaf_values()[(0 << 3) + k] == 2.0f);
}

TEST(small_ensemble_exact_threshold_cases) {
  const TreeEnsembleSpec spec = small_ensemble().spec;
  const auto e = build_or_fail(spec, SimdPath::kScalar);
  CHECK(e != nullptr);
  if (!e) return;
  // x0 == 0.5: LT false (tree 0 -> 2.0), GTE true (tree 1 with x2 > -0.25 -> 0.25);
  // x3 == 2: LT false, LEQ 3 true -> 0.02; tree 2 adds 0.75; base 0.5.
  const float at[4] = {0.5f, 0.0f, 0.0f, 2.0f};
  CHECK(std::fabs(e->predict(at) - (2.0 + 0.25 + 0.75 + 0.02 + 0.5)) < 1e-6);
  // x1 == 1 (LEQ true -> 1.0), x2 == -0.25 (GT false -> -0.5), x3 == 3 (LEQ true -> 0.02).
  const float eq[4] = {0.0f, 1.0f, -0.25f, 3.0f};
  CHECK(std::fabs(e->predict(eq) - (1.0 - 0.5 + 0.75 + 0.02 + 0.5)) < 1e-6);
  // Just above: x1 = next(1) -> -1.0; x2 = next(-0.25) -> GT true, x0 = 0 < 0.5 -> 0.125;
  // x3 = next(3) -> x1 > -1 -> 0.03.
  const float above[4] = {0.0f, std::nextafter(1.0f, 2.0f), std::nextafter(-0.25f, 1.0f),
                          std::nextafter(3.0f, 4.0f)};
  CHECK(std::fabs(e->predict(above) - (-1.0 + 0.125 + 0.75 + 0.03 + 0.5)) < 1e-6);
  std::vector<float> rows;
  const std::vector<float> values = probe_values();
  for (const float a : values) {
    for (const float b : values) rows.insert(rows.end(), {a, b, b, a});
  }
  check_paths(spec, rows);
}

TEST(random_ensembles_every_path_matches_scalar_and_reference) {
  std::mt19937 rng(12345);
  for (const int features : {5, 64, 70}) {  // 70 > 64: the AVX-512 path gathers the row.
    for (const int trees : {1, 16, 37}) {
      const TreeEnsembleSpec spec = random_ensemble(rng, trees, 1 + trees % 6, features);
      check_paths(spec, random_rows(rng, 300, features));
    }
  }
  // Deeper trees: levels 3-5 take byte permutes on AVX-512 VBMI, level 6 and below gathers.
  for (const int features : {5, 52, 64, 70}) {
    for (const int max_depth : {6, 7, 8}) {
      const TreeEnsembleSpec spec = random_ensemble(rng, 40, max_depth, features);
      check_paths(spec, random_rows(rng, 300, features));
    }
  }
}

TEST(classifier_applies_logistic) {
  TreeEnsembleSpec spec = small_ensemble().spec;
  spec.kind = TreeEnsembleKind::kBinaryClassifier;
  spec.post_transform = PostTransform::kLogistic;
  const auto e = build_or_fail(spec, SimdPath::kAvx512);
  CHECK(e != nullptr);
  if (!e) return;
  const float row[4] = {0.5f, 0.0f, 0.0f, 2.0f};
  const double margin = e->predict_margin(row);
  CHECK(std::fabs(e->predict(row) - 1.0 / (1.0 + std::exp(-margin))) < 1e-7);
}

TEST(bad_specs_are_refused_with_the_reason) {
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.nodes_values.pop_back();
    CHECK(refusal(s).problem == TreeSpecProblem::kInvalidArrays);
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.nodes_truenodeids[0] = 99;  // tree 7 node 0
    const TreeSpecError e = refusal(s);
    CHECK(e.problem == TreeSpecProblem::kInvalidNode);
    CHECK(e.tree_id == 7 && e.node_id == 0);
    CHECK(mentions(e.message, "tree 7 node 0") && mentions(e.message, "99"));
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.nodes_falsenodeids[0] = 1;  // tree 7 node 0: both children are node 1
    const TreeSpecError e = refusal(s);
    CHECK(e.problem == TreeSpecProblem::kNotATree);
    CHECK(mentions(e.message, "tree 7 node 1"));
  }
  {
    Builder b;  // A cycle: 0 -> 1 -> 0, so no root.
    b.spec.feature_count = 1;
    b.branch(3, 0, TreeNodeMode::kBranchLt, 0, 1.0f, 1, 2);
    b.branch(3, 1, TreeNodeMode::kBranchLt, 0, 1.0f, 0, 3);
    b.leaf(3, 2, 1.0f);
    b.leaf(3, 3, 1.0f);
    const TreeSpecError e = refusal(b.spec);
    CHECK(e.problem == TreeSpecProblem::kNotATree);
    CHECK(mentions(e.message, "tree 3"));
  }
  {
    Builder b;  // A detached cycle next to a proper root.
    b.spec.feature_count = 1;
    b.leaf(4, 0, 1.0f);
    b.branch(4, 1, TreeNodeMode::kBranchLt, 0, 1.0f, 2, 3);
    b.branch(4, 2, TreeNodeMode::kBranchLt, 0, 1.0f, 1, 3);
    b.leaf(4, 3, 1.0f);
    const TreeSpecError e = refusal(b.spec);
    CHECK(e.problem == TreeSpecProblem::kNotATree);
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.nodes_featureids[0] = 4;  // feature_count is 4
    const TreeSpecError e = refusal(s);
    CHECK(e.problem == TreeSpecProblem::kInvalidFeature);
    CHECK(mentions(e.message, "tree 7 node 0") && mentions(e.message, "feature id 4"));
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.nodes_values[0] = std::numeric_limits<float>::quiet_NaN();
    CHECK(refusal(s).problem == TreeSpecProblem::kNonFinite);
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.leaf_weights[0] = std::numeric_limits<float>::infinity();
    CHECK(refusal(s).problem == TreeSpecProblem::kNonFinite);
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.leaf_nodeids[0] = 0;  // tree 7 node 0 is a branch
    const TreeSpecError e = refusal(s);
    CHECK(e.problem == TreeSpecProblem::kInvalidLeaf);
    CHECK(mentions(e.message, "tree 7 node 0") && mentions(e.message, "branch"));
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.nodes_nodeids[1] = 0;  // tree 7 has node 0 twice
    const TreeSpecError e = refusal(s);
    CHECK(e.problem == TreeSpecProblem::kInvalidNode);
    CHECK(mentions(e.message, "twice"));
  }
  {
    Builder b;  // A chain one level deeper than allowed.
    b.spec.feature_count = 1;
    for (int d = 0; d <= kMaxTreeDepth; ++d) {
      b.branch(0, d, TreeNodeMode::kBranchLt, 0, static_cast<float>(d), d + 1, 100 + d);
      b.leaf(0, 100 + d, 1.0f);
    }
    b.leaf(0, kMaxTreeDepth + 1, 1.0f);
    const TreeSpecError e = refusal(b.spec);
    CHECK(e.problem == TreeSpecProblem::kTooDeep);
    CHECK(mentions(e.message, "tree 0 node"));
  }
  {
    TreeEnsembleSpec s = small_ensemble().spec;
    s.kind = TreeEnsembleKind::kBinaryClassifier;  // without the logistic transform
    CHECK(refusal(s).problem == TreeSpecProblem::kUnsupported);
  }
  {
    TreeEnsembleSpec s;
    s.feature_count = 3;
    CHECK(refusal(s).problem == TreeSpecProblem::kInvalidArrays);
  }
}

TEST(best_supported_path_is_used_by_default) {
  const auto e = build_or_fail(small_ensemble().spec, SimdPath::kAvx512);
  CHECK(e != nullptr);
  if (e) CHECK(e->simd_path() == best_supported_simd_path());
  CHECK(simd_path_name(SimdPath::kAvx2) == "avx2");
}
