// The table of disappearing links (Boehm's GC_register_disappearing_link,
// the core's register_link): a location's address to the object its link
// follows, with a flag for links that died in the last stop.
//
// Open addressing with linear probing in one flat array: the collector
// walks every link in every stop (guile's weak tables hold hundreds of
// thousands), and a walk over a node-based hash map chases one pointer,
// and misses the cache, per link; here a walk reads consecutive entries.
// The load factor, tombstones included, stays at or under 3/4, so probes
// are short; erasing leaves a tombstone, which an insertion reuses and a
// rehash drops. 16 bytes a slot, 21-57 bytes a link (a node-based map takes
// some 56 with the allocator's header and the bucket).
//
// Owns: its array, from the system allocator. Growing may throw
// std::bad_alloc, with the table unchanged; nothing else allocates, so a
// stopped world may walk it and change entries in place. Not thread-safe:
// the caller's lock (the specials lock) or the stopped world guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mgc::internal {

// An entry: 16 bytes, the flag in the location's low bit (locations are
// word-aligned: registration refuses others, as Boehm's does).
class Link {
 public:
  std::uintptr_t addr() const { return key_ & ~kDeadBit; }
  std::uintptr_t obj() const { return obj_; }  // the object's start
  // Cleared or dangling in the last stop; erased after it.
  bool dead() const { return (key_ & kDeadBit) != 0; }
  void set_dead() { key_ |= kDeadBit; }
  // Follow obj from now on, alive.
  void reset(std::uintptr_t obj) {
    key_ &= ~kDeadBit;
    obj_ = obj;
  }

 private:
  friend class LinkTable;
  static constexpr std::uintptr_t kDeadBit = 1;
  std::uintptr_t key_;  // the location's address | kDeadBit, or a free mark
  std::uintptr_t obj_;
};

class LinkTable {
 public:
  // The entry of addr (word-aligned), or nullptr.
  Link* find(std::uintptr_t addr) {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = home(addr);; i = (i + 1) & mask()) {
      Link& s = slots_[i];
      if (s.key_ == kEmpty) return nullptr;
      if (s.addr() == addr) return &s;  // a tombstone's addr() is never aligned
    }
  }

  // The entry of addr (word-aligned), made alive and following obj if there
  // was none (second: true). May throw std::bad_alloc (the table is then
  // unchanged).
  std::pair<Link*, bool> try_emplace(std::uintptr_t addr, std::uintptr_t obj) {
    if (Link* l = find(addr)) return {l, false};
    if ((used_ + 1) * 4 > slots_.size() * 3) {
      // Twice the room when the entries alone fill 9/16 of it; the same
      // room without the tombstones otherwise. Either way at least 3/16 of
      // the slots take insertions before the next rehash.
      std::size_t cap = slots_.empty() ? 16 : slots_.size();
      while ((size_ + 1) * 16 > cap * 9) cap *= 2;
      rehash(cap);
    }
    for (std::size_t i = home(addr);; i = (i + 1) & mask()) {
      Link& s = slots_[i];
      if (s.key_ == kEmpty || s.key_ == kTombstone) {
        if (s.key_ == kEmpty) used_++;
        s.key_ = addr;
        s.obj_ = obj;
        size_++;
        return {&s, true};
      }
    }
  }

  // Erase the entry l (from find or try_emplace).
  void erase(Link* l) {
    l->key_ = kTombstone;
    size_--;
  }

  bool erase(std::uintptr_t addr) {
    Link* l = find(addr);
    if (l == nullptr) return false;
    erase(l);
    return true;
  }

  // fn(Link&) for every entry, in no particular order. fn must not insert
  // or erase.
  template <class F>
  void for_each(F fn) {
    for (Link& s : slots_)
      if (occupied(s)) fn(s);
  }

  // Erase every entry for which pred(const Link&) holds.
  template <class P>
  void erase_if(P pred) {
    for (Link& s : slots_)
      if (occupied(s) && pred(static_cast<const Link&>(s))) erase(&s);
  }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

 private:
  // Free marks: 0 never used, 2 erased. Neither is a word-aligned address
  // with or without the dead bit.
  static constexpr std::uintptr_t kEmpty = 0;
  static constexpr std::uintptr_t kTombstone = 2;

  static bool occupied(const Link& s) { return s.key_ != kEmpty && s.key_ != kTombstone; }
  std::size_t mask() const { return slots_.size() - 1; }
  // Fibonacci hashing: the word-aligned low bits carry nothing, the
  // multiply spreads the rest over the top bits.
  std::size_t home(std::uintptr_t addr) const {
    return static_cast<std::size_t>((addr * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  // cap slots (a power of two), tombstones gone.
  void rehash(std::size_t cap) {
    std::vector<Link> old(cap);  // may throw: nothing changed yet
    for (Link& s : old) s.key_ = kEmpty;
    old.swap(slots_);
    shift_ = 64;
    for (std::size_t c = cap; c > 1; c /= 2) shift_--;
    used_ = size_;
    for (const Link& s : old) {
      if (!occupied(s)) continue;
      std::size_t i = home(s.addr());
      while (slots_[i].key_ != kEmpty) i = (i + 1) & mask();
      slots_[i] = s;
    }
  }

  std::vector<Link> slots_;
  std::size_t size_ = 0;  // entries
  std::size_t used_ = 0;  // entries and tombstones
  unsigned shift_ = 64;
};

}  // namespace mgc::internal
