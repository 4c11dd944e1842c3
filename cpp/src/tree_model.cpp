#include "sor/tree_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialise "undefined" vectors from themselves (__Y = __Y), which
// -Wuninitialized reports inside every intrinsic that uses one; the value is never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

namespace sor {

std::string_view simd_path_name(SimdPath path) noexcept {
  switch (path) {
    case SimdPath::kScalar: return "scalar";
    case SimdPath::kAvx2: return "avx2";
    case SimdPath::kAvx512: return "avx512";
  }
  return "unknown";
}

SimdPath best_supported_simd_path() noexcept {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdPath::kAvx512;
  if (__builtin_cpu_supports("avx2")) return SimdPath::kAvx2;
#endif
  return SimdPath::kScalar;
}

std::string_view tree_spec_problem_name(TreeSpecProblem problem) noexcept {
  switch (problem) {
    case TreeSpecProblem::kOk: return "ok";
    case TreeSpecProblem::kInvalidArrays: return "invalid_arrays";
    case TreeSpecProblem::kInvalidNode: return "invalid_node";
    case TreeSpecProblem::kNotATree: return "not_a_tree";
    case TreeSpecProblem::kInvalidFeature: return "invalid_feature";
    case TreeSpecProblem::kNonFinite: return "non_finite";
    case TreeSpecProblem::kInvalidLeaf: return "invalid_leaf";
    case TreeSpecProblem::kTooDeep: return "too_deep";
    case TreeSpecProblem::kUnsupported: return "unsupported";
  }
  return "unknown";
}

namespace {

constexpr std::size_t kGroup = 16;  // Trees per group; every path sums 16 lanes the same way.

std::size_t level_offset(std::size_t padded_trees, int level) noexcept {
  return padded_trees * ((std::size_t{1} << level) - 1);
}

// The fixed reduction of 16 lane sums every path reproduces: fold halves 8, 4, 2, 1.
double reduce_lanes(const double* lanes) noexcept {
  double v8[8], v4[4], v2[2];
  for (int j = 0; j < 8; ++j) v8[j] = lanes[j] + lanes[j + 8];
  for (int j = 0; j < 4; ++j) v4[j] = v8[j] + v8[j + 4];
  for (int j = 0; j < 2; ++j) v2[j] = v4[j] + v4[j + 2];
  return v2[0] + v2[1];
}

TreeSpecError refuse(TreeSpecProblem problem, std::int64_t tree, std::int64_t node,
                     std::string message) {
  return TreeSpecError{problem, tree, node, std::move(message)};
}

std::string where(std::int64_t tree, std::int64_t node) {
  return "tree " + std::to_string(tree) + " node " + std::to_string(node);
}

}  // namespace

struct TreeKernels {
  // Trees are walked in blocks of up to kBlockGroups groups, level by level: the groups of a
  // block are independent, so their loads overlap instead of waiting on one another.
  static constexpr std::size_t kBlockGroups = 8;

