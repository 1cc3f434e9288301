// The Boehm face: what its files share. libgc.so.1 is the core
// (src/os, heap, gc, runtime) plus this layer, which maps Boehm's API onto
// the core's allocator, collector and specials and keeps Boehm's global
// variables (data symbols) in step with them; it allocates nothing on its
// own and collects nothing on its own.
//
// Boehm's kinds map onto span-class kinds: PTRFREE is noscan (the tiny
// allocator below 16 bytes), NORMAL conservative, UNCOLLECTABLE and
// AUNCOLLECTABLE the core's root kinds, typed allocation the typed kind.
// With GC_all_interior_pointers on (Boehm's default), collectable objects
// get one extra byte, as Boehm's do, so that a pointer just past the end of
// an object still points into it.
//
// Owns: the face's settings and state (init, the warn proc, the log, the
// out-of-memory path). Never touches a cache or a span directly.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "compat/boehm/gc_abi.hpp"
#include "mallocgc/internal/cache_front.hpp"

namespace mgc::internal::boehm {

// Bytes added to collectable allocations: 1 when interior pointers are
// recognised (GC_all_interior_pointers at init), as Boehm's EXTRA_BYTES.
extern std::size_t g_extra_bytes;

// Initialise once (GC_init): options, Boehm's environment variables, the
// calling thread's registration, the hooks. Cheap after the first call.
extern std::atomic<bool> g_initialized;
void init_once();

// The compat layer's leaf locks, held across fork() after the core's
// (runtime/collect: set_fork_extra_locks).
void lock_togglerefs();
void unlock_togglerefs();
void lock_free_lists();
void unlock_free_lists();
void lock_layouts();
void unlock_layouts();
inline void ensure_init() {
  if (!g_initialized.load(std::memory_order_acquire)) init_once();
}

// size + extra, saturating (a request that overflows then fails).
inline std::size_t padded(std::size_t size) { return size + g_extra_bytes < size ? SIZE_MAX : size + g_extra_bytes; }

// Allocate size bytes of kind, the requested size as given (not padded);
// nullptr only after the out-of-memory path (below) gave nullptr.
void* allocate(std::size_t size, Kind kind);

// What GC_oom_fn gives for a request of `requested` bytes.
void* call_oom_fn(std::size_t requested);

// An allocation of `requested` bytes failed: collect (unless collection is
// disabled) and retry with attempt(), up to GC_max_retries + 1 times, then
// return what GC_oom_fn gives. Nothing is held when GC_oom_fn runs: it may
// longjmp (ECL signals a Lisp condition from it).
template <class Attempt>
void* out_of_memory(std::size_t requested, Attempt&& attempt) {
  // A request too large for any heap fails at once, as Boehm's does.
  constexpr std::size_t kHopeless = std::size_t{1} << 46;
  if (requested < kHopeless && GC_dont_gc == 0) {
    for (GC_word i = 0; i <= GC_max_retries; i++) {
      GC_gcollect();
      if (void* p = attempt()) return p;
    }
  }
  return call_oom_fn(requested);
}

// The object holding p: its start and usable size (a tiny object's own
// bytes, not its block's). false when p is in no allocated object.
bool object_extent(const void* p, void** base, std::size_t* size);
// Boehm's kind number of the object at base (GC_I_PTRFREE...).
int boehm_kind_of(const void* base);
// Boehm's kind numbers and the core's kinds: 0..3 as Boehm has them,
// program-defined kinds from 4 on.
int boehm_number_of(Kind kind);
bool kind_of_number(int number, Kind* out);

// Warnings through the program's warn proc (Boehm's WARN): msg is a printf
// format with at most one conversion, taking arg.
void warn(const char* msg, GC_word arg);
// Write to the log (GC_LOG_FILE, GC_set_log_fd; stderr by default).
void log_printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
int log_fd();
void set_log_fd(int fd);
// GC_PRINT_STATS is on: a line per collection goes to the log.
bool print_stats();

// Boehm's defaults of its function pointers (data.cpp, debug.cpp).
void* default_oom_fn(std::size_t);
void default_abort_func(const char* msg);
void default_displacement_print_proc(void* p);
void default_visible_print_proc(void* p);
void default_same_obj_print_proc(void* p, void* q);
// Boehm's default pushes the threads' stacks, which the core scans itself;
// a program that chains to the previous value may call it.
void default_push_other_roots();

// The calling thread holds GC_alloc_lock: no cycle may start from it.
extern __thread bool tls_holds_alloc_lock __attribute__((tls_model("initial-exec")));

// Collections the face started or allowed, for GC_gc_no and statistics.
void after_collection();
// Run or announce queued finalizers as GC_finalize_on_demand says (Boehm's
// GC_notify_or_invoke_finalizers).
void notify_or_invoke_finalizers();

// Bytes of uncollectable objects (Boehm's GC_non_gc_bytes bookkeeping) and
// of explicit frees since the last collection.
extern std::atomic<std::size_t> g_freed_since_gc;

}  // namespace mgc::internal::boehm
