// Boehm's debugging aids, messages and pointer checks.
//
// Debug allocation (GC_debug_malloc and friends, what GC_DEBUG builds of a
// program call) is real: every object carries Boehm's 32-byte header (the
// file and line of the call, the requested size, a start marker) and an
// end marker in the last word of its slot; GC_base gives the header's
// address, the program gets the bytes after it. GC_debug_free and
// GC_debug_realloc check both markers and report a smashed object on
// stderr, as Boehm does. Unlike Boehm, a collection does not check every
// debug object, and no back pointers are kept (README.md says so).
//
// GC_dump and its relatives print this heap's state in this heap's terms
// (spans, size classes, the core's statistics), not Boehm's block lists.
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "compat/boehm/boehm.hpp"
#include "gc/collector.hpp"
#include "gc/roots.hpp"
#include "gc/specials.hpp"
#include "gc/threads.hpp"
#include "heap/mheap.hpp"
#include "heap/type_info.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/fatal.hpp"

namespace mgc::internal::boehm {
namespace {

struct DebugHeader {
  const char* file;
  GC_word line;
  GC_word size;   // bytes requested
  GC_word start;  // kStartFlag ^ the user address
};
static_assert(sizeof(DebugHeader) == 32);
constexpr GC_word kStartFlag = 0xFEDCEDCBFEDCEDCBul;
constexpr GC_word kEndFlag = 0xBCDECDEFBCDECDEFul;
constexpr std::size_t kDebugExtra = sizeof(DebugHeader) + sizeof(GC_word);

void default_warn_proc(char* msg, GC_word arg);
GC_warn_proc g_warn_proc = default_warn_proc;

void write_all(int fd, const char* buf, std::size_t len) {
  while (len > 0) {
    const ssize_t w = write(fd, buf, len);
    if (w <= 0) return;
    buf += w;
    len -= static_cast<std::size_t>(w);
  }
}

void vprint(int fd, const char* format, va_list ap) {
  char buf[1024];
  const int n = std::vsnprintf(buf, sizeof buf, format, ap);
  if (n > 0)
    write_all(fd, buf, static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1);
}

// Where Boehm's GC_stdout and GC_stderr go: the log file when GC_LOG_FILE
// names one (unless GC_ONLY_LOG_TO_FILE says otherwise).
int out_fd(int standard) {
  if (log_fd() == 2) return standard;
  const char* only = std::getenv("GC_ONLY_LOG_TO_FILE");
  return only == nullptr || std::strcmp(only, "0") == 0 ? log_fd() : standard;
}

void print(int fd, const char* format, ...) __attribute__((format(printf, 2, 3)));
void print(int fd, const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  vprint(fd, format, ap);
  va_end(ap);
}

// The end marker's word: the last of the slot.
GC_word* end_marker(void* base) { return reinterpret_cast<GC_word*>(static_cast<char*>(base) + GC_size(base)) - 1; }

void* debug_alloc(void* base, std::size_t size, const char* file, int line) {
  if (base == nullptr) return nullptr;
  auto* h = static_cast<DebugHeader*>(base);
  void* user = h + 1;
  h->file = file;
  h->line = static_cast<GC_word>(line);
  h->size = size;
  h->start = kStartFlag ^ reinterpret_cast<GC_word>(user);
  *end_marker(base) = kEndFlag ^ reinterpret_cast<GC_word>(user);
  return user;
}

// The header of the debug object whose user part starts at p, or nullptr
// when p is no such thing.
DebugHeader* header_of(void* p) {
  void* base = GC_base(p);
  if (base == nullptr || static_cast<char*>(p) - static_cast<char*>(base) != sizeof(DebugHeader)) return nullptr;
  return static_cast<DebugHeader*>(base);
}

// Both markers intact? Reports a smashed one as Boehm does.
void check_markers(const char* who, DebugHeader* h, void* p) {
  const GC_word* start = &h->start;
  const GC_word* end = end_marker(h);
  const GC_word* smashed = nullptr;
  if (*start != (kStartFlag ^ reinterpret_cast<GC_word>(p))) {
    smashed = start;
  } else if (*end != (kEndFlag ^ reinterpret_cast<GC_word>(p))) {
    smashed = end;
  }
  if (smashed == nullptr) return;
  print(out_fd(2), "%s: found smashed location at %p in or near object at %p(%s:%lu, sz=%lu)\n", who,
        static_cast<const void*>(smashed), p, h->file != nullptr ? h->file : "unknown", h->line, h->size);
}

struct DebugClosure {
  GC_finalization_proc fn;
  void* cd;
};

void invoke_debug_finalizer(void* base, void* closure) {
  auto* c = static_cast<DebugClosure*>(closure);
  c->fn(static_cast<char*>(base) + sizeof(DebugHeader), c->cd);
}

void register_debug_finalizer(void* p, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn, void** ocd,
                              void (*reg)(void*, GC_finalization_proc, void*, GC_finalization_proc*, void**)) {
  DebugHeader* h = header_of(p);
  if (h == nullptr) return reg(p, fn, cd, ofn, ocd);  // not a debug object
  void* closure = nullptr;
  if (fn != nullptr) {
    auto* c = static_cast<DebugClosure*>(GC_malloc(sizeof(DebugClosure)));
    if (c == nullptr) return;
    c->fn = fn;
    c->cd = cd;
    closure = c;
  }
  GC_finalization_proc old_fn;
  void* old_cd;
  reg(h, fn != nullptr ? invoke_debug_finalizer : nullptr, closure, &old_fn, &old_cd);
  // Hand back what the program registered, not the wrapper.
  if (old_fn == invoke_debug_finalizer && old_cd != nullptr) {
    old_fn = static_cast<DebugClosure*>(old_cd)->fn;
    old_cd = static_cast<DebugClosure*>(old_cd)->cd;
  }
  if (ofn != nullptr) *ofn = old_fn;
  if (ocd != nullptr) *ocd = old_cd;
}

[[noreturn]] void check_failed(const char* msg) {
  if (GC_abort_func f = GC_on_abort) f(msg);
  std::abort();
}

// Is the word at p one the collector scans: on a registered thread's stack,
// in the data of a loaded object, in an explicit root range, or a scanned
// word of a heap object?
bool visible(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uintptr_t lo, hi;
  if (this_thread_record() != nullptr && current_stack_bounds(&lo, &hi) && a >= lo && a < hi) return true;
  if (in_root_range(a)) return true;
  if (GC_is_tmp_root(const_cast<void*>(p))) return true;
  mgc::ObjectInfo info;
  if (!mgc::find_object(p, &info)) return false;
  switch (info.kind) {
    case mgc::ObjectKind::noscan:
      return false;
    case mgc::ObjectKind::conservative:
      return true;
    case mgc::ObjectKind::typed:
      return true;  // a typed object's words: the pointer ones are scanned
  }
  return false;
}

void default_warn_proc(char* msg, GC_word arg) { print(out_fd(2), msg, arg); }

}  // namespace

void warn(const char* msg, GC_word arg) { g_warn_proc(const_cast<char*>(msg), arg); }

void default_abort_func(const char* msg) {
  if (msg == nullptr) return;
  write_all(2, msg, std::strlen(msg));
  write_all(2, "\n", 1);
}

void default_displacement_print_proc(void* p) {
  print(out_fd(2), "%p does not point to a valid object displacement\n", p);
  check_failed("GC_is_valid_displacement test failed");
}

void default_visible_print_proc(void* p) {
  print(out_fd(2), "%p is not a GC visible pointer location\n", p);
  check_failed("GC_is_visible test failed");
}

void default_same_obj_print_proc(void* p, void* q) {
  print(out_fd(2), "%p and %p are not in the same object\n", p, q);
  check_failed("GC_same_obj test failed");
}

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

void* GC_debug_malloc(size_t size, const char* file, int line) {
  return debug_alloc(GC_malloc(size + kDebugExtra), size, file, line);
}
void* GC_debug_malloc_atomic(size_t size, const char* file, int line) {
  return debug_alloc(GC_malloc_atomic(size + kDebugExtra), size, file, line);
}
void* GC_debug_malloc_uncollectable(size_t size, const char* file, int line) {
  return debug_alloc(GC_malloc_uncollectable(size + kDebugExtra), size, file, line);
}
void* GC_debug_malloc_atomic_uncollectable(size_t size, const char* file, int line) {
  return debug_alloc(GC_malloc_atomic_uncollectable(size + kDebugExtra), size, file, line);
}
void* GC_debug_malloc_ignore_off_page(size_t size, const char* file, int line) {
  return GC_debug_malloc(size, file, line);
}
void* GC_debug_malloc_atomic_ignore_off_page(size_t size, const char* file, int line) {
  return GC_debug_malloc_atomic(size, file, line);
}
void* GC_debug_malloc_stubborn(size_t size, const char* file, int line) { return GC_debug_malloc(size, file, line); }
void* GC_debug_generic_or_special_malloc(size_t size, int k, const char* file, int line) {
  return debug_alloc(GC_generic_or_special_malloc(size + kDebugExtra, k), size, file, line);
}
void* GC_debug_gcj_malloc(size_t size, void* vtable, const char* file, int line) {
  void* p = debug_alloc(GC_malloc(size + kDebugExtra), size, file, line);
  if (p != nullptr) *static_cast<void**>(p) = vtable;
  return p;
}
void* GC_debug_malloc_replacement(size_t size) { return GC_debug_malloc(size, "unknown", 0); }
void* GC_debug_realloc_replacement(void* p, size_t size) { return GC_debug_realloc(p, size, "unknown", 0); }

void GC_debug_free(void* p) {
  if (p == nullptr) return;
  DebugHeader* h = header_of(p);
  if (h == nullptr) {
    print(out_fd(2), "GC_debug_free called on pointer %p w/o debugging info\n", p);
    GC_free(p);
    return;
  }
  check_markers("GC_debug_free", h, p);
  GC_free(h);
}

void* GC_debug_realloc(void* p, size_t size, const char* file, int line) {
  if (p == nullptr) return GC_debug_malloc(size, file, line);
  if (size == 0) {
    GC_debug_free(p);
    return nullptr;
  }
  DebugHeader* h = header_of(p);
  if (h == nullptr) {
    print(out_fd(2), "GC_debug_realloc called on pointer %p w/o debugging info\n", p);
    return GC_realloc(p, size);
  }
  check_markers("GC_debug_realloc", h, p);
  int k = GC_get_kind_and_size(h, nullptr);
  void* q = debug_alloc(GC_generic_or_special_malloc(size + kDebugExtra, k < 0 ? GC_I_NORMAL : k), size, file, line);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, size < h->size ? size : h->size);
  GC_free(h);
  return q;
}

