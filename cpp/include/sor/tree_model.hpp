// Tree-ensemble evaluator for the router's models (gradient-boosted trees exported as ONNX
// TreeEnsembleClassifier / TreeEnsembleRegressor). Built once from flat arrays (the ONNX
// attributes), then immutable: predictions are noexcept, allocate nothing and may run from
// any number of threads at once. Layout and comparison normalisation: docs/models.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sor {

// Deepest tree accepted (branch levels on the longest root-to-leaf path); every tree is padded
// to a perfect tree of the ensemble's depth, so memory grows as 2^depth per tree.
inline constexpr int kMaxTreeDepth = 12;

// Largest feature count accepted.
inline constexpr std::int64_t kMaxTreeFeatureCount = 1 << 20;

// Largest tree count accepted.
inline constexpr std::int64_t kMaxTreeCount = 1 << 16;

// How a node decides (ONNX nodes_modes without BRANCH_EQ/BRANCH_NEQ).
enum class TreeNodeMode : std::uint8_t {
  kLeaf = 0,       // No decision: the node's weight is the tree's output.
  kBranchLt = 1,   // True child when x < threshold.
  kBranchLeq = 2,  // True child when x <= threshold.
  kBranchGt = 3,   // True child when x > threshold.
  kBranchGte = 4,  // True child when x >= threshold.
};

// Transform applied to the margin (sum of leaves plus base value).
enum class PostTransform : std::uint8_t {
  kNone = 0,      // The margin itself.
  kLogistic = 1,  // 1 / (1 + exp(-margin)).
};

// What the ensemble predicts.
enum class TreeEnsembleKind : std::uint8_t {
  kRegressor = 0,         // One value.
  kBinaryClassifier = 1,  // Probability of class 1.
};

// Instruction-set path used for prediction.
enum class SimdPath : std::uint8_t {
  kScalar = 0,  // Portable code, trees walked level by level, 16 at a time, interleaved.
  kAvx2 = 1,    // 8 trees per vector, gathers (x86-64 with AVX2).
  kAvx512 = 2,  // 16 trees per vector, gathers and permutes (x86-64 with AVX-512F).
};

// Returns "scalar", "avx2" or "avx512".
std::string_view simd_path_name(SimdPath path) noexcept;

// Returns the widest path this CPU supports.
SimdPath best_supported_simd_path() noexcept;

// A tree ensemble as flat arrays, laid out as the ONNX TreeEnsemble attributes (one target or
// class). Node arrays are parallel; leaf arrays are parallel (a leaf may have several weights,
// which are summed).
struct TreeEnsembleSpec {
  std::vector<std::int64_t> nodes_treeids;      // Tree of each node.
  std::vector<std::int64_t> nodes_nodeids;      // Id of each node within its tree.
  std::vector<std::int64_t> nodes_featureids;   // Feature compared by each branch node.
  std::vector<TreeNodeMode> nodes_modes;        // Decision of each node.
  std::vector<float> nodes_values;              // Threshold of each branch node.
  std::vector<std::int64_t> nodes_truenodeids;  // Child taken when the decision holds.
  std::vector<std::int64_t> nodes_falsenodeids; // Child taken otherwise.
  std::vector<std::int64_t> leaf_treeids;       // Tree of each leaf weight.
  std::vector<std::int64_t> leaf_nodeids;       // Leaf node of each leaf weight.
  std::vector<float> leaf_weights;              // Leaf weights (target or class 0).
  double base_value = 0.0;                      // Added to the sum of leaves.
  PostTransform post_transform = PostTransform::kNone;  // Applied to the margin.
  TreeEnsembleKind kind = TreeEnsembleKind::kRegressor; // What the output means.
  std::int64_t feature_count = 0;               // Values in a feature row.
};

// Why a spec was refused.
enum class TreeSpecProblem : std::uint8_t {
  kOk = 0,                // Built.
  kInvalidArrays = 1,     // Array lengths differ, counts out of range, or an empty ensemble.
  kInvalidNode = 2,       // A node id is duplicated, negative, or a child is missing.
  kNotATree = 3,          // A tree has no single root, a node with two parents, or a cycle.
  kInvalidFeature = 4,    // A feature id is outside [0, feature_count).
  kNonFinite = 5,         // A threshold, weight or base value is NaN or infinite.
  kInvalidLeaf = 6,       // A leaf weight names a node that is not a leaf of that tree.
  kTooDeep = 7,           // A tree is deeper than kMaxTreeDepth.
  kUnsupported = 8,       // A mode, transform or kind combination the evaluator cannot run.
};

