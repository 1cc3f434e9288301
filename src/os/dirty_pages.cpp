#include "os/dirty_pages.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "os/mutex.hpp"

#if MALLOCGC_VALGRIND
#include <valgrind/valgrind.h>
#endif

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
std::atomic<int> g_wanted{static_cast<int>(DirtyMethod::kAuto)};
std::atomic<int> g_in_use{static_cast<int>(DirtyMethod::kAuto)};  // kAuto: none
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

bool using_mprotect() { return g_in_use.load(std::memory_order_relaxed) == static_cast<int>(DirtyMethod::kMprotect); }

// ---- The mprotect fallback (Boehm's MPROTECT_VDB) ----
//
// Tracked ranges keep two bitmaps, a bit per 4 KiB page: written (reported
// at the next collect) and accessible (committed read-write by os::commit,
// so that a collect may protect it; reserved pages are never touched). A
// collect takes the written bits and makes those pages read-only; the
// first write after that faults, and the SIGSEGV handler sets the page's
// bit and makes it writable again. A handler and a collect must not
// interleave on one page (a write between the collect's taking of the bit
// and its protection would be lost if the handler then lifted the
// protection with the bit already taken): a collect holds g_exclusive
// while it takes bits and protects, and waits until no handler is inside
// (g_in_handler); a handler that finds g_exclusive set waits for it to
// clear. The stop-the-world signal is blocked inside the handler, so a
// thread is never stopped there.
constexpr std::uintptr_t kOsPage = 4096;
struct Range {
  std::uintptr_t base;
  std::size_t pages;
  std::atomic<std::uint64_t>* written;
  std::atomic<std::uint64_t>* accessible;
};
constexpr std::size_t kMaxRanges = 4096;
Range g_ranges[kMaxRanges];
std::atomic<std::size_t> g_nranges{0};  // published with release, after the range
std::atomic<int> g_exclusive{0};
std::atomic<int> g_in_handler{0};
struct sigaction g_old_segv;
bool g_handler_installed = false;           // under g_lock
std::atomic<int> g_blocked_signal{SIGPWR};  // the stop signal's default

Range* range_of(std::uintptr_t a) {
  const std::size_t n = g_nranges.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; i++)
    if (a - g_ranges[i].base < g_ranges[i].pages * kOsPage) return &g_ranges[i];
  return nullptr;
}

bool test_page(const std::atomic<std::uint64_t>* bits, std::size_t i) {
  return (bits[i / 64].load(std::memory_order_relaxed) >> (i % 64)) & 1;
}

void set_pages(std::atomic<std::uint64_t>* bits, std::size_t first, std::size_t n) {
  for (std::size_t i = first; i < first + n;) {
    if (i % 64 == 0 && i + 64 <= first + n) {
      bits[i / 64].store(~std::uint64_t{0}, std::memory_order_relaxed);
      i += 64;
    } else {
      bits[i / 64].fetch_or(std::uint64_t{1} << (i % 64), std::memory_order_relaxed);
      i++;
    }
  }
}

void spin_pause() { __builtin_ia32_pause(); }

void begin_exclusive() {
  while (g_exclusive.exchange(1, std::memory_order_seq_cst) != 0) spin_pause();
  while (g_in_handler.load(std::memory_order_seq_cst) != 0) spin_pause();
}
void end_exclusive() { g_exclusive.store(0, std::memory_order_release); }

void pass_on(int sig, siginfo_t* si, void* uc) {
  const struct sigaction& old = g_old_segv;
  if (old.sa_flags & SA_SIGINFO) {
    if (old.sa_sigaction != nullptr) return old.sa_sigaction(sig, si, uc);
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    return old.sa_handler(sig);
  }
  // The default action: restored, and the faulting instruction runs again.
  signal(SIGSEGV, SIG_DFL);
}

