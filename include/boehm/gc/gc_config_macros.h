/* mallocgc's Boehm-compatible headers: the configuration gc.h works out
 * before it declares anything: which thread support the program asked for,
 * the linkage and attribute macros that every declaration carries, and what
 * gc_pthread_redirects.h intercepts. Only gc.h includes this file (it does
 * nothing otherwise).
 *
 * These headers describe mallocgc's libgc.so.1, a GNU/Linux library: only
 * the POSIX-threads configuration is here, and the compilers are GCC and
 * Clang (another compiler gets the attribute macros empty). Windows,
 * Cygwin, DLL import/export and the other platforms' branches of Boehm's
 * header are left out. */
#if defined(GC_H)

/* Nonzero when compiling with GCC (or a compiler that claims to be it, such
 * as Clang) of at least major.minor. */
#if defined(__GNUC__) && defined(__GNUC_MINOR__)
#define GC_GNUC_PREREQ(major, minor) ((__GNUC__ << 16) + __GNUC_MINOR__ >= ((major) << 16) + (minor))
#else
#define GC_GNUC_PREREQ(major, minor) 0
#endif

#if defined(_WIN32) || defined(__CYGWIN__)
#error "mallocgc's Boehm-compatible headers describe its GNU/Linux libgc.so.1; there is no Windows build"
#endif

/* --- threads ------------------------------------------------------------- */
/* A program that calls the collector from several threads defines
 * GC_THREADS before including gc.h (the old spellings LINUX_THREADS and
 * GC_LINUX_THREADS still work). Then GC_PTHREADS is defined, and gc.h
 * redirects pthread_create and friends to the collector's wrappers
 * (gc_pthread_redirects.h) so that new threads are registered. */
#if defined(LINUX_THREADS) && !defined(GC_LINUX_THREADS)
#define GC_LINUX_THREADS
#endif
#if defined(USE_LD_WRAP) && !defined(GC_USE_LD_WRAP)
#define GC_USE_LD_WRAP
#endif

#if defined(GC_LINUX_THREADS)
#ifndef GC_THREADS
#define GC_THREADS
#endif
#elif defined(GC_THREADS) && defined(__linux__)
#define GC_LINUX_THREADS
#endif

#undef GC_PTHREADS
#ifdef GC_THREADS
#define GC_PTHREADS
#endif

/* Thread-safe variants of the C library's interfaces; must come before the
 * system headers to have an effect. */
#if defined(GC_PTHREADS) && !defined(_REENTRANT)
#define _REENTRANT 1
#endif

/* Defined by every version of gc.h. */
#define __GC
#include <stddef.h> /* size_t, ptrdiff_t */

/* --- linkage --------------------------------------------------------------- */
/* GC_API starts every declaration of the library's functions and variables;
 * GC_CALL and GC_CALLBACK are their calling conventions (the platform's
 * default). A program may define any of them beforehand. */
#ifndef GC_API
#define GC_API extern
#endif
#ifndef GC_CALL
#define GC_CALL
#endif
#ifndef GC_CALLBACK
#define GC_CALLBACK GC_CALL
#endif

/* --- attributes ------------------------------------------------------------ */
/* The allocators return memory that no other live pointer refers to, which
 * lets the compiler optimize around them. A program whose out-of-memory
 * handler (GC_set_oom_fn) returns an object that is already in use must
 * define GC_OOM_FUNC_RETURNS_ALIAS to drop that promise. */
#ifndef GC_ATTR_MALLOC
#if defined(GC_OOM_FUNC_RETURNS_ALIAS)
#define GC_ATTR_MALLOC
#elif GC_GNUC_PREREQ(3, 1)
#define GC_ATTR_MALLOC __attribute__((__malloc__))
#else
#define GC_ATTR_MALLOC
#endif
#endif

/* Which argument (or product of two arguments) is the size of the returned
 * object: for __builtin_object_size and the fortify checks. */
#ifndef GC_ATTR_ALLOC_SIZE
#undef GC_ATTR_CALLOC_SIZE
#if defined(__clang__)
#if __has_attribute(__alloc_size__)
#define GC_ATTR_ALLOC_SIZE(argnum) __attribute__((__alloc_size__(argnum)))
#define GC_ATTR_CALLOC_SIZE(n, s) __attribute__((__alloc_size__(n, s)))
#else
#define GC_ATTR_ALLOC_SIZE(argnum)
#endif
#elif GC_GNUC_PREREQ(4, 3) && !defined(__ICC)
#define GC_ATTR_ALLOC_SIZE(argnum) __attribute__((__alloc_size__(argnum)))
#define GC_ATTR_CALLOC_SIZE(n, s) __attribute__((__alloc_size__(n, s)))
#else
#define GC_ATTR_ALLOC_SIZE(argnum)
#endif
#endif
#ifndef GC_ATTR_CALLOC_SIZE
#define GC_ATTR_CALLOC_SIZE(n, s)
#endif

