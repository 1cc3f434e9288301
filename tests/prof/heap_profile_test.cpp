// The sampled heap profile, end to end: two functions allocate in a 1:3
// byte ratio in mixed sizes and kinds; Go's pprof reads the profile we
// write and must find each function's bytes within 10% of what it
// allocated, and their in-use bytes falling once the objects die and a
// collection runs. Also: rate 1 samples every allocation, and malformed
// MALLOCGC_MEMPROFILERATE values are refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mallocgc/mallocgc.hpp"
#include "prof/sample.hpp"
#include "runtime/options.hpp"

#if defined(__clang__)
#define MGC_TEST_NOINLINE __attribute__((noinline))
#else
#define MGC_TEST_NOINLINE __attribute__((noipa))  // no clone under another name either
#endif

namespace {

constexpr std::size_t kSizes[] = {24, 48, 100, 256, 700, 3000, 9000, 40000};
constexpr std::size_t kRoundsOne = 300;  // ~16 MiB
constexpr std::size_t kRoundsThree = 3 * kRoundsOne;
constexpr std::size_t kSlots = (kRoundsOne + kRoundsThree) * std::size(kSizes);

void** g_keep = nullptr;  // system memory, a root range while the test runs
std::size_t g_next = 0;

std::size_t keep(void* p) {
  mgc::ObjectInfo info;
  if (!mgc::find_object(p, &info)) std::abort();
  g_keep[g_next++] = p;
  return info.size;
}

}  // namespace

// The two allocating functions: extern "C" and exported (the test is linked
// with -rdynamic) so that dladdr names them in the profile.
extern "C" MGC_TEST_NOINLINE std::size_t mgc_test_alloc_one_part(std::size_t rounds) {
  std::size_t bytes = 0;
  for (std::size_t r = 0; r < rounds; r++)
    for (std::size_t k = 0; k < std::size(kSizes); k++)
      bytes += keep(k % 2 ? mgc::alloc(kSizes[k]) : mgc::alloc_noscan(kSizes[k]));
  return bytes;
}

extern "C" MGC_TEST_NOINLINE std::size_t mgc_test_alloc_three_parts(std::size_t rounds) {
  std::size_t bytes = 0;
  for (std::size_t r = 0; r < rounds; r++)
    for (std::size_t k = 0; k < std::size(kSizes); k++)
      bytes += keep(k % 2 ? mgc::alloc_noscan(kSizes[k]) : mgc::alloc(kSizes[k]));
  return bytes;
}

namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mgc_prof_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// This executable's path. Read through the link, not run as /proc/PID/exe:
// under valgrind that file is valgrind's tool, which refuses to start
// directly, while readlink answers with the program's own path.
std::string own_executable() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "/proc/" + std::to_string(getpid()) + "/exe";
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// pprof -top's cumulative value for function fn, in bytes (-1: not
// listed). Cumulative, not flat: where pprof symbolizes from the debug
// information, the inlined fast path's frames lie below fn and take the
// flat value.
double cum_bytes(const std::string& top, const char* fn) {
  std::size_t pos = 0;
  while (pos < top.size()) {
    std::size_t end = top.find('\n', pos);
    if (end == std::string::npos) end = top.size();
    const std::string line = top.substr(pos, end - pos);
    pos = end + 1;
    const std::size_t at = line.rfind(fn);
    if (at == std::string::npos || at + std::strlen(fn) != line.size()) continue;
    // flat flat% sum% cum cum% name
    char value[64] = {};
    if (std::sscanf(line.c_str(), "%*s %*s %*s %63s", value) != 1) return -1;
    char* unit = nullptr;
    double v = std::strtod(value, &unit);
    const std::string u = unit;
    if (u == "kB") v *= 1024;
    if (u == "MB") v *= 1024.0 * 1024;
    if (u == "GB") v *= 1024.0 * 1024 * 1024;
    return v;
  }
  return -1;
}

std::string pprof_top(const TempDir& dir, const std::string& profile, const char* index) {
  const std::string& d = dir.path();
  return run("cd '" + d + "' && HOME='" + d + "' GOCACHE='" + d + "/gocache' GOPATH='" + d + "/gopath' PPROF_TMPDIR='" +
             d + "' GOFLAGS= GOTOOLCHAIN=local '" + MGC_TEST_GO +
             "' tool pprof -top -nodecount=1000 -unit=B -sample_index=" + index + " '" + profile + "' 2>&1");
}

