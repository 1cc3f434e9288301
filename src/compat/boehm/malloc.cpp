// Boehm's allocation calls on the core: GC_malloc and its kinds, realloc,
// free, the string and alignment helpers, the object queries (GC_base,
// GC_size), free lists (GC_malloc_many), and the out-of-memory path.
//
// GC_malloc and GC_malloc_atomic take the core's inline fast path (the
// tiny allocator for atomic objects under 16 bytes). A failed allocation
// collects and retries, then returns what GC_oom_fn gives, with nothing
// held (Boehm: the collector lock is released before GC_oom_fn runs).
#include <errno.h>

#include <cstring>

#include "compat/boehm/boehm.hpp"
#include "gc/collector.hpp"
#include "gc/threads.hpp"
#include "heap/kinds.hpp"
#include "heap/mheap.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/fatal.hpp"
#include "runtime/object_info.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc::internal::boehm {

std::atomic<std::size_t> g_freed_since_gc{0};

namespace {

// The core's allocation of n bytes (padding already added) of a kind.
void* core_alloc(std::size_t n, Kind kind) {
  switch (kind) {
    case Kind::kNoscan:
      return alloc_kind<Kind::kNoscan>(n);
    case Kind::kConservative:
      return alloc_kind<Kind::kConservative>(n);
    default:
      return alloc_of_kind(n, kind);
  }
}

// GC_generic_malloc_many's objects of this kind and padded size come from
// the fast path's chunks (a small, non-tiny slot zeroed inline). Not in
// debug-malloc builds, whose fast path checks each allocation.
bool bulk_kind(std::size_t bytes, Kind kind) {
  if (kDebugMalloc || bytes == 0 || bytes > kMaxInlineZero) return false;
  return kind != Kind::kTyped && kind != Kind::kTiny && !(kind == Kind::kNoscan && bytes < kTinySize);
}

// Up to max slots of span class spc (slot bytes each) that the calling
// thread's current chunk still exposes, taken as the fast path takes them
// and zeroed, into out; how many. Saves GC_generic_malloc_many a call, a
// dispatch on the kind and a size-class lookup per object (guile takes
// its pairs this way: 8% of binary-trees' time went to it).
std::size_t take_from_chunk(int spc, std::size_t slot, void** out, std::size_t max) {
  CacheFront* const c = tls_cache;
  std::size_t got = 0;
  void* p;
  std::size_t bit;
  while (got < max && next_free_fast(c, spc, slot, &p, &bit)) {
    zero_object(p, slot);
    out[got++] = p;
  }
  return got;
}

// Program-defined kinds get Boehm numbers from 4 on.
constexpr int kFirstProgramKind = 4;

bool uncollectable(Kind kind) { return kind == Kind::kUncollectable || kind == Kind::kAtomicUncollectable; }

// Boehm does not pad uncollectable objects: no pointer past their end
// needs to keep them.
std::size_t request_bytes(std::size_t size, Kind kind) { return uncollectable(kind) ? size : padded(size); }

void count_uncollectable(std::size_t bytes, Kind kind) {
  if (uncollectable(kind)) __atomic_fetch_add(&GC_non_gc_bytes, bytes, __ATOMIC_RELAXED);
}

Kind kind_or_fatal(int k, const char* what) {
  Kind kind;
  if (!kind_of_number(k, &kind)) fatal("%s: no object kind %d", what, k);
  return kind;
}

}  // namespace

void* allocate(std::size_t size, Kind kind) {
  const std::size_t n = request_bytes(size, kind);
  void* p = core_alloc(n, kind);
  if (__builtin_expect(p == nullptr, 0)) p = out_of_memory(size, [=] { return core_alloc(n, kind); });
  if (p != nullptr) count_uncollectable(size, kind);
  return p;
}

void* call_oom_fn(std::size_t requested) {
  GC_oom_func oom = GC_oom_fn;
  return oom != nullptr ? oom(requested) : nullptr;
}

bool object_extent(const void* p, void** base, std::size_t* size) {
  ObjectInfo info;
  if (!find_object_exact(p, &info)) return false;
  *base = info.base;
  *size = info.size;
  return true;
}

int boehm_number_of(Kind kind) {
  switch (kind) {
    case Kind::kNoscan:
    case Kind::kTiny:
      return GC_I_PTRFREE;
    case Kind::kUncollectable:
      return GC_I_UNCOLLECTABLE;
    case Kind::kAtomicUncollectable:
      return GC_I_AUNCOLLECTABLE;
    case Kind::kConservative:
    case Kind::kTyped:
      return GC_I_NORMAL;
    default:
      return kFirstProgramKind + static_cast<int>(kind) - static_cast<int>(Kind::kFirstCustom);
  }
}

