// Options from the environment (src/runtime/options.cpp): read once, at the
// first slow path; a malformed value stops the program with a message that
// names the variable.
//
// Each case runs in a death-test child ("threadsafe": the binary is run
// again), which reads the environment at its first allocation. Nothing in
// this binary allocates from the collected heap before that: GoogleTest
// does not use it, and the parent never runs the statements.
#include "runtime/options.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "gc/scavenger.hpp"
#include "gtest/gtest.h"
#include "heap/page_alloc.hpp"
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

// Allocate, then check the option in force and its effect on the heap:
// memory committed before the heap reaches kHugePagesFrom is never advised
// (a small heap stays in 4 KiB pages), what comes after is when the option
// is on.
[[noreturn]] void check_huge_pages(bool expected) {
  void* p = mgc::alloc(16);
  if (p == nullptr) fail("allocation failed");
  if (mgc::internal::options().huge_pages != expected) fail("options().huge_pages is not as set");
  const std::optional<bool> first = huge_page_advice(p);
  if (first && *first) fail("the first memory of a small heap advised MADV_HUGEPAGE");
  void* big = nullptr;
  for (std::size_t grown = 0; grown <= mgc::internal::kHugePagesFrom; grown += 4 << 20) {
    big = mgc::alloc_noscan(4 << 20);
    if (big == nullptr) fail("allocation failed");
  }
  // The object's last byte: its first pages may be free pages the heap
  // had committed before (not advised), the rest come from the growth.
  const std::optional<bool> advised = huge_page_advice(static_cast<char*>(big) + (4 << 20) - 1);
  if (advised && *advised != expected)
    fail(expected ? "memory past kHugePagesFrom not advised MADV_HUGEPAGE" : "memory advised MADV_HUGEPAGE");
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

// --- the collector's variables ----------------------------------------------

TEST(Options, ParseGogc) {
  using mgc::internal::parse_gogc;
  EXPECT_EQ(parse_gogc("100"), 100);
  EXPECT_EQ(parse_gogc("0"), 0);
  EXPECT_EQ(parse_gogc("off"), -1);
  EXPECT_EQ(parse_gogc("1073741824"), 1 << 30);
  for (const char* bad : {"", "-1", "1073741825", "100%", " 100", "on", "1e3", "99999999999999999999"})
    EXPECT_EQ(parse_gogc(bad), std::nullopt) << '"' << bad << '"';
}

TEST(Options, ParseBytes) {
  using mgc::internal::parse_bytes;
  EXPECT_EQ(parse_bytes("0"), 0);
  EXPECT_EQ(parse_bytes("12345"), 12345);
  EXPECT_EQ(parse_bytes("100B"), 100);
  EXPECT_EQ(parse_bytes("4KiB"), 4096);
  EXPECT_EQ(parse_bytes("512MiB"), std::int64_t{512} << 20);
  EXPECT_EQ(parse_bytes("3GiB"), std::int64_t{3} << 30);
  EXPECT_EQ(parse_bytes("2TiB"), std::int64_t{2} << 40);
  EXPECT_EQ(parse_bytes("off"), INT64_MAX);
  for (const char* bad :
       {"", "MiB", "-1", "1.5GiB", "10MB", "10 MiB", "10mib", "9000000TiB", "99999999999999999999", "x"})
    EXPECT_EQ(parse_bytes(bad), std::nullopt) << '"' << bad << '"';
}

TEST(Options, ParseMarkThreads) {
  using mgc::internal::parse_mark_threads;
  EXPECT_EQ(parse_mark_threads("1"), 1);
  EXPECT_EQ(parse_mark_threads("64"), 64);
  for (const char* bad : {"0", "65", "", "-2", "two"}) EXPECT_EQ(parse_mark_threads(bad), std::nullopt) << bad;
}

TEST(Options, ParseSignal) {
  using mgc::internal::parse_signal;
  EXPECT_EQ(parse_signal("SIGPWR"), SIGPWR);
  EXPECT_EQ(parse_signal("PWR"), SIGPWR);
  EXPECT_EQ(parse_signal("USR2"), SIGUSR2);
  EXPECT_EQ(parse_signal("SIGXCPU"), SIGXCPU);
  EXPECT_EQ(parse_signal("RTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(parse_signal("10"), 10);
  for (const char* bad : {"", "SIGKILL", "9", "SIGSEGV", "11", "STOP", "19", "0", "65", "RTMIN+99", "FOO", "SIG"})
    EXPECT_EQ(parse_signal(bad), std::nullopt) << bad;
}

TEST(Options, TracePath) {
  using mgc::internal::valid_trace_path;
  EXPECT_TRUE(valid_trace_path("gc.json"));
  EXPECT_TRUE(valid_trace_path("/tmp/gc trace.json"));
  for (const char* bad : {"", "/tmp/", "dir/"}) EXPECT_FALSE(valid_trace_path(bad)) << '"' << bad << '"';
}

TEST(Options, ParseDebug) {
  using mgc::internal::Options;
  using mgc::internal::parse_debug;
  Options o;
  std::string_view bad;
  EXPECT_TRUE(parse_debug("gctrace=1", &o, &bad));
  EXPECT_TRUE(o.gctrace);
  EXPECT_FALSE(o.gccheckmark);
  EXPECT_TRUE(parse_debug("gctrace=0,gccheckmark=1", &o, &bad));
  EXPECT_FALSE(o.gctrace);
  EXPECT_TRUE(o.gccheckmark);
  EXPECT_TRUE(parse_debug("", &o, &bad));
  EXPECT_FALSE(parse_debug("gctrace", &o, &bad));
  EXPECT_EQ(bad, "gctrace");
  EXPECT_FALSE(parse_debug("gctrace=1,madeup=1", &o, &bad));
  EXPECT_EQ(bad, "madeup=1");
  EXPECT_FALSE(parse_debug("gctrace=2", &o, &bad));
  // The written-page tracker: a name, not a number.
  using mgc::internal::os::DirtyMethod;
  EXPECT_EQ(o.dirty_pages, DirtyMethod::kAuto);
  EXPECT_TRUE(parse_debug("gcstoptheworld=0,dirtypages=mprotect", &o, &bad));
  EXPECT_EQ(o.dirty_pages, DirtyMethod::kMprotect);
  EXPECT_TRUE(parse_debug("dirtypages=userfaultfd", &o, &bad));
  EXPECT_EQ(o.dirty_pages, DirtyMethod::kUserfaultfd);
  EXPECT_TRUE(parse_debug("dirtypages=auto", &o, &bad));
  EXPECT_EQ(o.dirty_pages, DirtyMethod::kAuto);
  EXPECT_FALSE(parse_debug("dirtypages=1", &o, &bad));
  EXPECT_EQ(bad, "dirtypages=1");
  EXPECT_FALSE(parse_debug("dirtypages=softdirty", &o, &bad));
}

// A malformed setting stops the program at start-up, before main runs and
// whether or not it ever allocates; the message names the variable.
TEST_F(OptionsDeathTest, MalformedCollectorSettingsStopTheProgramAtStartUp) {
  struct Case {
    const char* var;
    const char* value;
    const char* message;
  };
  const Case cases[] = {
      {"MALLOCGC_GOGC", "lots", "MALLOCGC_GOGC=\"lots\": expected a percentage"},
      {"MALLOCGC_SCAVENGE", "sometimes", "MALLOCGC_SCAVENGE=\"sometimes\": expected 0 or 1"},
      {"MALLOCGC_MEMORY_LIMIT", "1.5GB", "MALLOCGC_MEMORY_LIMIT=\"1.5GB\": expected bytes"},
      {"MALLOCGC_MARK_THREADS", "0", "MALLOCGC_MARK_THREADS=\"0\": expected a number of threads"},
      {"MALLOCGC_SUSPEND_SIGNAL", "SIGKILL", "MALLOCGC_SUSPEND_SIGNAL=\"SIGKILL\": expected a signal"},
      {"MALLOCGC_TRACE", "", "MALLOCGC_TRACE=\"\": expected a path"},
      {"MALLOCGC_DEBUG", "gctrace=1,verbose=1", "MALLOCGC_DEBUG=\"gctrace=1,verbose=1\": cannot use \"verbose=1\""},
      {"MALLOCGC_DEBUG", "dirtypages=fast",
       "cannot use \"dirtypages=fast\" .*dirtypages=auto\\|userfaultfd\\|mprotect"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.var << "=" << c.value);
    ScopedEnv env(c.var, c.value);
    EXPECT_DEATH(std::_Exit(0), c.message);
  }
}

TEST_F(OptionsDeathTest, CollectorSettingsApply) {
  ScopedEnv gogc("MALLOCGC_GOGC", "250");
  ScopedEnv limit("MALLOCGC_MEMORY_LIMIT", "64MiB");
  ScopedEnv threads("MALLOCGC_MARK_THREADS", "3");
  ScopedEnv sig("MALLOCGC_SUSPEND_SIGNAL", "USR2");
  EXPECT_EXIT(
      {
        mgc::alloc(16);
        const mgc::internal::Options& o = mgc::internal::options();
        if (o.gogc != 250 || o.memory_limit != (std::int64_t{64} << 20) || o.mark_threads != 3 ||
            o.suspend_signal != SIGUSR2)
          fail("options not as set");
        if (mgc::set_gc_percent(100) != 250) fail("GOGC not applied to the pacer");
        if (mgc::set_memory_limit(-1) != (std::int64_t{64} << 20)) fail("memory limit not applied");
        // A cycle stops the world with SIGUSR2 (a registered thread exists).
        std::thread t([] {
          mgc::ThreadScope scope;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        });
        mgc::collect();
        t.join();
        struct sigaction sa;
        sigaction(SIGUSR2, nullptr, &sa);
        if ((sa.sa_flags & SA_SIGINFO) == 0 || (sa.sa_flags & SA_RESTART) == 0) fail("no handler on SIGUSR2");
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST_F(OptionsDeathTest, ScavengeSettingApplies) {
  for (const char* value : {"0", "1"}) {
    SCOPED_TRACE(value);
    ScopedEnv env("MALLOCGC_SCAVENGE", value);
    EXPECT_EXIT(
        {
          mgc::alloc(16);
          if (mgc::internal::options().scavenge != (value[0] == '1')) fail("option not read");
          if (mgc::internal::background_scavenge() != (value[0] == '1')) fail("option not applied");
          std::_Exit(0);
        },
        testing::ExitedWithCode(0), "");
  }
}

TEST_F(OptionsDeathTest, GcTracePrintsALinePerCycle) {
  ScopedEnv env("MALLOCGC_DEBUG", "gctrace=1");
  EXPECT_EXIT(
      {
        mgc::alloc(16);
        mgc::collect();
        mgc::collect();
        std::_Exit(0);
      },
      testing::ExitedWithCode(0),
      "gc 1 @[0-9.]+s: [0-9.]+ -> [0-9.]+ MiB live, [0-9.]+ MiB roots, [0-9.]+ MiB goal; pause [0-9.]+ ms \\(mark "
      "[0-9.]+ ms, [0-9]+ "
      "threads\\)\ngc 2 @");
}

}  // namespace