__attribute__((no_sanitize("address", "undefined", "thread"))) void on_segv(int sig, siginfo_t* si, void* uc) {
  const auto a = reinterpret_cast<std::uintptr_t>(si->si_addr);
  Range* r = si->si_code == SEGV_ACCERR ? range_of(a) : nullptr;
  const std::size_t page = r != nullptr ? (a - r->base) / kOsPage : 0;
  if (r == nullptr || !test_page(r->accessible, page)) return pass_on(sig, si, uc);
  const int saved_errno = errno;
  for (;;) {
    g_in_handler.fetch_add(1, std::memory_order_seq_cst);
    if (g_exclusive.load(std::memory_order_seq_cst) == 0) break;
    g_in_handler.fetch_sub(1, std::memory_order_seq_cst);
    while (g_exclusive.load(std::memory_order_acquire) != 0) spin_pause();
  }
  // The bit before the protection goes: a collect then sees the page.
  r->written[page / 64].fetch_or(std::uint64_t{1} << (page % 64), std::memory_order_relaxed);
  const bool ok = mprotect(reinterpret_cast<void*>(r->base + page * kOsPage), kOsPage, PROT_READ | PROT_WRITE) == 0;
  g_in_handler.fetch_sub(1, std::memory_order_release);
  errno = saved_errno;
  if (!ok) pass_on(sig, si, uc);
}

void after_fork_in_child() {
  // The parent's collect may have held these at the fork.
  g_exclusive.store(0, std::memory_order_relaxed);
  g_in_handler.store(0, std::memory_order_relaxed);
}

// Under valgrind, a write that faulted on a protected page is resumed,
// after the handler returns, with registers as they were at the start of
// its block (valgrind's default --vex-iropt-register-updates): stores to
// wild addresses followed (dirty_pages_test's writer thread, gc_stress,
// gc_threads' lists). The fallback is not offered there; marking stops
// the world, as where no tracker exists. Found by RUNNING_ON_VALGRIND in
// the valgrind build, and by valgrind's preloaded library elsewhere.
bool under_valgrind() {
#if MALLOCGC_VALGRIND
  if (RUNNING_ON_VALGRIND) return true;
#endif
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, "/vgpreload_") != nullptr;
}

bool start_mprotect() {
  if (under_valgrind()) {
    errno = ENOTSUP;
    return fail("mprotect tracking under valgrind (a faulting write resumes with stale registers)");
  }
  if (!g_handler_installed) {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    const int stop = g_blocked_signal.load(std::memory_order_relaxed);
    if (stop != 0) sigaddset(&sa.sa_mask, stop);
    if (sigaction(SIGSEGV, &sa, &g_old_segv) != 0) return fail("sigaction(SIGSEGV)");
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    g_handler_installed = true;
  }
  g_in_use.store(static_cast<int>(DirtyMethod::kMprotect), std::memory_order_relaxed);
  g_generation.fetch_add(1, std::memory_order_relaxed);
  g_on.store(true, std::memory_order_release);
  return true;
}