  static double scalar(const TreeEnsemble& m, const float* row) noexcept {
    double lanes[kGroup] = {};
    const int depth = m.depth_;
    const std::size_t padded = m.padded_tree_count_;
    constexpr std::size_t kBlock = kGroup * kBlockGroups;
    for (std::size_t b = 0; b < padded; b += kBlock) {
      const std::size_t trees = std::min(kBlock, padded - b);
      std::uint32_t pos[kBlock];
      for (std::size_t j = 0; j < trees; ++j) pos[j] = static_cast<std::uint32_t>(b + j);
      for (int level = 0; level < depth; ++level) {
        const std::size_t offset = level_offset(padded, level);
        const std::int32_t* features = m.feature_ids_.data() + offset;
        const float* thresholds = m.thresholds_.data() + offset;
        for (std::size_t j = 0; j < trees; ++j) {
          const std::uint32_t p = pos[j];
          const std::uint32_t right = !(row[features[p]] < thresholds[p]) ? 1u : 0u;
          pos[j] = 2 * p + right;
        }
      }
      for (std::size_t j = 0; j < trees; ++j) {
        lanes[j % kGroup] += static_cast<double>(m.leaves_[pos[j]]);
      }
    }
    return reduce_lanes(lanes);
  }

#if defined(__x86_64__)
  __attribute__((target("avx2"))) static double avx2(const TreeEnsemble& m,
                                                     const float* row) noexcept {
    const int depth = m.depth_;
    const std::size_t padded = m.padded_tree_count_;
    const int* features = m.feature_ids_.data();
    const float* thresholds = m.thresholds_.data();
    const float* leaves = m.leaves_.data();
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Lanes 0-3, 4-7, 8-11, 12-15 of a 16-tree group.
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                      _mm256_setzero_pd()};
    constexpr std::size_t kHalves = 2 * kBlockGroups;  // 8-tree vectors per block.
    for (std::size_t b = 0; b < padded; b += kGroup * kBlockGroups) {
      const std::size_t halves = std::min(kHalves, (padded - b) / 8);
      __m256i pos[kHalves];
      for (std::size_t k = 0; k < halves; ++k) {
        pos[k] = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(b + 8 * k)), iota);
      }
      for (int level = 0; level < depth; ++level) {
        const std::size_t offset = level_offset(padded, level);
        const int* f_level = features + offset;
        const float* t_level = thresholds + offset;
        for (std::size_t k = 0; k < halves; ++k) {
          const __m256i f = _mm256_i32gather_epi32(f_level, pos[k], 4);
          const __m256 t = _mm256_i32gather_ps(t_level, pos[k], 4);
          const __m256 x = _mm256_i32gather_ps(row, f, 4);
          // All-ones lanes where !(x < t); subtracting -1 adds the right-child bit.
          const __m256i right = _mm256_castps_si256(_mm256_cmp_ps(x, t, _CMP_NLT_UQ));
          pos[k] = _mm256_sub_epi32(_mm256_add_epi32(pos[k], pos[k]), right);
        }
      }
      for (std::size_t k = 0; k < halves; ++k) {
        const __m256 leaf = _mm256_i32gather_ps(leaves, pos[k], 4);
        const std::size_t a = 2 * (k % 2);
        acc[a] = _mm256_add_pd(acc[a], _mm256_cvtps_pd(_mm256_castps256_ps128(leaf)));
        acc[a + 1] = _mm256_add_pd(acc[a + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(leaf, 1)));
      }
    }
    // Fold 8 (lane j + lane j+8), then 4, 2, 1, as reduce_lanes does.
    const __m256d v8_low = _mm256_add_pd(acc[0], acc[2]);
    const __m256d v8_high = _mm256_add_pd(acc[1], acc[3]);
    const __m256d v4 = _mm256_add_pd(v8_low, v8_high);
    const __m128d v2 = _mm_add_pd(_mm256_castpd256_pd128(v4), _mm256_extractf128_pd(v4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(v2, _mm_unpackhi_pd(v2, v2)));
  }

  // Returns x[f] for 16 feature ids < 64 from the row held in four registers (no gather).
  __attribute__((target("avx512f"))) static inline __m512 lookup64(
      __m512i f, __m512 r0, __m512 r1, __m512 r2, __m512 r3) noexcept {
    const __m512 low = _mm512_permutex2var_ps(r0, f, r1);
    const __m512 high = _mm512_permutex2var_ps(r2, f, r3);
    const __mmask16 upper = _mm512_test_epi32_mask(f, _mm512_set1_epi32(32));
    return _mm512_mask_blend_ps(upper, low, high);
  }

  // Returns row[start, start + 16) with zeros past `n` (masked: never reads past the row).
  __attribute__((target("avx512f"))) static inline __m512 load_part(
      const float* row, std::size_t n, std::size_t start) noexcept {
    const std::size_t left = n > start ? std::min<std::size_t>(n - start, 16) : 0;
    const auto mask = static_cast<__mmask16>((1u << left) - 1u);
    return _mm512_maskz_loadu_ps(mask, left != 0 ? row + start : row);
  }

  // Returns block[local[j]] in each lane j, where block holds the 16 << kLevel entries a group
  // of 16 trees has at level kLevel (>= 1): two-table permutes of 32 entries, then blends
  // chosen by the higher bits of the index. No gather.
  template <int kLevel>
  __attribute__((target("avx512f"))) static inline __m512i select_entries(
      const std::int32_t* block, __m512i local) noexcept {
    constexpr int kChunks = (16 << kLevel) / 32;
    __m512i chosen[kChunks];
    for (int c = 0; c < kChunks; ++c) {
      chosen[c] = _mm512_permutex2var_epi32(_mm512_loadu_si512(block + 32 * c), local,
                                            _mm512_loadu_si512(block + 32 * c + 16));
    }
    int bit = 5;
    for (int width = kChunks; width > 1; width /= 2, ++bit) {
      const __mmask16 high = _mm512_test_epi32_mask(local, _mm512_set1_epi32(1 << bit));
      for (int c = 0; c < width / 2; ++c) {
        chosen[c] = _mm512_mask_blend_epi32(high, chosen[2 * c], chosen[2 * c + 1]);
      }
    }
    return chosen[0];
  }

  // Fetches the feature ids and thresholds of the nodes at `pos` (level `level`, group
  // starting at tree `first_tree`): permutes up to level kMaxPermuteLevel, gathers below.
  static constexpr int kMaxPermuteLevel = 3;
  __attribute__((target("avx512f"))) static inline void fetch_nodes(
      const TreeEnsemble& m, int level, std::size_t offset, std::size_t first_tree, __m512i pos,
      __m512i& f, __m512& t) noexcept {
    const std::int32_t* features = m.feature_ids_.data() + offset;
    const auto* thresholds = reinterpret_cast<const std::int32_t*>(m.thresholds_.data() + offset);
    if (level > kMaxPermuteLevel) {
      f = _mm512_i32gather_epi32(pos, features, 4);
      t = _mm512_i32gather_ps(pos, m.thresholds_.data() + offset, 4);
      return;
    }
    const std::size_t base = first_tree << level;
    const __m512i local = _mm512_sub_epi32(pos, _mm512_set1_epi32(static_cast<int>(base)));
    switch (level) {
      case 0:
        f = _mm512_loadu_si512(features + base);
        t = _mm512_loadu_ps(m.thresholds_.data() + offset + base);
        return;
      case 1:
        f = select_entries<1>(features + base, local);
        t = _mm512_castsi512_ps(select_entries<1>(thresholds + base, local));
        return;
      case 2:
        f = select_entries<2>(features + base, local);
        t = _mm512_castsi512_ps(select_entries<2>(thresholds + base, local));
        return;
      default:
        f = select_entries<3>(features + base, local);
        t = _mm512_castsi512_ps(select_entries<3>(thresholds + base, local));
        return;
    }
  }

  // Returns block[local[j]] & 0xff in the low byte of each lane j (upper bytes undefined),
  // where block holds the 16 << kLevel feature bytes a group has at level kLevel (>= 3):
  // byte permutes of 128 entries, then blends chosen by the higher bits of the index.
  template <int kLevel>
  __attribute__((target("avx512f,avx512bw,avx512vbmi"))) static inline __m512i select_bytes(
      const std::uint8_t* block, __m512i local) noexcept {
    constexpr int kChunks = (16 << kLevel) / 128;
    __m512i chosen[kChunks];
    for (int c = 0; c < kChunks; ++c) {
      chosen[c] = _mm512_permutex2var_epi8(_mm512_loadu_si512(block + 128 * c), local,
                                           _mm512_loadu_si512(block + 128 * c + 64));
    }
    int bit = 7;
    for (int width = kChunks; width > 1; width /= 2, ++bit) {
      const __mmask16 high = _mm512_test_epi32_mask(local, _mm512_set1_epi32(1 << bit));
      for (int c = 0; c < width / 2; ++c) {
        chosen[c] = _mm512_mask_blend_epi32(high, chosen[2 * c], chosen[2 * c + 1]);
      }
    }
    return chosen[0];
  }

  // fetch_nodes for rows held in registers on CPUs with AVX512-VBMI: feature ids of levels
  // 3 to kMaxByteLevel come from byte permutes (only their low 6 bits are meaningful, which
  // is all lookup64 reads); thresholds below level 3 are still gathered.
  static constexpr int kMaxByteLevel = 5;
  __attribute__((target("avx512f,avx512bw,avx512vbmi"))) static inline void fetch_nodes_vbmi(
      const TreeEnsemble& m, int level, std::size_t offset, std::size_t first_tree, __m512i pos,
      __m512i& f, __m512& t) noexcept {
    if (level < kMaxPermuteLevel || level > kMaxByteLevel) {
      fetch_nodes(m, level, offset, first_tree, pos, f, t);
      return;
    }
    const std::size_t base = first_tree << level;
    const __m512i local = _mm512_sub_epi32(pos, _mm512_set1_epi32(static_cast<int>(base)));
    const std::uint8_t* bytes = m.feature_bytes_.data() + offset + base;
    const auto* thresholds = reinterpret_cast<const std::int32_t*>(m.thresholds_.data() + offset);
    switch (level) {
      case 3:
        f = select_bytes<3>(bytes, local);
        t = _mm512_castsi512_ps(select_entries<3>(thresholds + base, local));
        return;
      case 4:
        t = _mm512_i32gather_ps(pos, m.thresholds_.data() + offset, 4);
        f = select_bytes<4>(bytes, local);
        return;
      default:
        t = _mm512_i32gather_ps(pos, m.thresholds_.data() + offset, 4);
        f = select_bytes<5>(bytes, local);
        return;
    }
  }

  template <bool kRowInRegisters, bool kVbmi>
  __attribute__((target("avx512f,avx512bw,avx512vbmi"))) static double avx512_vbmi(
      const TreeEnsemble& m, const float* row) noexcept {
    return avx512_body<kRowInRegisters, kVbmi>(m, row);
  }

  template <bool kRowInRegisters>
  __attribute__((target("avx512f"))) static double avx512(const TreeEnsemble& m,
                                                          const float* row) noexcept {
    return avx512_body<kRowInRegisters, false>(m, row);
  }

  template <bool kRowInRegisters, bool kVbmi>
  __attribute__((always_inline, target("avx512f"))) static inline double avx512_body(const TreeEnsemble& m,
                                                          const float* row) noexcept {
    const int depth = m.depth_;
    const std::size_t padded = m.padded_tree_count_;
    const float* leaves = m.leaves_.data();
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i one = _mm512_set1_epi32(1);
    __m512 r0 = _mm512_setzero_ps(), r1 = r0, r2 = r0, r3 = r0;
    if constexpr (kRowInRegisters) {
      const std::size_t n = m.feature_count_;
      r0 = load_part(row, n, 0);
      r1 = load_part(row, n, 16);
      r2 = load_part(row, n, 32);
      r3 = load_part(row, n, 48);
    }
    __m512d acc_low = _mm512_setzero_pd(), acc_high = _mm512_setzero_pd();
    for (std::size_t b = 0; b < padded; b += kGroup * kBlockGroups) {
      const std::size_t groups = std::min(kBlockGroups, (padded - b) / kGroup);
      __m512i pos[kBlockGroups];
      for (std::size_t k = 0; k < groups; ++k) {
        pos[k] = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(b + kGroup * k)), iota);
      }
      for (int level = 0; level < depth; ++level) {
        const std::size_t offset = level_offset(padded, level);
        for (std::size_t k = 0; k < groups; ++k) {
          __m512i f;
          __m512 t;
          if constexpr (kVbmi) {
            fetch_nodes_vbmi(m, level, offset, b + kGroup * k, pos[k], f, t);
          } else {
            fetch_nodes(m, level, offset, b + kGroup * k, pos[k], f, t);
          }
          __m512 x;
          if constexpr (kRowInRegisters) {
            x = lookup64(f, r0, r1, r2, r3);
          } else {
            x = _mm512_i32gather_ps(f, row, 4);
          }
          const __mmask16 right = _mm512_cmp_ps_mask(x, t, _CMP_NLT_UQ);
          const __m512i twice = _mm512_add_epi32(pos[k], pos[k]);
          pos[k] = _mm512_mask_add_epi32(twice, right, twice, one);
        }
      }
      for (std::size_t k = 0; k < groups; ++k) {
        const __m512 leaf = depth == 0 ? _mm512_loadu_ps(leaves + b + kGroup * k)
                                       : _mm512_i32gather_ps(pos[k], leaves, 4);
        acc_low = _mm512_add_pd(acc_low, _mm512_cvtps_pd(_mm512_castps512_ps256(leaf)));
        const __m256 leaf_high =
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(leaf), 1));
        acc_high = _mm512_add_pd(acc_high, _mm512_cvtps_pd(leaf_high));
      }
    }
    const __m512d v8 = _mm512_add_pd(acc_low, acc_high);
    const __m256d v4 = _mm256_add_pd(_mm512_castpd512_pd256(v8), _mm512_extractf64x4_pd(v8, 1));
    const __m128d v2 = _mm_add_pd(_mm256_castpd256_pd128(v4), _mm256_extractf128_pd(v4, 1));
    return _mm_cvtsd_f64(_mm_add_sd(v2, _mm_unpackhi_pd(v2, v2)));
  }
