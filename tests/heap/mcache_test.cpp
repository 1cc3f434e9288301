// Tests for src/heap/mcache: a private MCache (see private_cache.hpp) driven
// through refill, the fast path's slot taking, owner frees, remote frees,
// the tiny allocator's blocks and release_all.
//
// The mcentral(spc) lists are process-wide: every test uses span classes of
// its own, except the tiny tests, which share the one tiny span class and
// first park whatever earlier tests left on its partial list.
#include "heap/mcache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "heap/mcentral.hpp"
#include "heap/mheap.hpp"
#include "private_cache.hpp"

namespace mgc::internal {
namespace {

using testing::PrivateCache;
using testing::remote_free;
using testing::remote_free_tiny;
using testing::take;
using testing::take_chunk;

struct Counts {
  std::size_t partial, full;
};
Counts counts(int spc) { return {mcentral(spc).partial_count(), mcentral(spc).full_count()}; }

// The low 12 bits of slot i's address, as printed: the death test's child
// builds its heap elsewhere, but span bases are page-aligned.
std::string low_hex(const MSpan* s, std::size_t i) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%03lx", static_cast<unsigned long>(s->slot_address(i) & 0xFFF));
  return buf;
}

void check_all(const MCache& c, int spc) {
  c.check(spc);
  if (c.spans[spc] != nullptr) c.spans[spc]->check();
  mcentral(spc).check();
}

// Slot i of s can be allocated again: clear in alloc_bits, or offered by
// the chunk c caches (whichever order the cache scans its span in).
bool free_or_offered(const MCache& c, int spc, const MSpan* s, std::size_t i) {
  if (!s->is_allocated(i)) return true;
  return c.spans[spc] == s && c.front.alloc[spc].chunk_word == i / 64 &&
         ((c.front.alloc[spc].alloc_cache >> (i % 64)) & 1);
}

// Take every slot the cache offers, refilling, until it moves on from span
// s; the slot indexes of s handed out.
std::vector<std::size_t> drain_span(MCache& c, int spc, MSpan* s) {
  std::vector<std::size_t> got;
  for (int guard = 0; guard < 64 && c.spans[spc] == s; guard++) {
    for (void* p : take_chunk(c, spc)) got.push_back(s->object_index(reinterpret_cast<std::uintptr_t>(p)));
    if (!c.refill(spc)) break;
  }
  return got;
}

std::size_t occurrences(const std::vector<std::size_t>& v, std::size_t x) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

struct RefillCase {
  int cls;
  Kind kind;
};

void PrintTo(const RefillCase& c, std::ostream* os) { *os << "class " << c.cls << " kind " << int(c.kind); }

class MCacheRefill : public ::testing::TestWithParam<RefillCase> {};

TEST_P(MCacheRefill, FirstChunkIsReservedInTheSpan) {
  const int spc = span_class(GetParam().cls, GetParam().kind);
  testing::isolate_central(spc);
  PrivateCache c;
  EXPECT_EQ(c->front.alloc[spc].alloc_cache, 0u);
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  ASSERT_NE(s, nullptr);
  const AllocSlot& a = c->front.alloc[spc];
  EXPECT_EQ(s->owner.load(), c.get());
  EXPECT_EQ(s->span_class, spc);
  EXPECT_EQ(c->front.alloc[spc].chunk_word, 0u);
  EXPECT_EQ(a.alloc_cache, s->valid_mask(0)) << "a fresh span's first word is all free";
  EXPECT_EQ(s->alloc_bits[0].load(), a.alloc_cache) << "the chunk is reserved";
  for (std::size_t w = 1; w < kBitmapWords; w++) EXPECT_EQ(s->alloc_bits[w].load(), 0u);
  EXPECT_EQ(s->alloc_count, static_cast<std::uint32_t>(std::popcount(a.alloc_cache)));
  EXPECT_EQ(c->chunk_avail[spc], s->alloc_count);
  EXPECT_EQ(a.chunk_base, s->base);
  switch (GetParam().kind) {
    case Kind::kTyped:
      EXPECT_EQ(a.aux, static_cast<void*>(s->type_records));
      break;
    case Kind::kTiny:
      EXPECT_EQ(a.aux, static_cast<void*>(s->tiny->alloc_mask));
      break;
    default:
      EXPECT_EQ(a.aux, nullptr);
  }
  check_all(*c, spc);
  // Nothing taken: giving it back returns the span to the heap.
  const std::uintptr_t base = s->base;
  c->release_all();
  EXPECT_EQ(mheap().span_of(base), nullptr);
  EXPECT_EQ(c->spans[spc], nullptr);
  EXPECT_EQ(c->front.alloc[spc].alloc_cache, 0u);
}

INSTANTIATE_TEST_SUITE_P(Classes, MCacheRefill,
                         ::testing::Values(RefillCase{1, Kind::kConservative}, RefillCase{4, Kind::kNoscan},
                                           RefillCase{34, Kind::kTyped}, RefillCase{43, Kind::kConservative},
                                           RefillCase{66, Kind::kNoscan}, RefillCase{kTinySizeClass, Kind::kTiny}),
                         [](const auto& info) {
                           return "class" + std::to_string(info.param.cls) + "_kind" +
                                  std::to_string(static_cast<int>(info.param.kind));
                         });

TEST(MCache, TakingEverySlotWalksTheChunksThenMovesToTheNextSpan) {
  const int cls = 4;  // 48 B: 170 slots in chunks of 64, 64, 42
  const int spc = span_class(cls, Kind::kConservative);
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  const Counts before = counts(spc);
  std::size_t next = 0;
  for (std::size_t chunk = 0; chunk < 3; chunk++) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    EXPECT_EQ(c->spans[spc], s);
    EXPECT_EQ(c->front.alloc[spc].chunk_word, chunk);
    EXPECT_EQ(c->front.alloc[spc].alloc_cache, s->valid_mask(chunk));
    check_all(*c, spc);
    for (void* p : take_chunk(*c, spc)) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p), s->slot_address(next)) << "lowest free slot first";
      next++;
    }
    ASSERT_TRUE(c->refill(spc));
  }
  EXPECT_EQ(next, 170u);
  // The full span went to the central full list; a fresh one is cached.
  EXPECT_NE(c->spans[spc], s);
  EXPECT_EQ(s->owner.load(), nullptr);
  EXPECT_EQ(s->alloc_count, 170u);
  EXPECT_EQ(counts(spc).full, before.full + 1);
  EXPECT_EQ(counts(spc).partial, before.partial);
  EXPECT_EQ(c->counters.nmalloc[cls].load(), 170u) << "counted as the chunks retire";
  check_all(*c, spc);
}

