// Tests for src/heap/span: object_index by multiplication, valid_mask,
// MSpan::check on corrupted records, SpanList.
#include "heap/span.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "heap/meta_alloc.hpp"
#include "heap/mheap.hpp"
#include "mallocgc/internal/size_classes.hpp"

namespace mgc::internal {
namespace {

// A page-aligned address the record claims; check() never dereferences it.
constexpr std::uintptr_t kFakeBase = std::uintptr_t{1} << 40;

// A span record of size class cls, as mheap would build it, on fake pages.
std::unique_ptr<MSpan> small_record(int cls, Kind kind = Kind::kNoscan) {
  auto s = std::make_unique<MSpan>();
  s->base = kFakeBase;
  s->npages = kClassToAllocNPages[cls];
  s->elem_size = kClassToSize[cls];
  s->nelems = static_cast<std::uint32_t>(s->npages * kPageSize / s->elem_size);
  s->div_magic = kClassToDivMagic[cls];
  s->span_class = static_cast<std::uint16_t>(span_class(cls, kind));
  s->kind = kind;
  s->state.store(SpanState::kSmall);
  return s;
}

// Go's TestDivMagic: the multiplication gives the exact slot index for
// every byte offset of every size class's span.
TEST(MSpan, ObjectIndexIsExactForEveryOffsetOfEveryClass) {
  for (int cls = 1; cls < kNumSizeClasses; cls++) {
    auto s = small_record(cls);
    const std::size_t span_bytes = s->npages * kPageSize;
    std::size_t bad = 0;
    for (std::size_t off = 0; off < span_bytes; off++) {
      const std::size_t want = off / s->elem_size;
      if (s->object_index(s->base + off) != want && bad++ < 3)
        ADD_FAILURE() << "class " << cls << " (" << s->elem_size << " B): offset " << off << " gives slot "
                      << s->object_index(s->base + off) << ", want " << want;
    }
    EXPECT_EQ(bad, 0u) << "class " << cls;
    // Slot addresses invert object_index.
    for (std::size_t i = 0; i < s->nelems; i++) ASSERT_EQ(s->object_index(s->slot_address(i)), i);
  }
}

TEST(MSpan, LargeSpanMapsEveryOffsetToSlotZero) {
  MSpan s;
  s.base = kFakeBase;
  s.npages = 1000;
  s.nelems = 1;
  s.div_magic = 0;
  for (std::uintptr_t off : {std::uintptr_t{0}, std::uintptr_t{1}, kPageSize, 999 * kPageSize + kPageSize - 1})
    EXPECT_EQ(s.object_index(s.base + off), 0u);
  EXPECT_TRUE(s.is_large());
  EXPECT_EQ(s.limit(), kFakeBase + 1000 * kPageSize);
}

// valid_mask against a bit-by-bit reference.
std::uint64_t reference_mask(std::size_t nelems, std::size_t w) {
  std::uint64_t m = 0;
  for (std::size_t b = 0; b < 64; b++)
    if (w * 64 + b < nelems) m |= std::uint64_t{1} << b;
  return m;
}

TEST(MSpan, ValidMaskCoversExactlyTheSlots) {
  std::vector<std::uint32_t> counts = {1, 2, 63, 64, 65, 127, 128, 129, 170, 1023, 1024};
  for (int cls = 1; cls < kNumSizeClasses; cls++) counts.push_back(small_record(cls)->nelems);
  for (std::uint32_t n : counts) {
    MSpan s;
    s.nelems = n;
    EXPECT_EQ(s.bitmap_words(), (n + 63) / 64) << n;
    std::size_t total = 0;
    for (std::size_t w = 0; w < kBitmapWords + 2; w++) {
      ASSERT_EQ(s.valid_mask(w), reference_mask(n, w)) << "nelems " << n << " word " << w;
      total += static_cast<std::size_t>(std::popcount(s.valid_mask(w)));
    }
    EXPECT_EQ(total, n);
  }
}

TEST(MSpan, EveryClassFitsTheBitmaps) {
  for (int cls = 1; cls < kNumSizeClasses; cls++) {
    auto s = small_record(cls);
    EXPECT_LE(s->nelems, kMaxObjsPerSpan) << "class " << cls;
    EXPECT_LE(s->bitmap_words(), kBitmapWords) << "class " << cls;
  }
  EXPECT_EQ(small_record(kTinySizeClass)->nelems, kMaxTinyBlocks);
}

TEST(MSpan, IsAllocatedReadsAllocBits) {
  auto s = small_record(3);  // 256 slots
  s->alloc_bits[1].store(std::uint64_t{1} << 5);
  for (std::size_t i = 0; i < s->nelems; i++) EXPECT_EQ(s->is_allocated(i), i == 69) << i;
}

TEST(MSpan, CheckPassesOnConsistentRecords) {
  for (int cls = 1; cls < kNumSizeClasses; cls++) {
    auto s = small_record(cls, Kind::kConservative);
    s->check();
    // Every slot allocated, counted.
    for (std::size_t w = 0; w < s->bitmap_words(); w++) s->alloc_bits[w].store(s->valid_mask(w));
    s->alloc_count = s->nelems;
    s->check();
  }
  MSpan large;
  large.base = kFakeBase;
  large.npages = 5;
  large.nelems = 1;
  large.alloc_count = 1;
  large.alloc_bits[0].store(1);
  large.state.store(SpanState::kLarge);
  large.check();
}

TEST(MSpan, CheckPassesOnSpansFromTheHeap) {
  for (Kind kind : {Kind::kNoscan, Kind::kConservative, Kind::kTyped, Kind::kTiny}) {
    const int cls = kind == Kind::kTiny ? kTinySizeClass : 7;
    MSpan* s = mheap().alloc_small_span(span_class(cls, kind));
    ASSERT_NE(s, nullptr);
    s->check();
    mheap().free_span(s);
  }
}

// One corruption per case: what is broken, and the message check() must
// die with.
struct Corruption {
  const char* name;
  std::function<void(MSpan&)> corrupt;
  const char* message;
  int cls = 4;  // 48 B: 170 slots, a partial last word
  Kind kind = Kind::kNoscan;
};

void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }

class MSpanCheckDeath : public ::testing::TestWithParam<Corruption> {};

TEST_P(MSpanCheckDeath, DiesWithAClearMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Corruption& c = GetParam();
  auto s = small_record(c.cls, c.kind);
  // Consistent side tables for the kind, so that only the corruption fails.
  std::unique_ptr<const TypeInfo*[]> records;
  std::unique_ptr<TinyMasks> tiny;
  if (c.kind == Kind::kTyped) {
    records = std::make_unique<const TypeInfo*[]>(s->nelems);
    s->type_records = records.get();
  }
  if (c.kind == Kind::kTiny) {
    tiny = std::make_unique<TinyMasks>();
    s->tiny = tiny.get();
  }
  s->alloc_bits[0].store(0b1011);
  s->alloc_count = 3;
  s->check();  // the uncorrupted record passes
  c.corrupt(*s);
  EXPECT_DEATH(s->check(), std::string("mallocgc: fatal error: span 0x10000000000: ") + c.message);
}

std::vector<Corruption> corruptions() {
  return {
      {"FreeRecord", [](MSpan& s) { s.state.store(SpanState::kFree); }, "check of a free span record"},
      {"NoPages", [](MSpan& s) { s.npages = 0; }, "no pages"},
      {"SizeClassZero", [](MSpan& s) { s.span_class = 1; }, "bad size class 0"},
      {"SizeClassTooLarge", [](MSpan& s) { s.span_class = span_class(kNumSizeClasses, Kind::kNoscan); },
       "bad size class 67"},
      {"WrongElemSize", [](MSpan& s) { s.elem_size = 64; }, "slot size 64 is not class 4's"},
      {"WrongPageCount", [](MSpan& s) { s.npages = 2; }, "2 pages, class 4 wants 1"},
      {"WrongSlotCount", [](MSpan& s) { s.nelems = 171; }, "171 slots, expected 170"},
      {"AllocBitBeyondLastSlot",
       [](MSpan& s) {
         s.alloc_bits[2].store(std::uint64_t{1} << 42);  // slot 170
         s.alloc_count++;
       },
       "alloc bit set beyond the last slot \\(word 2\\)"},
      {"AllocBitInUnusedWord",
       [](MSpan& s) {
         s.alloc_bits[kBitmapWords - 1].store(1);
         s.alloc_count++;
       },
       "alloc bit set beyond the last slot \\(word 15\\)"},
      {"PendingFreeBeyondLastSlot", [](MSpan& s) { s.pending_free[2].store(std::uint64_t{1} << 63); },
       "pending free beyond the last slot \\(word 2\\)"},
      {"AllocCountTooHigh", [](MSpan& s) { s.alloc_count = 5; }, "alloc_count 5 but 3 alloc bits set"},
      {"AllocCountTooLow", [](MSpan& s) { s.alloc_count = 0; }, "alloc_count 0 but 3 alloc bits set"},
      {"AllocBitWithoutCount", [](MSpan& s) { s.alloc_bits[1].store(1); }, "alloc_count 3 but 4 alloc bits set"},
      {"TypedWithoutRecords", [](MSpan& s) { s.type_records = nullptr; }, "type records do not match kind", 4,
       Kind::kTyped},
      {"RecordsOnNoscan",
       [](MSpan& s) {
         static const TypeInfo* dummy[256];
         s.type_records = dummy;
       },
       "type records do not match kind"},
      {"TinyWithoutMasks", [](MSpan& s) { s.tiny = nullptr; }, "tiny masks do not match kind", kTinySizeClass,
       Kind::kTiny},
      {"FreeTinyBlockWithAllocMask", [](MSpan& s) { s.tiny->alloc_mask[2] = 1; }, "free tiny block 2 has object marks",
       kTinySizeClass, Kind::kTiny},
      {"FreeTinyBlockWithLocalFreed", [](MSpan& s) { s.tiny->local_freed[300] = 4; },
       "free tiny block 300 has object marks", kTinySizeClass, Kind::kTiny},
      {"FreeTinyBlockWithRemoteFreed", [](MSpan& s) { s.tiny->remote_freed[511].store(1); },
       "free tiny block 511 has object marks", kTinySizeClass, Kind::kTiny},
      {"LargeWithClass",
       [](MSpan& s) {
         s.state.store(SpanState::kLarge);
         s.nelems = 1;
       },
       "large span with class 64, 1 slots"},
      {"LargeWithSeveralSlots",
       [](MSpan& s) {
         s.state.store(SpanState::kLarge);
         s.span_class = 0;
       },
       "large span with class 0, 170 slots"},
  };
}

INSTANTIATE_TEST_SUITE_P(Corruptions, MSpanCheckDeath, ::testing::ValuesIn(corruptions()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(MSpanCheckDeathTest, MisalignedBaseIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto s = small_record(4);
  s->base = kFakeBase + 16;
  EXPECT_DEATH(s->check(), "span 0x10000000010: base not page-aligned");
}

// SpanList.

struct Spans {
  MSpan s[4];
  Spans() {
    for (int i = 0; i < 4; i++) s[i].base = kFakeBase + static_cast<std::uintptr_t>(i) * kPageSize;
  }
};

std::vector<MSpan*> contents(const SpanList& l) {
  std::vector<MSpan*> v;
  for (MSpan* s = l.first; s != nullptr; s = s->next) {
    v.push_back(s);
    EXPECT_EQ(s->list, &l);
    if (s->next != nullptr) {
      EXPECT_EQ(s->next->prev, s);
    }
  }
  if (l.first != nullptr) {
    EXPECT_EQ(l.first->prev, nullptr);
  }
  EXPECT_EQ(v.size(), l.count);
  EXPECT_EQ(l.empty(), v.empty());
  return v;
}

TEST(SpanList, PushPutsInFrontAndPopTakesFromFront) {
  Spans sp;
  SpanList l;
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.pop(), nullptr);
  for (auto& s : sp.s) l.push(&s);
  EXPECT_EQ(contents(l), (std::vector<MSpan*>{&sp.s[3], &sp.s[2], &sp.s[1], &sp.s[0]}));
  EXPECT_EQ(l.pop(), &sp.s[3]);
  EXPECT_EQ(sp.s[3].list, nullptr);
  EXPECT_EQ(sp.s[3].next, nullptr);
  EXPECT_EQ(contents(l), (std::vector<MSpan*>{&sp.s[2], &sp.s[1], &sp.s[0]}));
  EXPECT_EQ(l.pop(), &sp.s[2]);
  EXPECT_EQ(l.pop(), &sp.s[1]);
  EXPECT_EQ(l.pop(), &sp.s[0]);
  EXPECT_EQ(l.pop(), nullptr);
  EXPECT_TRUE(contents(l).empty());
}

struct RemoveCase {
  const char* name;
  std::vector<int> remove;  // indexes into Spans, pushed 0..3 (list order 3, 2, 1, 0)
  std::vector<int> left;
};

void PrintTo(const RemoveCase& c, std::ostream* os) { *os << c.name; }

class SpanListRemove : public ::testing::TestWithParam<RemoveCase> {};

TEST_P(SpanListRemove, UnlinksExactlyTheSpan) {
  Spans sp;
  SpanList l;
  for (auto& s : sp.s) l.push(&s);
  for (int i : GetParam().remove) {
    l.remove(&sp.s[i]);
    EXPECT_EQ(sp.s[i].list, nullptr);
    EXPECT_EQ(sp.s[i].next, nullptr);
    EXPECT_EQ(sp.s[i].prev, nullptr);
  }
  std::vector<MSpan*> want;
  for (int i : GetParam().left) want.push_back(&sp.s[i]);
  EXPECT_EQ(contents(l), want);
  // A removed span can go on a list again.
  for (int i : GetParam().remove) l.push(&sp.s[i]);
  EXPECT_EQ(l.count, 4u);
}

INSTANTIATE_TEST_SUITE_P(Cases, SpanListRemove,
                         ::testing::Values(RemoveCase{"First", {3}, {2, 1, 0}}, RemoveCase{"Last", {0}, {3, 2, 1}},
                                           RemoveCase{"Middle", {2}, {3, 1, 0}},
                                           RemoveCase{"MiddleThenFirst", {1, 3}, {2, 0}},
                                           RemoveCase{"All", {0, 1, 2, 3}, {}}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SpanListDeathTest, MisuseDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Spans sp;
  SpanList a, b;
  a.push(&sp.s[1]);
  EXPECT_DEATH(b.push(&sp.s[1]), "span 0x10000002000: pushed on a list while on another");
  EXPECT_DEATH(a.push(&sp.s[1]), "span 0x10000002000: pushed on a list while on another");
  EXPECT_DEATH(b.remove(&sp.s[1]), "span 0x10000002000: removed from a list it is not on");
  EXPECT_DEATH(a.remove(&sp.s[2]), "span 0x10000004000: removed from a list it is not on");
}

}  // namespace
}  // namespace mgc::internal
