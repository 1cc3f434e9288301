// The C API: one-line forwards to the C++ core (mallocgc.h).
#include <cstring>

#include "heap/type_info.hpp"
#include "mallocgc/mallocgc.h"
#include "mallocgc/mallocgc.hpp"

static_assert(MGC_NUM_SIZE_CLASSES == mgc::internal::kNumSizeClasses, "mallocgc.h disagrees with the size classes");

extern "C" {

const mgc_type_t* mgc_type_create(size_t size, const size_t* pointer_offsets, size_t count) {
  if (count != 0 && pointer_offsets == nullptr) return nullptr;
  mgc::internal::TypeError e;
  return reinterpret_cast<const mgc_type_t*>(mgc::internal::intern_type(size, pointer_offsets, count, &e));
}

void* mgc_alloc(size_t size) { return mgc::alloc(size); }

void* mgc_alloc_noscan(size_t size) { return mgc::alloc_noscan(size); }

void* mgc_alloc_typed(const mgc_type_t* type) {
  if (type == nullptr) return nullptr;
  return mgc::alloc_typed(mgc::Type(reinterpret_cast<const mgc::internal::TypeInfo*>(type)));
}

void mgc_free(void* p) { mgc::free(p); }

void mgc_stats(mgc_stats_t* out) {
  if (out == nullptr) return;
  const mgc::Stats s = mgc::stats();
  std::memset(out, 0, sizeof *out);
  out->heap_alloc = s.heap_alloc;
  out->heap_objects = s.heap_objects;
  out->heap_sys = s.heap_sys;
  out->heap_reserved = s.heap_reserved;
  out->heap_inuse = s.heap_inuse;
  out->heap_idle = s.heap_idle;
  out->mallocs = s.mallocs;
  out->frees = s.frees;
  out->large_mallocs = s.large_mallocs;
  out->large_frees = s.large_frees;
  out->tiny_mallocs = s.tiny_mallocs;
  out->tiny_frees = s.tiny_frees;
  out->num_threads = s.num_threads;
  for (int i = 0; i < MGC_NUM_SIZE_CLASSES; i++) {
    out->by_size[i].size = s.by_size[i].size;
    out->by_size[i].mallocs = s.by_size[i].mallocs;
    out->by_size[i].frees = s.by_size[i].frees;
  }
}

}  // extern "C"
