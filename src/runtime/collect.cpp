#include "runtime/collect.hpp"

#include "gc/collector.hpp"
#include "gc/roots.hpp"
#include "gc/specials.hpp"
#include "gc/threads.hpp"
#include "mallocgc/mallocgc.hpp"
#include "runtime/options.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc {

namespace internal {

void collect_from_slow_path() { gc_cycle(false); }

bool collect_now() {
  ensure_options();
  // Give this thread's cache back first: its chunks' objects are then
  // judged by reachability alone (not kept as "allocated since the stop").
  if (MCache* c = this_cache_if_any()) c->release_all();
  scrub_stack_below();  // release_all's frames held chunk addresses
  return gc_cycle(true);
}

void fork_prepare() {
  fork_prepare_collector();
  lock_cache_registry();
}

void fork_parent() {
  unlock_cache_registry();
  fork_parent_collector();
}

void fork_child() {
  unlock_cache_registry();
  fork_child_collector();
}

}  // namespace internal

void collect() { internal::collect_now(); }

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

void set_finalizer(void* obj, void (*fn)(void*, void*), void* data) { internal::set_finalizer(obj, fn, data); }
void wait_for_finalizers() { internal::wait_for_finalizers(); }

ThreadScope::ThreadScope() { internal::register_thread_scope(); }
ThreadScope::~ThreadScope() { internal::unregister_thread(); }

}  // namespace mgc
