// Memory exhaustion by injection: the OS layer's test hook makes chosen
// requests for memory (reserve, commit, metadata maps, mark buffers, a
// thread's cache and record) fail
// as if the OS had refused. For every request a workload makes, a child
// process (fork) runs the workload with that one request refused, and then
// with it and every later one refused: allocations must return nullptr
// (never abort), collections must keep working, the heap must stay
// consistent (check_heap), and once the OS gives memory again and the
// program has dropped what it held, allocation must succeed again.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "heap/meta_alloc.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/mem.hpp"
#include "runtime/debug_malloc.hpp"

namespace {

namespace os = mgc::internal::os;

struct Node {
  Node* next;
  std::uint64_t value;
  char pad[48];
};

// Held in a root the collector scans (static storage).
Node* g_list;
void* g_blobs[64];

// The workload: lists, noscan blobs, large objects, typed pairs, frees and
// collections. Returns how many allocations were refused; fails (exit 3)
// if something that was allocated is found damaged.
int workload() {
  int refused = 0;
  for (int round = 0; round < 6; round++) {
    // The list grows from round to round (up to 8 MiB), so that the heap
    // keeps asking the OS for more.
    g_list = nullptr;
    for (int i = 0; i < 20000 * (round + 1); i++) {
      auto* n = static_cast<Node*>(mgc::alloc(sizeof(Node)));
      if (n == nullptr) {
        refused++;
        break;
      }
      n->next = g_list;
      n->value = static_cast<std::uint64_t>(i);
      g_list = n;
    }
    for (int i = 0; i < 64; i++) {
      const std::size_t size = i % 8 == 0 ? 300000 : static_cast<std::size_t>(40 + i * 200);
      g_blobs[i] = mgc::alloc_noscan(size);
      if (g_blobs[i] == nullptr) {
        refused++;
      } else {
        std::memset(g_blobs[i], i, size < 64 ? size : 64);
      }
    }
    try {
      // A type's record is metadata too: mgc::Type throws std::bad_alloc
      // when it cannot have one (and is built again at the next call).
      static const mgc::Type pair(16, {0, 8});
      if (mgc::alloc_typed(pair) == nullptr) refused++;
    } catch (const std::bad_alloc&) {
      refused++;
    }
    // A thread's first allocation needs its cache and its thread record
    // (metadata): refused, the allocation returns nullptr.
    std::thread([&refused] {
      auto* p = static_cast<std::uint64_t*>(mgc::alloc(64));
      if (p == nullptr) {
        refused++;
        return;
      }
      p[7] = 7;
      mgc::collect();
      if (p[7] != 7) std::_Exit(3);
    }).join();
    for (int i = 0; i < 64; i += 3)
      if (g_blobs[i] != nullptr) mgc::free(g_blobs[i]), g_blobs[i] = nullptr;
    mgc::collect();
    std::uint64_t n = 0;
    for (Node* x = g_list; x != nullptr; x = x->next) n++;
    std::uint64_t expect = 0;
    for (Node* x = g_list; x != nullptr; x = x->next) {
      if (x->value != n - 1 - expect) std::_Exit(3);
      expect++;
    }
    for (int i = 0; i < 64; i++)
      if (g_blobs[i] != nullptr && static_cast<unsigned char*>(g_blobs[i])[0] != static_cast<unsigned char>(i))
        std::_Exit(3);
  }
  return refused;
}

// In a child: refuse requests [first, first+count) counted from now, run
// the workload, give memory back, drop everything, and allocate again.
[[noreturn]] void child(std::uint64_t nth, std::uint64_t count) {
  os::inject_failures(os::memory_requests() + nth, count);
  workload();
  os::inject_failures(0, 0);
  g_list = nullptr;
  for (void*& b : g_blobs) b = nullptr;
  mgc::collect();
  mgc::internal::check_heap();
  if (workload() != 0) std::_Exit(4);  // memory is back: nothing refused
  mgc::internal::check_heap();
  std::_Exit(0);
}

// Run fn (which ends the process) in a child: its exit code, 128 + the
// signal that killed it, or -1 when fork failed.
template <class F>
int exit_code_of(F fn) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) fn();
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int run_child(std::uint64_t nth, std::uint64_t count) {
  return exit_code_of([=] { child(nth, count); });
}

