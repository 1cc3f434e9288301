// MALLOCGC_DEBUG=allocfreetrace=1 (Go's GODEBUG key of the same name): a
// line to stderr for every allocation and every explicit free, with the
// address, the size, the kind and a short stack, and one at each cycle's
// start and end (gc/collector). Every allocation is reported because,
// while it is on, chunks are cut to one slot (prof/sample) and the tiny
// allocator starts a new block for every object, so each allocation
// reaches the slow path, which reports it once its scope is closed.
// Objects sweeping frees are reported too ("sweep", without a stack: the
// sweeper's own would say nothing about the object), through the heap's
// g_sweep_free_hook, which set_allocfreetrace installs.
//
// Lines are written with write(2) from a buffer on the stack: no stdio
// lock, no allocation. For debugging only: it costs a slow path, a
// backtrace() and a system call per allocation.
//
// Owns: nothing.
#pragma once

#include <cstddef>

#include "mallocgc/internal/cache_front.hpp"

namespace mgc::internal {

// p: the object; size: bytes asked for; pc: the return address into the
// allocating code (the stack starts there).
void trace_alloc(const void* p, std::size_t size, Kind kind, const void* pc);
// free() of p, before it is validated; pc as above.
void trace_free(const void* p, const void* pc);
// Turn allocfreetrace on or off (MALLOCGC_DEBUG at start-up).
void set_allocfreetrace(bool on);

}  // namespace mgc::internal
