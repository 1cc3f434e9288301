// The layout of a typed object: its size and one bit per 8-byte word that
// says whether the word is a pointer (Go: _type.ptrdata and its GC bitmap).
//
// A TypeInfo is interned (equal layouts share one record) and immortal, so a
// typed span can record each object's layout as a plain pointer when the
// object is allocated, and the collector can read it at any later time.
//
// Owns: the interning table, behind its own lock. Records live in metadata
// memory, never in the collected heap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mgc::internal {

struct TypeInfo {
  std::size_t size;    // bytes of one object
  std::size_t nwords;  // words covered by bits: last pointer word + 1
  std::size_t npointers;
  // An array (Boehm's GC_calloc_explicitly_typed): 0 for a plain layout;
  // else the bits describe one element of period words (nwords <= period),
  // and the pattern repeats over the whole object.
  std::size_t period;
  std::uint32_t elem_size;   // size class object size, or 0 above kMaxInlineZero
  std::uint32_t span_class;  // typed span class for the inline path, or 0
  TypeInfo* next_interned;
  std::uint64_t bits[1];  // nwords bits, word i of the object is bit i % 64 of bits[i / 64]

  // Words from the start that may hold a pointer: the scan's extent.
  std::size_t scan_words() const { return period == 0 ? nwords : size / 8; }
  bool is_pointer_word(std::size_t word) const {
    if (period != 0) word %= period;
    return word < nwords && ((bits[word / 64] >> (word % 64)) & 1);
  }
};

// Why a layout was refused.
enum class TypeError { kNone, kZeroSize, kTooLarge, kMisaligned, kOutOfRange, kNoMemory };

// The interned record for this layout, or nullptr with *error set. With
// period (words) nonzero, the offsets are those of one element and the
// object is an array of such elements filling size bytes.
const TypeInfo* intern_type(std::size_t size, const std::size_t* pointer_offsets, std::size_t count, TypeError* error,
                            std::size_t period = 0);

const char* type_error_string(TypeError e);

// The interning table's lock, held across fork(). It is taken before the
// metadata lock (interning frees a discarded record under it).
void lock_type_table();
void unlock_type_table();

}  // namespace mgc::internal
