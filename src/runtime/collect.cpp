#include "runtime/collect.hpp"

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <new>

#include "gc/collector.hpp"
#include "gc/roots.hpp"
#include "gc/scavenger.hpp"
#include "gc/specials.hpp"
#include "gc/threads.hpp"
#include "heap/mcentral.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/fatal.hpp"
#include "os/trace.hpp"
#include "prof/unwind.hpp"
#include "runtime/options.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc {

namespace internal {

void collect_from_slow_path() { collect_in_background(); }

bool collect_now() {
  ensure_options();
  // Give this thread's cache back first: its chunks' objects are then
  // judged by reachability alone (not kept as "allocated since the stop").
  if (MCache* c = this_cache_if_any()) c->release_all();
  scrub_stack_below();  // release_all's frames held chunk addresses
  return gc_cycle(true);
}

namespace {
std::atomic<int> g_fork_mode{kForkAutomatic};
void (*g_fork_extra_lock)() = nullptr;
void (*g_fork_extra_unlock)() = nullptr;
// Whether this process's last prepare took the locks (parent and child
// release only what prepare took, whatever the mode says meanwhile).
bool g_fork_locked = false;

// parent and child release only what a prepare took, so they serve as the
// automatic handlers as they are.
void automatic_prepare() {
  if (g_fork_mode.load(std::memory_order_acquire) == kForkAutomatic) fork_prepare();
}
}  // namespace

void fork_prepare() {
  // One-time setups run outside the locks taken below: let any that a
  // thread has started finish first (their guards would stay taken in the
  // child). ECL's and the tests' first forks come while other threads
  // make their first allocations.
  ensure_options();
  finish_cache_setup();
  unwind_lock();  // first: its holder waits for no other lock
  fork_prepare_collector();
  lock_cache_registry();
  if (g_fork_extra_lock != nullptr) g_fork_extra_lock();
  g_fork_locked = true;
}

void fork_parent() {
  if (!g_fork_locked) return;
  g_fork_locked = false;
  if (g_fork_extra_unlock != nullptr) g_fork_extra_unlock();
  unlock_cache_registry();
  fork_parent_collector();
  unwind_unlock();
}

void fork_child() {
  if (!g_fork_locked) return;
  g_fork_locked = false;
  if (g_fork_extra_unlock != nullptr) g_fork_extra_unlock();
  unlock_cache_registry();
  fork_child_collector();
  unwind_unlock();
  // Unlocked now, single-threaded: the caches of the threads left behind
  // leave the registry (their spans stay theirs: thread_cache.cpp).
  reclaim_caches_after_fork();
}

void set_fork_mode(ForkMode m) { g_fork_mode.store(m, std::memory_order_release); }
ForkMode fork_mode() { return static_cast<ForkMode>(g_fork_mode.load(std::memory_order_acquire)); }

void install_fork_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Registered at first use, so the program's later handlers run before
    // this prepare (they may allocate) and after this parent and child.
    if (pthread_atfork(automatic_prepare, fork_parent, fork_child) != 0)
      fatal("cannot install the fork handlers (pthread_atfork failed)");
  });
}

void set_fork_extra_locks(void (*lock)(), void (*unlock)()) {
  g_fork_extra_lock = lock;
  g_fork_extra_unlock = unlock;
}

}  // namespace internal

void collect() { internal::collect_now(); }

std::size_t release_memory() {
  internal::collect_now();
  // Spans whose objects all died but whose frees are still pending go back
  // to the page heap first, so their pages are released too.
  internal::reclaim_empty_spans();
  return internal::scavenge_all();
}

bool start_trace() { return internal::trace_start(); }
void stop_trace() { internal::trace_stop(); }
bool write_trace(const char* path) { return internal::write_trace_file(path); }

int set_gc_percent(int percent) {
  internal::ensure_options();
  return internal::pacer_set_gc_percent(percent);
}

std::int64_t set_memory_limit(std::int64_t bytes) {
  internal::ensure_options();
  return internal::pacer_set_memory_limit(bytes);
}

void add_roots(void* begin, void* end) { internal::add_root_range(begin, end); }
void remove_roots(void* begin, void* end) { internal::remove_root_range(begin, end); }

void set_finalizer(void* obj, void (*fn)(void*, void*), void* data) {
  if (!internal::set_finalizer(obj, fn, data)) throw std::bad_alloc();
}
void wait_for_finalizers() { internal::wait_for_finalizers(); }

ThreadScope::ThreadScope() {
  if (!internal::register_thread_scope()) throw std::bad_alloc();
}
ThreadScope::~ThreadScope() { internal::unregister_thread(); }

}  // namespace mgc
