// find_object: which object, if any, an address lies in. Constant time and
// lock-free: the page -> span map, then the slot index by multiplication.
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
