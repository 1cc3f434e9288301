/* mallocgc's Boehm-compatible headers: what a Java virtual machine needs
 * beyond gc.h: running every finalizer at exit, and suspending single
 * threads. */
#ifndef GC_JAVAXFC_H
#define GC_JAVAXFC_H

#ifndef GC_H
#include "gc.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the finalizers of every object that has one, reachable or not, as
 * Java's runFinalizersOnExit did. Ordering is not respected; live objects
 * may be finalized. For the end of the program only. */
GC_API void GC_CALL GC_finalize_all(void);

#ifdef GC_THREADS
/* Suspends and resumes one registered thread (nothing for others). Not a
 * counter: one resume undoes any number of suspends. Takes the allocator
 * lock. The id is a pthread_t under GC_THREADS (set by
 * gc_pthread_redirects.h), unless the program chose another type. */
#ifndef GC_SUSPEND_THREAD_ID
#define GC_SUSPEND_THREAD_ID void*
#endif
GC_API void GC_CALL GC_suspend_thread(GC_SUSPEND_THREAD_ID);
GC_API void GC_CALL GC_resume_thread(GC_SUSPEND_THREAD_ID);
GC_API int GC_CALL GC_is_thread_suspended(GC_SUSPEND_THREAD_ID);
#endif /* GC_THREADS */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* GC_JAVAXFC_H */
