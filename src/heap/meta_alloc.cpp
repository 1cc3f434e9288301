#include "heap/meta_alloc.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "os/fatal.hpp"
#include "os/mem.hpp"
#include "os/mutex.hpp"

namespace mgc::internal {
namespace {

constexpr std::size_t kMinShift = 4;   // 16 B
constexpr std::size_t kMaxShift = 16;  // 64 KiB
constexpr std::size_t kNumBins = kMaxShift - kMinShift + 1;
constexpr std::size_t kChunk = 1 << 20;

struct FreeBlock {
  FreeBlock* next;
};

struct MetaHeap {
  Mutex lock;
  FreeBlock* bins[kNumBins] = {};
  char* bump = nullptr;  // the current 1 MiB mapping
  char* bump_end = nullptr;
  // Written under the lock, read without it: the pacer reads it with the
  // world stopped, when a stopped thread may hold the lock.
  std::atomic<std::size_t> sys{0};
};

constinit MetaHeap g_meta;

std::size_t bin_of(std::size_t size) {
  std::size_t shift = kMinShift;
  while ((std::size_t{1} << shift) < size) shift++;
  return shift - kMinShift;
}

}  // namespace

std::atomic<int> debug_refuse_meta_allocs{0};

void* meta_alloc(std::size_t size) {
  if (size > kMaxMetaBlock) fatal("meta_alloc(%zu): block too large for metadata", size);
  if (debug_refuse_meta_allocs.load(std::memory_order_relaxed) > 0) [[unlikely]] {
    if (debug_refuse_meta_allocs.fetch_sub(1, std::memory_order_relaxed) > 0) return nullptr;
    debug_refuse_meta_allocs.fetch_add(1, std::memory_order_relaxed);
  }
  const std::size_t bin = bin_of(size == 0 ? 1 : size);
  const std::size_t block = std::size_t{1} << (bin + kMinShift);
  void* p;
  {
    std::lock_guard<Mutex> g(g_meta.lock);
    if (FreeBlock* f = g_meta.bins[bin]) {
      g_meta.bins[bin] = f->next;
      p = f;
    } else {
      if (g_meta.bump == nullptr || static_cast<std::size_t>(g_meta.bump_end - g_meta.bump) < block) {
        // The tail of the old mapping is dropped: at most 64 KiB a MiB.
        void* m = os::map_metadata(kChunk);
        if (m == nullptr) return nullptr;
        g_meta.bump = static_cast<char*>(m);
        g_meta.bump_end = g_meta.bump + kChunk;
        g_meta.sys.store(g_meta.sys.load(std::memory_order_relaxed) + kChunk, std::memory_order_relaxed);
      }
      // Blocks are carved in order of size class alignment: align the bump.
      auto b = reinterpret_cast<std::uintptr_t>(g_meta.bump);
      b = (b + block - 1) & ~(std::uintptr_t{block} - 1);
      if (b + block > reinterpret_cast<std::uintptr_t>(g_meta.bump_end)) {
        void* m = os::map_metadata(kChunk);
        if (m == nullptr) return nullptr;
        g_meta.bump = static_cast<char*>(m);
        g_meta.bump_end = g_meta.bump + kChunk;
        g_meta.sys.store(g_meta.sys.load(std::memory_order_relaxed) + kChunk, std::memory_order_relaxed);
        b = reinterpret_cast<std::uintptr_t>(g_meta.bump);
      }
      p = reinterpret_cast<void*>(b);
      g_meta.bump = reinterpret_cast<char*>(b + block);
      return p;  // fresh mapping: already zero
    }
  }
  std::memset(p, 0, block);
  return p;
}

void meta_free(void* p, std::size_t size) {
  if (p == nullptr) return;
  const std::size_t bin = bin_of(size == 0 ? 1 : size);
  std::lock_guard<Mutex> g(g_meta.lock);
  auto* f = static_cast<FreeBlock*>(p);
  f->next = g_meta.bins[bin];
  g_meta.bins[bin] = f;
}

std::size_t meta_sys_bytes() { return g_meta.sys.load(std::memory_order_relaxed); }

void meta_lock() { g_meta.lock.lock(); }
void meta_unlock() { g_meta.lock.unlock(); }

}  // namespace mgc::internal
