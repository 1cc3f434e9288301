// find_object: which object, if any, an address lies in. Constant time and
// lock-free: the page -> span map, then the slot index by multiplication.
#include "runtime/object_info.hpp"

#include "heap/mheap.hpp"
#include "mallocgc/mallocgc.hpp"

namespace mgc {

bool find_object(const void* p, ObjectInfo* info) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  internal::MSpan* s = internal::mheap().span_of(a);
  if (s == nullptr) return false;
  const internal::SpanState st = s->state.load(std::memory_order_acquire);
  ObjectInfo out;
  if (st == internal::SpanState::kLarge) {
    out.base = reinterpret_cast<void*>(s->base);
    out.size = s->npages * internal::kPageSize;
  } else if (st == internal::SpanState::kSmall) {
    const std::size_t i = s->object_index(a);
    if (!s->is_allocated(i)) return false;
    out.base = reinterpret_cast<void*>(s->slot_address(i));
    out.size = s->elem_size;
  } else {
    return false;
  }
  switch (internal::scan_mode(s->kind)) {
    case internal::ScanMode::kNone:
      out.kind = ObjectKind::noscan;
      break;
    case internal::ScanMode::kConservative:
    case internal::ScanMode::kCustom:
      out.kind = ObjectKind::conservative;
      break;
    case internal::ScanMode::kTyped:
      out.kind = ObjectKind::typed;
      break;
  }
  if (info != nullptr) *info = out;
  return true;
}

}  // namespace mgc

namespace mgc::internal {

bool find_object_exact(const void* p, ObjectInfo* info) {
  if (!find_object(p, info)) return false;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  MSpan* s = mheap().span_of(a);
  if (s->kind != Kind::kTiny) return true;
  // The block's allocated-offset mask says where its objects start: p's
  // object is the last one starting at or before it, and ends where the
  // next begins. The owner may be adding objects to the mask meanwhile;
  // a 16-bit load sees it before or after, and p's own object, which the
  // caller got from the owner, is in it either way.
  const std::size_t b = s->object_index(a);
  const auto block = reinterpret_cast<std::uintptr_t>(info->base);
  const unsigned off = static_cast<unsigned>(a - block);
  const unsigned mask = __atomic_load_n(&s->tiny->alloc_mask[b], __ATOMIC_RELAXED);
  const unsigned at_or_below = mask & ((2u << off) - 1);
  if (at_or_below == 0) return false;
  const unsigned start = 31 - static_cast<unsigned>(__builtin_clz(at_or_below));
  const unsigned above = mask & ~((2u << start) - 1);
  const unsigned end = above == 0 ? static_cast<unsigned>(kTinySize) : static_cast<unsigned>(__builtin_ctz(above));
  info->base = reinterpret_cast<void*>(block + start);
  info->size = end - start;
  return true;
}

}  // namespace mgc::internal
