// A small, fully specified random generator (xoshiro256**), so that the same seed gives the
// same stream on every platform; std:: distributions are implementation-defined.
#pragma once

#include <cmath>
#include <cstdint>

namespace sor {

// Deterministic pseudo-random numbers for simulation and synthetic data.
class Random {
 public:
  // Seeds the state from `seed` through splitmix64.
  explicit Random(std::uint64_t seed) noexcept {
    for (auto& word : state_) {
      seed += 0x9E3779B97F4A7C15ull;
      std::uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      word = z ^ (z >> 31);
    }
  }
  // Returns 64 random bits.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // Returns a double uniform in [0, 1).
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Returns an integer uniform in [0, n); n must be > 0.
  std::uint64_t below(std::uint64_t n) noexcept {
    __extension__ using Wide = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<Wide>(next()) * n) >> 64);
  }
  // Returns the number of failures before the first success with probability p (0 < p <= 1).
  std::int64_t geometric(double p) noexcept {
    const double u = 1.0 - uniform();
    return static_cast<std::int64_t>(std::floor(std::log(u) / std::log1p(-p)));
  }
  // Returns an exponential variate with the given mean.
  double exponential(double mean) noexcept { return -mean * std::log(1.0 - uniform()); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4];
};

}  // namespace sor
