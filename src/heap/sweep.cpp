#include "heap/sweep.hpp"

#include <emmintrin.h>

#include <bit>

#include "heap/kinds.hpp"
#include "heap/mcentral.hpp"
#include "os/sanitizer.hpp"

namespace mgc::internal {
namespace {
// 64 blocks' worth of one mask array. Eight 16-byte stores: GCC makes a
// memset of this size a `rep stos`, whose start-up cost was a third of
// sweeping a span of dead tiny blocks (perf on Malloc8).
inline void zero_128_bytes(void* p) {
  auto* v = static_cast<__m128i*>(p);
  const __m128i z = _mm_setzero_si128();
  for (int i = 0; i < 8; i++) _mm_storeu_si128(v + i, z);
}
}  // namespace
}  // namespace mgc::internal

namespace mgc::internal {

constinit std::atomic<std::uint32_t> g_sweep_gen{2};
constinit std::atomic<void (*)(std::uintptr_t, std::size_t, Kind)> g_sweep_free_hook{nullptr};

namespace {
constinit AllocCounters g_swept;
}

AllocCounters& swept_counters() { return g_swept; }

std::uint64_t disclaimed(MSpan* s, std::size_t w, std::uint64_t dead) {
  const KindRecord& r = kind_record(s->kind);
  if (r.disclaim == nullptr) return 0;
  std::uint64_t kept = 0;
  for (std::uint64_t d = dead; d != 0; d &= d - 1) {
    const std::size_t b = static_cast<std::size_t>(std::countr_zero(d));
    const std::size_t i = w * 64 + b;
    const std::uintptr_t obj = s->is_large() ? s->base : s->slot_address(i);
    if (r.disclaim(reinterpret_cast<void*>(obj)) != 0) kept |= std::uint64_t{1} << b;
  }
  return kept;
}

void advance_sweep_gen() { g_sweep_gen.fetch_add(2, std::memory_order_acq_rel); }

std::size_t sweep_small_span(MSpan* s) {
  const std::uint32_t gen = sweep_gen();
  if (s->sweep_gen.load(std::memory_order_relaxed) == gen) return 0;
  // Explicit frees first: a slot freed after the mark may still carry its
  // mark bit, and must not come back to life.
  if (s->pending.load(std::memory_order_relaxed) != 0) merge_pending(s, -1, 0, 0);
  std::size_t freed = 0;
  std::uint64_t tiny_objects = 0;
  for (std::size_t w = 0; w < s->bitmap_words(); w++) {
    const std::uint64_t alloc = s->alloc_bits[w].load(std::memory_order_relaxed);
    std::uint64_t marks = s->gc_bits[w].load(std::memory_order_relaxed);
    if ((alloc & ~marks) != 0 && scan_mode(s->kind) == ScanMode::kCustom) marks |= disclaimed(s, w, alloc & ~marks);
    const std::uint64_t dead = alloc & ~marks;
    if (marks != 0) s->gc_bits[w].store(0, std::memory_order_relaxed);
    if (dead == 0) continue;
    if (s->kind == Kind::kTiny) {
      // A dead block takes its objects with it. Their masks are reset; a
      // free() racing with this would be a free of an unreachable object,
      // which no correct program can name.
      TinyMasks* t = s->tiny;
      const std::size_t first = w * 64;
      if (dead == ~std::uint64_t{0}) {
        // A whole word of dead blocks (the common case after a burst of
        // garbage): count their objects four blocks at a time, then clear
        // the masks in bulk.
        for (std::size_t b = first; b < first + 64; b += 4) {
          std::uint64_t a, l, r;
          __builtin_memcpy(&a, &t->alloc_mask[b], 8);
          __builtin_memcpy(&l, &t->local_freed[b], 8);
          __builtin_memcpy(&r, &t->remote_freed[b], 8);
          tiny_objects += popcount64(a & ~(l | r));
        }
        zero_128_bytes(&t->alloc_mask[first]);
        zero_128_bytes(&t->local_freed[first]);
        zero_128_bytes(static_cast<void*>(&t->remote_freed[first]));
      } else {
        for (std::uint64_t d = dead; d != 0; d &= d - 1) {
          const std::size_t b = first + static_cast<std::size_t>(std::countr_zero(d));
          const auto gone =
              static_cast<std::uint16_t>(t->local_freed[b] | t->remote_freed[b].load(std::memory_order_relaxed));
          tiny_objects += popcount64(static_cast<std::uint16_t>(t->alloc_mask[b] & ~gone));
          t->reset(b);
        }
      }
    }
    if (scan_mode(s->kind) == ScanMode::kCustom && kind_record(s->kind).clear) {
      // Kinds that promise cleared free objects (their mark procedures may
      // meet one through a stale reference).
      for (std::uint64_t d = dead; d != 0; d &= d - 1) {
        const std::size_t i = w * 64 + static_cast<std::size_t>(std::countr_zero(d));
        zero_free_memory(reinterpret_cast<void*>(s->slot_address(i)), s->elem_size);
      }
    }
    if (auto* hook = g_sweep_free_hook.load(std::memory_order_relaxed))
      for (std::uint64_t d = dead; d != 0; d &= d - 1)
        hook(s->slot_address(w * 64 + static_cast<std::size_t>(std::countr_zero(d))), s->elem_size, s->kind);
    if constexpr (MALLOCGC_ASAN || MALLOCGC_VALGRIND) {
      // Reclaimed: a use of the object from now on is a report.
      for (std::uint64_t d = dead; d != 0; d &= d - 1)
        object_freed(reinterpret_cast<void*>(s->slot_address(w * 64 + static_cast<std::size_t>(std::countr_zero(d)))),
                     s->elem_size);
    }
    s->alloc_bits[w].store(alloc & marks, std::memory_order_relaxed);
    const auto n = static_cast<std::uint32_t>(popcount64(dead));
    s->alloc_count -= n;
    freed += n;
  }
  if (freed != 0) {
    s->need_zero = true;
    if (s->kind == Kind::kTiny) {
      g_swept.tiny_block_frees.fetch_add(freed, std::memory_order_relaxed);
      g_swept.tiny_frees.fetch_add(tiny_objects, std::memory_order_relaxed);
    } else {
      g_swept.nfree[s->span_class / kNumKinds].fetch_add(freed, std::memory_order_relaxed);
    }
  }
  s->sweep_gen.store(gen, std::memory_order_release);
  return freed;
}

}  // namespace mgc::internal
