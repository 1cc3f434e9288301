/* fork_test.c with GC_set_handle_fork(-1): the program calls
 * GC_atfork_prepare before each fork, GC_atfork_parent in the parent and
 * GC_atfork_child in the child (Boehm's manual mode). */
#define FORK_MANUAL 1
#include "fork_test.c"
