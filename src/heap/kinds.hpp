// Object kinds defined at run time (Boehm's GC_new_kind): what the
// collector does with an object of such a kind, by a mark descriptor in
// Boehm's encoding (gc_mark.h), which the mark loop interprets:
//   low two bits 0 (GC_DS_LENGTH)    the first d bytes may hold pointers;
//                1 (GC_DS_BITMAP)    a bitmap of up to 62 words, the top
//                                    bit for word 0;
//                2 (GC_DS_PROC)      a mark procedure (index in bits 2..7,
//                                    an environment above) pushes what the
//                                    object reaches;
//                3 (GC_DS_PER_OBJECT) the real descriptor is in the object,
//                                    or in what its first word points to.
// With add_size, an object's size in bytes is added to the kind's
// descriptor (a length descriptor of 0 then means "all of it"). With
// clear, the object's memory is zero whenever it is not allocated (the
// sweep clears dead slots): Boehm promises mark procedures that an object
// on a free list is cleared, and a conservative reference can reach a
// slot a thread's cache holds but has not handed out yet.
//
// Owns: the kind table. Kinds are registered once and live for the
// process; registering takes a lock, reading does not.
#pragma once

#include <cstdint>

#include "mallocgc/internal/cache_front.hpp"

namespace mgc::internal {

struct KindRecord {
  std::uintptr_t descriptor = 0;
  bool add_size = false;
  bool clear = false;
  // Boehm's disclaim procedure: called by the sweep on each object of the
  // kind it is about to reclaim (with a central list's lock held: it must
  // not allocate); nonzero keeps the object for one more cycle. With
  // mark_from_all, what every allocated object of the kind reaches is
  // marked in every cycle, reachable or not, so that the procedure finds
  // it intact.
  int (*disclaim)(void* obj) = nullptr;
  bool mark_from_all = false;
};

inline constexpr int kMaxCustomKinds = kNumKinds - static_cast<int>(Kind::kFirstCustom);

// A new kind, or false (*out untouched) when all are taken.
bool register_kind(const KindRecord& r, Kind* out);
// The kind registry's lock (a leaf), held across fork().
void lock_kinds();
void unlock_kinds();
// The record of a kind from register_kind (others have none).
const KindRecord& kind_record(Kind k);
// Set a kind's disclaim procedure (before objects of it are allocated).
void set_kind_disclaim(Kind k, int (*disclaim)(void*), bool mark_from_all);
// Does some kind mark from all its objects?
bool any_kind_marks_from_all();
// Kinds registered so far.
int custom_kinds();

// The descriptor the collector uses for an object of kind k and size bytes.
// size: the slot size, or a large object's requested bytes, which are
// rounded up to words so that the sum keeps the descriptor's tag bits.
inline std::uintptr_t kind_descriptor(Kind k, std::uintptr_t size) {
  const KindRecord& r = kind_record(k);
  return r.add_size ? r.descriptor + ((size + 7) & ~std::uintptr_t{7}) : r.descriptor;
}

}  // namespace mgc::internal
