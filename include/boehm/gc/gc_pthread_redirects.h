/* mallocgc's Boehm-compatible headers: the thread-creation wrappers, and
 * macros that make a program's calls to pthread_create, pthread_join,
 * pthread_detach, pthread_sigmask, pthread_cancel, pthread_exit and dlopen
 * go through them. The collector must know every thread that holds heap
 * pointers (to find its stack and stop it for a collection); a thread
 * created through GC_pthread_create is registered for its whole life.
 *
 * gc.h includes this file when the program defines GC_THREADS; it does
 * nothing otherwise. Defining GC_NO_THREAD_REDIRECTS keeps the wrappers'
 * declarations but not the macros (the program then calls GC_pthread_create
 * itself, or registers its threads with GC_register_my_thread).
 * GC_PTHREAD_REDIRECTS_ONLY gives the macros without the declarations.
 *
 * Thread-specific data (pthread_setspecific) is not scanned: what it points
 * to must be reachable some other way as well, or uncollectable. */
#ifndef GC_PTHREAD_REDIRECTS_H
#define GC_PTHREAD_REDIRECTS_H

#if defined(GC_H) && defined(GC_PTHREADS)

#ifndef GC_PTHREAD_REDIRECTS_ONLY

#include <pthread.h>
#ifndef GC_NO_DLOPEN
#include <dlfcn.h>
#endif
#ifndef GC_NO_PTHREAD_SIGMASK
#include <signal.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* What identifies a thread to GC_suspend_thread and friends (javaxfc.h). */
#ifndef GC_SUSPEND_THREAD_ID
#define GC_SUSPEND_THREAD_ID pthread_t
#endif

/* dlopen with the collector's lock held, so that no collection sees a
 * library half loaded. */
#ifndef GC_NO_DLOPEN
GC_API void *GC_dlopen(const char * /* path */, int /* mode */);
#endif

/* pthread_sigmask that never blocks the collector's own signals. Declared
 * where <signal.h> declares pthread_sigmask. */
#if !defined(GC_NO_PTHREAD_SIGMASK) &&                                                     \
    (defined(GC_PTHREAD_SIGMASK_NEEDED) || defined(_BSD_SOURCE) || defined(_GNU_SOURCE) || \
     (_POSIX_C_SOURCE >= 199506L) || (_XOPEN_SOURCE >= 500))
GC_API int GC_pthread_sigmask(int /* how */, const sigset_t *, sigset_t * /* oset */);
#endif

/* The qualifier of pthread_create's attribute argument. */
#ifndef GC_PTHREAD_CREATE_CONST
#define GC_PTHREAD_CREATE_CONST const
#endif

/* pthread_create that registers the new thread for its whole life, and
 * join and detach that keep the collector's thread table right. Without
 * memory for the new thread's record, GC_pthread_create returns EAGAIN and
 * the start routine never runs (Boehm aborts). */
GC_API int GC_pthread_create(pthread_t *, GC_PTHREAD_CREATE_CONST pthread_attr_t *, void *(*)(void *),
                             void * /* arg */);
GC_API int GC_pthread_join(pthread_t, void ** /* retval */);
GC_API int GC_pthread_detach(pthread_t);

#ifndef GC_NO_PTHREAD_CANCEL
GC_API int GC_pthread_cancel(pthread_t);
#endif

/* pthread_exit that unregisters the thread first. */
#if defined(GC_HAVE_PTHREAD_EXIT) && !defined(GC_PTHREAD_EXIT_DECLARED)
#define GC_PTHREAD_EXIT_DECLARED
GC_API void GC_pthread_exit(void *) GC_PTHREAD_EXIT_ATTRIBUTE;
#endif

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* !GC_PTHREAD_REDIRECTS_ONLY */

/* The redirections themselves (not with GC_USE_LD_WRAP, where the linker's
 * --wrap does the same). */
#if !defined(GC_NO_THREAD_REDIRECTS) && !defined(GC_USE_LD_WRAP)
#undef pthread_create
#undef pthread_join
#undef pthread_detach
#define pthread_create GC_pthread_create
#define pthread_join GC_pthread_join
#define pthread_detach GC_pthread_detach
#ifndef GC_NO_PTHREAD_SIGMASK
#undef pthread_sigmask
#define pthread_sigmask GC_pthread_sigmask
#endif
#ifndef GC_NO_DLOPEN
#undef dlopen
#define dlopen GC_dlopen
#endif
#ifndef GC_NO_PTHREAD_CANCEL
#undef pthread_cancel
#define pthread_cancel GC_pthread_cancel
#endif
#ifdef GC_HAVE_PTHREAD_EXIT
#undef pthread_exit
#define pthread_exit GC_pthread_exit
#endif
#endif /* !GC_NO_THREAD_REDIRECTS */

#endif /* GC_H && GC_PTHREADS */

#endif /* GC_PTHREAD_REDIRECTS_H */
