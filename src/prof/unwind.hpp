// The heap profiler's stack walk: the return addresses of the calling
// thread's frames, as glibc's backtrace() gives them, for about a tenth of
// its cost.
//
// backtrace() runs libgcc's DWARF unwinder, which finds each frame's FDE
// and interprets its call-frame instructions up to the frame's address at
// every call: about 0.5 us to start and 60 ns a frame here, most of a
// sample's cost. The rule those instructions compute at an address (where
// the canonical frame address is, relative to rsp or rbp; where the caller's
// rbp was saved; the return address at CFA-8, as the x86-64 ABI has it) is
// a function of the address alone, so it is computed once, from the FDE
// that libgcc's _Unwind_Find_FDE finds, by a small interpreter of the
// instructions compilers emit for ordinary functions, and cached. An
// address whose rules the interpreter does not handle (expressions, signal
// frames, registers other than rsp and rbp as the CFA's base) makes that
// walk fall back to backtrace(); so does a frame that would leave the
// thread's stack.
//
// Owns: the rule cache, behind its own lock (never held while another of
// the library's locks is taken). Touches nothing of the heap.
#pragma once

#include <cstdint>

#if !defined(__x86_64__)
#error "prof/unwind: the walk's entry and rules are x86-64's"
#endif

// The asm entry (unwind.cpp) that the walk starts from.
extern "C" __attribute__((visibility("hidden"))) int mgc_internal_fast_backtrace(void** out, int max,
                                                                                 std::uintptr_t stack_lo,
                                                                                 std::uintptr_t stack_hi);

namespace mgc::internal {

// Up to max return addresses of the calling thread's frames, innermost
// first, as backtrace() gives them: the first is the address this call
// returns to. stack_lo/stack_hi bound the thread's stack (0, 0: unknown,
// and backtrace() is used).
__attribute__((always_inline)) inline int fast_backtrace(void** out, int max, std::uintptr_t stack_lo,
                                                         std::uintptr_t stack_hi) {
  return mgc_internal_fast_backtrace(out, max, stack_lo, stack_hi);
}

// Walks since the process started: by cached rules, and by backtrace();
// and how often the cache was emptied because the loader had unloaded an
// object since (its addresses may hold another's code now).
struct UnwindCounts {
  std::uint64_t fast;
  std::uint64_t fallback;
  std::uint64_t flushes;
};
UnwindCounts unwind_counts();

// Hold the rule cache's lock across fork() (prof/sample's profile_lock).
void unwind_lock();
void unwind_unlock();

}  // namespace mgc::internal
