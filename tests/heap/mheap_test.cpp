// Tests for src/heap/mheap: small and large spans out of the process-wide
// heap, published in and cleared from the page -> span map. Other tests of
// this binary use the same heap: assertions are on differences.
#include "heap/mheap.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "heap/type_info.hpp"
#include "mallocgc/internal/fast_path.hpp"
#include "os/sanitizer.hpp"

namespace mgc::internal {
namespace {

void expect_published(const MSpan* s) {
  for (std::uintptr_t a = s->base; a < s->limit(); a += kPageSize) {
    ASSERT_EQ(mheap().span_of(a), s) << "page " << (a - s->base) / kPageSize;
    ASSERT_EQ(mheap().span_of(a + kPageSize - 1), s);
    ASSERT_TRUE(mheap().in_heap_range(a));
  }
  EXPECT_NE(mheap().span_of(s->base - 1), s);
  EXPECT_NE(mheap().span_of(s->limit()), s);
}

void expect_unpublished(std::uintptr_t base, std::size_t npages) {
  for (std::size_t i = 0; i < npages; i++) ASSERT_EQ(mheap().span_of(base + i * kPageSize), nullptr) << "page " << i;
}

// Reads free slots too, which sanitizer builds poison: the allocator's
// view, not a program's.
__attribute__((no_sanitize("address"))) bool all_zero(std::uintptr_t p, std::size_t n) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i++)
    if (b[i] != 0) return false;
  return true;
}

void expect_stats_add_up() {
  const HeapPageStats st = mheap().page_stats();
  EXPECT_EQ(st.inuse_bytes + st.free_bytes, st.committed_bytes);
  EXPECT_LE(st.committed_bytes, st.reserved_bytes);
  EXPECT_EQ(st.reserved_bytes % kArenaSize, 0u);
  EXPECT_EQ(st.committed_bytes % kPageSize, 0u);
}

struct SmallCase {
  int cls;
  Kind kind;
};

void PrintTo(const SmallCase& c, std::ostream* os) { *os << "class " << c.cls << " kind " << int(c.kind); }

class MHeapSmallSpan : public ::testing::TestWithParam<SmallCase> {};

TEST_P(MHeapSmallSpan, FieldsMatchTheClassAndPagesArePublished) {
  const SmallCase c = GetParam();
  const int spc = span_class(c.cls, c.kind);
  const HeapPageStats before = mheap().page_stats();
  MSpan* s = mheap().alloc_small_span(spc);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->base % kPageSize, 0u);
  EXPECT_EQ(s->npages, kClassToAllocNPages[c.cls]);
  EXPECT_EQ(s->elem_size, kClassToSize[c.cls]);
  EXPECT_EQ(s->nelems, s->npages * kPageSize / kClassToSize[c.cls]);
  EXPECT_EQ(s->div_magic, kClassToDivMagic[c.cls]);
  EXPECT_EQ(s->span_class, spc);
  EXPECT_EQ(s->kind, c.kind);
  EXPECT_FALSE(s->is_large());
  EXPECT_EQ(s->state.load(), SpanState::kSmall);
  EXPECT_EQ(s->owner.load(), nullptr);
  EXPECT_EQ(s->alloc_count, 0u);
  EXPECT_EQ(s->pending.load(), 0u);
  EXPECT_EQ(s->list, nullptr);
  for (std::size_t w = 0; w < kBitmapWords; w++) {
    EXPECT_EQ(s->alloc_bits[w].load(), 0u);
    EXPECT_EQ(s->pending_free[w].load(), 0u);
  }
  EXPECT_EQ(s->type_records != nullptr, c.kind == Kind::kTyped);
  EXPECT_EQ(s->tiny != nullptr, c.kind == Kind::kTiny);
  if (s->type_records != nullptr) {
    for (std::size_t i = 0; i < s->nelems; i++) ASSERT_EQ(s->type_records[i], nullptr);
  }
  if (s->tiny != nullptr) {
    for (std::size_t i = 0; i < kMaxTinyBlocks; i++) {
      ASSERT_EQ(s->tiny->alloc_mask[i], 0);
      ASSERT_EQ(s->tiny->local_freed[i], 0);
      ASSERT_EQ(s->tiny->remote_freed[i].load(), 0);
    }
  }
  // need_zero false promises zeroed memory.
  if (!s->need_zero) {
    EXPECT_TRUE(all_zero(s->base, s->npages * kPageSize));
  }
  expect_published(s);
  s->check();
  mheap().check();
  const HeapPageStats during = mheap().page_stats();
  EXPECT_EQ(during.inuse_bytes - before.inuse_bytes, s->npages * kPageSize);
  expect_stats_add_up();

  const std::uintptr_t base = s->base;
  const std::size_t npages = s->npages;
  mheap().free_span(s);
  expect_unpublished(base, npages);
  EXPECT_EQ(s->state.load(), SpanState::kFree);
  EXPECT_EQ(mheap().page_stats().inuse_bytes, before.inuse_bytes);
  mheap().check();
  expect_stats_add_up();
}

