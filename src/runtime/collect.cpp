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

}  // namespace internal

void collect() {
  internal::ensure_options();
  // Give this thread's cache back first: its chunks' objects are then
  // judged by reachability alone (not kept as "allocated since the stop").
  if (internal::MCache* c = internal::this_cache_if_any()) c->release_all();
  internal::scrub_stack_below();  // release_all's frames held chunk addresses
  internal::gc_cycle(true);
}

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
