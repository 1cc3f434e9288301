// The written-page tracker (os/dirty_pages): what it reports, on memory
// mapped here, not the heap's; each test with each tracker (userfaultfd
// where the kernel has it, and the mprotect fallback).
#include "os/dirty_pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "os/sanitizer.hpp"

namespace {

using mgc::internal::os::dirty_collect;
using mgc::internal::os::dirty_track;
using mgc::internal::os::dirty_tracking_start;
using mgc::internal::os::DirtyMethod;

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

std::vector<std::pair<std::size_t, std::size_t>> collect(char* base, std::size_t pages = kPages) {
  Runs r{{}, reinterpret_cast<std::uintptr_t>(base)};
  const std::int64_t bytes = dirty_collect(reinterpret_cast<std::uintptr_t>(base),
                                           reinterpret_cast<std::uintptr_t>(base) + pages * kPage, record, &r);
  EXPECT_GE(bytes, 0);
  return r.pages;
}

using Pages = std::vector<std::pair<std::size_t, std::size_t>>;

// Made readable and writable as os::commit does it.
void commit(char* p, std::size_t bytes) {
  ASSERT_EQ(mprotect(p, bytes, PROT_READ | PROT_WRITE), 0);
  mgc::internal::os::dirty_committed(reinterpret_cast<std::uintptr_t>(p), bytes);
}

const char* method_name(DirtyMethod m) { return m == DirtyMethod::kMprotect ? "mprotect" : "userfaultfd"; }

class DirtyPages : public testing::TestWithParam<DirtyMethod> {
 protected:
  void SetUp() override {
    mgc::internal::os::dirty_tracking_reset_for_test();
    mgc::internal::os::set_dirty_tracking_method(GetParam());
    if (!dirty_tracking_start()) GTEST_SKIP() << "no tracker here: " << mgc::internal::os::dirty_tracking_error();
    ASSERT_STREQ(mgc::internal::os::dirty_tracking_name(), method_name(GetParam()));
    // Reserved as the heap reserves (PROT_NONE), tracked, then partly
    // committed: the order the heap follows.
    mem_ = static_cast<char*>(mmap(nullptr, kPages * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(mem_, MAP_FAILED);
    ASSERT_TRUE(dirty_track(reinterpret_cast<std::uintptr_t>(mem_), kPages * kPage));
    commit(mem_, kPages / 2 * kPage);
  }
  void TearDown() override {
    if (mem_ != nullptr) munmap(mem_, kPages * kPage);
    mgc::internal::os::dirty_tracking_reset_for_test();
    mgc::internal::os::set_dirty_tracking_method(DirtyMethod::kAuto);
  }
  bool mprotect_mode() const { return GetParam() == DirtyMethod::kMprotect; }
  char* mem_ = nullptr;
};

TEST_P(DirtyPages, FirstCollectReportsEverythingThenOnlyWhatWasWritten) {
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
  EXPECT_EQ(mem_[7 * kPage + 100], 2) << "the writes themselves went through";
}

TEST_P(DirtyPages, PagesCommittedLaterAndReleasedPagesAreSeen) {
  collect(mem_);
  commit(mem_ + kPages / 2 * kPage, kPage);
  mem_[kPages / 2 * kPage] = 1;
  EXPECT_EQ(collect(mem_), (Pages{{kPages / 2, kPages / 2 + 1}}));
  // Released (the scavenger's MADV_DONTNEED). userfaultfd reports them (at
  // worst a page more to look at); the fallback need not (they read as
  // zeros, which hold no reference). Either way protected as before: the
  // next write is seen.
  ASSERT_EQ(madvise(mem_ + 4 * kPage, 2 * kPage, MADV_DONTNEED), 0);
  const Pages after_release = collect(mem_);
  EXPECT_EQ(after_release, mprotect_mode() ? Pages{} : (Pages{{4, 6}}));
  mem_[5 * kPage] = 1;
  EXPECT_EQ(collect(mem_), (Pages{{5, 6}}));
}

TEST_P(DirtyPages, ReservedPagesStayInaccessible) {
  collect(mem_);
  collect(mem_);
  // The fallback protects only what was committed: a page never committed
  // still faults on a read (a death test: the read must crash).
  char* reserved = mem_ + (kPages - 1) * kPage;
  EXPECT_DEATH(
      {
        // The child's fault is the point: not a memcheck error (valgrind builds).
        mgc::internal::collector_reads_begin();
        volatile char c = *reserved;
        (void)c;
      },
      "");
}

TEST_P(DirtyPages, WritesByTheKernel) {
  collect(mem_);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "xyz", 3), 3);
  const ssize_t got = read(fds[0], mem_ + 12 * kPage, 3);
  const int err = errno;
  close(fds[0]);
  close(fds[1]);
  if (mprotect_mode()) {
    // The limit of mprotect-based tracking (Boehm's too): the kernel does
    // not fault on the program's behalf, the call fails.
    EXPECT_EQ(got, -1);
    EXPECT_EQ(err, EFAULT);
    EXPECT_EQ(collect(mem_), Pages{});
  } else {
    // A system call writing into a protected page (read(2) into the heap)
    // succeeds and is seen.
    EXPECT_EQ(got, 3);
    EXPECT_EQ(collect(mem_), (Pages{{12, 13}}));
  }
}

TEST_P(DirtyPages, UnprotectedPagesAllCountAsWrittenAtTheNextCollect) {
  collect(mem_);
  EXPECT_EQ(collect(mem_), Pages{});
  ASSERT_TRUE(mgc::internal::os::dirty_unprotect(reinterpret_cast<std::uintptr_t>(mem_),
                                                 reinterpret_cast<std::uintptr_t>(mem_) + kPages * kPage));
  mem_[9 * kPage] = 1;  // no fault now, and nothing lost: the next collect reports every page
  EXPECT_EQ(collect(mem_), (Pages{{0, kPages}}));
  mem_[2 * kPage] = 1;
  EXPECT_EQ(collect(mem_), (Pages{{2, 3}})) << "protected again by that collect";
}

TEST_P(DirtyPages, NoWriteIsLostWhileAnotherThreadCollects) {
  // Threads write while another collects again and again: each page's
  // content as last read after a collect reported it must, after a final
  // collect, equal the memory (a write missed by every collect would leave
  // a stale copy: what the mark would have missed).
  constexpr std::size_t kUsed = kPages / 2;
  std::vector<std::uint64_t> copy(kUsed, 0);
  collect(mem_);
  std::atomic<bool> stop{false};
  auto writer = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::uint64_t v = seed;
    while (!stop.load(std::memory_order_relaxed)) {
      const std::size_t page = rng() % kUsed;
      v += 2;
      __atomic_store_n(reinterpret_cast<std::uint64_t*>(mem_ + page * kPage + 8 * (seed % 2)), v, __ATOMIC_RELAXED);
    }
  };
  std::thread w1(writer, 1), w2(writer, 2);
  auto take = [&](const Pages& reported) {
    for (const auto& [b, e] : reported)
      for (std::size_t p = b; p < e && p < kUsed; p++)
        copy[p] = __atomic_load_n(reinterpret_cast<std::uint64_t*>(mem_ + p * kPage), __ATOMIC_RELAXED) ^
                  __atomic_load_n(reinterpret_cast<std::uint64_t*>(mem_ + p * kPage + 8), __ATOMIC_RELAXED) << 1;
  };
  int rounds = 0;
  for (auto t0 = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300); rounds++)
    take(collect(mem_));
  stop = true;
  w1.join();
  w2.join();
  take(collect(mem_));
  for (std::size_t p = 0; p < kUsed; p++) {
    const std::uint64_t now = *reinterpret_cast<std::uint64_t*>(mem_ + p * kPage) ^
                              *reinterpret_cast<std::uint64_t*>(mem_ + p * kPage + 8) << 1;
    EXPECT_EQ(copy[p], now) << "page " << p << ": a write no collect reported";
  }
  EXPECT_GT(rounds, 10);
}

