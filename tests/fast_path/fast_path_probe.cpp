// Probes for the fast-path assembly check (the fast_path_asm test).
//
// Each function is one inline fast path of the public header with a constant
// size, as user code would write it. This file is compiled at -O2 with the
// build's flags into an object file that is never linked;
// tools/check_fast_path.py disassembles it and checks that the path that
// succeeds has no lock prefix, no fence, no xchg with memory and no call
// other than to the slow paths, and that alloc_noscan(16) stays within its
// instruction budget (see include/mallocgc/internal/fast_path.hpp).
#include <mallocgc/mallocgc.hpp>

extern "C" {

void* probe_alloc_noscan8() { return mgc::alloc_noscan(8); }

void* probe_alloc_noscan16() { return mgc::alloc_noscan(16); }

void* probe_alloc16() { return mgc::alloc(16); }

void* probe_alloc_typed(const mgc::Type& t) { return mgc::alloc_typed(t); }

}  // extern "C"