// How many requests the workload makes from a fresh child's state.
std::uint64_t requests_made() {
  int fds[2];
  if (pipe(fds) != 0) return 0;
  const pid_t pid = fork();
  if (pid == 0) {
    const std::uint64_t before = os::memory_requests();
    workload();
    const std::uint64_t n = os::memory_requests() - before;
    if (write(fds[1], &n, sizeof n) != sizeof n) std::_Exit(1);
    std::_Exit(0);
  }
  close(fds[1]);
  std::uint64_t n = 0;
  if (read(fds[0], &n, sizeof n) != sizeof n) n = 0;
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  return n;
}

TEST(OomInjection, EveryRequestRefusedOnceOrForGood) {
  // Nothing here has touched the heap yet: each child starts it, so the
  // first requests (the heap's address space, its maps, the first cycle's
  // mark buffers) are among those refused.
  const std::uint64_t total = requests_made();
  ASSERT_GT(total, 0u) << "the workload made no request for memory";
  std::printf("the workload makes %llu requests for memory\n", static_cast<unsigned long long>(total));
  for (std::uint64_t nth = 1; nth <= total + 2; nth++) {
    EXPECT_EQ(run_child(nth, 1), 0) << "request " << nth << " refused once";
    EXPECT_EQ(run_child(nth, ~std::uint64_t{0} / 2), 0) << "requests from " << nth << " on refused";
    if (HasFailure()) break;
  }
}

