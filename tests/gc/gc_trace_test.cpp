// The collector's timeline (src/os/trace.hpp): a workload with cycles,
// background and allocating-thread sweeps and the scavenger, written with
// mgc::write_trace and by MALLOCGC_TRACE at exit, then validated by
// tests/gc/check_trace.py: JSON in Chrome's trace-event format, cycles, stops
// of the world inside them, mark workers on several threads inside the
// stops, sweep and scavenge events, proper nesting on every thread. Also:
// nothing is recorded while tracing is off, and the ring keeps a bounded
// number of events however many are recorded.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gc/collector.hpp"
#include "gtest/gtest.h"
#include "mallocgc/mallocgc.h"
#include "mallocgc/mallocgc.hpp"
#include "os/trace.hpp"

namespace {

namespace mi = mgc::internal;

// Run the validator on path with the given options; its exit status.
int check_trace(const std::string& path, const std::string& options) {
  const std::string cmd = std::string(MGC_PYTHON) + " " + MGC_CHECK_TRACE + " " + options + " '" + path + "'";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string temp_path(const char* name) { return testing::TempDir() + name + "." + std::to_string(getpid()); }

// A live structure big enough that marking it fills mark buffers (and so
// brings in the helper workers): a conservatively scanned array of
// pointers to small objects, kept in a global.
void** g_live = nullptr;
constexpr std::size_t kLive = 64 * 1024;

[[gnu::noinline]] void build_live() {
  g_live = static_cast<void**>(mgc::alloc(kLive * sizeof(void*)));
  ASSERT_NE(g_live, nullptr);
  for (std::size_t i = 0; i < kLive; i++) g_live[i] = mgc::alloc(32);
}

// Garbage: enough for automatic cycles (the pacer's 4 MiB minimum goal)
// whose spans the background sweeper and allocating threads sweep.
[[gnu::noinline]] void make_garbage(std::size_t mib) {
  for (std::size_t i = 0; i < mib * 1024 * 1024 / 64; i++) {
    void* p = mgc::alloc(64);
    if (p == nullptr) std::abort();
  }
}

// The workload every test here records: forced and automatic cycles with
// several mark workers, sweeping, and release_memory's scavenge.
[[gnu::noinline]] void workload() {
  build_live();
  for (int i = 0; i < 3; i++) {
    make_garbage(8);
    mgc::collect();
  }
  const std::uint64_t before = mgc::stats().num_gc;
  while (mgc::stats().num_gc < before + 3) make_garbage(4);
  make_garbage(4);  // allocating threads sweep what the last cycle left
  mgc::release_memory();
}

void use_mark_threads(int n) {
  mgc::collect();  // options are read: the setting below sticks
  mi::GcConfig c = mi::gc_config();
  c.mark_threads = n;
  mi::set_gc_config(c);
}

TEST(GcTrace, WriteTraceRecordsCyclesStopsWorkersAndSweeps) {
  use_mark_threads(3);
  ASSERT_TRUE(mgc::start_trace());
  workload();
  const std::string path = temp_path("gc_trace_write.json");
  ASSERT_TRUE(mgc::write_trace(path.c_str())) << std::strerror(errno);
  EXPECT_EQ(check_trace(path, "--min-cycles 6 --min-worker-tids 2 --require-sweep --require-scavenge"), 0);
  // Recording goes on after a write, and a second write holds the first's
  // events and the new ones.
  mgc::collect();
  ASSERT_TRUE(mgc::write_trace(path.c_str()));
  EXPECT_EQ(check_trace(path, "--min-cycles 7 --min-worker-tids 2"), 0);
  mgc::stop_trace();
  std::remove(path.c_str());
}

// A binary tree, kept in a global: marking it never fills a buffer (the
// depth-first mark keeps about one entry per level), so helpers are
// brought in by the collecting thread's offer of half its work.
struct TreeNode {
  TreeNode* left;
  TreeNode* right;
};
TreeNode* g_tree = nullptr;

[[gnu::noinline]] TreeNode* make_tree(int depth) {
  auto* n = static_cast<TreeNode*>(mgc::alloc(sizeof(TreeNode)));
  if (n == nullptr) std::abort();
  if (depth > 0) {
    n->left = make_tree(depth - 1);
    n->right = make_tree(depth - 1);
  }
  return n;
}

std::size_t count_tree(const TreeNode* n) { return n == nullptr ? 0 : 1 + count_tree(n->left) + count_tree(n->right); }

TEST(GcTrace, ADeepNarrowGraphIsMarkedByHelpersToo) {
  use_mark_threads(2);
  g_tree = make_tree(17);
  mgc::collect();
  ASSERT_TRUE(mgc::start_trace());
  mgc::collect();
  const std::string path = temp_path("gc_trace_tree.json");
  ASSERT_TRUE(mgc::write_trace(path.c_str())) << std::strerror(errno);
  mgc::stop_trace();
  EXPECT_EQ(check_trace(path, "--min-cycles 1 --min-worker-tids 2"), 0);
  // Shared between two workers, the tree is still whole.
  EXPECT_EQ(count_tree(g_tree), (std::size_t{1} << 18) - 1);
  g_tree = nullptr;
  std::remove(path.c_str());
}

TEST(GcTrace, NothingIsRecordedWhileOff) {
  // The ring exists (a start maps it), recording is off.
  ASSERT_TRUE(mgc::start_trace());
  mgc::stop_trace();
  make_garbage(1);
  const std::uint64_t before = mi::trace_recorded();
  for (int i = 0; i < 3; i++) {
    make_garbage(8);
    mgc::collect();
  }
  mgc::release_memory();
  EXPECT_EQ(mi::trace_recorded(), before);
}

TEST(GcTrace, UnwritableFileIsAnError) {
  ASSERT_TRUE(mgc::start_trace());
  errno = 0;
  EXPECT_FALSE(mgc::write_trace("/nonexistent-directory/trace.json"));
  EXPECT_EQ(errno, ENOENT);
  mgc::stop_trace();
}

TEST(GcTrace, TheRingIsBoundedAndKeepsTheNewestEvents) {
  mgc::collect();  // quiet: no sweep left for the background sweeper
  mi::trace_reset_for_testing(1024);
  ASSERT_TRUE(mgc::start_trace());
  for (int i = 0; i < 5000; i++) mi::trace_complete(mi::TraceEv::kSweepAlloc, mi::trace_now(), 1);
  EXPECT_GE(mi::trace_recorded(), 5000u);
  EXPECT_GE(mi::trace_dropped(), 5000u - 1024u);
  const std::string path = temp_path("gc_trace_ring.json");
  ASSERT_TRUE(mgc::write_trace(path.c_str()));
  // 1024 events at most, plus the metadata: the process and thread names.
  EXPECT_EQ(check_trace(path, "--require-dropped --max-events 1100"), 0);
  mgc::stop_trace();
  mi::trace_reset_for_testing(mi::kTraceCapacity);
  std::remove(path.c_str());
}

TEST(GcTrace, CApi) {
  mgc_collect();
  ASSERT_EQ(mgc_start_trace(), 1);
  make_garbage(8);
  mgc_collect();
  const std::string path = temp_path("gc_trace_capi.json");
  EXPECT_EQ(mgc_write_trace(path.c_str()), 1);
  EXPECT_EQ(check_trace(path, "--min-cycles 1"), 0);
  EXPECT_EQ(mgc_write_trace("/nonexistent-directory/trace.json"), 0);
  mgc_stop_trace();
  std::remove(path.c_str());
}

class GcTraceDeathTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// MALLOCGC_TRACE: the child records from its first allocation and writes
// the file when it exits.
TEST_F(GcTraceDeathTest, EnvironmentVariableWritesTheTraceAtExit) {
  mgc::alloc(16);  // this process has read its options: the variable is the child's
  const std::string path = temp_path("gc_trace_env.json");
  std::remove(path.c_str());
  setenv("MALLOCGC_TRACE", path.c_str(), 1);
  setenv("MALLOCGC_MARK_THREADS", "3", 1);
  EXPECT_EXIT(
      {
        workload();
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
  unsetenv("MALLOCGC_TRACE");
  unsetenv("MALLOCGC_MARK_THREADS");
  EXPECT_EQ(check_trace(path, "--min-cycles 6 --min-worker-tids 2 --require-sweep --require-scavenge"), 0);
  std::remove(path.c_str());
}

TEST_F(GcTraceDeathTest, MalformedOrUnwritablePathStopsTheProgram) {
  setenv("MALLOCGC_TRACE", "", 1);
  EXPECT_DEATH(std::_Exit(0), "MALLOCGC_TRACE=\"\": expected a path");
  setenv("MALLOCGC_TRACE", "/tmp/", 1);
  EXPECT_DEATH(std::_Exit(0), "MALLOCGC_TRACE=\"/tmp/\": expected a path");
  setenv("MALLOCGC_TRACE", "/nonexistent-directory/trace.json", 1);
  EXPECT_DEATH(mgc::alloc(16), "MALLOCGC_TRACE=\"/nonexistent-directory/trace.json\": cannot open the file");
  unsetenv("MALLOCGC_TRACE");
}

}  // namespace
