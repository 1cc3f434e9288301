// The pacer's heap fill (Boehm's habit, used by the compat library): the
// goal may use the free room of a heap a peak of live data left, but never
// more than the live heap itself ever justified, or garbage that cannot
// reuse the free pages (large objects of ever larger sizes, as GMP's
// temporaries are) grows the heap, which raises the goal, without end.
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

#include "../valgrind/under_valgrind.hpp"
#include "gc/collector.hpp"
#include "gc/pacer.hpp"
#include "gtest/gtest.h"
#include "heap/meta_alloc.hpp"
#include "heap/mheap.hpp"
#include "mallocgc/mallocgc.hpp"
#include "runtime/options.hpp"

namespace {

namespace mi = mgc::internal;

void* volatile g_sink;

// Garbage as GMP makes it for a growing number: each result a little
// larger than the last (never fitting where an earlier one was), with
// small pointer-free temporaries between them; 1.5 GiB in all.
[[gnu::noinline]] void grow_garbage() {
  std::uint64_t total = 0;
  std::size_t size = 8 << 10;
  while (total < (std::uint64_t{3} << 29)) {
    auto* p = static_cast<char*>(mgc::alloc_noscan(size));
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, 64);
    p[size - 1] = 2;
    g_sink = p;
    for (int i = 0; i < 16; i++) g_sink = mgc::alloc_noscan(48 + static_cast<std::size_t>(i) * 16);
    total += size;
    size += 4096 + size / 1024;
  }
  g_sink = nullptr;
}

TEST(GcPacer, HeapFillDoesNotRatchetTheHeapUpWithGarbage) {
  mi::ensure_options();
  mi::pacer_set_heap_fill(750);
  mi::pacer_set_min_goal(std::uint64_t{1} << 18);
  grow_garbage();
  const std::uint64_t committed = mi::mheap().committed_bytes();
  mi::pacer_set_heap_fill(0);
  mi::pacer_set_min_goal(mi::kHeapMinimum);
  // The live set is under 4 MiB (one object of the run at a time), so the
  // goal stays near GOGC's: the heap holds a goal's worth of garbage plus
  // the pages that sizes left too small to reuse.
  std::printf("committed after the garbage: %llu MiB\n", static_cast<unsigned long long>(committed >> 20));
  EXPECT_LT(committed, std::uint64_t{96} << 20) << "the heap grew with the garbage";
}

// --- the GC CPU limiter ------------------------------------------------------

struct Node {
  Node* next;
  std::uint64_t payload[3];
};

Node* volatile g_live_list;

std::uint64_t process_cpu_ns() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec);
}

// A live list of n 32-byte nodes (n x 32 bytes the mark must trace).
[[gnu::noinline]] void build_live_list(std::size_t n) {
  Node* head = nullptr;
  for (std::size_t i = 0; i < n; i++) {
    auto* node = static_cast<Node*>(mgc::alloc(sizeof(Node)));
    ASSERT_NE(node, nullptr);
    node->next = head;
    node->payload[0] = i;
    head = node;
  }
  g_live_list = head;
}

// Garbage until the process has used cpu_ns more CPU, or until stop()
// holds; checked every 4096 allocations.
template <class Stop>
[[gnu::noinline]] void churn_for(std::uint64_t cpu_ns, Stop stop) {
  const std::uint64_t end = process_cpu_ns() + cpu_ns;
  for (;;) {
    for (int i = 0; i < 4096; i++) g_sink = mgc::alloc(sizeof(Node));
    if (process_cpu_ns() >= end || stop()) break;
  }
  g_sink = nullptr;
}

// The collector's share of the CPU while fn ran.
template <class F>
double gc_share_during(F fn) {
  const mgc::Stats a = mgc::stats();
  const std::uint64_t cpu_a = process_cpu_ns();
  fn();
  const mgc::Stats b = mgc::stats();
  const std::uint64_t cpu_b = process_cpu_ns();
  const double gc = b.gc_cpu_fraction * static_cast<double>(cpu_b) - a.gc_cpu_fraction * static_cast<double>(cpu_a);
  return gc / static_cast<double>(cpu_b - cpu_a);
}