bool kind_of_number(int k, Kind* out) {
  switch (k) {
    case GC_I_PTRFREE:
      *out = Kind::kNoscan;
      return true;
    case GC_I_NORMAL:
      *out = Kind::kConservative;
      return true;
    case GC_I_UNCOLLECTABLE:
      *out = Kind::kUncollectable;
      return true;
    case GC_I_AUNCOLLECTABLE:
      *out = Kind::kAtomicUncollectable;
      return true;
    default:
      if (k < kFirstProgramKind || k - kFirstProgramKind >= custom_kinds()) return false;
      *out = static_cast<Kind>(static_cast<int>(Kind::kFirstCustom) + k - kFirstProgramKind);
      return true;
  }
}

int boehm_kind_of(const void* base) {
  MSpan* s = mheap().span_of(reinterpret_cast<std::uintptr_t>(base));
  return s == nullptr ? -1 : boehm_number_of(s->kind);
}

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

void* GC_malloc(size_t size) {
  void* p = alloc_kind<Kind::kConservative>(padded(size));
  if (__builtin_expect(p != nullptr, 1)) return p;
  return boehm::allocate(size, Kind::kConservative);
}

void* GC_malloc_atomic(size_t size) {
  void* p = alloc_kind<Kind::kNoscan>(padded(size));
  if (__builtin_expect(p != nullptr, 1)) return p;
  return boehm::allocate(size, Kind::kNoscan);
}

void* GC_malloc_uncollectable(size_t size) { return boehm::allocate(size, Kind::kUncollectable); }
void* GC_malloc_atomic_uncollectable(size_t size) { return boehm::allocate(size, Kind::kAtomicUncollectable); }

// The hint is for Boehm's black-listing of pages; every object here is
// found from any interior pointer anyway.
void* GC_malloc_ignore_off_page(size_t size) { return GC_malloc(size); }
void* GC_malloc_atomic_ignore_off_page(size_t size) { return GC_malloc_atomic(size); }
void* GC_malloc_stubborn(size_t size) { return GC_malloc(size); }

void* GC_malloc_kind(size_t size, int k) { return boehm::allocate(size, kind_or_fatal(k, "GC_malloc_kind")); }
void* GC_malloc_kind_global(size_t size, int k) { return GC_malloc_kind(size, k); }
void* GC_generic_malloc(size_t size, int k) { return boehm::allocate(size, kind_or_fatal(k, "GC_generic_malloc")); }
void* GC_generic_malloc_ignore_off_page(size_t size, int k) { return GC_generic_malloc(size, k); }
void* GC_generic_or_special_malloc(size_t size, int k) { return GC_generic_malloc(size, k); }

// As in Boehm, whether the object is collected is the kind's property:
// GC_I_UNCOLLECTABLE and GC_I_AUNCOLLECTABLE give uncollectable objects,
// any other kind (a program's too) an ordinary object of that kind.
void* GC_generic_malloc_uncollectable(size_t size, int k) {
  return boehm::allocate(size, kind_or_fatal(k, "GC_generic_malloc_uncollectable"));
}

void GC_generic_malloc_many(size_t size, int k, void** result) {
  const Kind kind = kind_or_fatal(k, "GC_generic_malloc_many");
  // Enough objects to fill about a page (Boehm hands out a block's free
  // list), at most 256; each is cleared and linked through its first word.
  const std::size_t bytes = request_bytes(size, kind);
  const std::size_t slot = size <= kMaxSmallSize ? kClassToSize[size_to_class(bytes)] : size;
  std::size_t n = slot == 0 ? 1 : kPageSize / slot;
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  // The objects are linked only once all are allocated: an allocation may
  // run a cycle, and the links of a pointer-free kind are never traced, so
  // a list under construction would lose all but its head. Until then they
  // sit in this array, which the stack scan sees.
  void* objects[256];
  std::size_t got = 0;
  const bool whole_chunks = bulk_kind(bytes, kind);
  const int spc = whole_chunks ? span_class(size_to_class(bytes), kind) : 0;
  while (got < n) {
    // What the thread's current chunk holds, taken at once; then one
    // object by the usual path, which refills the chunk (or reports the
    // heap exhausted, for the first object only: later ones end the list).
    if (whole_chunks) {
      const std::size_t took = take_from_chunk(spc, slot, objects + got, n - got);
      count_uncollectable(size * took, kind);
      got += took;
      if (got == n) break;
    }
    void* p = got == 0 ? boehm::allocate(size, kind) : core_alloc(bytes, kind);
    if (p == nullptr) break;
    if (got != 0) count_uncollectable(size, kind);
    objects[got++] = p;
  }
  void* head = nullptr;
  for (std::size_t i = got; i-- > 0;) {
    *static_cast<void**>(objects[i]) = head;
    head = objects[i];
  }
  *result = head;
  // Not a dead store to the optimiser: the array must stay on the stack
  // until the list is linked.
  __asm__ __volatile__("" : : "r"(objects) : "memory");
}

void* GC_malloc_many(size_t size) {
  void* head;
  GC_generic_malloc_many(size < sizeof(void*) ? sizeof(void*) : size, GC_I_NORMAL, &head);
  return head;
}

