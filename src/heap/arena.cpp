#include "heap/arena.hpp"

#include "heap/meta_alloc.hpp"
#include "os/mem.hpp"

namespace mgc::internal {

bool ArenaMap::add_arenas(std::uintptr_t base, std::size_t n) {
  std::atomic<HeapArena*>* l1 = l1_.load(std::memory_order_relaxed);
  if (l1 == nullptr) {
    // 32 MiB of address space; only the entries used are ever touched.
    l1 = static_cast<std::atomic<HeapArena*>*>(os::map_metadata(kArenaL1Entries * sizeof(*l1)));
    if (l1 == nullptr) return false;
    l1_.store(l1, std::memory_order_release);
  }
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
  std::atomic<HeapArena*>* l1 = l1_.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < npages; i++) {
    const std::uintptr_t a = base + i * kPageSize;
    HeapArena* ha = l1[a >> kArenaShift].load(std::memory_order_relaxed);
    ha->spans[(a >> kPageShift) & (kPagesPerArena - 1)].store(s, std::memory_order_release);
  }
}

}  // namespace mgc::internal
