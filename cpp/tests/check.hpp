// A minimal test harness for the C++ unit tests: TEST(name) { CHECK(cond); CHECK_EQ(a, b); }
// Each test_*.cpp is one ctest executable; main() runs every registered test and returns the
// number of failures.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace sor::testing {

struct TestCase {
  const char* name;
  std::function<void()> body;
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

inline int& failures() {
  static int count = 0;
  return count;
}

struct Registrar {
  Registrar(const char* name, std::function<void()> body) {
    registry().push_back({name, std::move(body)});
  }
};

inline void report(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

}  // namespace sor::testing

#define SOR_CONCAT_INNER(a, b) a##b
#define SOR_CONCAT(a, b) SOR_CONCAT_INNER(a, b)

#define TEST(name)                                                              \
  static void name();                                                           \
  static ::sor::testing::Registrar SOR_CONCAT(registrar_, name)(#name, name);  \
  static void name()

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) ::sor::testing::report(__FILE__, __LINE__, #cond);            \
  } while (0)

#define CHECK_EQ(a, b)                                                          \
  do {                                                                          \
    const auto& sor_a_ = (a);                                                   \
    const auto& sor_b_ = (b);                                                   \
    if (!(sor_a_ == sor_b_))                                                    \
      ::sor::testing::report(__FILE__, __LINE__,                                \
                             std::string(#a " == " #b " (") +                   \
                                 std::to_string(static_cast<long long>(sor_a_)) + \
                                 " vs " +                                       \
                                 std::to_string(static_cast<long long>(sor_b_)) + ")"); \
  } while (0)

// Defines main() once per executable: include with SOR_TEST_MAIN defined in exactly one file.
#ifdef SOR_TEST_MAIN
int main() {
  int passed = 0;
  int failed = 0;
  for (const auto& test : ::sor::testing::registry()) {
    const int before = ::sor::testing::failures();
    test.body();
    const bool ok = ::sor::testing::failures() == before;
    (ok ? passed : failed) += 1;
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", test.name);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
#endif