// A live heap of 24 MiB under a limit of 8 MiB: the goal's floor (live +
// live/16) puts a full mark after every 1.5 MiB the program allocates.
class GcCpuLimiter : public testing::Test {
 protected:
  void SetUp() override {
    mi::ensure_options();
    build_live_list((std::size_t{24} << 20) / sizeof(Node));
    mgc::collect();
    mgc::set_memory_limit(std::int64_t{8} << 20);
  }
  void TearDown() override {
    mgc::set_memory_limit(mi::kNoMemoryLimit);
    g_live_list = nullptr;
  }
};

TEST_F(GcCpuLimiter, KeepsCollectionNearHalfTheCpuWhenTheLimitIsTooLow) {
  // The burst below must hold several cycles: a full mark of the 24 MiB
  // live list takes about 19 ms of CPU natively, but 1.2 s under memcheck
  // (measured with gctrace), twelve times the burst and six times the
  // bucket's clamp, so every cycle overshoots what the limiter can pay
  // back and 1.5 s of churn holds two cycles at a share of 0.9.
  if (mgctest::under_valgrind())
    GTEST_SKIP() << "under valgrind one cycle takes more CPU time than the limiter's 100 ms burst";
  mi::pacer_set_limiter(true, 100'000'000);  // a burst of 100 ms of CPU
  // Until the bucket has filled once (the burst allowed above half).
  churn_for(20'000'000'000, [] { return mgc::stats().gc_cpu_limited > 0; });
  ASSERT_GT(mgc::stats().gc_cpu_limited, 0u) << "the limiter never engaged";
  const std::uint64_t cycles_before = mgc::stats().num_gc;
  const double share = gc_share_during([] { churn_for(1'500'000'000, [] { return false; }); });
  const mgc::Stats s = mgc::stats();
  std::printf("collector's share with the limiter: %.2f; %llu cycles, %llu put off\n", share,
              static_cast<unsigned long long>(s.num_gc - cycles_before),
              static_cast<unsigned long long>(s.gc_cpu_limited));
  EXPECT_LT(share, 0.62) << "the limiter let collection take most of the CPU";
  EXPECT_GT(s.num_gc - cycles_before, 2u) << "collection must go on, at a slower pace";
}

// The other direction: the same program without the limiter collects back
// to back, so the test above measures the limiter, not the workload.
TEST_F(GcCpuLimiter, WithoutItCollectionTakesMostOfTheCpu) {
  mi::pacer_set_limiter(false, 100'000'000);
  const std::uint64_t limited = mgc::stats().gc_cpu_limited;
  const double share = gc_share_during([] { churn_for(1'500'000'000, [] { return false; }); });
  std::printf("collector's share without the limiter: %.2f\n", share);
  EXPECT_GT(share, 0.75);
  EXPECT_EQ(mgc::stats().gc_cpu_limited, limited);
}

// A limit the live heap fits under leaves the limiter idle, however much
// the program collects.
TEST(GcCpuLimiterIdle, NeverPutsOffCyclesWhenTheLimitIsNotTooLow) {
  mi::ensure_options();
  mi::pacer_set_limiter(true, 1'000'000);
  mgc::set_memory_limit(std::int64_t{1} << 30);
  const std::uint64_t limited = mgc::stats().gc_cpu_limited;
  build_live_list((std::size_t{8} << 20) / sizeof(Node));
  churn_for(500'000'000, [] { return false; });
  for (int i = 0; i < 20; i++) mgc::collect();  // collection at ~100% of the CPU
  churn_for(200'000'000, [] { return false; });
  EXPECT_EQ(mgc::stats().gc_cpu_limited, limited);
  mgc::set_memory_limit(mi::kNoMemoryLimit);
  g_live_list = nullptr;
}

}  // namespace

namespace {

// The mostly-concurrent trigger: 70% of the way to the goal before any
// concurrent mark, then early enough for what the last one saw allocated
// while it ran (scaled by the live heap, plus a tenth), back to back when
// that does not fit; only for heaps of kConcurrentMinLive and more.
TEST(GcPacerConcurrent, TriggerLeavesTheLastMarksRunwayBeforeTheGoal) {
  mgc::collect();  // options applied
  const int old_percent = mi::pacer_set_gc_percent(100);
  mi::pacer_set_concurrent(true);
  constexpr std::uint64_t kMiB = 1 << 20;
  // Live 100 MiB, no roots: goal 200 MiB.
  mi::pacer_end_cycle(100 * kMiB, 0);
  EXPECT_EQ(mi::pacer_goal(), 200 * kMiB);
  EXPECT_EQ(mi::g_heap_trigger.load(), 170 * kMiB) << "no concurrent mark yet: 70% of the way";
  // A concurrent mark of 100 MiB during which 30 MiB were allocated: the
  // next 33 MiB (30 x 1.1) must fit before the goal.
  mi::pacer_end_cycle(100 * kMiB, 0, 30 * kMiB, true);
  EXPECT_NEAR(static_cast<double>(mi::g_heap_trigger.load()), 167.0 * kMiB, 1.0 * kMiB);
  // A stop-the-world cycle then finds 200 MiB live (it leaves the runway
  // as the last concurrent mark measured it): twice as much to mark next
  // time, twice the runway (66 MiB) before the goal of 400 MiB.
  mi::pacer_end_cycle(200 * kMiB, 0);
  EXPECT_NEAR(static_cast<double>(mi::g_heap_trigger.load()), 400.0 * kMiB - 66.0 * kMiB, 1.0 * kMiB);
  // A mark that saw more allocated than the room: back to back.
  mi::pacer_end_cycle(100 * kMiB, 0, 150 * kMiB, true);
  EXPECT_EQ(mi::g_heap_trigger.load(), 100 * kMiB);
  // Little allocated: at most 95% of the way.
  mi::pacer_end_cycle(100 * kMiB, 0, 1, true);
  EXPECT_EQ(mi::g_heap_trigger.load(), 195 * kMiB);
  // Below kConcurrentMinLive: cycles stop the world, at the goal.
  mi::pacer_end_cycle(mi::kConcurrentMinLive / 2, 0, 1, true);
  EXPECT_FALSE(mi::pacer_next_cycle_concurrent());
  EXPECT_EQ(mi::g_heap_trigger.load(), mi::pacer_goal());
  mi::pacer_set_concurrent(false);
  EXPECT_EQ(mi::g_heap_trigger.load(), mi::pacer_goal()) << "stop-the-world mode: the trigger is the goal";
  mi::pacer_set_gc_percent(old_percent);
}

}  // namespace

namespace {

// With a memory limit the goal counts the allocator's metadata, read with
// the world stopped: a thread stopped while it held the metadata lock made
// that read wait for ever (ECL's threads workload hung so, about one run in
// a hundred). The read takes no lock now. In a child, under an alarm.
std::atomic<int> g_holder_state{0};  // 1: take the lock, 2: holding it, 3: let go
std::atomic<bool> g_holder_registered{false};

// The handshakes below wait by yielding, not by spinning on the load alone:
// valgrind runs one thread at a time and by default does not make a
// spinning thread give way, so a pure spin starved the other thread for up
// to 30 s and the child's alarm killed it (5 runs in 6; 170 ms with
// --fair-sched=yes). A yielding thread still runs and can be stopped.
void wait_for_state(int want) {
  while (g_holder_state.load() != want) std::this_thread::yield();
}

void take_lock_before_the_stop(mi::GcEvent e) {
  if (e != mi::GcEvent::kPreStopWorld || g_holder_state.load() != 0) return;
  g_holder_state = 1;
  wait_for_state(2);
}

TEST(GcPacerMemoryLimit, GoalIsComputedWhileAStoppedThreadHoldsTheMetadataLock) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(30);
    mgc::set_memory_limit(std::int64_t{1} << 30);
    std::thread holder([] {
      mgc::ThreadScope registered;
      g_holder_registered = true;
      wait_for_state(1);
      mi::meta_lock();
      g_holder_state = 2;
      wait_for_state(3);  // running (stoppable), the lock held
      mi::meta_unlock();
    });
    // Registered first (registration takes a lock the cycle holds). The
    // holder takes the lock just before the world stops, so the stop finds
    // it holding the lock.
    while (!g_holder_registered) std::this_thread::yield();
    mi::GcHooks hooks;
    hooks.on_event = take_lock_before_the_stop;
    mi::set_gc_hooks(hooks);
    mgc::collect();
    mi::set_gc_hooks(mi::GcHooks{});
    g_holder_state = 3;
    holder.join();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the cycle hung (killed by its alarm) or failed: status " << status;
}

}  // namespace
