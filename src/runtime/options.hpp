// Configuration from the environment: one table of MALLOCGC_* variables,
// read once, on the first slow path (mimalloc's options.c is the model).
//
//   MALLOCGC_HUGEPAGES   0 or 1: ask for transparent huge pages on new
//                        arenas (madvise(MADV_HUGEPAGE)). Default 1:
//                        growing the heap by 256 MiB cost a median 0.33
//                        ms/MiB with it and 1.05 ms/MiB without (6 runs
//                        each of bench_heap_growth --mib=256, THP mode
//                        "madvise", defrag "madvise"); one run in six paid
//                        3.3 ms/MiB for the kernel's compaction. The cost:
//                        resident memory grows in 2 MiB units.
//
// A malformed value stops the program with a message that names the
// variable: a silent default would hide the mistake.
//
// Owns: the parsed options. Never allocates from the collected heap.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mgc::internal {

struct Options {
  bool huge_pages = true;
};

// Parse the environment and apply it, once; later calls return at once.
void ensure_options();

// The options in force (ensure_options first).
const Options& options();

// Parsers, exposed for tests: nullopt for a malformed value.
std::optional<bool> parse_bool(std::string_view s);

}  // namespace mgc::internal