#endif

  static TreeEnsemble::SumKernel choose(SimdPath path, std::size_t feature_count) noexcept {
#if defined(__x86_64__)
    if (path == SimdPath::kAvx512) {
      if (feature_count > 64) return &avx512<false>;
      __builtin_cpu_init();
      if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi")) {
        return &avx512_vbmi<true, true>;
      }
      return &avx512<true>;
    }
    if (path == SimdPath::kAvx2) return &avx2;
#else
    (void)feature_count;
#endif
    (void)path;
    return &scalar;
  }

  static TreeEnsembleBuild build(const TreeEnsembleSpec& spec, const TreeEnsembleOptions& options);
};

TreeEnsembleBuild TreeEnsemble::build(const TreeEnsembleSpec& spec,
                                      const TreeEnsembleOptions& options) {
  return TreeKernels::build(spec, options);
}

TreeEnsembleBuild TreeKernels::build(const TreeEnsembleSpec& spec,
                                     const TreeEnsembleOptions& options) {
  TreeEnsembleBuild result;
  auto fail = [&](TreeSpecProblem problem, std::int64_t tree, std::int64_t node,
                  std::string message) {
    result.error = refuse(problem, tree, node, std::move(message));
    return result;
  };
  const std::size_t n = spec.nodes_treeids.size();
  if (spec.nodes_nodeids.size() != n || spec.nodes_featureids.size() != n ||
      spec.nodes_modes.size() != n || spec.nodes_values.size() != n ||
      spec.nodes_truenodeids.size() != n || spec.nodes_falsenodeids.size() != n) {
    return fail(TreeSpecProblem::kInvalidArrays, -1, -1,
                "node arrays have different lengths (nodes_treeids has " + std::to_string(n) +
                    ")");
  }
  if (n == 0) return fail(TreeSpecProblem::kInvalidArrays, -1, -1, "the ensemble has no node");
  const std::size_t leaf_count = spec.leaf_treeids.size();
  if (spec.leaf_nodeids.size() != leaf_count || spec.leaf_weights.size() != leaf_count) {
    return fail(TreeSpecProblem::kInvalidArrays, -1, -1, "leaf arrays have different lengths");
  }
  if (spec.feature_count < 1 || spec.feature_count > kMaxTreeFeatureCount) {
    return fail(TreeSpecProblem::kInvalidArrays, -1, -1,
                "feature_count " + std::to_string(spec.feature_count) + " is outside [1, " +
                    std::to_string(kMaxTreeFeatureCount) + "]");
  }
  if (!std::isfinite(spec.base_value)) {
    return fail(TreeSpecProblem::kNonFinite, -1, -1, "base value is not finite");
  }
  if (spec.post_transform != PostTransform::kNone &&
      spec.post_transform != PostTransform::kLogistic) {
    return fail(TreeSpecProblem::kUnsupported, -1, -1, "unknown post transform");
  }
  if (spec.kind == TreeEnsembleKind::kBinaryClassifier) {
    if (spec.post_transform != PostTransform::kLogistic) {
      return fail(TreeSpecProblem::kUnsupported, -1, -1,
                  "a binary classifier needs the logistic post transform");
    }
  } else if (spec.kind != TreeEnsembleKind::kRegressor) {
    return fail(TreeSpecProblem::kUnsupported, -1, -1, "unknown ensemble kind");
  }

  // Nodes sorted by (tree id, node id): the position of a node is its index in `order`.
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  auto key = [&](std::size_t i) {
    return std::make_pair(spec.nodes_treeids[i], spec.nodes_nodeids[i]);
  };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = order[k];
    const std::int64_t tree = spec.nodes_treeids[i], node = spec.nodes_nodeids[i];
    if (tree < 0 || node < 0) {
      return fail(TreeSpecProblem::kInvalidNode, tree, node, where(tree, node) + ": negative id");
    }
    if (k > 0 && key(order[k - 1]) == key(i)) {
      return fail(TreeSpecProblem::kInvalidNode, tree, node, where(tree, node) + " appears twice");
    }
    const auto mode = static_cast<std::uint8_t>(spec.nodes_modes[i]);
    if (mode > static_cast<std::uint8_t>(TreeNodeMode::kBranchGte)) {
      return fail(TreeSpecProblem::kUnsupported, tree, node,
                  where(tree, node) + ": unsupported node mode " + std::to_string(mode));
    }
    if (spec.nodes_modes[i] != TreeNodeMode::kLeaf) {
      const std::int64_t feature = spec.nodes_featureids[i];
      if (feature < 0 || feature >= spec.feature_count) {
        return fail(TreeSpecProblem::kInvalidFeature, tree, node,
                    where(tree, node) + ": feature id " + std::to_string(feature) +
                        " is outside [0, " + std::to_string(spec.feature_count) + ")");
      }
      if (!std::isfinite(spec.nodes_values[i])) {
        return fail(TreeSpecProblem::kNonFinite, tree, node,
                    where(tree, node) + ": threshold is not finite");
      }
    }
  }
  auto find = [&](std::int64_t tree, std::int64_t node) -> std::ptrdiff_t {
    const auto it = std::lower_bound(order.begin(), order.end(), std::make_pair(tree, node),
                                     [&](std::size_t i, const std::pair<std::int64_t, std::int64_t>& k) {
                                       return key(i) < k;
                                     });
    if (it == order.end() || key(*it) != std::make_pair(tree, node)) return -1;
    return it - order.begin();
  };

  // Trees: runs of equal tree id in `order`, ascending tree id (the summation order).
  std::vector<std::pair<std::size_t, std::size_t>> trees;  // [begin, end) in `order`.
  for (std::size_t k = 0; k < n;) {
    std::size_t e = k;
    while (e < n && spec.nodes_treeids[order[e]] == spec.nodes_treeids[order[k]]) ++e;
    trees.emplace_back(k, e);
    k = e;
  }
  if (static_cast<std::int64_t>(trees.size()) > kMaxTreeCount) {
    return fail(TreeSpecProblem::kInvalidArrays, -1, -1,
                std::to_string(trees.size()) + " trees, more than " + std::to_string(kMaxTreeCount));
  }

  // Leaf values by position (several weights of one leaf are summed in their order).
  std::vector<float> leaf_value(n, 0.0f);
  for (std::size_t w = 0; w < leaf_count; ++w) {
    const std::int64_t tree = spec.leaf_treeids[w], node = spec.leaf_nodeids[w];
    const std::ptrdiff_t k = find(tree, node);
    if (k < 0) {
      return fail(TreeSpecProblem::kInvalidLeaf, tree, node,
                  "leaf weight " + std::to_string(w) + " names " + where(tree, node) +
                      ", which does not exist");
    }
    if (spec.nodes_modes[order[k]] != TreeNodeMode::kLeaf) {
      return fail(TreeSpecProblem::kInvalidLeaf, tree, node,
                  "leaf weight " + std::to_string(w) + " names " + where(tree, node) +
                      ", which is a branch");
    }
    if (!std::isfinite(spec.leaf_weights[w])) {
      return fail(TreeSpecProblem::kNonFinite, tree, node,
                  where(tree, node) + ": leaf weight is not finite");
    }
    leaf_value[k] += spec.leaf_weights[w];
  }

  // Children by position, parent counts, one root per tree, every node reached once.
  std::vector<std::ptrdiff_t> true_child(n, -1), false_child(n, -1);
  std::vector<std::uint32_t> parents(n, 0);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = order[k];
    if (spec.nodes_modes[i] == TreeNodeMode::kLeaf) continue;
    const std::int64_t tree = spec.nodes_treeids[i], node = spec.nodes_nodeids[i];
    for (int side = 0; side < 2; ++side) {
      const std::int64_t child = side == 0 ? spec.nodes_truenodeids[i] : spec.nodes_falsenodeids[i];
      const std::ptrdiff_t c = find(tree, child);
      if (c < 0) {
        return fail(TreeSpecProblem::kInvalidNode, tree, node,
                    where(tree, node) + ": " + (side == 0 ? "true" : "false") + " child " +
                        std::to_string(child) + " does not exist in the tree");
      }
      if (++parents[c] > 1) {
        return fail(TreeSpecProblem::kNotATree, tree, child,
                    where(tree, child) + " has more than one parent");
      }
      (side == 0 ? true_child : false_child)[k] = c;
    }
  }
  std::vector<std::size_t> roots(trees.size());
  std::vector<int> node_depth(n, -1);
  int depth = 0;
  for (std::size_t t = 0; t < trees.size(); ++t) {
    const auto [begin, end] = trees[t];
    const std::int64_t tree = spec.nodes_treeids[order[begin]];
    std::ptrdiff_t root = -1;
    for (std::size_t k = begin; k < end; ++k) {
      if (parents[k] != 0) continue;
      if (root >= 0) {
        return fail(TreeSpecProblem::kNotATree, tree, spec.nodes_nodeids[order[k]],
                    "tree " + std::to_string(tree) + " has two roots (nodes " +
                        std::to_string(spec.nodes_nodeids[order[root]]) + " and " +
                        std::to_string(spec.nodes_nodeids[order[k]]) + ")");
      }
      root = static_cast<std::ptrdiff_t>(k);
    }
    if (root < 0) {
      return fail(TreeSpecProblem::kNotATree, tree, -1,
                  "tree " + std::to_string(tree) + " has no root (its nodes form a cycle)");
    }
    roots[t] = static_cast<std::size_t>(root);
    std::vector<std::size_t> stack{static_cast<std::size_t>(root)};
    node_depth[root] = 0;
    std::size_t reached = 0;
    while (!stack.empty()) {
      const std::size_t k = stack.back();
      stack.pop_back();
      ++reached;
      if (node_depth[k] > kMaxTreeDepth) {
        return fail(TreeSpecProblem::kTooDeep, tree, spec.nodes_nodeids[order[k]],
                    where(tree, spec.nodes_nodeids[order[k]]) + " is at depth " +
                        std::to_string(node_depth[k]) + ", deeper than the maximum " +
                        std::to_string(kMaxTreeDepth));
      }
      depth = std::max(depth, node_depth[k]);
      if (true_child[k] < 0) continue;
      for (const std::ptrdiff_t c : {true_child[k], false_child[k]}) {
        node_depth[c] = node_depth[k] + 1;
        stack.push_back(static_cast<std::size_t>(c));
      }
    }
    if (reached != end - begin) {
      for (std::size_t k = begin; k < end; ++k) {
        if (node_depth[k] < 0) {
          return fail(TreeSpecProblem::kNotATree, tree, spec.nodes_nodeids[order[k]],
                      where(tree, spec.nodes_nodeids[order[k]]) +
                          " is not reachable from the root (a cycle or a detached part)");
        }
      }
    }
  }

  // Flatten: perfect trees of `depth` levels, level by level, tree-major within a level.
  std::shared_ptr<TreeEnsemble> m(new TreeEnsemble());
  m->tree_count_ = trees.size();
  m->padded_tree_count_ = (trees.size() + kGroup - 1) / kGroup * kGroup;
  m->feature_count_ = static_cast<std::size_t>(spec.feature_count);
  m->depth_ = depth;
  m->base_value_ = spec.base_value;
  m->post_transform_ = spec.post_transform;
  m->kind_ = spec.kind;
  const std::size_t padded = m->padded_tree_count_;
  const std::size_t internal = level_offset(padded, depth);
  // A padding node sends every value (NaN too) right: !(x < -inf) always holds.
  m->feature_ids_.assign(internal, 0);
  m->thresholds_.assign(internal, -std::numeric_limits<float>::infinity());
  m->leaves_.assign(padded << depth, 0.0f);
  struct Place {
    std::size_t k;
    int level;
    std::size_t position;  // (tree << level) + index within the level.
  };
  std::vector<Place> stack;
  for (std::size_t t = 0; t < trees.size(); ++t) {
    stack.push_back({roots[t], 0, t});
    while (!stack.empty()) {
      const Place p = stack.back();
      stack.pop_back();
      const std::size_t i = order[p.k];
      const TreeNodeMode mode = spec.nodes_modes[i];
      if (mode == TreeNodeMode::kLeaf) {
        const int below = depth - p.level;
        const std::size_t first = p.position << below;
        for (std::size_t b = 0; b < (std::size_t{1} << below); ++b) {
          m->leaves_[first + b] = leaf_value[p.k];
        }
        continue;
      }
      const float value = spec.nodes_values[i];
      const float above = std::nextafter(value, std::numeric_limits<float>::infinity());
      float threshold = value;
      bool true_goes_left = true;
      switch (mode) {
        case TreeNodeMode::kBranchLt: threshold = value; true_goes_left = true; break;
        case TreeNodeMode::kBranchLeq: threshold = above; true_goes_left = true; break;
        case TreeNodeMode::kBranchGt: threshold = above; true_goes_left = false; break;
        case TreeNodeMode::kBranchGte: threshold = value; true_goes_left = false; break;
        case TreeNodeMode::kLeaf: break;
      }
      const std::size_t at = level_offset(padded, p.level) + p.position;
      m->feature_ids_[at] = static_cast<std::int32_t>(spec.nodes_featureids[i]);
      m->thresholds_[at] = threshold;
      const std::size_t left = static_cast<std::size_t>(true_goes_left ? true_child[p.k] : false_child[p.k]);
      const std::size_t right = static_cast<std::size_t>(true_goes_left ? false_child[p.k] : true_child[p.k]);
      stack.push_back({left, p.level + 1, 2 * p.position});
      stack.push_back({right, p.level + 1, 2 * p.position + 1});
    }
  }
  if (m->feature_count_ <= 64) {
    m->feature_bytes_.assign(m->feature_ids_.begin(), m->feature_ids_.end());
  }
  const SimdPath widest = best_supported_simd_path();
  m->path_ = static_cast<std::uint8_t>(options.widest_path) < static_cast<std::uint8_t>(widest)
                 ? options.widest_path
                 : widest;
  m->kernel_ = choose(m->path_, m->feature_count_);
  result.ensemble = std::move(m);
  return result;
}

float TreeEnsemble::predict_margin(const float* row) const noexcept {
  return static_cast<float>(kernel_(*this, row) + base_value_);
}

float TreeEnsemble::predict(const float* row) const noexcept {
  const double margin = kernel_(*this, row) + base_value_;
  if (post_transform_ == PostTransform::kLogistic) {
    return static_cast<float>(1.0 / (1.0 + std::exp(-margin)));
  }
  return static_cast<float>(margin);
}

void TreeEnsemble::predict_batch(const float* rows, std::size_t count, float* out) const noexcept {
  for (std::size_t r = 0; r < count; ++r) out[r] = predict(rows + r * feature_count_);
}

const std::int32_t* TreeEnsemble::level_feature_ids(int level) const noexcept {
  return feature_ids_.data() + level_offset(padded_tree_count_, level);
}

const float* TreeEnsemble::level_thresholds(int level) const noexcept {
  return thresholds_.data() + level_offset(padded_tree_count_, level);
}

}  // namespace sor
