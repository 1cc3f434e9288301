// Threads and the collector (src/gc/world): a thread registered by a
// ThreadScope (and never allocating) keeps what its stack holds, also in
// nested scopes; a thread blocked in read() on a pipe or in nanosleep() is
// stopped and scanned where it sits, and what the stop signal does to those
// calls is recorded (read must not see EINTR: the handler is installed
// with SA_RESTART; nanosleep is never restarted by Linux and returns EINTR
// with the time left); objects that a running thread allocated are
// reclaimed once that thread has passed a slow path after a cycle, and an
// exited thread's at once; short-lived allocating threads come and go
// while cycles run; two threads may call collect() at the same time.
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "gc_test_support.hpp"

using gctest::Alloc;
using gctest::collect_clean;
using gctest::hide;
using gctest::Phase;
using gctest::reveal;
using gctest::track_new;
using gctest::Tracked;

namespace {

const auto* const kFirst = testing::AddGlobalTestEnvironment(new gctest::FirstObjectTaken);

// --- a registered thread's stack ------------------------------------------------

[[gnu::noinline]] bool hold_until(std::uintptr_t h, int id, Phase& holding, Phase& release) {
  void* volatile slot = reveal(h);
  holding.set(1);
  release.wait_for(1);
  const bool intact = gctest::tracked_intact(slot, id);
  slot = nullptr;
  return intact;
}

// The thread never allocates: only its ThreadScope makes its stack a root.
// It drops the reference and stays registered; then the object goes.
TEST(GcThreads, ThreadScopeStackKeepsTheObjectOfAThreadThatNeverAllocates) {
  gctest::GcPercentScope off(-1);
  Tracked t = track_new(64);
  Phase holding, release, dropped, finish;
  bool intact = false;
  std::thread th([&] {
    gctest::new_thread_hygiene();
    mgc::ThreadScope scope;
    intact = hold_until(t.hidden, t.id, holding, release);
    gctest::scrub_stack_and_registers();
    dropped.set(1);
    finish.wait_for(1);
  });
  holding.wait_for(1);
  collect_clean();
  EXPECT_KEPT(t);
  collect_clean();
  EXPECT_KEPT(t);
  release.set(1);
  dropped.wait_for(1);
  EXPECT_TRUE(intact) << "the thread found the object changed";
  collect_clean();
  EXPECT_RECLAIMED(t);
  finish.set(1);
  th.join();
}

// Scopes nest: the thread stays registered until the outermost one ends.
TEST(GcThreads, NestedThreadScopes) {
  gctest::GcPercentScope off(-1);
  Tracked t = track_new(64);
  Phase holding, release;
  bool intact = false;
  std::thread th([&] {
    gctest::new_thread_hygiene();
    mgc::ThreadScope outer;
    { mgc::ThreadScope inner; }
    { mgc::ThreadScope inner_again; }
    intact = hold_until(t.hidden, t.id, holding, release);
  });
  holding.wait_for(1);
  collect_clean();
  EXPECT_KEPT(t);
  release.set(1);
  th.join();
  EXPECT_TRUE(intact);
  collect_clean();
  EXPECT_RECLAIMED(t);
}

// --- threads blocked in system calls ----------------------------------------------

struct BlockedCall {
  pid_t tid = 0;
  int eintr = 0;         // calls that failed with EINTR
  long result = 0;       // read: bytes read
  char byte = 0;         // read: what was read
  bool rem_sane = true;  // nanosleep: the time left never exceeded the request
  bool intact = false;   // the held object, checked by the thread
};

[[gnu::noinline]] void hold_while_reading(std::uintptr_t h, int id, int fd, BlockedCall& r, Phase& holding) {
  void* volatile slot = reveal(h);
  r.tid = gctest::this_tid();
  holding.set(1);
  ssize_t n;
  char c = 0;
  for (;;) {
    n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) {
      r.eintr++;
      continue;
    }
    break;
  }
  r.result = n;
  r.byte = c;
  r.intact = gctest::tracked_intact(slot, id);
  slot = nullptr;
}

// The only reference is in the frame of a thread blocked in read() on an
// empty pipe. Two cycles run while it is blocked; then a byte arrives.
TEST(GcThreads, ThreadBlockedInReadOnAPipe) {
  gctest::GcPercentScope off(-1);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Tracked t = track_new(128);
  BlockedCall r;
  Phase holding, dropped, finish;
  std::thread th([&] {
    gctest::new_thread_hygiene();
    mgc::ThreadScope scope;
    hold_while_reading(t.hidden, t.id, fds[0], r, holding);
    gctest::scrub_stack_and_registers();
    dropped.set(1);
    finish.wait_for(1);
  });
  holding.wait_for(1);
  const bool blocked = gctest::wait_until_in_syscall(r.tid, SYS_read);
  if (!blocked) std::fprintf(stderr, "note: could not see the thread blocked in read() through /proc\n");
  RecordProperty("seen_blocked_in_read", blocked ? 1 : 0);
  collect_clean();
  EXPECT_KEPT(t);
  collect_clean();
  EXPECT_KEPT(t);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  dropped.wait_for(1);
  collect_clean();
  EXPECT_RECLAIMED(t);
  finish.set(1);
  th.join();
  ::close(fds[0]);
  ::close(fds[1]);

  std::printf("read() on a pipe across 2 collections: %d EINTR, result %ld\n", r.eintr, r.result);
  RecordProperty("read_eintr", r.eintr);
  EXPECT_EQ(r.result, 1);
  EXPECT_EQ(r.byte, 'x');
  EXPECT_TRUE(r.intact) << "the thread found the object changed";
  EXPECT_EQ(r.eintr, 0) << "the stop signal interrupted read() with EINTR: its handler should be installed with "
                           "SA_RESTART, or programs that never expect EINTR break";
}