INSTANTIATE_TEST_SUITE_P(Classes, MHeapSmallSpan,
                         ::testing::Values(SmallCase{1, Kind::kNoscan}, SmallCase{1, Kind::kConservative},
                                           SmallCase{1, Kind::kTyped}, SmallCase{kTinySizeClass, Kind::kTiny},
                                           SmallCase{4, Kind::kNoscan}, SmallCase{17, Kind::kTyped},
                                           SmallCase{34, Kind::kConservative}, SmallCase{40, Kind::kNoscan},
                                           SmallCase{50, Kind::kTyped}, SmallCase{62, Kind::kConservative},
                                           SmallCase{64, Kind::kNoscan}, SmallCase{kNumSizeClasses - 1, Kind::kTyped}),
                         [](const auto& info) {
                           return "class" + std::to_string(info.param.cls) + "_kind" +
                                  std::to_string(static_cast<int>(info.param.kind));
                         });

TEST(MHeap, SpansDoNotOverlap) {
  std::vector<MSpan*> spans;
  for (int cls = 1; cls < kNumSizeClasses; cls++) {
    MSpan* s = mheap().alloc_small_span(span_class(cls, Kind::kNoscan));
    ASSERT_NE(s, nullptr);
    spans.push_back(s);
  }
  for (MSpan* s : spans) {
    expect_published(s);  // nobody else overwrote its pages
    for (MSpan* t : spans) {
      if (s != t) {
        ASSERT_TRUE(s->limit() <= t->base || t->limit() <= s->base);
      }
    }
  }
  mheap().check();
  for (MSpan* s : spans) mheap().free_span(s);
  mheap().check();
}

TEST(MHeap, ReusedPagesAreMarkedNeedZero) {
  const int spc = span_class(6, Kind::kConservative);
  MSpan* a = mheap().alloc_small_span(spc);
  ASSERT_NE(a, nullptr);
  const std::uintptr_t base = a->base;
  // The span's free slots are poisoned in sanitizer builds: this stands
  // for objects handed out and written.
  bytes_writable(reinterpret_cast<void*>(base), a->npages * kPageSize);
  std::memset(reinterpret_cast<void*>(base), 0xAB, a->npages * kPageSize);
  mheap().free_span(a);
  MSpan* b = mheap().alloc_small_span(spc);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->base, base) << "first fit takes the pages just freed";
  EXPECT_TRUE(b->need_zero) << "its pages hold old data";
  mheap().free_span(b);
}

TEST(MHeap, SpanRecordsAreRecycled) {
  MSpan* a = mheap().alloc_small_span(span_class(9, Kind::kNoscan));
  ASSERT_NE(a, nullptr);
  a->alloc_bits[0].store(0xFF);  // garbage a new record must not inherit
  a->alloc_count = 8;
  a->need_zero = true;
  mheap().free_span(a);
  MSpan* b = mheap().alloc_small_span(span_class(10, Kind::kTyped));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b, a) << "the freed record is reused";
  EXPECT_EQ(b->alloc_bits[0].load(), 0u);
  EXPECT_EQ(b->alloc_count, 0u);
  EXPECT_EQ(b->span_class, span_class(10, Kind::kTyped));
  b->check();
  mheap().free_span(b);
}

struct LargeCase {
  std::size_t npages;
  std::size_t size;
  Kind kind;
};

void PrintTo(const LargeCase& c, std::ostream* os) { *os << c.npages << " pages"; }

class MHeapLargeSpan : public ::testing::TestWithParam<LargeCase> {};

TEST_P(MHeapLargeSpan, OneObjectSpanPublishedAndFreed) {
  const LargeCase c = GetParam();
  const HeapPageStats before = mheap().page_stats();
  bool need_zero = true;
  std::uintptr_t volatile keep = 0;
  MSpan* s = mheap().alloc_large_span(c.npages, c.size, c.kind, &need_zero, &keep);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(keep, s->base);  // handed back before the span was published
  EXPECT_EQ(s->base % kPageSize, 0u);
  EXPECT_EQ(s->npages, c.npages);
  EXPECT_TRUE(s->is_large());
  EXPECT_EQ(s->span_class, 0);
  EXPECT_EQ(s->nelems, 1u);
  const std::size_t bytes = c.npages * kPageSize;
  EXPECT_EQ(s->elem_size, bytes > 0xFFFFFFFFu ? 0xFFFFFFFFu : bytes);
  EXPECT_EQ(s->large_size, c.size);
  EXPECT_EQ(s->kind, c.kind);
  EXPECT_EQ(s->need_zero, need_zero);
  EXPECT_EQ(s->state.load(), SpanState::kLarge);
  EXPECT_EQ(s->alloc_bits[0].load(), 1u);
  EXPECT_EQ(s->alloc_count, 1u);
  EXPECT_TRUE(s->is_allocated(0));
  EXPECT_EQ(s->object_index(s->limit() - 1), 0u);
  if (!need_zero) {
    // Checking every byte of gigabytes would take long; the first and last page.
    EXPECT_TRUE(all_zero(s->base, kPageSize));
    EXPECT_TRUE(all_zero(s->limit() - kPageSize, kPageSize));
  }
  s->check();
  expect_published(s);
  EXPECT_EQ(mheap().page_stats().inuse_bytes - before.inuse_bytes, bytes);
  mheap().check();
  expect_stats_add_up();
  const std::uintptr_t base = s->base;
  mheap().free_span(s);
  expect_unpublished(base, c.npages);
  EXPECT_EQ(mheap().page_stats().inuse_bytes, before.inuse_bytes);
  mheap().check();
  expect_stats_add_up();
}

