/* mallocgc's Boehm-compatible headers: <gc.h> for programs that include it
 * under that name. Everything is in gc/gc.h. */
#include "gc/gc.h"