std::atomic<bool> g_stop_sleeping{false};

[[gnu::noinline]] void hold_while_sleeping(std::uintptr_t h, int id, BlockedCall& r, Phase& holding) {
  void* volatile slot = reveal(h);
  r.tid = gctest::this_tid();
  holding.set(1);
  while (!g_stop_sleeping.load()) {
    const timespec request{0, 20 * 1000 * 1000};
    timespec ts = request, rem{};
    while (::nanosleep(&ts, &rem) != 0) {
      if (errno != EINTR) break;
      r.eintr++;
      if (rem.tv_sec > request.tv_sec || (rem.tv_sec == request.tv_sec && rem.tv_nsec > request.tv_nsec))
        r.rem_sane = false;
      ts = rem;
    }
  }
  r.intact = gctest::tracked_intact(slot, id);
  slot = nullptr;
}

// The same for a thread in nanosleep(). Linux never restarts nanosleep
// after a handler, SA_RESTART or not: each stop may show as EINTR with the
// time left in rem. Recorded, not asserted.
TEST(GcThreads, ThreadBlockedInNanosleep) {
  gctest::GcPercentScope off(-1);
  g_stop_sleeping.store(false);
  Tracked t = track_new(128);
  BlockedCall r;
  Phase holding, dropped, finish;
  std::thread th([&] {
    gctest::new_thread_hygiene();
    mgc::ThreadScope scope;
    hold_while_sleeping(t.hidden, t.id, r, holding);
    gctest::scrub_stack_and_registers();
    dropped.set(1);
    finish.wait_for(1);
  });
  holding.wait_for(1);
  int seen_blocked = 0;
  for (int i = 0; i < 3; i++) {
    seen_blocked += gctest::wait_until_in_syscall(r.tid, SYS_nanosleep, SYS_clock_nanosleep);
    collect_clean();
    EXPECT_KEPT(t);
  }
  g_stop_sleeping.store(true);
  dropped.wait_for(1);
  collect_clean();
  EXPECT_RECLAIMED(t);
  finish.set(1);
  th.join();

  std::printf("nanosleep() across 3 collections (seen blocked before %d of them): %d EINTR\n", seen_blocked, r.eintr);
  RecordProperty("nanosleep_eintr", r.eintr);
  RecordProperty("seen_blocked_in_nanosleep", seen_blocked);
  EXPECT_TRUE(r.intact);
  EXPECT_TRUE(r.rem_sane) << "nanosleep reported more time left than was asked for";
}

// --- objects of other threads ----------------------------------------------------

[[gnu::noinline]] void allocate_past_slow_paths() {
  for (int i = 0; i < 300; i++) mgc::alloc(64);
  for (int i = 0; i < 100; i++) mgc::alloc(128);
  for (int i = 0; i < 100; i++) mgc::alloc_noscan(256);
}

// A running thread's fresh objects sit in its current chunk, which may
// count as live until the thread's next slow path after a cycle: the
// object must be gone once the thread has allocated past that point and
// two more cycles ran.
TEST(GcThreads, ObjectOfARunningThreadGoesAfterItsNextSlowPath) {
  gctest::GcPercentScope off(-1);
  Tracked t;
  Phase worker, main_phase;
  std::thread th([&] {
    gctest::new_thread_hygiene();
    t = track_new(64);
    gctest::scrub_stack_and_registers();
    worker.set(1);
    main_phase.wait_for(1);
    allocate_past_slow_paths();
    gctest::scrub_stack_and_registers();
    worker.set(2);
    main_phase.wait_for(2);
  });
  worker.wait_for(1);
  collect_clean();
  RecordProperty("reclaimed_in_first_cycle", gctest::weak_alive(t) ? 0 : 1);
  main_phase.set(1);
  worker.wait_for(2);
  collect_clean();
  collect_clean();
  EXPECT_RECLAIMED(t);
  main_phase.set(2);
  th.join();
}