INSTANTIATE_TEST_SUITE_P(Sizes, MHeapLargeSpan,
                         ::testing::Values(LargeCase{5, 32769, Kind::kNoscan}, LargeCase{13, 100000, Kind::kTyped},
                                           LargeCase{kPagesPerArena, kArenaSize, Kind::kConservative},
                                           LargeCase{kPagesPerArena + 1, kArenaSize + 1, Kind::kNoscan},
                                           // elem_size saturates above 4 GiB
                                           LargeCase{(std::size_t{1} << 32) / kPageSize + 1, (std::size_t{1} << 32) + 1,
                                                     Kind::kNoscan}),
                         [](const auto& info) { return "pages" + std::to_string(info.param.npages); });

TEST(MHeap, OutsideAddressesHaveNoSpan) {
  int local = 0;
  static int global = 0;
  std::vector<int> from_malloc(4);
  for (std::uintptr_t a : {std::uintptr_t{0}, ~std::uintptr_t{0}, reinterpret_cast<std::uintptr_t>(&local),
                           reinterpret_cast<std::uintptr_t>(&global),
                           reinterpret_cast<std::uintptr_t>(from_malloc.data()), std::uintptr_t{1} << 50})
    EXPECT_EQ(mheap().span_of(a), nullptr) << std::hex << a;
}

TEST(MHeap, HasFreePagesAgreesWithStats) {
  MSpan* s = mheap().alloc_small_span(span_class(3, Kind::kNoscan));  // the heap exists now
  ASSERT_NE(s, nullptr);
  const std::size_t free_pages = mheap().page_stats().free_bytes / kPageSize;
  EXPECT_TRUE(mheap().has_free_pages(free_pages));
  EXPECT_FALSE(mheap().has_free_pages(free_pages + 1));
  mheap().free_span(s);
  EXPECT_TRUE(mheap().has_free_pages(free_pages + 1));
}

TEST(MHeap, HugePagesSettingKeepsTheHeapWorking) {
  mheap().set_huge_pages(true);
  bool nz;
  std::uintptr_t volatile keep = 0;
  MSpan* s = mheap().alloc_large_span(2 * kPagesPerArena, 2 * kArenaSize, Kind::kNoscan, &nz, &keep);
  mheap().set_huge_pages(false);
  ASSERT_NE(s, nullptr);
  expect_published(s);
  mheap().free_span(s);
  mheap().check();
}

TEST(MHeapDeathTest, CheckCoversEveryInUseSpan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MSpan* s = mheap().alloc_small_span(span_class(11, Kind::kConservative));
  ASSERT_NE(s, nullptr);
  bool nz;
  std::uintptr_t volatile keep = 0;
  MSpan* l = mheap().alloc_large_span(3, 20000, Kind::kNoscan, &nz, &keep);
  ASSERT_NE(l, nullptr);
  mheap().check();
  s->alloc_count = 5;  // no alloc bit is set
  EXPECT_DEATH(mheap().check(), "span 0x[0-9a-f]+000: alloc_count 5 but 0 alloc bits set");
  // Spans the caller says to skip (another thread's) are not looked at.
  mheap().check([](const MSpan* x) { return x->span_class == span_class(11, Kind::kConservative); });
  s->alloc_count = 0;
  l->nelems = 2;
  EXPECT_DEATH(mheap().check(), "large span with class 0, 2 slots");
  l->nelems = 1;
  mheap().check();
  mheap().free_span(l);
  mheap().free_span(s);
}

TEST(MHeapDeathTest, FreeingASpanTwiceDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MSpan* s = mheap().alloc_small_span(span_class(5, Kind::kNoscan));
  ASSERT_NE(s, nullptr);
  mheap().free_span(s);
  EXPECT_DEATH(mheap().free_span(s), "mallocgc: fatal error: span 0x[0-9a-f]+000 freed twice");
  bool nz;
  std::uintptr_t volatile keep = 0;
  MSpan* l = mheap().alloc_large_span(7, 50000, Kind::kNoscan, &nz, &keep);
  ASSERT_NE(l, nullptr);
  mheap().free_span(l);
  EXPECT_DEATH(mheap().free_span(l), "span 0x[0-9a-f]+ freed twice");
  mheap().check();  // the parent's heap is intact
}

}  // namespace
}  // namespace mgc::internal