TEST(MCache, SettleCountsConsumedSlotsOnce) {
  const int cls = 9;
  const int spc = span_class(cls, Kind::kNoscan);
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  for (int i = 0; i < 5; i++) ASSERT_NE(take(*c, spc), nullptr);
  c->settle();
  EXPECT_EQ(c->counters.nmalloc[cls].load(), 5u);
  c->settle();
  EXPECT_EQ(c->counters.nmalloc[cls].load(), 5u);
  for (int i = 0; i < 3; i++) ASSERT_NE(take(*c, spc), nullptr);
  c->settle();
  EXPECT_EQ(c->counters.nmalloc[cls].load(), 8u);
  EXPECT_EQ(c->spans[spc]->alloc_count, 64u) << "settle gives nothing back";
  c->release_all();
  EXPECT_EQ(c->counters.nmalloc[cls].load(), 8u);
}

TEST(MCache, ReleaseAllGivesEverySpanBack) {
  const int none = span_class(3, Kind::kNoscan);  // nothing taken
  const int some = span_class(5, Kind::kNoscan);  // 3 of 128 taken
  const int all = span_class(43, Kind::kNoscan);  // 2 of 2 taken
  PrivateCache c;
  const Counts some_before = counts(some), all_before = counts(all);
  for (int spc : {none, some, all}) ASSERT_TRUE(c->refill(spc));
  MSpan* s_none = c->spans[none];
  MSpan* s_some = c->spans[some];
  MSpan* s_all = c->spans[all];
  const std::uintptr_t none_base = s_none->base;
  for (int i = 0; i < 3; i++) ASSERT_NE(take(*c, some), nullptr);
  EXPECT_EQ(take_chunk(*c, all).size(), 2u);

  c->release_all();
  for (int spc : {none, some, all}) {
    EXPECT_EQ(c->spans[spc], nullptr);
    EXPECT_EQ(c->front.alloc[spc].alloc_cache, 0u);
    check_all(*c, spc);
  }
  EXPECT_EQ(mheap().span_of(none_base), nullptr) << "a span with no slot allocated goes back to mheap";
  EXPECT_EQ(counts(some).partial, some_before.partial + 1);
  EXPECT_EQ(s_some->owner.load(), nullptr);
  EXPECT_EQ(s_some->alloc_count, 3u) << "the unused rest of the chunk is unreserved";
  EXPECT_EQ(s_some->alloc_bits[0].load(), 0b111u);
  EXPECT_EQ(counts(all).full, all_before.full + 1);
  EXPECT_EQ(s_all->alloc_count, 2u);

  // The cache is reusable, and takes the partial span back first.
  ASSERT_TRUE(c->refill(some));
  EXPECT_EQ(c->spans[some], s_some);
  EXPECT_EQ(c->front.alloc[some].alloc_cache, ~std::uint64_t{0b111});
  EXPECT_EQ(counts(some).partial, some_before.partial);
  check_all(*c, some);
}