/* Argument argnum must not be NULL. */
#ifndef GC_ATTR_NONNULL
#if GC_GNUC_PREREQ(4, 0)
#define GC_ATTR_NONNULL(argnum) __attribute__((__nonnull__(argnum)))
#else
#define GC_ATTR_NONNULL(argnum)
#endif
#endif

/* The function's result depends on its arguments only. */
#ifndef GC_ATTR_CONST
#if GC_GNUC_PREREQ(4, 0)
#define GC_ATTR_CONST __attribute__((__const__))
#else
#define GC_ATTR_CONST
#endif
#endif

/* Marks the variables and functions that Boehm GC keeps only for old
 * programs (each has a getter, a setter or a replacement). */
#ifndef GC_ATTR_DEPRECATED
#if defined(GC_BUILD)
#define GC_ATTR_DEPRECATED
#elif GC_GNUC_PREREQ(4, 0)
#define GC_ATTR_DEPRECATED __attribute__((__deprecated__))
#else
#define GC_ATTR_DEPRECATED
#endif
#endif

/* --- debugging support ----------------------------------------------------- */
/* With glibc the collector can record call stacks itself, so the debugging
 * allocators take the caller's file and line only (GC_EXTRAS in gc.h).
 * mallocgc's libgc.so.1 never takes a return address from the caller, so
 * GC_ADD_CALLER is never defined here. */
#if defined(__linux__) || defined(__GLIBC__)
#include <features.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 1)) && !defined(__ia64__) && \
    !defined(GC_MISSING_EXECINFO_H) && !defined(GC_HAVE_BUILTIN_BACKTRACE)
#define GC_HAVE_BUILTIN_BACKTRACE
#endif
#if defined(__i386__) || defined(__amd64__) || defined(__x86_64__)
#define GC_CAN_SAVE_CALL_STACKS
#endif
#endif
#if defined(GC_HAVE_BUILTIN_BACKTRACE) && !defined(GC_CAN_SAVE_CALL_STACKS)
#define GC_CAN_SAVE_CALL_STACKS
#endif

/* --- what the pthread redirection intercepts -------------------------------- */
#ifdef GC_PTHREADS
/* pthread_exit is intercepted on GNU/Linux (not on Android): a thread that
 * leaves through it is unregistered. GC_PTHREAD_EXIT_ATTRIBUTE is what the
 * wrapper's declaration carries. */
#if !defined(GC_HAVE_PTHREAD_EXIT) && defined(GC_LINUX_THREADS) && !defined(__ANDROID__) && !defined(HOST_ANDROID)
#define GC_HAVE_PTHREAD_EXIT
#if GC_GNUC_PREREQ(2, 7)
#define GC_PTHREAD_EXIT_ATTRIBUTE __attribute__((__noreturn__))
#else
#define GC_PTHREAD_EXIT_ATTRIBUTE
#endif
#endif
/* pthread_cancel is intercepted together with pthread_exit. */
#if !defined(GC_HAVE_PTHREAD_EXIT) && !defined(GC_NO_PTHREAD_CANCEL)
#define GC_NO_PTHREAD_CANCEL
#endif
#endif /* GC_PTHREADS */

/* --- C++ ----------------------------------------------------------------- */
#ifdef __cplusplus
/* The allocators' converting constructors (gc_allocator.h) are explicit
 * from C++11 on, as in Boehm GC (except with Clang). */
#ifndef GC_ATTR_EXPLICIT
#if __cplusplus >= 201103L && !defined(__clang__)
#define GC_ATTR_EXPLICIT explicit
#else
#define GC_ATTR_EXPLICIT
#endif
#endif

/* The exception specification of functions that never throw. */
#ifndef GC_NOEXCEPT
#if __cplusplus >= 201103L
#define GC_NOEXCEPT noexcept
#else
#define GC_NOEXCEPT throw()
#endif
#endif
#endif /* __cplusplus */

#endif /* GC_H */
