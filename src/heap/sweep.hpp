// Sweeping one span: the last mark's bits become its allocation bits (Go:
// mspan.sweep in mgcsweep.go), and the sweep generation that says which
// spans still wait for it.
//
// The collector advances the global generation by 2 at the end of each
// mark, with the world stopped; every span whose sweep_gen differs from it
// is then unswept. A span is swept by whoever has the right to write its
// alloc_bits: a thread that took it off its central list's unswept lists
// (when a cache needs a span, when the background sweeper passes), its
// owner as it hands the span back after a cycle (both without the central
// lock, counted as taken: see mcentral.hpp), or the collector with the
// world stopped. A large span is swept by the heap's sweep pass
// (MHeap::sweep_large).
//
// Owns: the global generation and the counters of what sweeping freed.
// Takes no lock; never touches a cache.
#pragma once

#include <atomic>
#include <cstdint>

#include "heap/mcache.hpp"
#include "heap/span.hpp"

namespace mgc::internal {

// The current sweep generation. Starts at 2; the collector adds 2 per cycle
// while the world is stopped (advance_sweep_gen).
extern std::atomic<std::uint32_t> g_sweep_gen;
inline std::uint32_t sweep_gen() { return g_sweep_gen.load(std::memory_order_acquire); }
inline bool needs_sweep(const MSpan* s) { return s->sweep_gen.load(std::memory_order_relaxed) != sweep_gen(); }
void advance_sweep_gen();

// Objects and blocks that sweeping found dead, per size class and kind, in
// the form of the allocation counters (nfree, tiny_frees, large_frees...).
AllocCounters& swept_counters();

// Of the dead slots of word w of s (a span of a kind with a disclaim
// procedure), those the procedure keeps.
std::uint64_t disclaimed(MSpan* s, std::size_t w, std::uint64_t dead);

// Called for every object (every tiny block) sweeping frees, when set
// (allocfreetrace: prof/ sets it, the heap layer knows no more of it). May
// run with the world stopped: no locks, no allocation.
extern std::atomic<void (*)(std::uintptr_t obj, std::size_t size, Kind kind)> g_sweep_free_hook;

// Sweep small span s, which the caller may write (see above): merge its
// pending frees, free every allocated slot the mark did not reach, clear
// the marks, stamp the current generation. A no-op on a span already
// swept. Returns slots freed.
std::size_t sweep_small_span(MSpan* s);

}  // namespace mgc::internal
