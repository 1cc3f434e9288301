// The C API: one-line forwards to the C++ core (mallocgc.h).
#include <cstring>

#include "gc/specials.hpp"
#include "gc/threads.hpp"
#include "heap/type_info.hpp"
#include "mallocgc/mallocgc.h"
#include "mallocgc/mallocgc.hpp"
#include "runtime/thread_cache.hpp"

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
  out->heap_released = s.heap_released;
  out->mallocs = s.mallocs;
  out->frees = s.frees;
  out->large_mallocs = s.large_mallocs;
  out->large_frees = s.large_frees;
  out->tiny_mallocs = s.tiny_mallocs;
  out->tiny_frees = s.tiny_frees;
  out->num_threads = s.num_threads;
  out->num_gc = s.num_gc;
  out->heap_goal = s.heap_goal;
  out->next_gc = s.next_gc;
  out->heap_live_after_mark = s.heap_live_after_mark;
  out->gc_roots_bytes = s.gc_roots_bytes;
  out->pause_total_ns = s.pause_total_ns;
  for (int i = 0; i < 256; i++) out->pause_ns[i] = s.pause_ns[static_cast<std::size_t>(i)];
  out->gc_cpu_fraction = s.gc_cpu_fraction;
  out->gc_cpu_limited = s.gc_cpu_limited;
  for (int i = 0; i < MGC_NUM_SIZE_CLASSES; i++) {
    out->by_size[i].size = s.by_size[i].size;
    out->by_size[i].mallocs = s.by_size[i].mallocs;
    out->by_size[i].frees = s.by_size[i].frees;
  }
}

void mgc_collect(void) { mgc::collect(); }
size_t mgc_release_memory(void) { return mgc::release_memory(); }
int mgc_start_trace(void) { return mgc::start_trace() ? 1 : 0; }
void mgc_stop_trace(void) { mgc::stop_trace(); }
int mgc_write_trace(const char* path) { return path != nullptr && mgc::write_trace(path) ? 1 : 0; }
int mgc_set_gc_percent(int percent) { return mgc::set_gc_percent(percent); }
int64_t mgc_set_memprofile_rate(int64_t bytes) { return mgc::set_memprofile_rate(bytes); }
int mgc_write_heap_profile(const char* path) { return mgc::write_heap_profile(path) ? 0 : -1; }
int64_t mgc_set_memory_limit(int64_t bytes) { return mgc::set_memory_limit(bytes); }
void mgc_add_roots(void* begin, void* end) { mgc::add_roots(begin, end); }
void mgc_remove_roots(void* begin, void* end) { mgc::remove_roots(begin, end); }
int mgc_set_finalizer(void* obj, void (*fn)(void*, void*), void* data) {
  return mgc::internal::set_finalizer(obj, fn, data) ? 1 : 0;
}
void mgc_wait_for_finalizers(void) { mgc::wait_for_finalizers(); }
int mgc_register_thread(void) { return mgc::internal::register_thread_scope() ? 1 : 0; }
void mgc_unregister_thread(void) { mgc::internal::unregister_thread(); }

mgc_weak_t* mgc_weak_create(void* p) { return reinterpret_cast<mgc_weak_t*>(mgc::internal::weak_create(p)); }
void* mgc_weak_get(const mgc_weak_t* w) {
  return w == nullptr ? nullptr : mgc::internal::weak_get(reinterpret_cast<const mgc::internal::WeakHandle*>(w));
}
void mgc_weak_destroy(mgc_weak_t* w) {
  if (w != nullptr) mgc::internal::weak_destroy(reinterpret_cast<mgc::internal::WeakHandle*>(w));
}

}  // extern "C"