// Threads whose first allocation comes while the OS refuses everything:
// their caches and thread records are metadata, and once the maps already
// made are used up an allocation returns nullptr instead of aborting (a
// few hundred live threads outgrow any one map). Memory back, new threads
// allocate again.
[[noreturn]] void threads_while_refused() {
  void* volatile warm = mgc::alloc(64);  // the heap and this thread exist
  (void)warm;
  os::inject_failures(os::memory_requests() + 1, ~std::uint64_t{0} / 2);
  constexpr int kThreads = 300;
  std::atomic<int> refused{0}, ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++)
    threads.emplace_back([&] {
      void* volatile p = mgc::alloc(32);  // held (registered) until all have tried
      if (p == nullptr) refused++;
      ready++;
      while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  while (ready.load() < kThreads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  go = true;
  for (auto& t : threads) t.join();
  if (refused.load() == 0) std::_Exit(5);  // nothing was refused: the test proves nothing
  os::inject_failures(0, 0);
  mgc::collect();
  bool ok = false;
  std::thread([&ok] { ok = mgc::alloc(32) != nullptr; }).join();
  std::_Exit(ok ? 0 : 6);
}

TEST(OomInjection, ThreadsFirstAllocationsWhileTheOsRefuses) {
  EXPECT_EQ(exit_code_of(threads_while_refused), 0)
      << "5: no allocation was refused; 6: none succeeded afterwards; 128 + N: killed by signal N";
}

// Explicit registration while the OS refuses: ThreadScope throws
// std::bad_alloc with nothing registered, and registers once memory is
// back. Threads that never allocated, so each needs a fresh record.
[[noreturn]] void scopes_while_refused() {
  void* volatile warm = mgc::alloc(64);
  (void)warm;
  os::inject_failures(os::memory_requests() + 1, ~std::uint64_t{0} / 2);
  // A thread record is small: the metadata maps already made would hold
  // them all. Use those up first, every block size.
  for (std::size_t size = mgc::internal::kMaxMetaBlock; size >= 16; size /= 2)
    while (mgc::internal::meta_alloc(size) != nullptr) {
    }
  constexpr int kThreads = 50;
  std::atomic<int> refused{0}, ready{0}, wrong{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++)
    threads.emplace_back([&] {
      try {
        mgc::ThreadScope scope;  // held until all have tried
        ready++;
        while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      } catch (const std::bad_alloc&) {
        refused++;
        ready++;
        while (!go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      } catch (...) {
        wrong++;
        ready++;
      }
    });
  while (ready.load() < kThreads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  go = true;
  for (auto& t : threads) t.join();
  if (wrong.load() != 0) std::_Exit(7);
  if (refused.load() != kThreads) std::_Exit(5);
  os::inject_failures(0, 0);
  mgc::collect();  // a cycle stops every registered thread: none is stale
  bool ok = false;
  std::thread([&ok] {
    try {
      mgc::ThreadScope scope;
      ok = true;
    } catch (...) {
    }
  }).join();
  std::_Exit(ok ? 0 : 6);
}

TEST(OomInjection, ThreadScopeThrowsWhileTheOsRefusesAndRegistersAfter) {
  EXPECT_EQ(exit_code_of(scopes_while_refused), 0) << "5: a registration was not refused; 6: none succeeded "
                                                      "afterwards; 7: another exception; 128 + N: killed by signal N";
}

// The finalizer thread without memory for its thread record: it gives up
// instead of aborting, the queued finalizers are not lost (wait_for_finalizers
// runs them in its caller), and once memory is back the thread starts again
// and runs the next ones.
std::atomic<int> g_finalized{0};
std::atomic<pid_t> g_finalized_on{0};
void count_finalized(void*, void*) {
  g_finalized++;
  g_finalized_on = gettid();
}

constexpr int kFinalized = 100;

// Objects made while memory is there (their spans need metadata).
[[gnu::noinline]] void make_objects(void** out) {
  for (int i = 0; i < kFinalized; i++) out[i] = mgc::alloc(64);
}

// Give each a finalizer and forget it.
[[gnu::noinline]] void finalize_and_drop(void* volatile* objs) {
  for (int i = 0; i < kFinalized; i++) {
    mgc::set_finalizer(objs[i], count_finalized, nullptr);
    objs[i] = nullptr;
  }
}

[[noreturn]] void finalizers_while_refused() {
  void* volatile objs[kFinalized];
  make_objects(const_cast<void**>(objs));
  for (void* p : objs)
    if (p == nullptr) std::_Exit(8);
  os::inject_failures(os::memory_requests() + 1, ~std::uint64_t{0} / 2);
  for (std::size_t size = mgc::internal::kMaxMetaBlock; size >= 16; size /= 2)
    while (mgc::internal::meta_alloc(size) != nullptr) {
    }
  // The first finalizer starts the thread, which finds no memory for its
  // record.
  finalize_and_drop(objs);
  mgc::collect();
  mgc::wait_for_finalizers();
  const int first = g_finalized.load();
  if (first < kFinalized * 9 / 10) std::_Exit(5);  // a stale copy or two may keep some
  if (g_finalized_on.load() != gettid()) std::_Exit(6);
  os::inject_failures(0, 0);
  make_objects(const_cast<void**>(objs));
  finalize_and_drop(objs);
  mgc::collect();
  mgc::wait_for_finalizers();
  if (g_finalized.load() < first + kFinalized * 9 / 10) std::_Exit(7);
  if (g_finalized_on.load() == gettid()) std::_Exit(9);  // the thread runs them again
  std::_Exit(0);
}

TEST(OomInjection, FinalizerThreadWithoutMemoryGivesUpAndNoFinalizerIsLost) {
  EXPECT_EQ(exit_code_of(finalizers_while_refused), 0)
      << "5: the finalizers queued while memory was refused did not run; 6: not in the waiting thread; 7: those "
         "queued after did not run; 8: no object to start with; 9: not on the finalizer thread; 128 + N: killed "
         "by signal N";
}

// The target, with the OS's own refusal: under an address-space
// limit of 4 GiB a program that holds what it allocates gets nullptr (never
// an abort), and after it drops everything (no free: the collector must
// find it dead) it can allocate as much again.
[[noreturn]] void exhaust_under_limit() {
  const rlimit rl = {rlim_t{4} << 30, rlim_t{4} << 30};
  if (setrlimit(RLIMIT_AS, &rl) != 0) std::_Exit(10);
  using Held = std::vector<void*, mgc::allocator<void*>>;
  auto fill = [](Held* held) {
    held->reserve(8192);
    for (int i = 0; i < 8192; i++) {
      void* p = mgc::alloc_noscan(1 << 20);
      if (p == nullptr) return true;
      std::memset(p, 1, 4096);
      held->push_back(p);
    }
    return false;  // 8 GiB under a 4 GiB limit: impossible
  };
  std::size_t first = 0;
  {
    Held held;
    if (!fill(&held)) std::_Exit(11);
    first = held.size();
    if (first < 1024) std::_Exit(12);  // the limit left less than 1 GiB
  }
  mgc::collect();
  Held again;
  if (!fill(&again)) std::_Exit(13);
  // As much again, give or take what conservative roots keep.
  if (again.size() < first * 9 / 10) std::_Exit(14);
  std::_Exit(0);
}

TEST(OomUnderAddressSpaceLimit, NullThenRecoveryAfterDropping) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of shadow: an address-space limit breaks it";
#endif
  EXPECT_EQ(exit_code_of(exhaust_under_limit), 0)
      << "see exhaust_under_limit for the code; 128 + N: killed by signal N";
}

}  // namespace
