#include "heap/arena.hpp"

#include "heap/meta_alloc.hpp"
#include "os/mem.hpp"

namespace mgc::internal {

constinit std::atomic<HeapArena*> arena_l1[kArenaL1Entries];

bool ArenaMap::add_arenas(std::uintptr_t base, std::size_t n) {
  std::atomic<HeapArena*>* l1 = arena_l1;
  for (std::size_t i = 0; i < n; i++) {
    const std::uintptr_t a = base + i * kArenaSize;
    if (l1[a >> kArenaShift].load(std::memory_order_relaxed) != nullptr) continue;
    auto* ha = static_cast<HeapArena*>(os::map_metadata(sizeof(HeapArena)));
    if (ha == nullptr) return false;
    l1[a >> kArenaShift].store(ha, std::memory_order_release);
  }
  const std::uintptr_t end = base + n * kArenaSize;
  if (base < lo_.load(std::memory_order_relaxed)) lo_.store(base, std::memory_order_release);
  if (end > hi_.load(std::memory_order_relaxed)) hi_.store(end, std::memory_order_release);
  return true;
}

void ArenaMap::set_spans(std::uintptr_t base, std::size_t npages, MSpan* s) {
  std::atomic<HeapArena*>* l1 = arena_l1;
  for (std::size_t i = 0; i < npages; i++) {
    const std::uintptr_t a = base + i * kPageSize;
    HeapArena* ha = l1[a >> kArenaShift].load(std::memory_order_relaxed);
    ha->spans[(a >> kPageShift) & (kPagesPerArena - 1)].store(s, std::memory_order_release);
  }
}

}  // namespace mgc::internal
