// Boehm's mark interface (gc_mark.h) on the core's mark: mark bits,
// pushing from a root-pushing callback, enumeration of the heap's objects,
// and object kinds defined by the program.
//
// GC_is_marked, GC_set_mark_bit and GC_clear_mark_bit act on the current
// cycle's mark bits while a cycle marks (from GC_push_other_roots or a
// mark procedure). Outside a cycle the core keeps no mark bits (a sweep
// turns them into allocation bits): GC_is_marked then says whether the
// object is allocated, and setting or clearing a mark does nothing, as
// Boehm's next full collection would clear it anyway.
#include "heap/kinds.hpp"

#include <cstdlib>
#include <mutex>
#include <vector>

#include "compat/boehm/boehm.hpp"
#include "gc/collector.hpp"
#include "gc/mark.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal::boehm {
namespace {

GC_describe_type_fn g_describe[256];
// Boehm's free list arrays: one entry per granule count up to its largest
// small object.
constexpr std::size_t kFreeListEntries = 129;

struct Found {
  void* base;
  std::size_t size;
};

// Every allocated object of s (heap lock held).
void collect_objects(MSpan* s, std::vector<Found>* out) {
  if (s->is_large()) {
    out->push_back({reinterpret_cast<void*>(s->base), s->large_size});
    return;
  }
  for (std::size_t w = 0; w < s->bitmap_words(); w++) {
    std::uint64_t live = s->alloc_bits[w].load(std::memory_order_relaxed) & s->valid_mask(w);
    if (s->kind != Kind::kTiny) live &= ~s->pending_free[w].load(std::memory_order_relaxed);
    for (; live != 0; live &= live - 1) {
      const std::size_t i = w * 64 + static_cast<std::size_t>(__builtin_ctzll(live));
      const std::uintptr_t base = s->slot_address(i);
      if (s->kind != Kind::kTiny) {
        out->push_back({reinterpret_cast<void*>(base), s->elem_size});
        continue;
      }
      // A tiny block: its objects that are not freed.
      const unsigned mask = s->tiny->alloc_mask[i];
      const unsigned gone = s->tiny->local_freed[i] | s->tiny->remote_freed[i].load(std::memory_order_relaxed);
      for (unsigned m = mask; m != 0; m &= m - 1) {
        const unsigned start = static_cast<unsigned>(__builtin_ctz(m));
        const unsigned next = m & (m - 1);
        const unsigned end = next == 0 ? static_cast<unsigned>(kTinySize) : static_cast<unsigned>(__builtin_ctz(next));
        if (!((gone >> start) & 1)) out->push_back({reinterpret_cast<void*>(base + start), end - start});
      }
    }
  }
}

}  // namespace
}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

int GC_is_marked(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (gc_marking()) return object_marked(a) ? 1 : 0;
  return object_base(a) != 0 ? 1 : 0;
}

void GC_set_mark_bit(const void* p) {
  if (gc_marking()) set_mark_at(reinterpret_cast<std::uintptr_t>(p));
}

void GC_clear_mark_bit(const void* p) {
  if (gc_marking()) clear_mark_at(reinterpret_cast<std::uintptr_t>(p));
}

// The object goes on the calling mark thread's own queue, not on the
// procedure's stack: msp comes back unchanged.
struct GC_ms_entry* GC_mark_and_push(void* obj, struct GC_ms_entry* msp, struct GC_ms_entry*, void**) {
  if (gc_marking()) mark_from_callback(reinterpret_cast<std::uintptr_t>(obj));
  return msp;
}

void GC_register_describe_type_fn(int kind, GC_describe_type_fn fn) {
  if (kind < 0 || kind >= 256) fatal("GC_register_describe_type_fn: no object kind %d", kind);
  g_describe[kind] = fn;
}

void GC_enumerate_reachable_objects_inner(GC_reachable_object_proc proc, void* client_data) {
  // Sweep first, so that what the last cycle found dead is not reported.
  finish_sweep();
  std::vector<Found> found;
  mheap().lock();
  mheap().for_each_span_locked([&](MSpan* s) {
    if (s->state.load(std::memory_order_relaxed) != SpanState::kFreeing) collect_objects(s, &found);
  });
  mheap().unlock();
  // The calls come with no lock of the heap's held.
  for (const Found& f : found) proc(f.base, f.size, client_data);
}

void GC_print_free_list(int kind, size_t granules) {
  const std::size_t bytes = granules * 16;
  log_printf(
      "Free list of kind %d, %zu-byte objects: the allocator keeps free slots in its spans' bitmaps, not in "
      "lists; heap free bytes: %zu\n",
      kind, bytes, GC_get_free_bytes());
}

