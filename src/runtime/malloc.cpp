// malloc: the front door of the allocator (Go: malloc.go).
//
// Objects up to kMaxSmallSize (32 KiB) are small; they round up to one of
// the size classes in size_classes.hpp and come from spans cut into slots
// of that size. A span class is (size class, kind), kinds being noscan,
// conservative, typed and tiny, so a span holds objects of one kind and no
// per-object header exists. Larger objects get a span of their own.
//
// Allocating a small object goes through a hierarchy of caches:
//
//   1. The thread's MCache exposes, per span class, up to 64 free slots of
//      one span as a bitmap (alloc_cache). The inline fast path takes the
//      lowest set bit: no lock, no atomic read-modify-write, no call.
//   2. When the bitmap is empty, alloc_slow refills it from the next word
//      of the same span's alloc_bits (MCache::refill), taking no lock.
//   3. When the span is full, the cache gives it back to the MCentral of
//      its span class and takes one with free slots (central lock).
//   4. When the central list has none, MHeap makes a span from free pages
//      (heap lock), first reclaiming wholly free spans from the central
//      lists if the heap would otherwise grow.
//   5. When no pages are free, the page allocator commits more of an arena
//      or reserves a new one from the OS, in 2 MiB steps.
//
// Freeing (mgc::free) walks back: the owner thread of a span clears the
// slot's bit in the span's alloc_bits, where its next refill finds it
// again (a tiny block whose objects are all freed starts over in place
// if it is the thread's current block); any other thread
// sets the slot's bit in the span's pending_free bitmap with an atomic OR,
// and the span's owner or central list merges those bits later. A span
// with no allocated slot goes back to MHeap, its pages to the page pool.
//
// Tiny objects (noscan, under 16 bytes) are packed into 16-byte blocks from
// tiny spans. Each block records where its objects start; a block whose
// objects are all freed is released as a whole.
//
// Zeroing: the fast path zeroes every object it hands out (a few stores).
// Slow paths zero only when the span's free slots may hold old data
// (MSpan::need_zero); memory fresh from the OS is already zero.
//
// Sampling (prof/sample): one allocation per MALLOCGC_MEMPROFILERATE bytes
// on average is recorded with its stack. The fast path never counts; a
// refill loads only the slots that stay below the next sampling point, so
// the allocation that reaches it comes here, where the decision is made
// with the exact distance. The record is made at the slow path's end, its
// scope closed (it takes the profile lock and calls backtrace()). Under
// allocfreetrace chunks hold one slot and every allocation comes here.
//
// Collection: every slow path first asks the pacer whether the heap has
// reached its goal (and runs a cycle if so), then prepares the thread's
// cache for the sweep if a cycle ran since it last did (runtime/collect).
// The fast path never does either: a cycle needs no cooperation from it.
#include <cstring>

#include "gc/specials.hpp"
#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "heap/type_info.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/fatal.hpp"
#include "prof/allocfreetrace.hpp"
#include "prof/sample.hpp"
#include "runtime/collect.hpp"
#include "runtime/debug_malloc.hpp"
#include "runtime/options.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc::internal {

