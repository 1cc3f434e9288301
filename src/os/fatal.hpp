// Fatal errors: print one line that says what went wrong and where, then
// abort. Used for programming errors the allocator detects (bad frees,
// broken invariants, re-entrancy) and for configuration errors.
//
// Owns: the error message format. Never allocates from the collected heap
// and never takes a lock, so it is safe from any slow path and from a
// signal handler.
#pragma once

namespace mgc::internal {

// Formats with snprintf into a stack buffer, writes "mallocgc: fatal error:
// <message>\n" to stderr with write(2), and calls abort().
[[noreturn, gnu::cold, gnu::format(printf, 1, 2)]] void fatal(const char* format, ...);

// Called with the whole line just before the abort (Boehm's abort func);
// must not return control elsewhere than by returning. nullptr: none.
void set_fatal_hook(void (*hook)(const char* line));

}  // namespace mgc::internal
