// mallocgc's Boehm-compatible headers: <gc_cpp.h> for programs that
// include it under that name. Everything is in gc/gc_cpp.h.
#include "gc/gc_cpp.h"
