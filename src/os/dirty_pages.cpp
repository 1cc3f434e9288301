#include "os/dirty_pages.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "os/mutex.hpp"

namespace mgc::internal::os {

namespace {

// The kernel ABI of PAGEMAP_SCAN and the asynchronous write-protect
// features (linux/fs.h and linux/userfaultfd.h of 6.7; Debian's headers
// may predate them).
struct PageRegion {
  std::uint64_t start, end, categories;
};
struct PmScanArg {
  std::uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr std::uint64_t kPageIsWritten = 1u << 1;
constexpr std::uint64_t kScanWpMatching = 1u << 0;
constexpr std::uint64_t kScanCheckWpAsync = 1u << 1;
constexpr std::uint64_t kFeatureWpUnpopulated = 1u << 13;
constexpr std::uint64_t kFeatureWpAsync = 1u << 15;
constexpr int kUserModeOnly = 1;

Mutex g_lock;
int g_uffd = -1;
int g_pagemap = -1;
pid_t g_pid = 0;  // the process that opened them
std::atomic<bool> g_on{false};
std::atomic<unsigned> g_generation{0};
char g_error[160] = "";

void close_all() {
  if (g_uffd >= 0) close(g_uffd);
  if (g_pagemap >= 0) close(g_pagemap);
  g_uffd = g_pagemap = -1;
  g_on.store(false, std::memory_order_release);
}

bool fail(const char* what) {
  std::snprintf(g_error, sizeof g_error, "%s: %s", what, std::strerror(errno));
  close_all();
  return false;
}

// Tracking fails for good after it started: no lock (dirty_collect runs
// with the world stopped, when a stopped thread may hold g_lock); the
// descriptors stay open, unused, and the reason is kept for
// dirty_tracking_error.
std::atomic<const char*> g_lost_what{nullptr};
std::atomic<int> g_lost_errno{0};
void lost(const char* what) {
  g_lost_errno.store(errno, std::memory_order_relaxed);
  g_lost_what.store(what, std::memory_order_relaxed);
  g_on.store(false, std::memory_order_release);
}

}  // namespace

bool dirty_tracking_start() {
  std::lock_guard<Mutex> g(g_lock);
  const pid_t pid = getpid();
  if (g_pid == pid) return g_on.load(std::memory_order_relaxed);
  // First call in this process (or a fork child's: descriptors inherited
  // from the parent track the parent's memory, not ours).
  if (g_pid != 0) close_all();
  g_pid = pid;
  g_error[0] = 0;
  g_lost_what.store(nullptr, std::memory_order_relaxed);
  g_uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | kUserModeOnly));
  if (g_uffd < 0) return fail("userfaultfd");
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = kFeatureWpAsync | kFeatureWpUnpopulated;
  if (ioctl(g_uffd, UFFDIO_API, &api) != 0) return fail("userfaultfd: asynchronous write-protection");
  g_pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (g_pagemap < 0) return fail("/proc/self/pagemap");
  // PAGEMAP_SCAN itself (Linux 6.7): an empty range must be accepted.
  PmScanArg a{};
  a.size = sizeof a;
  if (ioctl(g_pagemap, kPagemapScan, &a) < 0) return fail("PAGEMAP_SCAN");
  g_generation.fetch_add(1, std::memory_order_relaxed);
  g_on.store(true, std::memory_order_release);
  return true;
}

unsigned dirty_tracking_generation() { return g_generation.load(std::memory_order_relaxed); }

bool dirty_tracking_on() { return g_on.load(std::memory_order_acquire) && g_pid == getpid(); }
const char* dirty_tracking_name() { return dirty_tracking_on() ? "userfaultfd" : "none"; }
const char* dirty_tracking_error() {
  if (g_error[0] == 0 && g_lost_what.load(std::memory_order_relaxed) != nullptr)
    std::snprintf(g_error, sizeof g_error, "%s: %s", g_lost_what.load(std::memory_order_relaxed),
                  std::strerror(g_lost_errno.load(std::memory_order_relaxed)));
  return g_error;
}

bool dirty_track(std::uintptr_t p, std::size_t size) {
  if (!dirty_tracking_on()) return false;
  uffdio_register reg{};
  reg.range.start = p;
  reg.range.len = size;
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(g_uffd, UFFDIO_REGISTER, &reg) == 0) return true;
  // Writes there would go unseen: tracking is over for this process (the
  // collector notices and rescans what it marked, or stops the world).
  lost("userfaultfd: register");
  return false;
}

std::int64_t dirty_collect(std::uintptr_t begin, std::uintptr_t end, DirtyRunFn fn, void* ctx) {
  if (!dirty_tracking_on()) return -1;
  constexpr std::size_t kRuns = 256;
  PageRegion runs[kRuns];
  std::int64_t bytes = 0;
  while (begin < end) {
    PmScanArg a{};
    a.size = sizeof a;
    a.flags = kScanWpMatching | kScanCheckWpAsync;
    a.start = begin;
    a.end = end;
    a.vec = reinterpret_cast<std::uintptr_t>(runs);
    a.vec_len = kRuns;
    a.category_mask = kPageIsWritten;
    a.return_mask = kPageIsWritten;
    const int n = ioctl(g_pagemap, kPagemapScan, &a);
    if (n < 0) {
      if (errno == EINTR) continue;
      lost("PAGEMAP_SCAN");
      return -1;
    }
    for (int i = 0; i < n; i++) {
      bytes += static_cast<std::int64_t>(runs[i].end - runs[i].start);
      fn(ctx, runs[i].start, runs[i].end);
    }
    // The kernel stops early when the vector fills: go on from there.
    if (a.walk_end <= begin) return -1;
    begin = a.walk_end;
  }
  return bytes;
}

bool dirty_unprotect(std::uintptr_t begin, std::uintptr_t end) {
  if (!dirty_tracking_on()) return false;
  uffdio_writeprotect wp{};
  wp.range.start = begin;
  wp.range.len = end - begin;
  wp.mode = 0;
  if (ioctl(g_uffd, UFFDIO_WRITEPROTECT, &wp) == 0) return true;
  lost("userfaultfd: unprotect");
  return false;
}

void dirty_tracking_reset_for_test() {
  std::lock_guard<Mutex> g(g_lock);
  close_all();
  g_pid = 0;
  g_error[0] = 0;
}

}  // namespace mgc::internal::os
