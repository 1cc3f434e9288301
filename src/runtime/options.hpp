// Configuration from the environment: one table of MALLOCGC_* variables,
// checked at start-up (a constructor) and applied on the first slow path
// (mimalloc's options.c is the model).
//
//   MALLOCGC_HUGEPAGES   0 or 1: ask for transparent huge pages on new
//                        arenas (madvise(MADV_HUGEPAGE)). Default 1:
//                        growing the heap by 256 MiB cost a median 0.33
//                        ms/MiB with it and 1.05 ms/MiB without (6 runs
//                        each of bench_heap_growth --mib=256, THP mode
//                        "madvise", defrag "madvise"); one run in six paid
//                        3.3 ms/MiB for the kernel's compaction. The cost:
//                        resident memory grows in 2 MiB units.
//   MALLOCGC_GOGC        percent of heap growth over the live heap that
//                        starts a cycle (Go's GOGC), 0..2^30, or "off".
//                        Default 100.
//   MALLOCGC_MEMORY_LIMIT  soft heap limit (Go's GOMEMLIMIT): bytes, with an
//                        optional suffix B, KiB, MiB, GiB or TiB (e.g.
//                        "512MiB"), or "off". Default off.
//   MALLOCGC_SCAVENGE    0 or 1: return free pages beyond the heap goal
//                        (plus 10%) or the memory limit to the OS from a
//                        background thread (gc/scavenger.hpp). Default 1;
//                        mgc::release_memory() works either way.
//   MALLOCGC_MARK_THREADS  threads that mark, the collecting one included,
//                        1..64. Default: one per online CPU.
//   MALLOCGC_SUSPEND_SIGNAL  the signal that stops the world: a number or a
//                        name (PWR, USR1, USR2, XCPU, XFSZ, VTALRM, PROF,
//                        SYS, WINCH, URG, or RTMIN+n). Default SIGPWR.
//   MALLOCGC_MEMPROFILERATE  bytes allocated between heap profile samples
//                        on average (Go's runtime.MemProfileRate), with an
//                        optional suffix B, KiB, MiB or GiB; 0 or "off"
//                        turns sampling off, 1 samples every allocation.
//                        At most 1 TiB. Default 512 KiB (prof/sample.hpp).
//   MALLOCGC_HEAPPROFILE a file to write the heap profile to at exit, in
//                        pprof's format (prof/pprof.hpp). Default none.
//   MALLOCGC_TRACE       a file path: record the collector's timeline from
//                        the first allocation and write it there at exit,
//                        as Chrome trace-event JSON (os/trace.hpp). The
//                        file must be writable: checked when recording
//                        starts. Default: no recording.
//   MALLOCGC_DEBUG       comma-separated key=value settings (Go's GODEBUG):
//                        gctrace=1 prints a line per cycle to stderr;
//                        gccheckmark=1 re-marks serially after every mark
//                        and aborts on an object the parallel mark missed;
//                        allocfreetrace=1 prints every allocation and
//                        explicit free with a short stack, and each cycle's
//                        start and end (prof/allocfreetrace.hpp);
//                        gcstoptheworld=0 marks mostly concurrently (two
//                        short stops, the mark beside the program; see
//                        gc/collector.hpp), gcstoptheworld=1 (the default
//                        for now) stops the world for the whole mark;
//                        dirtypages=auto|userfaultfd|mprotect: how that
//                        mode finds the pages the program wrote (auto:
//                        userfaultfd where the kernel has it, else
//                        mprotect; see os/dirty_pages.hpp).
//
// A malformed value stops the program with a message that names the
// variable: a silent default would hide the mistake.
//
// Owns: the parsed options. Never allocates from the collected heap.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "os/dirty_pages.hpp"

namespace mgc::internal {

struct Options {
  bool huge_pages = true;
  bool scavenge = true;
  int gogc = 100;                         // -1: off
  std::int64_t memory_limit = INT64_MAX;  // INT64_MAX: none
  int mark_threads = 0;                   // 0: one per online CPU
  int suspend_signal = 0;                 // 0: the default (SIGPWR)
  bool gctrace = false;
  bool gccheckmark = false;
  bool gcstoptheworld = true;  // false: mostly-concurrent marking
  bool allocfreetrace = false;
  os::DirtyMethod dirty_pages = os::DirtyMethod::kAuto;
  std::int64_t memprofile_rate = 512 * 1024;  // bytes; 0: off
  const char* heap_profile = nullptr;         // the environment's string, or nullptr
  // MALLOCGC_TRACE's value (in the environment), or nullptr.
  const char* trace_path = nullptr;
};

// Parse the environment and apply it, once; later calls return at once.
// The first call then runs the first-use hook, if one is set.
void ensure_options();
// Called once, by the first ensure_options, after the options apply (the
// Boehm face initialises itself there when a program allocates before
// GC_init). Set before any allocation (a library constructor).
void set_first_use_hook(void (*hook)());

// The options in force (ensure_options first).
const Options& options();

// Parsers, exposed for tests: nullopt for a malformed value.
std::optional<bool> parse_bool(std::string_view s);
std::optional<int> parse_gogc(std::string_view s);
std::optional<std::int64_t> parse_bytes(std::string_view s);  // "off": INT64_MAX
std::optional<int> parse_mark_threads(std::string_view s);
std::optional<int> parse_signal(std::string_view s);
std::optional<std::int64_t> parse_memprofile_rate(std::string_view s);  // "off": 0
// A file path for MALLOCGC_TRACE: not empty, not a directory name (ending
// in '/').
bool valid_trace_path(std::string_view s);
// MALLOCGC_DEBUG into o; false (with *bad set to the offending item) when
// an item is malformed or unknown.
bool parse_debug(std::string_view s, Options* o, std::string_view* bad);

}  // namespace mgc::internal