bool track_mprotect(std::uintptr_t p, std::size_t size) {
  std::lock_guard<Mutex> g(g_lock);
  const std::size_t pages = size / kOsPage;
  Range* r = range_of(p);
  if (r != nullptr) {
    // Tracked again (a new generation): every page counts as written.
    if (r->base != p || r->pages != pages) return false;
    set_pages(r->written, 0, pages);
    return true;
  }
  const std::size_t n = g_nranges.load(std::memory_order_relaxed);
  if (n == kMaxRanges) {
    errno = ENOSPC;
    return false;
  }
  const std::size_t bytes = (pages + 63) / 64 * 8;
  void* w = mmap(nullptr, 2 * bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (w == MAP_FAILED) return false;
  Range& nr = g_ranges[n];
  nr.base = p;
  nr.pages = pages;
  nr.written = static_cast<std::atomic<std::uint64_t>*>(w);
  nr.accessible = reinterpret_cast<std::atomic<std::uint64_t>*>(static_cast<char*>(w) + bytes);
  set_pages(nr.written, 0, pages);  // never protected yet: all of it counts as written
  g_nranges.store(n + 1, std::memory_order_release);
  return true;
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

namespace {
bool start_userfaultfd();
}  // namespace

void set_dirty_tracking_method(DirtyMethod m) { g_wanted.store(static_cast<int>(m), std::memory_order_relaxed); }

void dirty_tracking_block_signal(int sig) { g_blocked_signal.store(sig, std::memory_order_relaxed); }

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
  const auto wanted = static_cast<DirtyMethod>(g_wanted.load(std::memory_order_relaxed));
  // A fork child of a process tracking by mprotect goes on so: its pages
  // are protected and its handler installed already.
  if (wanted == DirtyMethod::kMprotect || using_mprotect()) return start_mprotect();
  if (start_userfaultfd()) return true;
  if (wanted == DirtyMethod::kUserfaultfd) return false;
  char why[sizeof g_error];
  std::memcpy(why, g_error, sizeof why);
  if (start_mprotect()) {
    // Said by dirty_tracking_error: why the better tracker is not used.
    std::snprintf(g_error, sizeof g_error, "%s", why);
    return true;
  }
  // Both reasons.
  char fallback[sizeof g_error];
  std::memcpy(fallback, g_error, sizeof fallback);
  std::snprintf(g_error, sizeof g_error, "%.70s; %.80s", why, fallback);
  return false;
}

namespace {
bool start_userfaultfd() {
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
  g_in_use.store(static_cast<int>(DirtyMethod::kUserfaultfd), std::memory_order_relaxed);
  g_generation.fetch_add(1, std::memory_order_relaxed);
  g_on.store(true, std::memory_order_release);
  return true;
}
}  // namespace

unsigned dirty_tracking_generation() { return g_generation.load(std::memory_order_relaxed); }

bool dirty_tracking_on() { return g_on.load(std::memory_order_acquire) && g_pid == getpid(); }
const char* dirty_tracking_name() {
  if (!dirty_tracking_on()) return "none";
  return using_mprotect() ? "mprotect" : "userfaultfd";
}
const char* dirty_tracking_error() {
  if (g_error[0] == 0 && g_lost_what.load(std::memory_order_relaxed) != nullptr)
    std::snprintf(g_error, sizeof g_error, "%s: %s", g_lost_what.load(std::memory_order_relaxed),
                  std::strerror(g_lost_errno.load(std::memory_order_relaxed)));
  return g_error;
}

bool dirty_track(std::uintptr_t p, std::size_t size) {
  if (!dirty_tracking_on()) return false;
  if (using_mprotect()) {
    if (track_mprotect(p, size)) return true;
    lost("mprotect tracking: register");
    return false;
  }
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

void dirty_committed(std::uintptr_t p, std::size_t size) {
  if (!using_mprotect()) return;
  for (std::uintptr_t a = p; a < p + size;) {
    Range* r = range_of(a);
    if (r == nullptr) return;
    const std::size_t first = (a - r->base) / kOsPage;
    const std::size_t n = std::min((p + size - a) / kOsPage, r->pages - first);
    // Written first: a collect that sees it accessible must also see it
    // to be looked at.
    set_pages(r->written, first, n);
    set_pages(r->accessible, first, n);
    a += n * kOsPage;
  }
}

void dirty_protectable(std::uintptr_t p, std::size_t size, bool on) {
  if (!using_mprotect()) return;
  if (on) {
    // Written first, as dirty_committed does.
    dirty_committed(p, size);
    return;
  }
  // A stop must not find this thread holding the collects and the
  // handlers off: the stop signal is blocked meanwhile.
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, g_blocked_signal.load(std::memory_order_relaxed));
  pthread_sigmask(SIG_BLOCK, &block, &old);
  begin_exclusive();
  for (std::uintptr_t a = p; a < p + size;) {
    Range* r = range_of(a);
    if (r == nullptr) break;
    const std::size_t first = (a - r->base) / kOsPage;
    const std::size_t n = std::min((p + size - a) / kOsPage, r->pages - first);
    for (std::size_t i = first; i < first + n; i++)
      r->accessible[i / 64].fetch_and(~(std::uint64_t{1} << (i % 64)), std::memory_order_relaxed);
    // Pages are committed while they hold a span: a failure here is one
    // of the kernel's (out of mappings), and the pages stay protected,
    // which costs EFAULTs, not correctness.
    mprotect(reinterpret_cast<void*>(a), n * kOsPage, PROT_READ | PROT_WRITE);
    a += n * kOsPage;
  }
  end_exclusive();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

namespace {
// A run of pages to report or protect, grown page by page.
struct RunBuilder {
  std::uintptr_t begin = 0, end = 0;
  template <class F>
  void add(std::uintptr_t page, F&& flush) {
    if (end != page) {
      if (end != begin) flush(begin, end);
      begin = page;
    }
    end = page + kOsPage;
  }
  template <class F>
  void finish(F&& flush) {
    if (end != begin) flush(begin, end);
    begin = end = 0;
  }
};

// part(range, first, last) for the pages [first, last) of each tracked
// range that [begin, end) covers, in address order, until part says false.
template <class F>
void for_each_tracked_part(std::uintptr_t begin, std::uintptr_t end, F&& part) {
  for (std::uintptr_t a = begin; a < end;) {
    Range* r = range_of(a);
    if (r == nullptr) {
      a = (a | (kOsPage - 1)) + 1;
      continue;
    }
    const std::size_t first = (a - r->base) / kOsPage;
    const std::size_t last = std::min((end - r->base + kOsPage - 1) / kOsPage, r->pages);
    if (!part(*r, first, last)) return;
    a = r->base + last * kOsPage;
  }
}

std::int64_t collect_mprotect(std::uintptr_t begin, std::uintptr_t end, DirtyRunFn fn, void* ctx) {
  constexpr std::size_t kRuns = 256;
  std::uintptr_t runs[kRuns][2];
  std::size_t nruns = 0;
  std::int64_t bytes = 0;
  bool failed = false;
  auto report_all = [&] {
    end_exclusive();
    for (std::size_t i = 0; i < nruns; i++) fn(ctx, runs[i][0], runs[i][1]);
    nruns = 0;
    begin_exclusive();
  };
  RunBuilder report, protect;
  auto flush_report = [&](std::uintptr_t b, std::uintptr_t e) {
    if (nruns == kRuns) report_all();
    runs[nruns][0] = b;
    runs[nruns][1] = e;
    nruns++;
    bytes += static_cast<std::int64_t>(e - b);
  };
  auto flush_protect = [&](std::uintptr_t b, std::uintptr_t e) {
    if (mprotect(reinterpret_cast<void*>(b), e - b, PROT_READ) != 0) failed = true;
  };
  begin_exclusive();
  for_each_tracked_part(begin, end, [&](Range& r, std::size_t first, std::size_t last) {
    for (std::size_t w = first / 64; w * 64 < last; w++) {
      std::uint64_t mask = ~std::uint64_t{0};
      if (w * 64 < first) mask &= ~std::uint64_t{0} << (first - w * 64);
      if (last - w * 64 < 64) mask &= (std::uint64_t{1} << (last - w * 64)) - 1;
      if ((r.written[w].load(std::memory_order_relaxed) & mask) == 0) continue;
      const std::uint64_t taken = r.written[w].fetch_and(~mask, std::memory_order_relaxed) & mask;
      const std::uint64_t acc = r.accessible[w].load(std::memory_order_relaxed);
      for (std::uint64_t m = taken; m != 0; m &= m - 1) {
        const std::size_t i = w * 64 + static_cast<std::size_t>(__builtin_ctzll(m));
        const std::uintptr_t page = r.base + i * kOsPage;
        report.add(page, flush_report);
        if ((acc >> (i % 64)) & 1) protect.add(page, flush_protect);
      }
    }
    report.finish(flush_report);
    protect.finish(flush_protect);
    return !failed;
  });
  end_exclusive();
  for (std::size_t i = 0; i < nruns; i++) fn(ctx, runs[i][0], runs[i][1]);
  if (failed) {
    lost("mprotect tracking: protect");
    return -1;
  }
  return bytes;
}

bool unprotect_mprotect(std::uintptr_t begin, std::uintptr_t end) {
  bool ok = true;
  RunBuilder open;
  auto flush = [&](std::uintptr_t b, std::uintptr_t e) {
    if (mprotect(reinterpret_cast<void*>(b), e - b, PROT_READ | PROT_WRITE) != 0) ok = false;
  };
  begin_exclusive();
  for_each_tracked_part(begin, end, [&](Range& r, std::size_t first, std::size_t last) {
    // Written before writable (as the handler does).
    set_pages(r.written, first, last - first);
    for (std::size_t i = first; i < last; i++)
      if (test_page(r.accessible, i)) open.add(r.base + i * kOsPage, flush);
    open.finish(flush);
    return true;
  });
  end_exclusive();
  return ok;
}
}  // namespace

std::int64_t dirty_collect(std::uintptr_t begin, std::uintptr_t end, DirtyRunFn fn, void* ctx) {
  if (!dirty_tracking_on()) return -1;
  if (using_mprotect()) return collect_mprotect(begin, end, fn, ctx);
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
  if (using_mprotect()) {
    if (unprotect_mprotect(begin, end)) return true;
    lost("mprotect tracking: unprotect");
    return false;
  }
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
  g_in_use.store(static_cast<int>(DirtyMethod::kAuto), std::memory_order_relaxed);
  // The fallback's ranges too (the tests unmap their memory; its address
  // may come back for another test's).
  const std::size_t n = g_nranges.exchange(0, std::memory_order_acq_rel);
  for (std::size_t i = 0; i < n; i++) munmap(g_ranges[i].written, 2 * ((g_ranges[i].pages + 63) / 64 * 8));
}

}  // namespace mgc::internal::os