TEST(MCache, OwnerFreeMakesTheSlotFreeInTheSpan) {
  const int cls = 3;  // 32 B, 256 slots
  const int spc = span_class(cls, Kind::kConservative);
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  for (int i = 0; i < 10; i++) ASSERT_NE(take(*c, spc), nullptr);
  s->need_zero = false;  // as for memory fresh from the OS
  // A slot of the cached chunk: free in alloc_bits at once (so that a
  // second free from any thread is caught).
  c->owner_free(s, 4);
  EXPECT_FALSE(s->is_allocated(4));
  EXPECT_FALSE(c->front.alloc[spc].alloc_cache & (1u << 4)) << "not offered twice";
  EXPECT_EQ(s->alloc_count, 63u);
  EXPECT_TRUE(s->need_zero);
  EXPECT_EQ(c->counters.nfree[cls].load(), 1u);
  check_all(*c, spc);
  EXPECT_EQ(take(*c, spc), reinterpret_cast<void*>(s->slot_address(10)));
  // A slot of a chunk already consumed.
  take_chunk(*c, spc);
  ASSERT_TRUE(c->refill(spc));
  c->owner_free(s, 7);
  EXPECT_FALSE(s->is_allocated(7));
  EXPECT_EQ(c->counters.nfree[cls].load(), 2u);
  check_all(*c, spc);
  // Both are handed out again, once, before the span is given up.
  const std::vector<std::size_t> got = drain_span(*c, spc, s);
  EXPECT_EQ(occurrences(got, 4), 1u);
  EXPECT_EQ(occurrences(got, 7), 1u);
  EXPECT_EQ(got.size(), 256u - 64u + 2u);
  EXPECT_EQ(s->alloc_count, 256u);
  EXPECT_EQ(s->owner.load(), nullptr) << "full: given back";
}