TEST(HeapProfile, PprofSeesTheAllocatingFunctions) {
  if (std::string(MGC_TEST_GO).empty() || access(MGC_TEST_GO, X_OK) != 0)
    GTEST_SKIP() << "Go is not installed (looked for " << MGC_TEST_GO << "): pprof cannot read the profile";
  mgc::set_memprofile_rate(8 * 1024);  // ~8000 samples: about 1% noise
  g_keep = static_cast<void**>(std::calloc(kSlots, sizeof(void*)));
  ASSERT_NE(g_keep, nullptr);
  mgc::add_roots(g_keep, g_keep + kSlots);
  const double one = static_cast<double>(mgc_test_alloc_one_part(kRoundsOne));
  const double three = static_cast<double>(mgc_test_alloc_three_parts(kRoundsThree));

  TempDir dir;
  const std::string live = dir.path() + "/live.pb.gz";
  ASSERT_TRUE(mgc::write_heap_profile(live.c_str())) << std::strerror(errno);
  const std::string alloc_top = pprof_top(dir, live, "alloc_space");
  const std::string inuse_top = pprof_top(dir, live, "inuse_space");
  SCOPED_TRACE(alloc_top);
  for (const std::string* top : {&alloc_top, &inuse_top}) {
    const double p1 = cum_bytes(*top, "mgc_test_alloc_one_part");
    const double p3 = cum_bytes(*top, "mgc_test_alloc_three_parts");
    EXPECT_NEAR(p1 / one, 1.0, 0.10) << *top;
    EXPECT_NEAR(p3 / three, 1.0, 0.10) << *top;
  }

  // The objects die; a collection finds them dead.
  std::memset(g_keep, 0, kSlots * sizeof(void*));
  mgc::collect();
  const std::string dead = dir.path() + "/dead.pb.gz";
  ASSERT_TRUE(mgc::write_heap_profile(dead.c_str()));
  const std::string after = pprof_top(dir, dead, "inuse_space");
  const std::string alloc_after = pprof_top(dir, dead, "alloc_space");
  // A few may stay reachable from stale stack slots (conservative roots).
  const double in1 = cum_bytes(after, "mgc_test_alloc_one_part");
  const double in3 = cum_bytes(after, "mgc_test_alloc_three_parts");
  EXPECT_LT(in1, 0.1 * one) << after;
  EXPECT_LT(in3, 0.1 * three) << after;
  // What was allocated stays in the allocation figures.
  EXPECT_NEAR(cum_bytes(alloc_after, "mgc_test_alloc_three_parts") / three, 1.0, 0.10) << alloc_after;
  mgc::remove_roots(g_keep, g_keep + kSlots);
  std::free(g_keep);
}

TEST(HeapProfile, RateOneSamplesEveryAllocation) {
  mgc::set_memprofile_rate(1);
  constexpr int kN = 1000;
  constexpr std::size_t kSize = 208;  // a size class of its own in no other test here
  const mgc::Stats before = mgc::stats();
  void* volatile sink = nullptr;
  for (int i = 0; i < kN; i++) sink = mgc::alloc(kSize);
  (void)sink;
  const mgc::Stats after = mgc::stats();
  std::size_t n = 0;
  mgc::internal::ProfileBucket* b = mgc::internal::profile_snapshot(&n);
  std::uint64_t sampled = 0;
  for (std::size_t i = 0; i < n; i++)
    if (b[i].size == kSize) sampled += b[i].allocs;
  std::free(b);
  EXPECT_EQ(sampled, static_cast<std::uint64_t>(kN));
  // Chunks of one slot: the cache's accounting still counts each one once.
  EXPECT_EQ(after.mallocs - before.mallocs, static_cast<std::uint64_t>(kN));
  mgc::set_memprofile_rate(mgc::internal::kDefaultMemProfileRate);
}

TEST(HeapProfile, ExplicitFreeDropsTheSample) {
  mgc::set_memprofile_rate(1);
  constexpr std::size_t kSize = 512;  // a size class
  void* p = mgc::alloc(kSize);
  void* q = mgc::alloc(kSize * 100);  // large
  mgc::free(p);
  mgc::free(q);
  std::size_t n = 0;
  mgc::internal::ProfileBucket* b = mgc::internal::profile_snapshot(&n);
  std::uint64_t allocs = 0, frees = 0;
  for (std::size_t i = 0; i < n; i++)
    if (b[i].size == kSize || b[i].size >= kSize * 100) {
      allocs += b[i].allocs;
      frees += b[i].frees;
    }
  std::free(b);
  EXPECT_EQ(allocs, 2u);
  EXPECT_EQ(frees, 2u);
  mgc::set_memprofile_rate(mgc::internal::kDefaultMemProfileRate);
}

TEST(HeapProfile, RateParses) {
  using mgc::internal::parse_memprofile_rate;
  EXPECT_EQ(parse_memprofile_rate("0"), 0);
  EXPECT_EQ(parse_memprofile_rate("off"), 0);
  EXPECT_EQ(parse_memprofile_rate("1"), 1);
  EXPECT_EQ(parse_memprofile_rate("524288"), 524288);
  EXPECT_EQ(parse_memprofile_rate("512KiB"), 524288);
  EXPECT_EQ(parse_memprofile_rate("1MiB"), 1048576);
  EXPECT_FALSE(parse_memprofile_rate(""));
  EXPECT_FALSE(parse_memprofile_rate("-1"));
  EXPECT_FALSE(parse_memprofile_rate("12k"));
  EXPECT_FALSE(parse_memprofile_rate("2TiB"));
  EXPECT_FALSE(parse_memprofile_rate("1.5"));
}

TEST(HeapProfile, MalformedRateIsAnError) {
  const std::string out = run("MALLOCGC_MEMPROFILERATE=lots '" + own_executable() +
                              "' --gtest_filter=HeapProfile.RateParses 2>&1; echo \"exit=$?\"");
  EXPECT_NE(out.find("MALLOCGC_MEMPROFILERATE=\"lots\""), std::string::npos) << out;
  EXPECT_EQ(out.find("exit=0"), std::string::npos) << out;
}

TEST(HeapProfile, HeapProfileWrittenAtExit) {
  TempDir dir;
  const std::string path = dir.path() + "/exit.pb.gz";
  const std::string out = run("MALLOCGC_MEMPROFILERATE=1 MALLOCGC_HEAPPROFILE='" + path + "' '" + own_executable() +
                              "' --gtest_filter=HeapProfile.RateOneSamplesEveryAllocation 2>&1");
  FILE* f = std::fopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr) << out;
  unsigned char magic[2] = {};
  EXPECT_EQ(std::fread(magic, 1, 2, f), 2u);
  std::fclose(f);
  EXPECT_EQ(magic[0], 0x1f);
  EXPECT_EQ(magic[1], 0x8b);
}

}  // namespace
