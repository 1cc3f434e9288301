#include "gc/roots.hpp"

#include <link.h>

#include <algorithm>
#include <mutex>

#include "os/fatal.hpp"
#include "os/immortal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {

namespace {

Mutex g_roots_lock;
std::vector<RootRange>& explicit_list() {
  static Immortal<std::vector<RootRange>> x;
  return *x;
}

// Excluded ranges: the allocator's first (never cleared), then the
// program's from g_program_excluded_from on.
std::vector<RootRange>& excluded() {
  static Immortal<std::vector<RootRange>> x;
  return *x;
}
std::size_t g_program_excluded_from = 0;
Mutex g_excluded_lock;
bool (*g_segment_filter)(const char*, std::uintptr_t, std::size_t) = nullptr;

// Append [b, e) minus every excluded range.
void add_minus_excluded(std::vector<RootRange>* out, std::uintptr_t b, std::uintptr_t e) {
  std::vector<RootRange> pieces{{b, e, RootKind::kGlobal}};
  for (const RootRange& x : excluded()) {
    std::vector<RootRange> next;
    for (const RootRange& p : pieces) {
      if (x.end <= p.begin || x.begin >= p.end) {
        next.push_back(p);
        continue;
      }
      if (p.begin < x.begin) next.push_back({p.begin, x.begin, RootKind::kGlobal});
      if (x.end < p.end) next.push_back({x.end, p.end, RootKind::kGlobal});
    }
    pieces.swap(next);
  }
  out->insert(out->end(), pieces.begin(), pieces.end());
}

// A hash of the loader's object list; false when it is being changed.
// Read under the loader's lock (see segment_callback), which ThreadSanitizer
// does not see: not instrumented.
__attribute__((no_sanitize("thread"))) bool link_signature(std::uint64_t* sig) {
  if (_r_debug.r_state != r_debug::RT_CONSISTENT) return false;
  std::uint64_t h = 1469598103934665603ull;
  for (const link_map* m = _r_debug.r_map; m != nullptr; m = m->l_next) {
    h = (h ^ m->l_addr) * 1099511628211ull;
    h = (h ^ reinterpret_cast<std::uintptr_t>(m->l_ld)) * 1099511628211ull;
  }
  *sig = h;
  return _r_debug.r_state == r_debug::RT_CONSISTENT;
}

struct Listing {
  GlobalsSnapshot* snap;
  bool signed_ = false;
};

int segment_callback(dl_phdr_info* info, std::size_t, void* arg) {
  auto* listing = static_cast<Listing*>(arg);
  GlobalsSnapshot* snap = listing->snap;
  // The signature is taken inside the listing, under the loader's lock that
  // dl_iterate_phdr holds for the whole walk, so it describes exactly the
  // objects listed. Taken outside, before or after, an object loaded and
  // unloaded again around the listing left the signature unchanged while
  // its segments were listed, and the stopped world scanned them unmapped
  // (gc_dlopen_test's loader thread, a crash in 1 run of ~50 under load).
  if (!listing->signed_) {
    listing->signed_ = true;
    snap->consistent = link_signature(&snap->signature);
  }
  auto* out = &snap->ranges;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) == 0 || ph.p_memsz == 0) continue;
    const std::uintptr_t b = info->dlpi_addr + ph.p_vaddr;
    if (g_segment_filter != nullptr &&
        !g_segment_filter(info->dlpi_name != nullptr ? info->dlpi_name : "", b, ph.p_memsz))
      continue;
    add_minus_excluded(out, b & ~std::uintptr_t{7}, b + ph.p_memsz);
  }
  return 0;
}

}  // namespace

const char* root_kind_name(RootKind k) {
  switch (k) {
    case RootKind::kHeap:
      return "heap";
    case RootKind::kStack:
      return "stack";
    case RootKind::kRegisters:
      return "registers";
    case RootKind::kTls:
      return "thread-local";
    case RootKind::kGlobal:
      return "global";
    case RootKind::kExplicit:
      return "explicit root";
    case RootKind::kFinalizer:
      return "finalizer";
  }
  return "?";
}

void exclude_from_roots(const void* begin, const void* end) {
  std::lock_guard<Mutex> g(g_excluded_lock);
  const RootRange r{reinterpret_cast<std::uintptr_t>(begin), reinterpret_cast<std::uintptr_t>(end), RootKind::kGlobal};
  excluded().insert(excluded().begin() + static_cast<std::ptrdiff_t>(g_program_excluded_from), r);
  g_program_excluded_from++;
}

void exclude_program_range(const void* begin, const void* end) {
  std::lock_guard<Mutex> g(g_excluded_lock);
  excluded().push_back(
      {reinterpret_cast<std::uintptr_t>(begin), reinterpret_cast<std::uintptr_t>(end), RootKind::kGlobal});
}

void clear_program_exclusions() {
  std::lock_guard<Mutex> g(g_excluded_lock);
  excluded().resize(g_program_excluded_from);
}

void set_segment_filter(bool (*filter)(const char*, std::uintptr_t, std::size_t)) {
  std::lock_guard<Mutex> g(g_excluded_lock);
  g_segment_filter = filter;
}

void snapshot_globals(GlobalsSnapshot* out) {
  out->ranges.clear();
  out->signature = 0;
  out->consistent = false;  // until the listing has signed itself
  std::lock_guard<Mutex> g(g_excluded_lock);
  Listing listing{out};
  dl_iterate_phdr(segment_callback, &listing);
}

bool globals_unchanged(const GlobalsSnapshot& snap) {
  std::uint64_t sig = 0;
  return snap.consistent && link_signature(&sig) && sig == snap.signature;
}

void add_root_range(void* begin, void* end) {
  const auto b = reinterpret_cast<std::uintptr_t>(begin), e = reinterpret_cast<std::uintptr_t>(end);
  if (begin == nullptr || b >= e) fatal("add_roots(%p, %p): empty or inverted range", begin, end);
  std::lock_guard<Mutex> g(g_roots_lock);
  explicit_list().push_back({b, e, RootKind::kExplicit});
}

void remove_root_range(void* begin, void* end) {
  const auto b = reinterpret_cast<std::uintptr_t>(begin), e = reinterpret_cast<std::uintptr_t>(end);
  std::lock_guard<Mutex> g(g_roots_lock);
  auto it = std::find_if(explicit_list().begin(), explicit_list().end(),
                         [b, e](const RootRange& r) { return r.begin == b && r.end == e; });
  if (it == explicit_list().end()) fatal("remove_roots(%p, %p): no such range was added", begin, end);
  *it = explicit_list().back();
  explicit_list().pop_back();
}

void remove_root_ranges_within(std::uintptr_t begin, std::uintptr_t end) {
  std::lock_guard<Mutex> g(g_roots_lock);
  std::erase_if(explicit_list(), [=](const RootRange& r) { return r.begin >= begin && r.end <= end; });
}

void clear_root_ranges() {
  std::lock_guard<Mutex> g(g_roots_lock);
  explicit_list().clear();
}

bool in_root_range(std::uintptr_t p) {
  std::lock_guard<Mutex> g(g_roots_lock);
  return std::any_of(explicit_list().begin(), explicit_list().end(),
                     [p](const RootRange& r) { return p >= r.begin && p < r.end; });
}

void lock_roots() { g_roots_lock.lock(); }
void lock_root_exclusions() { g_excluded_lock.lock(); }
void unlock_root_exclusions() { g_excluded_lock.unlock(); }
void unlock_roots() { g_roots_lock.unlock(); }
const std::vector<RootRange>& explicit_roots_locked() { return explicit_list(); }

}  // namespace mgc::internal