TEST(MCacheDeathTest, OwnerFreeOfAFreeOrUnallocatedSlotDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int spc = span_class(3, Kind::kTyped);  // 32 B
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  take_chunk(*c, spc);
  ASSERT_TRUE(c->refill(spc));        // chunk 1 cached, chunk 0 all handed out
  ASSERT_NE(take(*c, spc), nullptr);  // slot 64
  c->owner_free(s, 7);
  EXPECT_DEATH(c->owner_free(s, 7),
               "free\\(0x[0-9a-f]*" + low_hex(s, 7) + "\\): object is not allocated \\(freed twice\\?\\)");
  EXPECT_DEATH(c->owner_free(s, 70), "free\\(0x[0-9a-f]*" + low_hex(s, 70) + "\\): object is not allocated");
  EXPECT_DEATH(c->owner_free(s, 200), "free\\(0x[0-9a-f]*" + low_hex(s, 200) + "\\): object is not allocated");
  c->owner_free(s, 64);
  EXPECT_DEATH(c->owner_free(s, 64), "free\\(0x[0-9a-f]*" + low_hex(s, 64) + "\\): object is not allocated");
  remote_free(s, 9);  // a free from another thread, not merged yet
  EXPECT_DEATH(c->owner_free(s, 9), "free\\(0x[0-9a-f]*" + low_hex(s, 9) + "\\): object freed twice");
}

TEST(MCache, RemoteFreesAreMergedAtTheNextRefill) {
  const int spc = span_class(6, Kind::kNoscan);  // 80 B: 102 slots, chunks of 64 and 38
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  take_chunk(*c, spc);
  const Counts before = counts(spc);
  s->need_zero = false;
  remote_free(s, 5);
  remote_free(s, 9);
  EXPECT_EQ(counts(spc).partial, before.partial) << "an owned span stays off the lists";
  EXPECT_EQ(counts(spc).full, before.full);
  EXPECT_TRUE(s->is_allocated(5)) << "merged by the owner, later";
  ASSERT_TRUE(c->refill(spc));
  EXPECT_EQ(c->spans[spc], s);
  EXPECT_TRUE(free_or_offered(*c, spc, s, 5));
  EXPECT_TRUE(free_or_offered(*c, spc, s, 9));
  EXPECT_EQ(s->pending.load(), 0u);
  EXPECT_EQ(s->pending_free[0].load(), 0u);
  EXPECT_TRUE(s->need_zero);
  check_all(*c, spc);
  // Handed out again, once, before the span is given up full.
  const std::vector<std::size_t> got = drain_span(*c, spc, s);
  EXPECT_EQ(occurrences(got, 5), 1u);
  EXPECT_EQ(occurrences(got, 9), 1u);
  EXPECT_EQ(got.size(), 38u + 2u);
  EXPECT_NE(c->spans[spc], s);
  EXPECT_EQ(counts(spc).full, before.full + 1);
  check_all(*c, spc);
}

TEST(MCacheDeathTest, PendingFreeOfAFreeSlotDiesAtTheMerge) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int spc = span_class(8, Kind::kNoscan);  // 112 B: 73 slots
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  take_chunk(*c, spc);
  remote_free(s, 70);  // chunk 1, not loaded: the slot is free
  EXPECT_DEATH(c->refill(spc), "free\\(0x[0-9a-f]*" + low_hex(s, 70) + "\\): object freed twice");
  s->pending_free[1].store(0);  // let this process give the span back
}

// Another thread frees a slot that the owner's chunk holds but never
// handed out. The free cannot tell (the slot's alloc bit is set: reserved);
// the owner's merge can, as long as the slot is still in its chunk, which
// is when the owner gives the span back (thread exit). Once the owner has
// handed the slot out, the stray free cannot be told from a free of the
// new object: README.md documents that limit.
TEST(MCacheDeathTest, RemoteFreeOfASlotStillInTheOwnersChunkIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int spc = span_class(7, Kind::kNoscan);  // 96 B
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  ASSERT_EQ(take(*c, spc), reinterpret_cast<void*>(s->slot_address(0)));
  remote_free(s, 1);  // slot 1 is still in the owner's chunk: never allocated
  EXPECT_DEATH(c->release_all(), "free\\(0x[0-9a-f]*" + low_hex(s, 1) +
                                     "\\): not the start of a live object \\(the slot was never allocated\\)");
  // This process gives the span back without the bogus free.
  s->pending_free[0].store(0);
  s->pending.store(0);
}

