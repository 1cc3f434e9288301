// Roots other than threads: the writable segments of the executable and of
// every loaded shared object, explicit ranges (mgc::add_roots), and the
// allocator metadata that must never be mistaken for roots (Boehm:
// dyn_load.c and GC_add_roots; Go finds its globals in moduledata).
//
// Segments are listed with dl_iterate_phdr before the world stops, because
// the loader's lock may belong to a thread the collector would stop. Once
// the world is stopped the collector checks the loader's list of objects
// (r_debug) against the one seen when listing: if an object was loaded or
// unloaded in between, or the list is being changed, it restarts the world
// and lists again, so a library dlopen'ed at any time is scanned from the
// first cycle that can see its globals.
//
// Owns: the explicit root list and the exclusion list, each behind a lock
// the collector holds while the world is stopped. Never allocates while
// the world is stopped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mgc::internal {

// Where a root range comes from; gccheckmark names it.
enum class RootKind : std::uint8_t { kHeap, kStack, kRegisters, kTls, kGlobal, kExplicit, kFinalizer };
const char* root_kind_name(RootKind k);

struct RootRange {
  std::uintptr_t begin;
  std::uintptr_t end;
  RootKind kind;
};

// The writable segments of loaded objects, minus excluded metadata.
struct GlobalsSnapshot {
  std::vector<RootRange> ranges;
  std::uint64_t signature = 0;  // of the loader's object list when taken
  bool consistent = false;      // the list was not being changed
};
void snapshot_globals(GlobalsSnapshot* out);
// World stopped: does the loader's list still match the snapshot?
bool globals_unchanged(const GlobalsSnapshot& snap);

// Allocator metadata in static storage that a data segment would
// otherwise include (the first-level arena map is 32 MiB), and ranges the
// program says hold no heap pointers (Boehm's GC_exclude_static_roots).
// Program exclusions can be dropped again (clear_program_exclusions);
// the allocator's cannot.
void exclude_from_roots(const void* begin, const void* end);
void exclude_program_range(const void* begin, const void* end);
void clear_program_exclusions();

// Which loaded objects' segments are roots: called for each writable
// segment before the world stops, with the object's file name ("" for the
// executable); false leaves the segment out (Boehm's GC_no_dls and its
// has_static_roots callback). nullptr: every segment.
void set_segment_filter(bool (*filter)(const char* name, std::uintptr_t begin, std::size_t size));

// Explicit ranges. lock/unlock bracket the collector's use of the list.
void add_root_range(void* begin, void* end);
void remove_root_range(void* begin, void* end);
// Boehm's root calls: remove every range lying wholly in [begin, end), or
// every range there is.
void remove_root_ranges_within(std::uintptr_t begin, std::uintptr_t end);
void clear_root_ranges();
// Is p in an explicit range?
bool in_root_range(std::uintptr_t p);
void lock_roots();
// The exclusion list's own lock (a leaf), held across fork().
void lock_root_exclusions();
void unlock_root_exclusions();
void unlock_roots();
template <class F>
void for_each_explicit_root_locked(F&& fn);

// Implementation detail of for_each_explicit_root_locked.
const std::vector<RootRange>& explicit_roots_locked();

template <class F>
void for_each_explicit_root_locked(F&& fn) {
  for (const RootRange& r : explicit_roots_locked()) fn(r);
}

}  // namespace mgc::internal