namespace {

// Larger requests fail at once: no machine here has 64 TiB to give, and
// page arithmetic on them must not overflow.
constexpr std::size_t kMaxAllocSize = std::size_t{1} << 46;

// Bytes of the allocation the current slow path makes, when it is to be
// sampled (else 0): set where the decision is made, recorded and cleared by
// the entry point once the slow path's scope is closed.
__thread std::size_t tls_sample_bytes __attribute__((tls_model("initial-exec")));

// The chunk limit for a fresh slot of elem bytes from cache c, deciding
// whether the allocation is sampled.
std::uint32_t chunk_limit(MCache* c, std::size_t elem) {
  if (!sampling_active()) return 64;
  const SampleChoice sc = sample_small(c, elem);
  if (sc.sampled) tls_sample_bytes = elem;
  return sc.max_slots;
}

void* alloc_large(std::size_t size, Kind kind, const TypeInfo* type) {
  // this_cache(): a thread that allocates registers, so its stack is a
  // root, even if it only ever allocates large objects.
  MCache* c = this_cache();
  gc_on_slow_path(c);
  const std::size_t npages = (size + kPageSize - 1) / kPageSize;
  if (!mheap().has_free_pages(npages)) reclaim_empty_spans();
  bool need_zero = false;
  // Once the span is published a cycle may stop this thread before it has
  // the object's address in a register: a span allocated before that
  // cycle's mark and not marked by it is freed by its sweep, and this
  // function would return freed pages (ECL's binding stacks were reused
  // under it so). The address waits in this frame, which the stop scans.
  std::uintptr_t volatile keep = 0;
  MSpan* s = mheap().alloc_large_span(npages, size, kind, &need_zero, &keep);
  if (s == nullptr) return nullptr;
  if constexpr (kDebugMalloc) {
    if (debug_large_span_hook != nullptr) debug_large_span_hook();
  }
  if (type != nullptr) s->large_type.store(type, std::memory_order_relaxed);
  mheap().add_live(npages * kPageSize);
  if (need_zero) std::memset(reinterpret_cast<void*>(s->base), 0, npages * kPageSize);
  AllocCounters& g = shared_counters();
  g.large_mallocs.fetch_add(1, std::memory_order_relaxed);
  g.large_malloc_bytes.fetch_add(npages * kPageSize, std::memory_order_relaxed);
  if (c != nullptr && sampling_active() && sample_large(c, npages * kPageSize)) tls_sample_bytes = npages * kPageSize;
  return reinterpret_cast<void*>(keep);
}

// One slot of span class spc from cache c, refilling as needed.
void* alloc_small(MCache* c, int spc, const TypeInfo* type) {
  const std::size_t elem = kClassToSize[spc / kNumKinds];
  std::size_t slot = 0;
  void* p = nullptr;
  if (!next_free_fast(&c->front, spc, elem, &p, &slot)) {
    if (!c->refill(spc, chunk_limit(c, elem))) {
      tls_sample_bytes = 0;
      return nullptr;
    }
    next_free_fast(&c->front, spc, elem, &p, &slot);
  }
  if (type != nullptr) static_cast<const TypeInfo**>(c->front.alloc[spc].aux)[slot] = type;
  if (c->spans[spc]->need_zero) std::memset(p, 0, elem);
  return p;
}

// One slot of span class spc from the calling thread's cache (created if
// need be), with the debug-malloc checks of the slow path.
void* alloc_in_class(SlowPathScope& scope, int spc, const TypeInfo* type) {
  MCache* c = this_cache();
  if (c == nullptr) return nullptr;
  gc_on_slow_path(c);
  scope.set_span_class(c, spc);
  return alloc_small(c, spc, type);
}

void* small_or_large(std::size_t size, Kind kind) {
  SlowPathScope scope;
  if (size > kMaxAllocSize) return nullptr;
  ensure_options();
  if (size > kMaxSmallSize) return alloc_large(size, kind, nullptr);
  return alloc_in_class(scope, span_class(size_to_class(size == 0 ? 1 : size), kind), nullptr);
}

void* tiny(std::size_t size) {
  SlowPathScope scope;
  ensure_options();
  MCache* c = this_cache();
  if (c == nullptr) return nullptr;
  gc_on_slow_path(c);
  scope.set_span_class(c, kTinySpanClass);
  // The thread may have had no cache (its tiny state was the empty
  // cache's), or its chunk of blocks ran out: either way a new block.
  if (!c->refill(kTinySpanClass, chunk_limit(c, kTinySize))) {
    tls_sample_bytes = 0;
    return nullptr;
  }
  void* p = tiny_new_block(&c->front, size);
  if (p == nullptr) fatal("tiny allocator: refill left no block");
  // allocfreetrace: the block is full as far as the fast path can tell, so
  // the next tiny object comes here too.
  if (g_allocfreetrace.load(std::memory_order_relaxed)) c->front.tiny_offset = kTinySize;
  return p;
}

void* typed(const TypeInfo* type) {
  SlowPathScope scope;
  ensure_options();
  if (type->size > kMaxSmallSize) return alloc_large(type->size, Kind::kTyped, type);
  return alloc_in_class(scope, span_class(size_to_class(type->size), Kind::kTyped), type);
}

void* aligned(std::size_t size, std::size_t align, Kind kind) {
  SlowPathScope scope;
  if (align == 0 || (align & (align - 1)) != 0 || align > kPageSize || size > kMaxAllocSize) return nullptr;
  ensure_options();
  if (size > kMaxSmallSize) return alloc_large(size, kind, nullptr);
  int cls = size_to_class(size == 0 ? 1 : size);
  while (cls < kNumSizeClasses && kClassToSize[cls] % align != 0) cls++;
  if (cls == kNumSizeClasses) return alloc_large(size, kind, nullptr);  // pages are aligned enough
  return alloc_in_class(scope, span_class(cls, kind), nullptr);
}

// The end of a slow path, its scope closed: the sample and the trace line
// of the allocation it made. pc: the return address into the allocating
// code.
inline void record_allocation(void* p, std::size_t size, Kind kind, const void* pc) {
  if (__builtin_expect(tls_sample_bytes != 0, 0)) {
    const std::size_t bytes = tls_sample_bytes;
    tls_sample_bytes = 0;
    if (p != nullptr) profile_alloc(p, bytes, pc);
  }
  if (__builtin_expect(g_allocfreetrace.load(std::memory_order_relaxed), 0) && p != nullptr)
    trace_alloc(p, size, kind, pc);
}

}  // namespace

// Each slow path ends, its scope closed and nothing held, by recording the
// allocation's sample, then by running queued finalizers when they run in
// allocating threads (the Boehm face's policy): they may allocate.
void* alloc_slow(std::size_t size, Kind kind) {
  void* p = small_or_large(size, kind);
  record_allocation(p, size, kind, __builtin_return_address(0));
  run_caller_finalizer_hook();
  return p;
}

void* alloc_tiny_slow(std::size_t size) {
  void* p = tiny(size);
  record_allocation(p, size, Kind::kTiny, __builtin_return_address(0));
  run_caller_finalizer_hook();
  return p;
}

void* alloc_typed_slow(const TypeInfo* type) {
  void* p = typed(type);
  record_allocation(p, type->size, Kind::kTyped, __builtin_return_address(0));
  run_caller_finalizer_hook();
  return p;
}

void* alloc_aligned(std::size_t size, std::size_t align, Kind kind) {
  debug_enter_slow();
  void* p = aligned(size, align, kind);
  record_allocation(p, size, kind, __builtin_return_address(0));
  run_caller_finalizer_hook();
  return p;
}

}  // namespace mgc::internal
