// mgc::free: explicit release of one object (Boehm's GC_FREE), from any
// thread.
//
// A pointer is checked before anything changes: it must lie in an in-use
// span (page -> span map), be the start of a slot (or of a tiny object in
// its block), and the slot must be allocated and not already freed.
// Anything else aborts with a message that names the address.
//
// The owner thread of the span clears the slot's bit in alloc_bits (no
// atomic read-modify-write; the cache finds the slot again at its next
// refill); other threads record it in the span's pending_free
// bitmap with an atomic OR and, the first time since the last merge, tell
// the span's central list, which makes a full span available again.
//
// An object with a finalizer or weak references loses them when freed, and
// a sampled object of the heap profile is counted freed (its span counts
// such objects; free() of a span with any takes the general path).
//
// Owns: nothing. Calls into the heap layer, gc/specials and prof/.
#include <bit>

#include "gc/specials.hpp"
#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/fatal.hpp"
#include "os/sanitizer.hpp"
#include "prof/allocfreetrace.hpp"
#include "prof/sample.hpp"
#include "runtime/debug_malloc.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc {

namespace {

using internal::fatal;
using internal::MSpan;

// A free by a thread that does not own the span announces itself on the
// span for as long as it may touch it (MSpan::frees_in_flight), so that the
// span is not given back to mheap under it.
class InFlight {
 public:
  explicit InFlight(MSpan* s) : s_(s) { s_->frees_in_flight.fetch_add(1, std::memory_order_seq_cst); }
  ~InFlight() { s_->frees_in_flight.fetch_sub(1, std::memory_order_release); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  MSpan* s_;
};

// A free by a thread that does not own the span is counted in the
// thread's own cache when it has one (no locked instruction), else in the
// shared counters. select picks the counter out of a set of counters.
template <class Select>
void count_free(Select select) {
  if (internal::MCache* c = internal::this_cache_if_any()) {
    internal::bump(select(c->counters));
  } else {
    select(internal::shared_counters()).fetch_add(1, std::memory_order_relaxed);
  }
}

void record_pending(MSpan* s, std::size_t i) {
  const std::size_t w = i / 64;
  const std::uint64_t bit = std::uint64_t{1} << (i % 64);
  const std::uint64_t prev = s->pending_free[w].fetch_or(bit, std::memory_order_seq_cst);
  if ((prev & bit) && s->kind != internal::Kind::kTiny)
    fatal("free(%p): object freed twice", reinterpret_cast<void*>(s->slot_address(i)));
  // Once per merge the flag goes 0 -> 1 and the central list hears of the
  // span; the plain (seq_cst) load spares later frees the locked exchange.
  // It cannot miss a merge: a merger clears the flag before it takes the
  // bits, so a free whose bit it did not take sees the flag clear.
  if (s->pending.load(std::memory_order_seq_cst) == 0 && s->pending.exchange(1, std::memory_order_seq_cst) == 0)
    internal::mcentral(s->span_class).notify_pending(s);
}

void free_large(MSpan* s, std::uintptr_t a) {
  if (a != s->base)
    fatal("free(%p): not the start of a live object (inside the large object at %p)", reinterpret_cast<void*>(a),
          reinterpret_cast<void*>(s->base));
  // Claim the span: of two racing frees, one wins and the other reports.
  auto expected = internal::SpanState::kLarge;
  if (!s->state.compare_exchange_strong(expected, internal::SpanState::kFreeing, std::memory_order_acq_rel))
    fatal("free(%p): object freed twice", reinterpret_cast<void*>(a));
  internal::AllocCounters& g = internal::shared_counters();
  g.large_frees.fetch_add(1, std::memory_order_relaxed);
  g.large_free_bytes.fetch_add(s->npages * internal::kPageSize, std::memory_order_relaxed);
  internal::mheap().free_span(s);
}

// c: the calling thread's cache if it owns s, else nullptr.
void free_tiny(MSpan* s, std::size_t b, unsigned off, internal::MCache* c) {
  const std::uintptr_t block = s->slot_address(b);
  if (!s->is_allocated(b))
    fatal("free(%p): not the start of a live object (free tiny block)", reinterpret_cast<void*>(block + off));
  if (c != nullptr) {
    c->owner_free_tiny(s, b, off);
    return;
  }
  const auto bit = static_cast<std::uint16_t>(1u << off);
  // The owner set the object's bit in the block's mask before the pointer
  // could reach us, so a real object's bit is visible here. The owner may
  // be adding other objects' bits to the same mask at this moment with
  // plain stores; on x86 a 16-bit load sees the word before or after.
  if (!(__atomic_load_n(&s->tiny->alloc_mask[b], __ATOMIC_RELAXED) & bit))
    fatal("free(%p): not the start of a live object (tiny block %#lx)", reinterpret_cast<void*>(block + off),
          static_cast<unsigned long>(block));
  InFlight in_flight(s);
  const std::uint16_t prev = s->tiny->remote_freed[b].fetch_or(bit, std::memory_order_acq_rel);
  if (prev & bit) fatal("free(%p): object freed twice", reinterpret_cast<void*>(block + off));
  count_free([](internal::AllocCounters & k) -> auto& { return k.tiny_frees; });
  record_pending(s, b);
}

// Everything but the owner's free of a valid small object: large objects,
// tiny ones, frees by other threads, and every error.
[[gnu::noinline]] void free_general(void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  MSpan* s = internal::mheap().span_of(a);
  if (s == nullptr) fatal("free(%p): not a live object of this heap (the address is not in any in-use span)", p);
  const internal::SpanState st = s->state.load(std::memory_order_acquire);
  // A finalizer or weak reference of the object goes with it (validated
  // first: the object must be the start of a live one).
  if (s->specials.load(std::memory_order_acquire) != 0 &&
      (st == internal::SpanState::kLarge || st == internal::SpanState::kSmall)) {
    const std::size_t i = st == internal::SpanState::kLarge ? 0 : s->object_index(a);
    // Tiny objects' specials are keyed by the object's own address.
    if (i < s->nelems && s->is_allocated(i)) {
      const std::uintptr_t base = st == internal::SpanState::kLarge  ? s->base
                                  : s->kind == internal::Kind::kTiny ? a
                                                                     : s->slot_address(i);
      internal::drop_specials(base);
      internal::profile_free(base);
    }
  }
  if (st == internal::SpanState::kLarge) return free_large(s, a);
  if (st == internal::SpanState::kFreeing) fatal("free(%p): object freed twice", p);
  if (st != internal::SpanState::kSmall) fatal("free(%p): not a live object of this heap (span is free)", p);
  const std::size_t i = s->object_index(a);
  const std::uintptr_t slot = s->slot_address(i);
  auto* c = reinterpret_cast<internal::MCache*>(internal::tls_cache);
  const bool owner = s->owner.load(std::memory_order_relaxed) == c;
  if (s->kind == internal::Kind::kTiny) return free_tiny(s, i, static_cast<unsigned>(a - slot), owner ? c : nullptr);
  if (a != slot)
    fatal("free(%p): not the start of a live object (inside the object at %p)", p, reinterpret_cast<void*>(slot));
  if (owner) return c->owner_free(s, i);  // reports what the fast case did not accept
  if (!s->is_allocated(i)) fatal("free(%p): object is not allocated (freed twice?)", p);
  // Before the pending bit can be seen: once merged, the owner may hand
  // the slot out (and unpoison it) at once.
  internal::object_freed(p, s->elem_size);
  InFlight in_flight(s);
  const int size_class = s->span_class / internal::kNumKinds;
  count_free([size_class](internal::AllocCounters & k) -> auto& { return k.nfree[size_class]; });
  record_pending(s, i);
}

}  // namespace

void free(void* p) {
  if (p == nullptr) return;
  if (__builtin_expect(internal::g_allocfreetrace.load(std::memory_order_relaxed), 0))
    internal::trace_free(p, __builtin_return_address(0));
  internal::debug_free_enter();
  // The common case, a leaf with no call: this thread owns the span of a
  // small, non-tiny object, which becomes free in alloc_bits without an
  // atomic read-modify-write. Anything else, errors included, goes to
  // free_general.
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  MSpan* s = internal::mheap().span_of(a);
  auto* c = reinterpret_cast<internal::MCache*>(internal::tls_cache);
  if (__builtin_expect(s != nullptr && s->owner.load(std::memory_order_relaxed) == c &&
                           s->specials.load(std::memory_order_relaxed) == 0,
                       1)) {
    // owner == c excludes large spans (never owned) and free span records
    // (their owner is cleared before they are freed). The tests below run
    // one after the other, each dropping what it no longer needs, so that
    // the common case fits in scratch registers.
    const int spc = s->span_class;
    const std::uintptr_t off = a - s->base;
    const auto i = static_cast<std::size_t>((off * static_cast<std::uint64_t>(s->div_magic)) >> 32);
    if (__builtin_expect(spc != internal::kTinySpanClass, 1)) {
      const std::size_t w = i / 64;
      const std::uint64_t bit = std::uint64_t{1} << (i % 64);
      const std::uint64_t bits = s->alloc_bits[w].load(std::memory_order_relaxed);
      const internal::AllocSlot& as = c->front.alloc[spc];
      if (__builtin_expect(i * s->elem_size == off, 1) && __builtin_expect((bits & bit) != 0, 1) &&
          __builtin_expect(!(s->pending_free[w].load(std::memory_order_relaxed) & bit), 1) &&
          __builtin_expect(as.chunk_word != w || !(as.alloc_cache & bit), 1)) {
        internal::object_freed(p, s->elem_size);
        s->clear_alloc_bit(w, bits, bit);
        internal::bump(c->counters.nfree[spc / internal::kNumKinds]);
        internal::debug_free_exit();
        return;
      }
    } else if (__builtin_expect(s->is_allocated(i), 1)) {
      // A tiny object in a block of this thread's: one call, which checks
      // the offset against the block's objects.
      c->owner_free_tiny(s, i, static_cast<unsigned>(off - i * internal::kTinySize));
      internal::debug_free_exit();
      return;
    }
  }
  // Only p is passed on (the span is looked up again), so that nothing of
  // the case above has to survive the call: the common case then needs no
  // stack frame.
  free_general(p);
  internal::debug_free_exit();
}

}  // namespace mgc
