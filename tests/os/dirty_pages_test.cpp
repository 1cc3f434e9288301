// The written-page tracker (os/dirty_pages): what it reports, on memory
// mapped here, not the heap's.
#include "os/dirty_pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace {

using mgc::internal::os::dirty_collect;
using mgc::internal::os::dirty_track;
using mgc::internal::os::dirty_tracking_start;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 64;

struct Runs {
  std::vector<std::pair<std::size_t, std::size_t>> pages;  // [first, last) page indices
  std::uintptr_t base;
};

void record(void* ctx, std::uintptr_t b, std::uintptr_t e) {
  auto* r = static_cast<Runs*>(ctx);
  r->pages.emplace_back((b - r->base) / kPage, (e - r->base) / kPage);
}

std::vector<std::pair<std::size_t, std::size_t>> collect(char* base) {
  Runs r{{}, reinterpret_cast<std::uintptr_t>(base)};
  const std::int64_t bytes = dirty_collect(reinterpret_cast<std::uintptr_t>(base),
                                           reinterpret_cast<std::uintptr_t>(base) + kPages * kPage, record, &r);
  EXPECT_GE(bytes, 0);
  return r.pages;
}

using Pages = std::vector<std::pair<std::size_t, std::size_t>>;

class DirtyPages : public testing::Test {
 protected:
  void SetUp() override {
    if (!dirty_tracking_start()) GTEST_SKIP() << "no tracker here: " << mgc::internal::os::dirty_tracking_error();
    // Reserved as the heap reserves (PROT_NONE), tracked, then partly
    // committed: the order the heap follows.
    mem_ = static_cast<char*>(mmap(nullptr, kPages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(mem_, MAP_FAILED);
    ASSERT_TRUE(dirty_track(reinterpret_cast<std::uintptr_t>(mem_), kPages * kPage));
    ASSERT_EQ(mprotect(mem_, kPages / 2 * kPage, PROT_READ | PROT_WRITE), 0);
  }
  void TearDown() override {
    if (mem_ != nullptr) munmap(mem_, kPages * kPage);
  }
  char* mem_ = nullptr;
};

TEST_F(DirtyPages, FirstCollectReportsEverythingThenOnlyWhatWasWritten) {
  // Never protected yet: all of it counts as written.
  EXPECT_EQ(collect(mem_), (Pages{{0, kPages}}));
  EXPECT_EQ(collect(mem_), Pages{});
  mem_[3 * kPage] = 1;
  mem_[7 * kPage + 100] = 2;
  mem_[8 * kPage + 4095] = 3;
  EXPECT_EQ(collect(mem_), (Pages{{3, 4}, {7, 9}}));
  EXPECT_EQ(collect(mem_), Pages{}) << "the collect protects the pages again";
  // Reads are not writes.
  volatile char sink = mem_[10 * kPage];
  (void)sink;
  EXPECT_EQ(collect(mem_), Pages{});
}

TEST_F(DirtyPages, PagesCommittedLaterAndReleasedPagesAreSeen) {
  collect(mem_);
  ASSERT_EQ(mprotect(mem_ + kPages / 2 * kPage, kPage, PROT_READ | PROT_WRITE), 0);
  mem_[kPages / 2 * kPage] = 1;
  EXPECT_EQ(collect(mem_), (Pages{{kPages / 2, kPages / 2 + 1}}));
  // Released (the scavenger's MADV_DONTNEED): reported, at worst a page
  // more to look at; then protected again like any other.
  ASSERT_EQ(madvise(mem_ + 4 * kPage, 2 * kPage, MADV_DONTNEED), 0);
  const Pages after_release = collect(mem_);
  EXPECT_EQ(after_release, (Pages{{4, 6}}));
  mem_[5 * kPage] = 1;
  EXPECT_EQ(collect(mem_), (Pages{{5, 6}}));
}

TEST_F(DirtyPages, WritesByTheKernelAreSeen) {
  collect(mem_);
  // A system call writing into a protected page (read(2) into the heap)
  // must succeed, not fail with EFAULT as with mprotect-based tracking.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "xyz", 3), 3);
  ASSERT_EQ(read(fds[0], mem_ + 12 * kPage, 3), 3);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(collect(mem_), (Pages{{12, 13}}));
}

TEST_F(DirtyPages, UnprotectedPagesAllCountAsWrittenAtTheNextCollect) {
  collect(mem_);
  EXPECT_EQ(collect(mem_), Pages{});
  ASSERT_TRUE(mgc::internal::os::dirty_unprotect(reinterpret_cast<std::uintptr_t>(mem_),
                                                 reinterpret_cast<std::uintptr_t>(mem_) + kPages * kPage));
  mem_[9 * kPage] = 1;  // no fault now, and nothing lost: the next collect reports every page
  EXPECT_EQ(collect(mem_), (Pages{{0, kPages}}));
  mem_[2 * kPage] = 1;
  EXPECT_EQ(collect(mem_), (Pages{{2, 3}})) << "protected again by that collect";
}

}  // namespace