// Returns a short, stable name for a problem ("not_a_tree").
std::string_view tree_spec_problem_name(TreeSpecProblem problem) noexcept;

// A refused spec: the problem, the tree and node it was found at (-1 when none), and a
// sentence naming them.
struct TreeSpecError {
  TreeSpecProblem problem = TreeSpecProblem::kOk;  // kOk when the spec was accepted.
  std::int64_t tree_id = -1;                        // Offending tree id, or -1.
  std::int64_t node_id = -1;                        // Offending node id, or -1.
  std::string message;                              // What was wrong, naming tree and node.
};

// Options of TreeEnsemble::build.
struct TreeEnsembleOptions {
  SimdPath widest_path = SimdPath::kAvx512;  // Widest path allowed; the CPU may narrow it.
};

class TreeEnsemble;

// Result of TreeEnsemble::build: an ensemble, or the reason there is none.
struct TreeEnsembleBuild {
  std::shared_ptr<const TreeEnsemble> ensemble;  // Null when the spec was refused.
  TreeSpecError error;                           // problem == kOk when built.
};

// A validated, flattened tree ensemble. Immutable after build; safe to share across threads.
class TreeEnsemble {
 public:
  // Validates `spec` and builds the flattened layout; never throws on a bad spec.
  static TreeEnsembleBuild build(const TreeEnsembleSpec& spec,
                                 const TreeEnsembleOptions& options = {});

  // Returns the prediction for one row of feature_count() floats: the probability of class 1
  // for a classifier, the value for a regressor (after the post transform).
  float predict(const float* row) const noexcept;
  // Returns the margin for one row: base value plus the sum of leaves, before the transform.
  float predict_margin(const float* row) const noexcept;
  // Writes predict() of `count` contiguous rows (row stride feature_count()) to out[count].
  void predict_batch(const float* rows, std::size_t count, float* out) const noexcept;

  // Returns the number of trees in the model (without padding).
  std::size_t tree_count() const noexcept { return tree_count_; }
  // Returns the depth every tree is padded to.
  int depth() const noexcept { return depth_; }
  // Returns the number of values in a feature row.
  std::size_t feature_count() const noexcept { return feature_count_; }
  // Returns the ensemble's kind.
  TreeEnsembleKind kind() const noexcept { return kind_; }
  // Returns the post transform.
  PostTransform post_transform() const noexcept { return post_transform_; }
  // Returns the base value added to the sum of leaves.
  double base_value() const noexcept { return base_value_; }
  // Returns the instruction-set path predictions take.
  SimdPath simd_path() const noexcept { return path_; }

  // Flattened layout, for tests and docs. Level l holds padded_tree_count() << l nodes;
  // the node of tree t at position p in level l is at index (t << l) + p of that level.
  // Returns the tree count rounded up to a multiple of 16 (padding trees add 0).
  std::size_t padded_tree_count() const noexcept { return padded_tree_count_; }
  // Returns the feature ids of level `level` (normalised: go right when !(x < threshold)).
  const std::int32_t* level_feature_ids(int level) const noexcept;
  // Returns the thresholds of level `level`.
  const float* level_thresholds(int level) const noexcept;
  // Returns the leaf values, padded_tree_count() << depth() of them.
  const float* leaf_values() const noexcept { return leaves_.data(); }

  // Kernel signature: returns the sum of leaves of one row (fixed order, see docs).
  using SumKernel = double (*)(const TreeEnsemble&, const float*) noexcept;

 private:
  TreeEnsemble() = default;

  std::vector<std::int32_t> feature_ids_;  // All levels, level l at offset level_offset(l).
  std::vector<float> thresholds_;          // Same indexing as feature_ids_.
  std::vector<std::uint8_t> feature_bytes_; // feature_ids_ as bytes when feature_count <= 64.
  std::vector<float> leaves_;              // padded_tree_count_ << depth_ values.
  std::size_t tree_count_ = 0;
  std::size_t padded_tree_count_ = 0;
  std::size_t feature_count_ = 0;
  int depth_ = 0;
  double base_value_ = 0.0;
  PostTransform post_transform_ = PostTransform::kNone;
  TreeEnsembleKind kind_ = TreeEnsembleKind::kRegressor;
  SimdPath path_ = SimdPath::kScalar;
  SumKernel kernel_ = nullptr;

  friend struct TreeKernels;
};

}  // namespace sor