// Java objects (gc_gcj.h): the first word points to a vtable whose second
// word is a mark descriptor. Here they are scanned conservatively, every
// word: a superset of what any descriptor names.
void GC_init_gcj_malloc(int, void*) {
  ensure_init();
  GC_gcj_kind = GC_I_NORMAL;
  GC_gcj_debug_kind = GC_I_NORMAL;
}

void* GC_gcj_malloc(size_t size, void* vtable) {
  void* p = GC_malloc(size);
  if (p != nullptr) *static_cast<void**>(p) = vtable;
  return p;
}

void* GC_gcj_malloc_ignore_off_page(size_t size, void* vtable) { return GC_gcj_malloc(size, vtable); }

// Objects with a finalization closure (gc_disclaim.h), as Boehm does
// them: a kind of their own, scanned conservatively, whose disclaim
// procedure calls the closure (kept in the word before the object, tagged
// with 1) as the sweep reclaims the object; what the objects reach is
// marked from all of them, so the closure finds it intact.
namespace {
std::once_flag g_finalized_once;
int g_finalized_kind = -1;

int finalized_disclaim(void* obj) {
  const GC_word tagged = *static_cast<GC_word*>(obj);
  if ((tagged & 1) == 0) return 0;  // a cleared slot, never handed out
  const auto* c = reinterpret_cast<const GC_finalizer_closure*>(tagged & ~GC_word{1});
  c->proc(static_cast<GC_word*>(obj) + 1, c->cd);
  return 0;
}
}  // namespace

void GC_init_finalized_malloc(void) {
  ensure_init();
  std::call_once(g_finalized_once, [] {
    g_finalized_kind = static_cast<int>(GC_new_kind(GC_new_free_list(), GC_DS_LENGTH, 1, 1));
    GC_register_disclaim_proc(g_finalized_kind, finalized_disclaim, 1);
  });
}

void* GC_finalized_malloc(size_t size, const struct GC_finalizer_closure* fc) {
  GC_init_finalized_malloc();
  auto* base = static_cast<GC_word*>(GC_generic_malloc(size + sizeof(GC_word), g_finalized_kind));
  if (base == nullptr) return nullptr;
  *base = reinterpret_cast<GC_word>(fc) | 1;
  return base + 1;
}

void GC_register_disclaim_proc(int k, GC_disclaim_proc proc, int mark_from_all) {
  Kind kind;
  if (!kind_of_number(k, &kind) || scan_mode(kind) != ScanMode::kCustom)
    fatal("GC_register_disclaim_proc(%d): only kinds from GC_new_kind take disclaim procedures here", k);
  set_kind_disclaim(kind, proc, mark_from_all != 0);
}

// Boehm hands its free lists to the kind; here the kind's objects live in
// span classes of their own and the list is never used by the collector
// (a program may keep what GC_generic_malloc_many gives it there).  Like
// Boehm's, a list lives as long as the process: each one carries a hidden
// link word in front so that all of them stay reachable from
// g_free_lists, and leak checkers see them as owned rather than lost.
namespace {
Mutex g_free_lists_lock;
void** g_free_lists = nullptr;  // newest list's link word; each links to the previous
}  // namespace

void** GC_new_free_list(void) {
  ensure_init();
  auto* block = static_cast<void**>(std::calloc(kFreeListEntries + 1, sizeof(void*)));
  if (block == nullptr) fatal("GC_new_free_list: out of memory");
  std::lock_guard<Mutex> hold(g_free_lists_lock);
  block[0] = static_cast<void*>(g_free_lists);
  g_free_lists = block;
  return block + 1;
}

void** GC_new_free_list_inner(void) { return GC_new_free_list(); }

unsigned GC_new_kind(void**, GC_word descriptor, int add_size, int clear) {
  ensure_init();
  Kind kind;
  if (!register_kind({descriptor, add_size != 0, clear != 0}, &kind))
    fatal("GC_new_kind: all %d object kinds a program may define are taken", kMaxCustomKinds);
  return static_cast<unsigned>(boehm_number_of(kind));
}

unsigned GC_new_kind_inner(void** fl, GC_word d, int add_size, int clear) {
  return GC_new_kind(fl, d, add_size, clear);
}

unsigned GC_new_proc(GC_mark_proc proc) {
  ensure_init();
  unsigned index;
  if (!register_mark_proc(reinterpret_cast<MarkProc>(proc), &index))
    fatal("GC_new_proc: all %u mark procedures are taken", kMaxMarkProcs - kFirstMarkProc);
  return index;
}

unsigned GC_new_proc_inner(GC_mark_proc proc) { return GC_new_proc(proc); }

}  // extern "C"

namespace mgc::internal::boehm {
void lock_free_lists() { g_free_lists_lock.lock(); }
void unlock_free_lists() { g_free_lists_lock.unlock(); }
}  // namespace mgc::internal::boehm
