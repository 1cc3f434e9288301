// stats(): a snapshot of the heap's counters in the spirit of Go's
// runtime.MemStats.
//
// Counters live where they are written without contention: in each
// thread's cache (owner-written, settled for the calling thread first), in
// the shared counters (exited threads, frees by non-owners, large objects),
// and in the page allocator. A live thread's cached chunk is counted when
// that thread next refills or exits, which bounds the lag of other
// threads' figures to one chunk per size class.
#include <algorithm>

#include "gc/collector.hpp"
#include "gc/pacer.hpp"
#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "heap/sweep.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/dirty_pages.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc {

namespace {

// Another thread's mallocs may not be counted yet when its objects' frees
// already are (see above): never report a negative amount.
std::uint64_t in_use(std::uint64_t allocated, std::uint64_t freed) { return allocated > freed ? allocated - freed : 0; }

}  // namespace

Stats stats() {
  if (internal::MCache* self = internal::this_cache_if_any()) self->settle();
  // Merge the pending frees of spans no cache owns, as Go's ReadMemStats
  // settles its counters, so freed memory shows as freed; wholly free
  // spans go back to the page heap on the way.
  internal::reclaim_empty_spans();
  internal::AllocCounters total;
  Stats st;
  st.num_threads =
      internal::for_each_cache([&total](const internal::MCache& c) { internal::add_counters(total, c.counters); });
  internal::add_counters(total, internal::shared_counters());
  internal::add_counters(total, internal::swept_counters());
  auto ld = [](const std::atomic<std::uint64_t>& x) { return x.load(std::memory_order_relaxed); };
  const std::uint64_t tiny_mallocs = ld(total.tiny_mallocs), tiny_frees = ld(total.tiny_frees);
  const std::uint64_t large_mallocs = ld(total.large_mallocs), large_frees = ld(total.large_frees);
  const std::uint64_t tiny_block_frees =
      ld(total.tiny_block_frees) + internal::mcentral(internal::kTinySpanClass).merged_slots();
  for (int i = 1; i < internal::kNumSizeClasses; i++) {
    SizeClassStats& b = st.by_size[i];
    b.size = internal::kClassToSize[i];
    b.mallocs = ld(total.nmalloc[i]);
    b.frees = ld(total.nfree[i]);
    st.mallocs += b.mallocs;
    st.frees += b.frees;
    st.heap_alloc += in_use(b.mallocs, b.frees) * b.size;
  }
  st.tiny_mallocs = tiny_mallocs;
  st.tiny_frees = tiny_frees;
  st.mallocs += tiny_mallocs + large_mallocs;
  st.frees += tiny_frees + large_frees;
  st.large_mallocs = large_mallocs;
  st.large_frees = large_frees;
  st.heap_objects = in_use(st.mallocs, st.frees);
  st.heap_alloc += in_use(ld(total.tiny_block_mallocs), tiny_block_frees) * internal::kTinySize;
  st.heap_alloc += in_use(ld(total.large_malloc_bytes), ld(total.large_free_bytes));
  const internal::HeapPageStats ps = internal::mheap().page_stats();
  st.heap_sys = ps.committed_bytes;
  st.heap_reserved = ps.reserved_bytes;
  st.heap_inuse = ps.inuse_bytes;
  st.heap_idle = ps.free_bytes;
  st.heap_released = ps.released_bytes;
  internal::GcStats gs;
  internal::gc_stats(&gs);
  st.num_gc = gs.num_gc;
  st.pause_total_ns = gs.pause_total_ns;
  std::copy(std::begin(gs.pause_ns), std::end(gs.pause_ns), st.pause_ns.begin());
  st.heap_live_after_mark = gs.last_live;
  st.gc_roots_bytes = internal::pacer_last_roots();
  st.heap_goal = st.next_gc = internal::pacer_goal();
  st.gc_cpu_fraction = gs.cpu_fraction;
  st.num_concurrent_gc = gs.concurrent_cycles;
  st.gc_stall_total_ns = gs.stall_total_ns;
  st.gc_stall_max_ns = gs.stall_max_ns;
  st.gc_write_tracking = internal::os::dirty_tracking_name();
  st.gc_cpu_limited = internal::pacer_limiter_deferrals();
  return st;
}

}  // namespace mgc