TEST(GcThreads, ObjectsOfAnExitedThreadGoInOneCycle) {
  gctest::GcPercentScope off(-1);
  std::vector<Tracked> ts(50);
  std::thread([&ts] {
    gctest::new_thread_hygiene();
    for (std::size_t i = 0; i < ts.size(); i++)
      ts[i] = track_new(32 + 8 * i, i % 3 == 0 ? Alloc::noscan : Alloc::conservative);
  }).join();
  collect_clean();
  for (const auto& t : ts) EXPECT_RECLAIMED(t);
}

// --- threads that come and go while cycles run --------------------------------------

constexpr int kWorkers = 200;
constexpr int kNodes = 300;

struct Node {
  Node* next;
  std::uint64_t index;
  std::uint64_t check;
};

std::uint64_t node_check(int worker, std::uint64_t i) { return gctest::pattern(worker, i + 1000); }

// Lists the workers publish, one per worker (a root in .bss).
std::atomic<Node*> g_published[kWorkers];

[[gnu::noinline]] bool walk_list(const Node* head, int worker) {
  std::uint64_t i = 0;
  for (const Node* n = head; n != nullptr; n = n->next, i++)
    if (n->index != i || n->check != node_check(worker, i)) return false;
  return i == kNodes;
}

// A worker builds its list (its stack keeps the list while it is built),
// checks it, publishes it and exits.
[[gnu::noinline]] void worker_body(int w) {
  Node* head = nullptr;
  Node* last = nullptr;
  for (int i = 0; i < kNodes; i++) {
    auto* n = static_cast<Node*>(mgc::alloc(sizeof(Node)));
    n->index = static_cast<std::uint64_t>(i);
    n->check = node_check(w, n->index);
    mgc::alloc_noscan(100);  // garbage between the nodes
    if (last == nullptr) {
      head = n;
    } else {
      last->next = n;
    }
    last = n;
  }
  if (!walk_list(head, w)) {
    std::fprintf(stderr, "worker %d: its list changed before it was published\n", w);
    std::abort();
  }
  g_published[w].store(head);
}

TEST(GcThreads, ShortLivedAllocatingThreadsWhileCollecting) {
  gctest::GcPercentScope gogc(100);  // automatic cycles from the workers' slow paths too
  std::atomic<bool> spawner_done{false};
  std::thread spawner([&] {
    gctest::new_thread_hygiene();
    for (int w = 0; w < kWorkers; w += 2) {
      std::thread a(worker_body, w);
      std::thread b(worker_body, w + 1);
      a.join();
      b.join();
    }
    spawner_done.store(true);
  });
  int cycles = 0;
  while (!spawner_done.load()) {
    mgc::collect();
    cycles++;
    std::this_thread::yield();
  }
  spawner.join();
  RecordProperty("collections_while_threads_ran", cycles);
  collect_clean();
  collect_clean();
  int intact = 0;
  for (int w = 0; w < kWorkers; w++) intact += walk_list(g_published[w].load(), w);
  EXPECT_EQ(intact, kWorkers) << "published lists were changed or reclaimed";
  for (auto& p : g_published) p.store(nullptr);
}

// Two threads call collect() at the same time, each holding its own object
// on its stack: no deadlock, every call completes a cycle, both objects live.
// Each holds its object before the first cycle starts and until both are
// done (the other's cycles judge it too).
[[gnu::noinline]] void collect_holding(std::uintptr_t h, int id, int n, bool* intact, std::atomic<int>& holding,
                                       std::atomic<int>& done) {
  void* volatile slot = reveal(h);
  holding.fetch_add(1);
  while (holding.load() < 2) std::this_thread::yield();
  for (int i = 0; i < n; i++) mgc::collect();
  done.fetch_add(1);
  while (done.load() < 2) std::this_thread::yield();
  *intact = gctest::tracked_intact(slot, id);
  slot = nullptr;
}

TEST(GcThreads, ConcurrentCollectCalls) {
  gctest::GcPercentScope off(-1);
  constexpr int kCalls = 50;
  Tracked a = track_new(64);
  Tracked b = track_new(64);
  bool a_intact = false, b_intact = false;
  std::atomic<int> holding{0}, done{0};
  const std::uint64_t before = mgc::stats().num_gc;
  std::thread other([&] {
    gctest::new_thread_hygiene();
    mgc::ThreadScope scope;  // calling collect() does not register a thread
    collect_holding(b.hidden, b.id, kCalls, &b_intact, holding, done);
  });
  collect_holding(a.hidden, a.id, kCalls, &a_intact, holding, done);
  other.join();
  const std::uint64_t cycles = mgc::stats().num_gc - before;
  EXPECT_GE(cycles, static_cast<std::uint64_t>(kCalls));
  EXPECT_LE(cycles, static_cast<std::uint64_t>(2 * kCalls));
  EXPECT_TRUE(a_intact);
  EXPECT_TRUE(b_intact);
  mgc::wait_for_finalizers();
  EXPECT_EQ(gctest::finalized(a), 0);
  EXPECT_EQ(gctest::finalized(b), 0);
  collect_clean();
  EXPECT_RECLAIMED(a);
  EXPECT_RECLAIMED(b);
}

}  // namespace