// Tiny blocks.

class MCacheTiny : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::isolate_central(kTinySpanClass);
    ASSERT_TRUE(c_->refill(kTinySpanClass));
    s_ = c_->spans[kTinySpanClass];
    ASSERT_EQ(c_->front.alloc[kTinySpanClass].chunk_word, 0u);
    ASSERT_EQ(c_->front.alloc[kTinySpanClass].alloc_cache, ~std::uint64_t{0}) << "a fresh tiny span";
  }
  // A new block holding one object of size bytes at offset 0.
  std::size_t new_block(std::size_t size) {
    void* p = tiny_new_block(&c_->front, size);
    EXPECT_NE(p, nullptr);
    return (reinterpret_cast<std::uintptr_t>(p) - s_->base) / kTinySize;
  }
  // Another object at off in the current block (what tiny_alloc does).
  void add_object(unsigned off, std::size_t size) {
    *c_->front.tiny_mask = static_cast<std::uint16_t>(*c_->front.tiny_mask | (1u << off));
    c_->front.tiny_offset = off + size;
  }
  PrivateCache c_;
  MSpan* s_ = nullptr;
};

TEST_F(MCacheTiny, NewBlocksRecordTheirObjects) {
  EXPECT_EQ(new_block(8), 0u);
  EXPECT_EQ(c_->front.tiny, s_->base);
  EXPECT_EQ(c_->front.tiny_offset, 8u);
  EXPECT_EQ(c_->front.tiny_mask, &s_->tiny->alloc_mask[0]);
  EXPECT_EQ(s_->tiny->alloc_mask[0], 1);
  EXPECT_EQ(c_->current_tiny_block(s_), 0);
  add_object(8, 4);
  EXPECT_EQ(s_->tiny->alloc_mask[0], 0x101);
  EXPECT_EQ(new_block(2), 1u);
  EXPECT_EQ(c_->current_tiny_block(s_), 1);
  check_all(*c_, kTinySpanClass);
}

TEST_F(MCacheTiny, BlockWhoseObjectsTheOwnerFreedIsReleased) {
  ASSERT_EQ(new_block(8), 0u);
  add_object(8, 8);
  ASSERT_EQ(new_block(8), 1u);  // block 0 is no longer current
  const std::uint32_t count = s_->alloc_count;
  c_->owner_free_tiny(s_, 0, 0);
  EXPECT_EQ(s_->tiny->local_freed[0], 1);
  EXPECT_TRUE(s_->is_allocated(0)) << "one object of block 0 lives";
  c_->owner_free_tiny(s_, 0, 8);
  EXPECT_EQ(s_->tiny->alloc_mask[0], 0);
  EXPECT_EQ(s_->tiny->local_freed[0], 0);
  EXPECT_FALSE(s_->is_allocated(0)) << "block 0 is free again";
  EXPECT_EQ(s_->alloc_count, count - 1);
  EXPECT_EQ(c_->counters.tiny_frees.load(), 2u);
  EXPECT_EQ(c_->counters.tiny_block_frees.load(), 1u);
  EXPECT_EQ(c_->current_tiny_block(s_), 1);
  check_all(*c_, kTinySpanClass);
}

