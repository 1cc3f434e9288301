// Boehm's roots on the core's: explicit ranges (GC_add_roots and Boehm's
// removal by containment), exclusions, which loaded objects' data is
// scanned (GC_no_dls, the has-static-roots callback), and the program's own
// root pushing (GC_push_other_roots, which calls GC_push_all and friends
// while the collector marks its roots, world stopped, on the collecting
// thread).
#include "gc/roots.hpp"

#include <cstdint>

#include "compat/boehm/boehm.hpp"
#include "gc/collector.hpp"
#include "gc/mark.hpp"

namespace mgc::internal::boehm {

void push_togglerefs();

namespace {

GC_has_static_roots_func g_static_roots_filter = nullptr;

bool segment_filter(const char* name, std::uintptr_t begin, std::size_t size) {
  if (GC_no_dls != 0) return false;
  GC_has_static_roots_func f = g_static_roots_filter;
  return f == nullptr || f(name, reinterpret_cast<void*>(begin), size) != 0;
}

void push_range(void* bottom, void* top) {
  if (!gc_marking() || bottom == nullptr || top <= bottom) return;
  push_range_from_callback(reinterpret_cast<std::uintptr_t>(bottom), reinterpret_cast<std::uintptr_t>(top));
}

}  // namespace

void install_root_hooks() { set_segment_filter(segment_filter); }

void default_push_other_roots() {}

void push_program_roots() {
  push_togglerefs();
  if (GC_push_other_roots_proc p = GC_push_other_roots) p();
}

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

void GC_add_roots(void* low, void* high) {
  // Boehm takes an empty range silently; the core wants a real one.
  if (low == nullptr || high <= low) return;
  add_root_range(low, high);
}

void GC_remove_roots(void* low, void* high) {
  remove_root_ranges_within(reinterpret_cast<std::uintptr_t>(low), reinterpret_cast<std::uintptr_t>(high));
}

void GC_clear_roots(void) { clear_root_ranges(); }

void GC_exclude_static_roots(void* low, void* high) {
  if (high <= low) return;
  exclude_program_range(low, high);
}

void GC_clear_exclusion_table(void) { clear_program_exclusions(); }

void GC_set_no_dls(int v) { GC_no_dls = v; }
int GC_get_no_dls(void) { return GC_no_dls; }

void GC_register_has_static_roots_callback(GC_has_static_roots_func f) { g_static_roots_filter = f; }

void GC_set_push_other_roots(GC_push_other_roots_proc f) { GC_push_other_roots = f; }
GC_push_other_roots_proc GC_get_push_other_roots(void) { return GC_push_other_roots; }

// From a push-other-roots callback or a mark procedure: scan the range
// conservatively in this cycle. Elsewhere there is nothing to push to.
void GC_push_all(void* bottom, void* top) { push_range(bottom, top); }
void GC_push_all_eager(void* bottom, void* top) { push_range(bottom, top); }
// Without dirty bits every page counts as changed: "all" is all there is.
void GC_push_conditional(void* bottom, void* top, int) { push_range(bottom, top); }
// The finalization tables are marked by the core itself.
void GC_push_finalizer_structures(void) {}

// Boehm's temporary roots are the loaded objects' data segments, listed
// again for every cycle, as here.
int GC_is_tmp_root(void* p) {
  GlobalsSnapshot snap;
  snapshot_globals(&snap);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  for (const RootRange& r : snap.ranges)
    if (a >= r.begin && a < r.end) return 1;
  return 0;
}

}  // extern "C"
