#include "prof/allocfreetrace.hpp"

#include <dlfcn.h>
#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "heap/mheap.hpp"
#include "heap/sweep.hpp"
#include "prof/sample.hpp"

namespace mgc::internal {

namespace {

// Frames of the stack printed below each line.
constexpr int kTraceFrames = 6;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNoscan:
      return "noscan";
    case Kind::kConservative:
      return "conservative";
    case Kind::kTyped:
      return "typed";
    case Kind::kTiny:
      return "tiny";
    case Kind::kUncollectable:
      return "uncollectable";
    case Kind::kAtomicUncollectable:
      return "atomic-uncollectable";
    default:
      return "custom";
  }
}

struct Line {
  char buf[2048];
  std::size_t len = 0;
  template <class... A>
  void add(const char* fmt, A... a) {
    if (len >= sizeof buf) return;
    const int n = std::snprintf(buf + len, sizeof buf - len, fmt, a...);
    if (n > 0) len = std::min(sizeof buf, len + static_cast<std::size_t>(n));
  }
  void flush() {
    const ssize_t w = write(2, buf, len);
    (void)w;
  }
};

// The stack from pc on (the allocator's frames dropped), one frame a line.
void add_stack(Line& l, const void* pc) {
  void* frames[32];
  const int n = backtrace(frames, 32);
  int start = n > 0 ? 1 : 0;
  for (int i = 0; i < n; i++)
    if (frames[i] == pc) {
      start = i;
      break;
    }
  for (int i = start; i < n && i < start + kTraceFrames; i++) {
    Dl_info di{};
    const auto a = reinterpret_cast<std::uintptr_t>(frames[i]);
    if (dladdr(frames[i], &di) != 0 && di.dli_sname != nullptr) {
      l.add("\t%p %s+%#lx\n", frames[i], di.dli_sname,
            static_cast<unsigned long>(a - reinterpret_cast<std::uintptr_t>(di.dli_saddr)));
    } else if (di.dli_fname != nullptr) {
      // No dynamic symbol (a local function, or a .cold part): the object
      // and the offset, for addr2line -e.
      l.add("\t%p (%s+%#lx)\n", frames[i], di.dli_fname,
            static_cast<unsigned long>(a - reinterpret_cast<std::uintptr_t>(di.dli_fbase)));
    } else {
      l.add("\t%p\n", frames[i]);
    }
  }
}

}  // namespace

void trace_alloc(const void* p, std::size_t size, Kind kind, const void* pc) {
  Line l;
  l.add("allocfreetrace: alloc %p size %zu kind %s\n", p, size, kind_name(kind));
  add_stack(l, pc);
  l.flush();
}

namespace {
// The sweep's report: no stack. The tiny allocator's blocks are reported
// as blocks (their objects went with them).
void trace_sweep_free(std::uintptr_t obj, std::size_t size, Kind kind) {
  Line l;
  l.add("allocfreetrace: sweep %p size %zu kind %s\n", reinterpret_cast<void*>(obj), size, kind_name(kind));
  l.flush();
}
}  // namespace

void set_allocfreetrace(bool on) {
  g_allocfreetrace.store(on, std::memory_order_relaxed);
  g_sweep_free_hook.store(on ? trace_sweep_free : nullptr, std::memory_order_relaxed);
}

void trace_free(const void* p, const void* pc) {
  std::size_t size = 0;
  const MSpan* s = mheap().span_of(reinterpret_cast<std::uintptr_t>(p));
  if (s != nullptr) size = s->is_large() ? s->npages * kPageSize : s->elem_size;
  Line l;
  l.add("allocfreetrace: free %p size %zu\n", p, size);
  add_stack(l, pc);
  l.flush();
}

}  // namespace mgc::internal