TEST_F(MCacheTiny, CurrentBlockWhoseObjectsAreFreedIsReusable) {
  ASSERT_EQ(new_block(8), 0u);
  add_object(8, 8);
  std::memset(reinterpret_cast<void*>(s_->base), 0xAB, kTinySize);  // the objects' data
  c_->owner_free_tiny(s_, 0, 8);
  EXPECT_EQ(c_->front.tiny, s_->base) << "one object still lives";
  EXPECT_EQ(c_->front.tiny_offset, 16u);
  EXPECT_EQ(s_->tiny->local_freed[0], 0x100);
  c_->owner_free_tiny(s_, 0, 0);
  EXPECT_EQ(s_->tiny->alloc_mask[0], 0);
  EXPECT_EQ(s_->tiny->local_freed[0], 0);
  if (c_->front.tiny != 0) {
    // Started over in place: the next tiny object lands at its start, and
    // must find zeroed memory.
    EXPECT_EQ(c_->front.tiny, s_->base);
    EXPECT_EQ(c_->front.tiny_offset, 0u);
    const auto* bytes = reinterpret_cast<const unsigned char*>(s_->base);
    for (std::size_t i = 0; i < kTinySize; i++) EXPECT_EQ(bytes[i], 0) << "byte " << i;
  } else {
    // Dropped: the block is free for a later chunk.
    EXPECT_EQ(c_->front.tiny_offset, kTinySize);
    EXPECT_TRUE(free_or_offered(*c_, kTinySpanClass, s_, 0));
  }
  check_all(*c_, kTinySpanClass);
}

TEST_F(MCacheTiny, RemoteFreesReleaseBlocksAtRefillExceptTheCurrentOne) {
  for (std::size_t b = 0; b < 64; b++) ASSERT_EQ(new_block(16), b);
  remote_free_tiny(s_, 10, 0);
  remote_free_tiny(s_, 63, 0);  // the current block
  ASSERT_TRUE(c_->refill(kTinySpanClass));
  EXPECT_TRUE(free_or_offered(*c_, kTinySpanClass, s_, 10));
  EXPECT_FALSE(free_or_offered(*c_, kTinySpanClass, s_, 63)) << "the current block waits";
  EXPECT_EQ(s_->pending_free[0].load(), std::uint64_t{1} << 63);
  EXPECT_EQ(s_->pending.load(), 1u);
  EXPECT_EQ(c_->counters.tiny_block_frees.load(), 1u);
  check_all(*c_, kTinySpanClass);
  // Move on to other blocks, use up the chunk, refill: now it is released.
  while (tiny_new_block(&c_->front, 16) != nullptr) {
  }
  ASSERT_NE(c_->current_tiny_block(s_), 63);
  ASSERT_TRUE(c_->refill(kTinySpanClass));
  EXPECT_TRUE(free_or_offered(*c_, kTinySpanClass, s_, 63)) << "no longer current: released";
  EXPECT_EQ(s_->pending.load(), 0u);
  EXPECT_EQ(c_->counters.tiny_block_frees.load(), 2u);
  check_all(*c_, kTinySpanClass);
}

TEST_F(MCacheTiny, ReleaseAllReleasesTheCurrentBlockWhenItsObjectsAreFreed) {
  ASSERT_EQ(new_block(8), 0u);
  ASSERT_EQ(new_block(8), 1u);
  remote_free_tiny(s_, 1, 0);  // every object of the current block
  const std::uintptr_t base = s_->base;
  c_->owner_free_tiny(s_, 0, 0);
  c_->release_all();
  EXPECT_EQ(mheap().span_of(base), nullptr) << "no block in use: the span goes back to mheap";
}

// Regression (found at ede2a7b): the owner freeing every object of its
// current block started the block over with an empty mask; when the cache
// then gave the block up (release_all, or refill of a full span),
// tiny_block_reclaimable said no to a block without objects, so the block
// stayed allocated forever and its span never went back to mheap.
TEST_F(MCacheTiny, CurrentBlockEmptiedByTheOwnerIsReleasedWithTheCache) {
  ASSERT_EQ(new_block(8), 0u);
  c_->owner_free_tiny(s_, 0, 0);  // the thread's only tiny object
  MSpan* s = s_;
  const std::uintptr_t base = s->base;
  c_->release_all();
  EXPECT_EQ(mheap().span_of(base), nullptr) << "no tiny object lives, yet the span stays with alloc_count "
                                            << s->alloc_count << ", block 0 allocated: " << s->is_allocated(0);
}

