// Options from the environment (src/runtime/options.cpp): read once, at the
// first slow path; a malformed value stops the program with a message that
// names the variable.
//
// Each case runs in a death-test child ("threadsafe": the binary is run
// again), which reads the environment at its first allocation. Nothing in
// this binary allocates from the collected heap before that: GoogleTest
// does not use it, and the parent never runs the statements.
#include "runtime/options.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "mallocgc/mallocgc.hpp"

namespace {

using mgc::internal::parse_bool;

constexpr const char* kVar = "MALLOCGC_HUGEPAGES";

// options.hpp: "MALLOCGC_HUGEPAGES   0 or 1 ... Default 1".
constexpr bool kHugePagesDefault = true;

TEST(Options, DefaultsAreTheDocumentedOnes) { EXPECT_EQ(mgc::internal::Options{}.huge_pages, kHugePagesDefault); }

TEST(Options, ParseBool) {
  struct Case {
    const char* text;
    std::optional<bool> value;
  };
  const Case cases[] = {
      {"1", true},
      {"true", true},
      {"on", true},
      {"yes", true},
      {"0", false},
      {"false", false},
      {"off", false},
      {"no", false},
      {"", std::nullopt},
      {"2", std::nullopt},
      {"-1", std::nullopt},
      {"01", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"maybe", std::nullopt},
      {"yes please", std::nullopt},
      {"o", std::nullopt},
      {"truee", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(parse_bool(c.text), c.value) << '"' << c.text << '"';
}

// Sets a variable for the death-test child, and unsets it in the parent
// afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value == nullptr) {
      unsetenv(name);
    } else {
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

// Whether the mapping that holds p has MADV_HUGEPAGE set ("hg" in its
// VmFlags), or nullopt when the kernel has no transparent huge pages.
std::optional<bool> huge_page_advice(const void* p) {
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) return std::nullopt;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    if (std::sscanf(line.c_str(), "%lx%c%lx", &lo, &dash, &hi) == 3 && dash == '-') {
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return (line + " ").find(" hg ") != std::string::npos;
    }
  }
  fail("the heap's mapping is not in /proc/self/smaps");
}

// Allocate, then check the option in force and its effect on the arena.
[[noreturn]] void check_huge_pages(bool expected) {
  void* p = mgc::alloc(16);
  if (p == nullptr) fail("allocation failed");
  if (mgc::internal::options().huge_pages != expected) fail("options().huge_pages is not as set");
  const std::optional<bool> advised = huge_page_advice(p);
  if (advised && *advised != expected)
    fail(expected ? "arena not advised MADV_HUGEPAGE" : "arena advised MADV_HUGEPAGE");
  std::_Exit(0);
}

class OptionsDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(OptionsDeathTest, HugePagesValuesAreAccepted) {
  struct Case {
    const char* value;
    bool expected;
  };
  const Case cases[] = {
      {"1", true},  {"true", true},   {"on", true},   {"yes", true},
      {"0", false}, {"false", false}, {"off", false}, {"no", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << kVar << "=" << c.value);
    ScopedEnv env(kVar, c.value);
    EXPECT_EXIT(check_huge_pages(c.expected), testing::ExitedWithCode(0), "");
  }
}

TEST_F(OptionsDeathTest, HugePagesDefaultApplies) {
  ScopedEnv env(kVar, nullptr);
  EXPECT_EXIT(check_huge_pages(kHugePagesDefault), testing::ExitedWithCode(0), "");
}

TEST_F(OptionsDeathTest, MalformedValueStopsTheProgramNamingTheVariable) {
  for (const char* value : {"2", "maybe", "", "yes please", "-1"}) {
    SCOPED_TRACE(testing::Message() << kVar << "=\"" << value << "\"");
    ScopedEnv env(kVar, value);
    EXPECT_DEATH(mgc::alloc(16), "MALLOCGC_HUGEPAGES=.*expected 0 or 1");
  }
}

TEST_F(OptionsDeathTest, EveryKindOfFirstAllocationReadsTheEnvironment) {
  struct Case {
    const char* name;
    std::function<void()> first;
  };
  struct alignas(64) Aligned {
    char c;
  };
  const Case cases[] = {
      {"alloc", [] { mgc::alloc(16); }},
      {"alloc(300)", [] { mgc::alloc(300); }},
      {"alloc_noscan tiny", [] { mgc::alloc_noscan(4); }},
      {"alloc_noscan large", [] { mgc::alloc_noscan(1 << 20); }},
      {"alloc_typed", [] { mgc::alloc_typed(mgc::Type(16, {0})); }},
      {"make aligned", [] { mgc::make<Aligned>(); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ScopedEnv env(kVar, "bogus");
    EXPECT_DEATH(c.first(), "MALLOCGC_HUGEPAGES=\"bogus\"");
  }
}

TEST_F(OptionsDeathTest, TheEnvironmentIsReadOnce) {
  // Changed after the first allocation: no effect, no error.
  ScopedEnv env(kVar, "1");
  EXPECT_EXIT(
      {
        mgc::alloc(16);
        setenv(kVar, "bogus", 1);
        mgc::alloc(1 << 20);
        mgc::alloc_noscan(4);
        if (!mgc::internal::options().huge_pages) fail("option lost");
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
