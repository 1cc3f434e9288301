// fork() in a program whose other threads allocate and collect: the child
// of every fork allocates, collects and checks its data, and exits cleanly
// within seconds; the parent's threads never notice.
//
// What is promised (README "fork"): the library's pthread_atfork handlers
// take every lock of the allocator and collector before the fork and
// release them in both processes; in the child the thread registry holds
// only the forking thread, the caches of the threads that did not come
// along are taken back (their cached slots and spans are reused, not
// lost), and the background threads (sweeper, mark helpers, finalizer
// thread) start again when needed.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "heap/mheap.hpp"
#include "mallocgc/mallocgc.hpp"
#include "runtime/debug_malloc.hpp"
#include "runtime/thread_cache.hpp"

namespace {

struct Node {
  Node* next;
  std::uint64_t value;
};

// A list of n nodes holding seed, seed+1, ...; checked by sum.
Node* build(std::uint64_t seed, int n) {
  Node* head = nullptr;
  for (int i = 0; i < n; i++) {
    auto* x = static_cast<Node*>(mgc::alloc(sizeof(Node)));
    if (x == nullptr) return nullptr;
    x->next = head;
    x->value = seed + static_cast<std::uint64_t>(i);
    head = x;
  }
  return head;
}

bool check(const Node* head, std::uint64_t seed, int n) {
  std::uint64_t sum = 0;
  int count = 0;
  for (const Node* x = head; x != nullptr; x = x->next) sum += x->value, count++;
  const auto un = static_cast<std::uint64_t>(n);
  return count == n && sum == un * seed + un * (un - 1) / 2;
}

// Threads that allocate (small, tiny, large) and collect until told to stop.
class Mutators {
 public:
  explicit Mutators(int n) {
    for (int t = 0; t < n; t++)
      threads_.emplace_back([this, t] {
        Node* volatile kept = nullptr;
        std::uint64_t round = 0;
        while (!stop_.load(std::memory_order_relaxed)) {
          kept = build(round * 1000 + static_cast<std::uint64_t>(t), 2000);
          void* volatile noscan = mgc::alloc_noscan(8);
          void* volatile large = mgc::alloc(100000);
          (void)noscan, (void)large;
          if (!check(kept, round * 1000 + static_cast<std::uint64_t>(t), 2000)) bad_.store(true);
          if (round % 16 == 0) mgc::collect();
          if (round++ == 0) started_.fetch_add(1);
        }
      });
    // Fork only once every thread has registered and allocated: a thread's
    // registration asks the system malloc for its stack's attributes, and
    // under AddressSanitizer (GCC 12's libasan) a child can inherit ASan's
    // allocator lock held by a thread caught inside that malloc, and hang
    // at its own next malloc. glibc's malloc is fork-safe; ASan's is not.
    while (started_.load() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Mutators() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
  }
  bool bad() const { return bad_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> started_{0};
  std::atomic<bool> bad_{false};
  std::vector<std::thread> threads_;
};

// The child's work: allocate, collect, check, with a finalizer and a
// thread of its own. Exit status 0 when all is well.
int child_work(int k) {
  Node* a = build(static_cast<std::uint64_t>(k), 5000);
  if (a == nullptr) return 2;
  for (int i = 0; i < 3; i++) {
    Node* volatile garbage = build(7, 20000);
    (void)garbage;
    mgc::collect();
  }
  if (!check(a, static_cast<std::uint64_t>(k), 5000)) return 3;
  static std::atomic<int> finalized{0};
  finalized.store(0);
  for (int i = 0; i < 10; i++)
    mgc::set_finalizer(
        mgc::alloc(64), [](void*, void*) { finalized.fetch_add(1); }, nullptr);
  // A thread in the child allocates and collects too.
  bool thread_ok = false;
  std::thread([&thread_ok] {
    Node* b = build(99, 3000);
    mgc::collect();
    thread_ok = check(b, 99, 3000);
  }).join();
  if (!thread_ok) return 4;
  for (int i = 0; i < 4 && finalized.load() < 10; i++) {
    mgc::collect();
    mgc::wait_for_finalizers();
  }
  // Conservative roots may keep a few (a stale word in a register or in
  // this frame); most must go, which proves the finalizer thread runs here.
  if (finalized.load() < 5) {
    std::fprintf(stderr, "child %d: %d of 10 finalizers ran\n", k, finalized.load());
    return 5;
  }
  if (!check(a, static_cast<std::uint64_t>(k), 5000)) return 6;
  mgc::internal::check_heap();  // aborts on an inconsistent list or span
  return 0;
}

// Wait for pid up to `seconds`; its exit status, or -1 if it had to be
// killed (hung), -2 if it died of a signal.
int wait_for(pid_t pid, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFSIGNALED(status)) return -2;
  return WEXITSTATUS(status);
}

int fork_count() {
  const char* s = std::getenv("MALLOCGC_FORK_TEST_FORKS");
  return s != nullptr ? std::atoi(s) : 100;
}

TEST(Fork, ChildrenAllocateCollectAndExitWhileTheParentsThreadsAllocate) {
  Node* mine = build(5, 1000);
  Mutators m(3);
  const int n = fork_count();
  int ok = 0;
  for (int k = 0; k < n; k++) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(child_work(k));
    const int status = wait_for(pid, 20);
    EXPECT_EQ(status, 0) << "child " << k
                         << (status == -1   ? " hung"
                             : status == -2 ? " died of a signal"
                                            : " exited with that status (see child_work)");
    if (status == 0) ok++;
    if (HasFailure()) break;
  }
  EXPECT_EQ(ok, n);
  EXPECT_FALSE(m.bad());
  EXPECT_TRUE(check(mine, 5, 1000));
}

// Small spans owned by a cache other than the calling thread's.
std::size_t foreign_owned_spans() {
  using namespace mgc::internal;
  const MCache* mine = this_cache_if_any();
  std::size_t n = 0;
  mheap().lock();
  mheap().for_each_span_locked([&](MSpan* s) {
    const MCache* owner = s->owner.load(std::memory_order_relaxed);
    if (!s->is_large() && owner != nullptr && owner != mine) n++;
  });
  mheap().unlock();
  return n;
}

// The caches of the threads that did not come along are taken back: a
// child whose parent had many threads holding cached spans does not
// strand their free slots (its heap does not grow by their spans).
TEST(Fork, OtherThreadsCachesAreTakenBackInTheChild) {
  mgc::ThreadScope registered;
  Mutators m(3);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Only this thread's cache (if it has one) is left in the registry,
    // and no span is owned by another: the others went back to the
    // central lists, rebuilt from their bits.
    const std::size_t caches = mgc::internal::for_each_cache([](const mgc::internal::MCache&) {});
    if (caches > 1) _exit(10 + static_cast<int>(caches));
    if (foreign_owned_spans() != 0) _exit(2);
    mgc::internal::check_heap();
    // The slots their chunks reserved and never handed out are garbage:
    // two cycles (the first may keep spans that waited for a sweep) give
    // them back, and allocation reuses them.
    for (int i = 0; i < 3; i++) mgc::collect();
    if (foreign_owned_spans() != 0) _exit(3);
    Node* a = build(11, 50000);
    mgc::collect();
    if (!check(a, 11, 50000)) _exit(4);
    mgc::internal::check_heap();
    _exit(0);
  }
  EXPECT_EQ(wait_for(pid, 20), 0);
}

// A child that execs: the new program starts clean (nothing of ours is
// left to run in between).
TEST(Fork, ChildThatExecs) {
  mgc::ThreadScope registered;  // the child's allocation needs no registration (see Mutators)
  Mutators m(3);
  for (int k = 0; k < 20; k++) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      void* volatile p = mgc::alloc(32);
      (void)p;
      execl("/bin/sh", "sh", "-c", "exit 7", static_cast<char*>(nullptr));
      _exit(127);
    }
    EXPECT_EQ(wait_for(pid, 20), 7);
  }
}

}  // namespace
