// The sampled heap profile (Go: mprof.go and the sampling in malloc.go):
// which allocations are sampled, their call stacks, and when they die.
//
// Sampling. On average one allocation per memprofile_rate bytes is
// sampled, at a random distance drawn from an exponential distribution
// (Go: fastexprand), so that every object size is sampled in proportion to
// its bytes without bias; pprof scales each sample back up by
// 1 / (1 - exp(-size / rate)) (Go: scaleHeapSample). The bytes counted are
// the bytes allocated: the size class of a small object, a tiny block's 16
// bytes when a new block starts (objects packed into a block are not
// counted, as in Go), the pages of a large one.
//
// The inline fast path cannot count, so the counting is done on refill
// (MCache::sample_budget): a chunk exposes to the fast path only the slots
// that stay below the next sampling point, whatever the other span
// classes' chunks expose, and the allocation that reaches the point finds
// its alloc_cache empty and takes the slow path, which decides, with the
// exact distance left, whether it is sampled (sample_decide).
//
// Stacks: glibc's backtrace(), which unwinds with the DWARF call-frame
// information (.eh_frame) that every x86-64 object carries, so programs and
// libraries built without frame pointers (the distribution's default at
// -O2) still give whole stacks. It costs a few microseconds per sample;
// at the default rate (512 KiB) that is far below the cost of allocating
// the bytes between two samples. Frame pointers would be cheaper but read
// garbage (or fault) through code built without them.
//
// Death. A sampled object counts on its span's specials counter, which
// sends free() of any object of the span to its general path, where
// profile_free drops the record. Objects the collector finds dead are
// dropped after the mark, with the world stopped (profile_after_mark): an
// allocated object that the mark did not reach is exactly one the sweeper
// frees (kinds with a disclaim procedure, which may keep such objects, are
// the exception: their sampled objects count as freed). A tiny block's
// record is keyed by its first object, which free() of that object drops.
//
// Owns: the sampling rate, the buckets (stack, size) with their counts,
// the table of sampled objects, and the profile lock. The lock is a leaf:
// nothing else is taken while it is held, and the collector takes it before
// stopping the world (so no stopped thread holds it). Memory comes from
// the system malloc, never from the collected heap.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mgc::internal {

struct MCache;

// Bytes between samples on average; 0: off; 1: every allocation.
inline constexpr std::int64_t kDefaultMemProfileRate = 512 * 1024;
extern std::atomic<std::int64_t> g_memprofile_rate;
// MALLOCGC_DEBUG=allocfreetrace=1: every allocation takes the slow path.
extern std::atomic<bool> g_allocfreetrace;

// Whether allocations must come through the slow path one by one, or at
// sampling points: the rate in force is nonzero or allocfreetrace is on.
inline bool sampling_active() {
  return g_memprofile_rate.load(std::memory_order_relaxed) != 0 || g_allocfreetrace.load(std::memory_order_relaxed);
}

// The slow path of cache c takes a fresh slot of a small span class
// (elem bytes; a new tiny block: 16), one the fast path was not offered,
// from a chunk it is about to load (sampling_active() only). sampled: the
// allocation is sampled. max_slots: how many slots (1..64) the chunk may
// hold, the allocation's own included, so that the fast path stops before
// the next sampling point (1 under allocfreetrace). The budget is left
// ready for the chunk's charge (MCache::next_chunk). Owner only.
struct SampleChoice {
  bool sampled;
  std::uint32_t max_slots;
};
SampleChoice sample_small(MCache* c, std::size_t elem);
// The same for a large object of bytes bytes (no chunk).
bool sample_large(MCache* c, std::size_t bytes);

// Record a sampled allocation at p of bytes bytes; pc: the return address
// into the allocating code (frames above it, the allocator's own, are
// dropped). Nothing may be held; must not run in a slow path's scope's
// callees that hold a lock. Allocates from the system malloc.
void profile_alloc(void* p, std::size_t bytes, const void* pc);
// free() of the object at base: drops its record, if any, and counts it
// freed. Called by free()'s general path when the span has specials.
void profile_free(std::uintptr_t base);

// The collector's part: lock before stopping the world, unlock after;
// after the mark, world stopped: records of unmarked objects are dropped.
void profile_lock();
void profile_unlock();
void profile_after_mark();

// One bucket of the profile: a stack and an object size with raw
// (unscaled) counts of sampled objects.
inline constexpr int kMaxProfileStack = 32;
struct ProfileBucket {
  std::uint64_t hash;
  std::size_t size;
  int depth;
  const void* stack[kMaxProfileStack];
  std::uint64_t allocs, alloc_bytes;  // sampled, ever
  std::uint64_t frees, free_bytes;    // of those, found dead or freed
  ProfileBucket* next;                // hash chain
};

// A copy of every bucket, made under the lock: *n buckets in an array from
// std::malloc (the caller frees it); nullptr when there are none.
ProfileBucket* profile_snapshot(std::size_t* n);

// Fork child: the lock was taken by the prepare handler (with the world's
// state); nothing else to do.

}  // namespace mgc::internal