INSTANTIATE_TEST_SUITE_P(Trackers, DirtyPages, testing::Values(DirtyMethod::kUserfaultfd, DirtyMethod::kMprotect),
                         [](const testing::TestParamInfo<DirtyMethod>& i) {
                           return std::string(method_name(i.param));
                         });

TEST(DirtyPagesFallback, RefusedUnderValgrind) {
  // Valgrind resumes a write that faulted with stale registers (its default
  // register precision): the fallback is refused there and marking stops
  // the world. Valgrind is recognised by its preloaded library (what it
  // puts in LD_PRELOAD is only read here, nothing is loaded).
  const char* old = std::getenv("LD_PRELOAD");
  const std::string saved = old != nullptr ? old : "";
  setenv("LD_PRELOAD", "/usr/libexec/valgrind/vgpreload_core-amd64-linux.so", 1);
  mgc::internal::os::dirty_tracking_reset_for_test();
  mgc::internal::os::set_dirty_tracking_method(DirtyMethod::kMprotect);
  EXPECT_FALSE(dirty_tracking_start());
  EXPECT_STREQ(mgc::internal::os::dirty_tracking_name(), "none");
  EXPECT_NE(std::strstr(mgc::internal::os::dirty_tracking_error(), "valgrind"), nullptr)
      << mgc::internal::os::dirty_tracking_error();
  if (old != nullptr) {
    setenv("LD_PRELOAD", saved.c_str(), 1);
  } else {
    unsetenv("LD_PRELOAD");
  }
  mgc::internal::os::dirty_tracking_reset_for_test();
  mgc::internal::os::set_dirty_tracking_method(DirtyMethod::kAuto);
}

TEST(DirtyPagesFallback, AFaultOutsideTrackedMemoryReachesTheProgramsHandler) {
  mgc::internal::os::dirty_tracking_reset_for_test();
  mgc::internal::os::set_dirty_tracking_method(DirtyMethod::kMprotect);
  if (!dirty_tracking_start()) {
    const std::string why = mgc::internal::os::dirty_tracking_error();
    mgc::internal::os::set_dirty_tracking_method(DirtyMethod::kAuto);
    GTEST_SKIP() << "no fallback here: " << why;
  }
  // The fallback's handler is installed now; a fault elsewhere still kills
  // the program as it would have (the default action).
  EXPECT_DEATH(
      {
        // The child's fault is the point: not a memcheck error (valgrind builds).
        mgc::internal::collector_reads_begin();
        volatile std::uintptr_t bad = 16;
        *reinterpret_cast<volatile char*>(bad) = 1;
      },
      "");
  mgc::internal::os::dirty_tracking_reset_for_test();
  mgc::internal::os::set_dirty_tracking_method(DirtyMethod::kAuto);
}

}  // namespace