void* GC_memalign(size_t align, size_t size) {
  // Slots of 16 bytes and more are 16-aligned, smaller ones 8-aligned.
  if (align <= 8) return GC_malloc(size);
  // Up to a page the core aligns slots (a size class that is a multiple
  // of align, or a large object's pages); beyond, fail as Boehm does.
  if ((align & (align - 1)) != 0 || align > kPageSize) return call_oom_fn(SIZE_MAX);
  const auto attempt = [=] { return alloc_aligned(padded(size), align, Kind::kConservative); };
  void* p = attempt();
  return p != nullptr ? p : out_of_memory(size, attempt);
}

int GC_posix_memalign(void** memptr, size_t align, size_t size) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = GC_memalign(align, size);
  if (p == nullptr) return ENOMEM;
  *memptr = p;
  return 0;
}

void GC_free(void* p) {
  if (p == nullptr) return;
  void* base;
  std::size_t size;
  // Bookkeeping first; mgc::free checks p (and aborts on a bad pointer).
  if (object_extent(p, &base, &size) && base == p) {
    const Kind kind = mheap().span_of(reinterpret_cast<std::uintptr_t>(p))->kind;
    if (uncollectable(kind)) __atomic_fetch_sub(&GC_non_gc_bytes, size, __ATOMIC_RELAXED);
    // A kind that promises cleared free objects (see heap/kinds.hpp).
    if (scan_mode(kind) == ScanMode::kCustom && kind_record(kind).clear) std::memset(p, 0, size);
    g_freed_since_gc.fetch_add(size, std::memory_order_relaxed);
  }
  mgc::free(p);
}

void* GC_realloc(void* p, size_t size) {
  if (p == nullptr) return GC_malloc(size);
  if (size == 0) {
    GC_free(p);
    return nullptr;
  }
  void* base;
  std::size_t old_size;
  if (!object_extent(p, &base, &old_size) || base != p)
    fatal("GC_realloc(%p): not the start of an object of this heap", p);
  // Typed objects come back conservative: their layout was for the old
  // size.
  Kind kind = Kind::kConservative;
  kind_of_number(boehm_kind_of(p), &kind);
  // In place when it fits and does not waste more than half (Boehm's rule);
  // the rest is cleared so that stale words are not taken for pointers.
  const std::size_t need = request_bytes(size, kind);
  if (need <= old_size && need >= old_size / 2) {
    std::memset(static_cast<char*>(p) + size, 0, old_size - size);
    return p;
  }
  void* q = boehm::allocate(size, kind);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, size < old_size ? size : old_size);
  GC_free(p);
  return q;
}

char* GC_strdup(const char* s) {
  if (s == nullptr) return nullptr;
  const std::size_t n = std::strlen(s) + 1;
  auto* p = static_cast<char*>(GC_malloc_atomic(n));
  if (p != nullptr) std::memcpy(p, s, n);
  return p;
}

char* GC_strndup(const char* s, size_t max) {
  const std::size_t n = strnlen(s, max);
  auto* p = static_cast<char*>(GC_malloc_atomic(n + 1));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void* GC_base(void* p) {
  void* base;
  std::size_t size;
  return object_extent(p, &base, &size) ? base : nullptr;
}

int GC_is_heap_ptr(const void* p) { return mheap().span_of(reinterpret_cast<std::uintptr_t>(p)) != nullptr; }

size_t GC_size(const void* p) {
  void* base;
  std::size_t size;
  if (!object_extent(p, &base, &size)) return 0;
  return size - (static_cast<const char*>(p) - static_cast<char*>(base));
}

int GC_get_kind_and_size(const void* p, size_t* psize) {
  if (psize != nullptr) *psize = GC_size(p);
  return boehm_kind_of(p);
}

size_t GC_get_size_map_at(int i) {
  if (i < 0 || static_cast<std::size_t>(i) > kMaxSmallSize) return static_cast<size_t>(-1);
  const std::size_t n = padded(static_cast<std::size_t>(i));
  return kClassToSize[size_to_class(n == 0 ? 1 : n)];
}

// Stubborn objects and the manual dirty-bit mode matter only to Boehm's
// incremental mode, which this collector does not have: nothing to record.
void GC_change_stubborn(const void*) {}
void GC_end_stubborn_change(const void*) {}
void GC_ptr_store_and_dirty(void* p, const void* q) { *static_cast<const void**>(p) = q; }

void GC_incr_bytes_allocd(size_t) {}
void GC_incr_bytes_freed(size_t bytes) { g_freed_since_gc.fetch_add(bytes, std::memory_order_relaxed); }

void* GC_clear_stack(void* arg) {
  scrub_stack_below(8 * 1024);
  return arg;
}

void GC_noop1(GC_word x) { asm volatile("" : : "r"(x) : "memory"); }

}  // extern "C"