char* GC_debug_strdup(const char* s, const char* file, int line) {
  if (s == nullptr) return nullptr;
  const std::size_t n = std::strlen(s) + 1;
  auto* p = static_cast<char*>(GC_debug_malloc_atomic(n, file, line));
  if (p != nullptr) std::memcpy(p, s, n);
  return p;
}

char* GC_debug_strndup(const char* s, size_t max, const char* file, int line) {
  const std::size_t n = strnlen(s, max);
  auto* p = static_cast<char*>(GC_debug_malloc_atomic(n + 1, file, line));
  if (p == nullptr) return nullptr;
  std::memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void GC_debug_change_stubborn(const void*) {}
void GC_debug_end_stubborn_change(const void*) {}
void GC_debug_ptr_store_and_dirty(void* p, const void* q) { GC_ptr_store_and_dirty(p, q); }
void GC_debug_register_displacement(size_t n) {
  GC_register_displacement(n);
  GC_register_displacement(n + sizeof(DebugHeader));
}

void GC_debug_register_finalizer(void* p, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn, void** ocd) {
  register_debug_finalizer(p, fn, cd, ofn, ocd, GC_register_finalizer);
}
void GC_debug_register_finalizer_ignore_self(void* p, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                             void** ocd) {
  register_debug_finalizer(p, fn, cd, ofn, ocd, GC_register_finalizer_ignore_self);
}
void GC_debug_register_finalizer_no_order(void* p, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                          void** ocd) {
  register_debug_finalizer(p, fn, cd, ofn, ocd, GC_register_finalizer_no_order);
}
void GC_debug_register_finalizer_unreachable(void* p, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                             void** ocd) {
  register_debug_finalizer(p, fn, cd, ofn, ocd, GC_register_finalizer_unreachable);
}

size_t GC_get_debug_header_size(void) { return sizeof(DebugHeader); }

void GC_dump_named(const char* name) {
  const mgc::Stats st = mgc::stats();
  const int fd = out_fd(1);
  if (name != nullptr) {
    print(fd, "***GC Dump %s\n", name);
  } else {
    print(fd, "***GC Dump collection #%lu\n", static_cast<unsigned long>(GC_gc_no));
  }
  print(fd, "Heap: %lu bytes committed, %lu free in page runs, %lu in spans, %lu reserved\n",
        static_cast<unsigned long>(st.heap_sys), static_cast<unsigned long>(st.heap_idle),
        static_cast<unsigned long>(st.heap_inuse), static_cast<unsigned long>(st.heap_reserved));
  print(fd, "Objects: %lu allocated (%lu bytes); %lu allocations, %lu frees since start\n",
        static_cast<unsigned long>(st.heap_objects), static_cast<unsigned long>(st.heap_alloc),
        static_cast<unsigned long>(st.mallocs), static_cast<unsigned long>(st.frees));
  print(fd, "Collections: %lu, %.3f ms of pauses; next at %lu bytes of heap\n", static_cast<unsigned long>(st.num_gc),
        static_cast<double>(st.pause_total_ns) / 1e6, static_cast<unsigned long>(st.heap_goal));
  GC_dump_regions();
  GC_dump_finalization();
}

void GC_dump(void) { GC_dump_named(nullptr); }

void GC_dump_regions(void) {
  const mgc::Stats st = mgc::stats();
  const int fd = out_fd(1);
  print(fd, "***Size classes (bytes: objects allocated now)\n");
  for (std::size_t i = 1; i < st.by_size.size(); i++) {
    const mgc::SizeClassStats& c = st.by_size[i];
    if (c.mallocs > c.frees) print(fd, "%lu: %lu\n", static_cast<unsigned long>(c.size), c.mallocs - c.frees);
  }
  print(fd, "tiny objects: %lu; large objects: %lu\n", static_cast<unsigned long>(st.tiny_mallocs - st.tiny_frees),
        static_cast<unsigned long>(st.large_mallocs - st.large_frees));
}

void GC_dump_finalization(void) {
  const SpecialsCounts c = specials_counts();
  print(out_fd(1),
        "***Finalization: %zu objects with finalizers, %zu queued to run, %zu disappearing links, %zu long links\n",
        c.finalizers, c.queued, c.short_links, c.long_links);
}

void* GC_same_obj(void* p, void* q) {
  void* bp = GC_base(p);
  void* bq = GC_base(q);
  const bool heap_p = GC_is_heap_ptr(p), heap_q = GC_is_heap_ptr(q);
  if ((!heap_p && !heap_q) || (bp != nullptr && bp == bq)) return p;
  GC_same_obj_print_proc(p, q);
  return p;
}

void* GC_pre_incr(void** p, ptrdiff_t how_much) {
  void* initial = *p;
  void* result = static_cast<char*>(initial) + how_much;
  *p = GC_same_obj(result, initial);
  return *p;
}

void* GC_post_incr(void** p, ptrdiff_t how_much) {
  void* initial = *p;
  void* result = static_cast<char*>(initial) + how_much;
  *p = GC_same_obj(result, initial);
  return initial;
}

void* GC_is_visible(void* p) {
  if (!visible(p)) GC_is_visible_print_proc(p);
  return p;
}

// Every interior pointer counts here, so any address inside an allocated
// object is a valid displacement; one in the heap but in no object is not.
void* GC_is_valid_displacement(void* p) {
  if (GC_is_heap_ptr(p) && GC_base(p) == nullptr) GC_is_valid_displacement_print_proc(p);
  return p;
}

void GC_set_warn_proc(GC_warn_proc p) { g_warn_proc = p != nullptr ? p : default_warn_proc; }
GC_warn_proc GC_get_warn_proc(void) { return g_warn_proc; }

void GC_ignore_warn_proc(char* msg, GC_word arg) {
  // Boehm still logs these while it prints statistics.
  if (print_stats()) print(log_fd(), msg, arg);
}

void GC_set_abort_func(GC_abort_func f) { GC_on_abort = f; }
GC_abort_func GC_get_abort_func(void) { return GC_on_abort; }

void GC_set_log_fd(int fd) { set_log_fd(fd); }

void GC_printf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  vprint(out_fd(1), format, ap);
  va_end(ap);
}

void GC_err_printf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  vprint(out_fd(2), format, ap);
  va_end(ap);
}

void GC_log_printf(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  vprint(log_fd(), format, ap);
  va_end(ap);
}

}  // extern "C"
