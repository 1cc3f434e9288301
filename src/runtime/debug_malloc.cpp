#include "runtime/debug_malloc.hpp"

#include "gc/threads.hpp"
#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc::internal {

namespace {
__thread bool tls_in_malloc __attribute__((tls_model("initial-exec")));
__thread std::uint64_t tls_epoch_at_entry __attribute__((tls_model("initial-exec")));

[[noreturn]] void deadlock(const char* what) {
  fatal(
      "malloc deadlock: %s entered while this thread is already inside the allocator "
      "(re-entered from the allocator's own slow path or from a signal handler that interrupted it)",
      what);
}
}  // namespace

void (*debug_slow_path_hook)() = nullptr;
void (*debug_fast_path_hook)() = nullptr;
void (*debug_large_span_hook)() = nullptr;

void debug_malloc_enter(CacheFront* c) {
  if (tls_in_malloc) deadlock("allocation");
  tls_in_malloc = true;
  tls_in_fast_path = true;
  tls_epoch_at_entry = g_world_epoch.load(std::memory_order_acquire);
  if (debug_fast_path_hook != nullptr) debug_fast_path_hook();
  if (c == &g_empty_cache) {
    if (c->tiny != 0 || c->tiny_offset != kTinySize) fatal("cache: the shared empty cache was written to");
    return;
  }
  auto* mc = reinterpret_cast<MCache*>(c);
  mc->check(kTinySpanClass);
}

void debug_malloc_exit(CacheFront* c, int span_class) {
  if (!tls_in_malloc) fatal("malloc: leaving the allocator without having entered it");
  const std::uint64_t epoch = g_world_epoch.load(std::memory_order_acquire);
  if (epoch != tls_epoch_at_entry)
    fatal(
        "malloc: a collection cycle started or finished while the allocation fast path was in flight "
        "(world epoch %llu at entry, %llu at exit)",
        static_cast<unsigned long long>(tls_epoch_at_entry), static_cast<unsigned long long>(epoch));
  if (c != &g_empty_cache) reinterpret_cast<MCache*>(c)->check(span_class);
  tls_in_fast_path = false;
  tls_in_malloc = false;
  if (tls_stop_deferred) park_deferred_stop();
}

void SlowPathScope::enter() {
  // Slow paths block on locks and may run a cycle themselves: from here on
  // the thread stops wherever the signal finds it.
  tls_in_fast_path = false;
  if (tls_stop_deferred) park_deferred_stop();
}

void SlowPathScope::leave() {
  if (debug_slow_path_hook != nullptr) debug_slow_path_hook();
  if (cache_ != nullptr) cache_->check(spc_);
  tls_in_malloc = false;
}

void debug_free_enter_checked() {
  if (tls_in_malloc) deadlock("free");
  tls_in_malloc = true;
}

void debug_free_exit_checked() { tls_in_malloc = false; }

void check_heap() {
  for (int spc = 0; spc < kNumSpanClasses; spc++) mcentral(spc).check();
  // Every in-use span, large ones included, except those another thread's
  // cache owns: their owner may be changing them right now.
  mheap().check([](const MSpan* s) {
    MCache* owner = s->owner.load(std::memory_order_relaxed);
    return owner != nullptr && owner != this_cache_if_any();
  });
  if (MCache* c = this_cache_if_any())
    for (int spc = 0; spc < kNumSpanClasses; spc++) c->check(spc);
}

}  // namespace mgc::internal
