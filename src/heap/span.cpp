#include "heap/span.hpp"

#include <bit>

#include "heap/type_info.hpp"
#include "os/fatal.hpp"

namespace mgc::internal {

void MSpan::check() const {
  const auto where = static_cast<unsigned long>(base);
  const SpanState st = state.load(std::memory_order_relaxed);
  if (st == SpanState::kFree) fatal("span %#lx: check of a free span record", where);
  if (base % kPageSize != 0) fatal("span %#lx: base not page-aligned", where);
  if (npages == 0) fatal("span %#lx: no pages", where);
  if (st == SpanState::kLarge) {
    if (span_class != 0 || nelems != 1)
      fatal("span %#lx: large span with class %u, %u slots", where, span_class, nelems);
    return;
  }
  const int cls = span_class / kNumKinds;
  if (cls <= 0 || cls >= kNumSizeClasses) fatal("span %#lx: bad size class %d", where, cls);
  if (elem_size != kClassToSize[cls]) fatal("span %#lx: slot size %u is not class %d's", where, elem_size, cls);
  if (npages != kClassToAllocNPages[cls])
    fatal("span %#lx: %zu pages, class %d wants %u", where, npages, cls, kClassToAllocNPages[cls]);
  if (nelems != npages * kPageSize / elem_size)
    fatal("span %#lx: %u slots, expected %zu", where, nelems, npages * kPageSize / elem_size);
  std::uint32_t count = 0;
  for (std::size_t w = 0; w < kBitmapWords; w++) {
    const std::uint64_t bits = alloc_bits[w].load(std::memory_order_relaxed);
    if (bits & ~valid_mask(w)) fatal("span %#lx: alloc bit set beyond the last slot (word %zu)", where, w);
    if (pending_free[w].load(std::memory_order_relaxed) & ~valid_mask(w))
      fatal("span %#lx: pending free beyond the last slot (word %zu)", where, w);
    count += static_cast<std::uint32_t>(popcount64(bits));
  }
  if (count != alloc_count) fatal("span %#lx: alloc_count %u but %u alloc bits set", where, alloc_count, count);
  if ((kind == Kind::kTyped) != (type_records != nullptr)) fatal("span %#lx: type records do not match kind", where);
  if ((kind == Kind::kTiny) != (tiny != nullptr)) fatal("span %#lx: tiny masks do not match kind", where);
  if (kind == Kind::kTiny) {
    for (std::size_t i = 0; i < nelems; i++) {
      const std::uint16_t freed =
          static_cast<std::uint16_t>(tiny->local_freed[i] | tiny->remote_freed[i].load(std::memory_order_relaxed));
      if (!is_allocated(i) && (tiny->alloc_mask[i] != 0 || freed != 0))
        fatal("span %#lx: free tiny block %zu has object marks", where, i);
    }
  }
}

void SpanList::push(MSpan* s) {
  if (s->list != nullptr) fatal("span %#lx: pushed on a list while on another", static_cast<unsigned long>(s->base));
  s->prev = nullptr;
  s->next = first;
  if (first != nullptr) first->prev = s;
  first = s;
  s->list = this;
  count++;
}

void SpanList::remove(MSpan* s) {
  if (s->list != this) fatal("span %#lx: removed from a list it is not on", static_cast<unsigned long>(s->base));
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    first = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
  s->list = nullptr;
  count--;
}

MSpan* SpanList::pop() {
  MSpan* s = first;
  if (s != nullptr) remove(s);
  return s;
}

}  // namespace mgc::internal
