#include "os/mem.hpp"

#include <sys/mman.h>

#include <atomic>

#include "os/dirty_pages.hpp"

namespace mgc::internal::os {

namespace {
std::atomic<std::uint64_t> g_requests{0};
std::atomic<std::uint64_t> g_fail_first{0}, g_fail_count{0};

// Counts the request; true when it is to fail.
bool refused() {
  const std::uint64_t n = g_requests.fetch_add(1, std::memory_order_relaxed) + 1;
  const std::uint64_t first = g_fail_first.load(std::memory_order_relaxed);
  return first != 0 && n >= first && n - first < g_fail_count.load(std::memory_order_relaxed);
}
}  // namespace

void inject_failures(std::uint64_t first, std::uint64_t count) {
  g_fail_count.store(count, std::memory_order_relaxed);
  g_fail_first.store(first, std::memory_order_relaxed);
}

std::uint64_t memory_requests() { return g_requests.load(std::memory_order_relaxed); }

void* reserve(std::size_t size, std::size_t align) {
  // Over-reserve by align, then trim both ends so the kept part is aligned.
  const std::size_t total = size + align;
  if (total < size || refused()) return nullptr;
  void* raw = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + align - 1) & ~(align - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const std::uintptr_t end = start + total;
  if (end > aligned + size) ::munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  return reinterpret_cast<void*>(aligned);
}

bool commit(void* p, std::size_t size) {
  if (refused() || ::mprotect(p, size, PROT_READ | PROT_WRITE) != 0) return false;
  dirty_committed(reinterpret_cast<std::uintptr_t>(p), size);
  return true;
}

void release(void* p, std::size_t size) { ::madvise(p, size, MADV_DONTNEED); }

void advise_huge_pages(void* p, std::size_t size) { ::madvise(p, size, MADV_HUGEPAGE); }

void* map_metadata(std::size_t size) {
  if (refused()) return nullptr;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void unmap(void* p, std::size_t size) { ::munmap(p, size); }

}  // namespace mgc::internal::os