// Regression (found at ede2a7b): refill of a full tiny span dropped the
// current block through release_slot, which put it back into the cached
// chunk's alloc_cache; refill then discarded the chunk (AllocSlot{})
// without clearing the block's reserved alloc bit, and the block was never
// free again.
TEST_F(MCacheTiny, RefillOfAFullTinySpanReleasesARemotelyFreedCurrentBlock) {
  for (std::size_t chunk = 0; chunk < 8; chunk++) {
    for (std::size_t b = 0; b < 64; b++) ASSERT_EQ(new_block(16), chunk * 64 + b);
    if (chunk < 7) {
      ASSERT_TRUE(c_->refill(kTinySpanClass));
    }
  }
  ASSERT_EQ(s_->alloc_count, 512u);
  ASSERT_EQ(c_->current_tiny_block(s_), 511);
  remote_free_tiny(s_, 511, 0);  // the current block's only object
  ASSERT_TRUE(c_->refill(kTinySpanClass));
  // Block 511 has no live object: it must be free, or offered by the chunk
  // the cache now holds (if it kept or took back s_).
  const AllocSlot& a = c_->front.alloc[kTinySpanClass];
  const bool offered =
      c_->spans[kTinySpanClass] == s_ && c_->front.alloc[kTinySpanClass].chunk_word == 7 && (a.alloc_cache >> 63);
  EXPECT_TRUE(!s_->is_allocated(511) || offered)
      << "block 511 stays allocated, alloc_count " << s_->alloc_count << ", on the "
      << (s_->owner.load() != nullptr ? "cache" : "central lists");
  check_all(*c_, kTinySpanClass);
}

TEST_F(MCacheTiny, OwnerFreeOfABadTinyPointerDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ASSERT_EQ(new_block(4), 0u);
  add_object(4, 4);
  EXPECT_DEATH(c_->owner_free_tiny(s_, 0, 2),
               "free\\(0x[0-9a-f]*002\\): not the start of a live object \\(tiny block\\)");
  c_->owner_free_tiny(s_, 0, 4);
  EXPECT_DEATH(c_->owner_free_tiny(s_, 0, 4), "free\\(0x[0-9a-f]*004\\): object freed twice");
  remote_free_tiny(s_, 0, 0);
  EXPECT_DEATH(c_->owner_free_tiny(s_, 0, 0), "free\\(0x[0-9a-f]*000\\): object freed twice");
}

// MCache::check on a broken cache.

TEST(MCacheCheckDeathTest, DiesWhenTheCacheDisagreesWithItsSpan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const int spc = span_class(10, Kind::kNoscan);  // 144 B: 56 slots
  PrivateCache c;
  ASSERT_TRUE(c->refill(spc));
  MSpan* s = c->spans[spc];
  c->check(spc);
  EXPECT_DEATH(
      {
        s->alloc_bits[0].store(s->alloc_bits[0].load() & ~std::uint64_t{2});
        c->check(spc);
      },
      "cache: class 160 holds slots not reserved in its span");
  EXPECT_DEATH(
      {
        c->front.alloc[spc].alloc_cache |= std::uint64_t{1} << 60;
        s->alloc_bits[0].store(s->alloc_bits[0].load() | std::uint64_t{1} << 60);
        c->check(spc);
      },
      "cache: class 160 holds slots beyond its span's end");
  EXPECT_DEATH(
      {
        c->front.alloc[spc].chunk_base += 16;
        c->check(spc);
      },
      "cache: class 160 chunk base does not match its span");
  EXPECT_DEATH(
      {
        s->owner.store(nullptr);
        c->check(spc);
      },
      "cache: span 0x[0-9a-f]+ of class 160 is not owned by this cache");
  EXPECT_DEATH(
      {
        c->front.tiny_offset = 3;
        c->check(spc);
      },
      "cache: no tiny block but tiny offset 3");
}

}  // namespace
}  // namespace mgc::internal
