// Written-page tracking for the mostly-concurrent mark (Linux): which pages
// of the heap the program wrote since the last look, without a compiler
// barrier.
//
// Mechanism: userfaultfd write-protection in asynchronous mode
// (UFFD_FEATURE_WP_ASYNC, Linux 6.7+). A write to a protected page is
// resolved by the kernel itself, which lifts the protection and so records
// the write; PAGEMAP_SCAN reports the unprotected ("written") pages of a
// range and protects them again in the same call. Pages never populated,
// or released with MADV_DONTNEED, read as written (at worst a page more to
// look at). The file descriptor is opened with UFFD_USER_MODE_ONLY, which
// unprivileged processes may use when vm.unprivileged_userfaultfd is 0.
// Soft-dirty bits are not used: on this project's kernels clearing them
// does not work.
//
// Fallback where userfaultfd is missing (older kernels, valgrind, seccomp):
// mprotect and a SIGSEGV handler, Boehm's way. A collect makes the written
// pages read-only again; the first write to one faults, and the handler
// records the page and makes it writable. It costs a fault per page and
// round, and a system call that writes into a protected page (read(2) into
// an object of a traced kind; pointer-free objects' pages are never
// protected, see dirty_protectable) fails with EFAULT instead of faulting,
// as under Boehm's incremental mode; a SIGSEGV handler the program installs
// later must pass faults it does not know on to the previous one. Only
// pages that os::commit made readable and writable are ever protected
// (dirty_committed); reserved address space is left alone.
//
// Owns: the userfaultfd and /proc/self/pagemap descriptors; the mprotect
// fallback's ranges, bitmaps and SIGSEGV handler. Reads and writes the
// tracked memory never; changes its protection only in the fallback.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mgc::internal::os {

enum class DirtyMethod { kAuto, kUserfaultfd, kMprotect };
// Which tracker start() may pick (MALLOCGC_DEBUG=dirtypages=...): kAuto
// (the default) tries userfaultfd, then mprotect. Before the first start.
void set_dirty_tracking_method(DirtyMethod m);
// The signal that stops the world: blocked inside the fallback's SIGSEGV
// handler (a thread stopped there would hold up a collect for ever).
// Before the first start.
void dirty_tracking_block_signal(int sig);

// Probe and open the tracker (once per process: a fork child, which does
// not inherit registrations, opens its own). false when the kernel lacks
// it; the reason is in dirty_tracking_error().
bool dirty_tracking_start();
bool dirty_tracking_on();
// Changes each time a tracker is opened (a fork child's is new): ranges
// tracked under another generation must be tracked again.
unsigned dirty_tracking_generation();
const char* dirty_tracking_name();   // "userfaultfd", "mprotect" or "none"
const char* dirty_tracking_error();  // why start() failed, or ""

// [p, p + size) became readable and writable (os::commit): in the
// mprotect fallback, pages a collect may protect, written until then.
// Nothing in other modes or outside tracked ranges.
void dirty_committed(std::uintptr_t p, std::size_t size);

// The mprotect fallback leaves [p, p + size) writable from now on (on =
// false: pages of pointer-free objects, whose writes need no tracking, so
// that read(2) into them never fails) or may protect it again (on = true:
// the pages went back to the heap). Nothing in other modes.
void dirty_protectable(std::uintptr_t p, std::size_t size, bool on);

// Track writes to [p, p + size) (page-aligned; any protection, reserved
// address space included). false on failure (see dirty_collect).
bool dirty_track(std::uintptr_t p, std::size_t size);

// The runs of pages in [begin, end) written since the last collect (or
// since they were tracked), each passed to fn(ctx, run_begin, run_end);
// they are protected again before fn sees them, so a write during or after
// the call is reported by the next one. Returns the bytes reported, or -1
// when the kernel refused (the caller must then treat the whole range as
// written). A refusal here or in dirty_track turns tracking off for the
// rest of the process: dirty_tracking_on() then says false.
using DirtyRunFn = void (*)(void* ctx, std::uintptr_t begin, std::uintptr_t end);
std::int64_t dirty_collect(std::uintptr_t begin, std::uintptr_t end, DirtyRunFn fn, void* ctx);

// Lift the protection of [begin, end) until the next dirty_collect, so
// that writes meanwhile cost no fault (between two marks nobody asks); the
// next collect reports those pages as written. false on failure (which
// turns tracking off, as in dirty_collect).
bool dirty_unprotect(std::uintptr_t begin, std::uintptr_t end);

// Tests: forget the tracker of this process as if it had never started.
void dirty_tracking_reset_for_test();

}  // namespace mgc::internal::os
