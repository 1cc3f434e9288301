/* mallocgc's Boehm-compatible headers: gc.h, the main API of Boehm-Demers-
 * Weiser GC 8.2, for programs that link mallocgc's libgc.so.1 instead of
 * Boehm's library. Written from Boehm GC's documented API: the same names,
 * types, values, macros and binary interface, so that a program built
 * against these headers also runs on Boehm's libgc.so.1, and one built
 * against Boehm's headers runs on mallocgc's.
 *
 *   #include <gc.h>          (or <gc/gc.h>)
 *
 *   int main(void) {
 *     GC_INIT();
 *     char** v = GC_MALLOC(10 * sizeof *v);   // scanned for pointers
 *     v[0] = GC_MALLOC_ATOMIC(64);            // never scanned
 *     GC_gcollect();                          // both survive: v is a root
 *   }
 *
 * Most programs need only GC_INIT, GC_MALLOC, GC_MALLOC_ATOMIC and perhaps
 * GC_REALLOC and GC_register_finalizer; the rest are tuning knobs and hooks
 * for language runtimes. Defining GC_DEBUG before the include makes the
 * upper-case macros call the debugging allocators (GC_debug_*), which record
 * the caller's file and line. Defining GC_THREADS makes the program
 * thread-aware: pthread_create and friends are redirected to the
 * collector's wrappers (gc_pthread_redirects.h).
 *
 * What differs from Boehm's gc.h: only what mallocgc's libgc.so.1 exports
 * is declared (no GC_wcsdup, GC_win32_free_heap, GC_use_threads_discovery or
 * other platforms' entry points); GC_noop1 is declared for every compiler
 * (Boehm declares it only where GC_reachable_here needs it); the
 * debugging allocators never take a return address (GC_ADD_CALLER is never
 * defined, as with Boehm on glibc). */
#ifndef GC_H
#define GC_H

/* Tells a program that it was compiled against mallocgc's copy of the
 * headers rather than Boehm's. */
#define MALLOCGC_BOEHM_HEADERS 1

#include "gc_config_macros.h"
#include "gc_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Types ================================================================ */

/* An old name for void *. */
typedef void *GC_PTR;

/* Unsigned and signed integers as wide as a pointer. */
typedef unsigned long GC_word;
typedef long GC_signed_word;

/* The library's version, (major << 16) | (minor << 8) | micro: that of the
 * libgc.so.1 the program runs on, not of these headers. */
GC_API unsigned GC_CALL GC_get_version(void);

/* ==== Variables and their getters and setters ================================
 * Boehm GC exported its settings as variables first; the getters and
 * setters are the supported way now, and the variables are deprecated.
 * Unless said otherwise a setter takes effect at once; the ones read only at
 * initialization should be called before GC_INIT(). */

/* Number of collections so far, the ones at start-up included. */
GC_API GC_ATTR_DEPRECATED GC_word GC_gc_no;
GC_API GC_word GC_CALL GC_get_gc_no(void);

#ifdef GC_THREADS
/* Number of parallel marker threads beside the one that starts a
 * collection (0 when marking is not parallel). */
GC_API GC_ATTR_DEPRECATED int GC_parallel;
GC_API int GC_CALL GC_get_parallel(void);

/* Asks for this many marker threads in all (0: the collector decides).
 * Effective only before initialization. */
GC_API void GC_CALL GC_set_markers_count(unsigned);
#endif

/* Called when an allocation cannot be satisfied, with the size asked for;
 * what it returns is what the allocation returns (NULL by default, or
 * an object of the heap). Never NULL itself. */
typedef void *(GC_CALLBACK *GC_oom_func)(size_t /* bytes_requested */);
GC_API GC_ATTR_DEPRECATED GC_oom_func GC_oom_fn;
GC_API void GC_CALL GC_set_oom_fn(GC_oom_func) GC_ATTR_NONNULL(1);
GC_API GC_oom_func GC_CALL GC_get_oom_fn(void);

/* Called with the new heap size whenever the heap grows or shrinks (world
 * stopped, allocator lock held). May be NULL. */
typedef void(GC_CALLBACK *GC_on_heap_resize_proc)(GC_word /* new_size */);
GC_API GC_ATTR_DEPRECATED GC_on_heap_resize_proc GC_on_heap_resize;
GC_API void GC_CALL GC_set_on_heap_resize(GC_on_heap_resize_proc);
GC_API GC_on_heap_resize_proc GC_CALL GC_get_on_heap_resize(void);

/* The steps of a collection, in the order they happen, then the events of
 * one thread being suspended and resumed. */
typedef enum {
  GC_EVENT_START, /* a collection begins */
  GC_EVENT_MARK_START,
  GC_EVENT_MARK_END,
  GC_EVENT_RECLAIM_START,
  GC_EVENT_RECLAIM_END,
  GC_EVENT_END, /* the collection is over */
  GC_EVENT_PRE_STOP_WORLD,
  GC_EVENT_POST_STOP_WORLD,
  GC_EVENT_PRE_START_WORLD,
  GC_EVENT_POST_START_WORLD,
  GC_EVENT_THREAD_SUSPENDED,
  GC_EVENT_THREAD_UNSUSPENDED
} GC_EventType;

/* Called at each step of a collection (not for single threads), with the
 * allocator lock held. May be NULL. */
typedef void(GC_CALLBACK *GC_on_collection_event_proc)(GC_EventType);
GC_API void GC_CALL GC_set_on_collection_event(GC_on_collection_event_proc);
GC_API GC_on_collection_event_proc GC_CALL GC_get_on_collection_event(void);

#ifdef GC_THREADS
/* Called when a thread is suspended or resumed for a collection, with the
 * thread's id. May be NULL. */
typedef void(GC_CALLBACK *GC_on_thread_event_proc)(GC_EventType, void * /* thread_id */);
GC_API void GC_CALL GC_set_on_thread_event(GC_on_thread_event_proc);
GC_API GC_on_thread_event_proc GC_CALL GC_get_on_thread_event(void);
#endif

/* Leak-detection mode: nothing is collected; unreachable objects that were
 * never freed are reported instead. Set before initialization. */
GC_API GC_ATTR_DEPRECATED int GC_find_leak;
GC_API void GC_CALL GC_set_find_leak(int);
GC_API int GC_CALL GC_get_find_leak(void);

/* 1: a pointer anywhere into an object keeps it alive; 0: only pointers to
 * its start (and registered displacements) do. 0 or 1 only; set before
 * initialization. */
GC_API GC_ATTR_DEPRECATED int GC_all_interior_pointers;
GC_API void GC_CALL GC_set_all_interior_pointers(int);
GC_API int GC_CALL GC_get_all_interior_pointers(void);

/* Nonzero: finalizers run only when the program calls
 * GC_invoke_finalizers(). */
GC_API GC_ATTR_DEPRECATED int GC_finalize_on_demand;
GC_API void GC_CALL GC_set_finalize_on_demand(int);
GC_API int GC_CALL GC_get_finalize_on_demand(void);

/* Nonzero: objects reachable from finalizable ones are marked in a pass of
 * their own (Java's order); needed by GC_register_finalizer_unreachable. */
GC_API GC_ATTR_DEPRECATED int GC_java_finalization;
GC_API void GC_CALL GC_set_java_finalization(int);
GC_API int GC_CALL GC_get_java_finalization(void);

/* With finalize-on-demand, called at most once per collection when objects
 * are ready to be finalized (typically to wake a finalizer thread). May be
 * NULL. */
typedef void(GC_CALLBACK *GC_finalizer_notifier_proc)(void);
GC_API GC_ATTR_DEPRECATED GC_finalizer_notifier_proc GC_finalizer_notifier;
GC_API void GC_CALL GC_set_finalizer_notifier(GC_finalizer_notifier_proc);
GC_API GC_finalizer_notifier_proc GC_CALL GC_get_finalizer_notifier(void);

/* Nonzero: no collection at all, explicit ones included. A counter that
 * GC_disable() and GC_enable() move; assigning it is deprecated (except for
 * GC_INIT's own use under GC_DONT_GC). */
GC_API
#ifndef GC_DONT_GC
GC_ATTR_DEPRECATED
#endif
int GC_dont_gc;

/* Nonzero: the heap grows only when asked to or when it must. */
GC_API GC_ATTR_DEPRECATED int GC_dont_expand;
GC_API void GC_CALL GC_set_dont_expand(int);
GC_API int GC_CALL GC_get_dont_expand(void);

/* Nonzero: use the whole heap before collecting. */
GC_API GC_ATTR_DEPRECATED int GC_use_entire_heap;

/* In incremental mode, partial collections between two full ones. */
GC_API GC_ATTR_DEPRECATED int GC_full_freq;
GC_API void GC_CALL GC_set_full_freq(int);
GC_API int GC_CALL GC_get_full_freq(void);

/* Bytes that are not candidates for collection (uncollectable objects);
 * used only to pace collections. */
GC_API GC_ATTR_DEPRECATED GC_word GC_non_gc_bytes;
GC_API void GC_CALL GC_set_non_gc_bytes(GC_word);
GC_API GC_word GC_CALL GC_get_non_gc_bytes(void);

/* Nonzero: the data segments of shared libraries are not roots; the
 * program registers every root itself. */
GC_API GC_ATTR_DEPRECATED int GC_no_dls;
GC_API void GC_CALL GC_set_no_dls(int);
GC_API int GC_CALL GC_get_no_dls(void);

/* Space against time: between collections the program may allocate about
 * the live heap divided by this. Larger means a smaller heap and more
 * frequent collections. */
GC_API GC_ATTR_DEPRECATED GC_word GC_free_space_divisor;
GC_API void GC_CALL GC_set_free_space_divisor(GC_word);
GC_API GC_word GC_CALL GC_get_free_space_divisor(void);

/* Collections to try, after the heap could not grow, before reporting out
 * of memory. */
GC_API GC_ATTR_DEPRECATED GC_word GC_max_retries;
GC_API void GC_CALL GC_set_max_retries(GC_word);
GC_API GC_word GC_CALL GC_get_max_retries(void);

/* The cold end of the main thread's stack; a program may set it before
 * initialization. New code uses GC_set_stackbottom and friends. */
GC_API GC_ATTR_DEPRECATED char *GC_stackbottom;

/* Nonzero: no collection as part of initialization. */
GC_API GC_ATTR_DEPRECATED int GC_dont_precollect;
GC_API void GC_CALL GC_set_dont_precollect(int);
GC_API int GC_CALL GC_get_dont_precollect(void);

/* In incremental mode, the pause a collection step aims at, in
 * milliseconds; GC_TIME_UNLIMITED turns the pause limit off. */
GC_API GC_ATTR_DEPRECATED unsigned long GC_time_limit;
#define GC_TIME_UNLIMITED 999999
GC_API void GC_CALL GC_set_time_limit(unsigned long);
GC_API unsigned long GC_CALL GC_get_time_limit(void);

/* A duration: milliseconds and a nanosecond fraction (below 1000000). */
struct GC_timeval_s {
  unsigned long tv_ms;
  unsigned long tv_nsec;
};

/* The pause limit above with nanoseconds. */
GC_API void GC_CALL GC_set_time_limit_tv(struct GC_timeval_s);
GC_API struct GC_timeval_s GC_CALL GC_get_time_limit_tv(void);

/* Below this many bytes allocated per finalizer registered since the last
 * collection, the collector collects rather than grow the heap (0: ignore
 * finalizers in that decision). */
GC_API void GC_CALL GC_set_allocd_bytes_per_finalizer(GC_word);
GC_API GC_word GC_CALL GC_get_allocd_bytes_per_finalizer(void);

/* Starts measuring the time spent in full collections; the total, in
 * milliseconds, wraps around. */
GC_API void GC_CALL GC_start_performance_measurement(void);
GC_API unsigned long GC_CALL GC_get_full_gc_total_time(void);

/* Nonzero: heap memory is executable. Set before GC_INIT(). */
GC_API void GC_CALL GC_set_pages_executable(int);
GC_API int GC_CALL GC_get_pages_executable(void);

/* The least allocation between two collections (never 0). */
GC_API void GC_CALL GC_set_min_bytes_allocd(size_t);
GC_API size_t GC_CALL GC_get_min_bytes_allocd(void);

/* Pages of work per GC_collect_a_little() step (never 0). */
GC_API void GC_CALL GC_set_rate(int);
GC_API int GC_CALL GC_get_rate(void);

/* How often marking with the world stopped may be attempted before it must
 * finish. */
GC_API void GC_CALL GC_set_max_prior_attempts(int);
GC_API int GC_CALL GC_get_max_prior_attempts(void);

/* Nonzero: allocation never starts a collection by itself; only explicit
 * calls (and running out of memory) do. */
GC_API void GC_CALL GC_set_disable_automatic_collection(int);
GC_API int GC_CALL GC_get_disable_automatic_collection(void);

/* Nonzero before GC_INIT(): the collector installs pthread_atfork handlers
 * so that a forked child can go on using it. -1: the program calls the
 * three GC_atfork_* functions around fork() itself (prepare just before,
 * parent and child just after, in the respective process). */
GC_API void GC_CALL GC_set_handle_fork(int);
GC_API void GC_CALL GC_atfork_prepare(void);
GC_API void GC_CALL GC_atfork_parent(void);
GC_API void GC_CALL GC_atfork_child(void);

/* Initializes the collector; programs call GC_INIT() instead. */
GC_API void GC_CALL GC_init(void);

/* Nonzero once initialization has started. */
GC_API int GC_CALL GC_is_init_called(void);

/* Shuts the collector down; a second call does nothing. No GC_INIT()
 * afterwards. */
GC_API void GC_CALL GC_deinit(void);

/* ==== Allocation ===========================================================
 * GC_malloc returns zeroed memory that the collector scans for pointers and
 * frees once nothing points to it. GC_malloc_atomic's memory holds no
 * pointers: it is never scanned (and not zeroed). Uncollectable objects are
 * scanned but never freed by the collector; GC_free frees them. All return
 * NULL (or what the out-of-memory handler returns) on failure. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc(size_t /* size_in_bytes */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_atomic(size_t /* size_in_bytes */);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_strdup(const char *);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_strndup(const char *, size_t) GC_ATTR_NONNULL(1);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_uncollectable(size_t /* size_in_bytes */);
GC_API GC_ATTR_DEPRECATED void *GC_CALL GC_malloc_stubborn(size_t);

/* Aligned allocation, as memalign and posix_memalign. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(2) void *GC_CALL GC_memalign(size_t /* align */, size_t /* lb */);
GC_API int GC_CALL GC_posix_memalign(void ** /* memptr */, size_t /* align */, size_t /* lb */) GC_ATTR_NONNULL(1);

/* Frees an object at once, given its start. The object must have no
 * finalizer and no disappearing links registered. GC_free(NULL) does
 * nothing. */
GC_API void GC_CALL GC_free(void *);

/* Stubborn objects are gone: these are plain allocations now. */
#define GC_MALLOC_STUBBORN(sz) GC_MALLOC(sz)
#define GC_NEW_STUBBORN(t) GC_NEW(t)
#define GC_CHANGE_STUBBORN(p) GC_change_stubborn(p)
GC_API GC_ATTR_DEPRECATED void GC_CALL GC_change_stubborn(const void *);

/* Tells the collector that a (non-NULL) pointer was stored into the object.
 * Matters only for incremental collection with manual write barriers
 * (GC_set_manual_vdb_allowed); follow it with GC_reachable_here on what
 * was stored. */
GC_API void GC_CALL GC_end_stubborn_change(const void *) GC_ATTR_NONNULL(1);

/* The start of the object that the argument points into, or NULL if it
 * points into none. For a debugging allocation, the start of its header.
 * An object freed by GC_free may still count. */
GC_API void *GC_CALL GC_base(void * /* displaced_pointer */);

/* Nonzero if the argument points into the collector's heap (a quick
 * alternative to GC_base). The collector must be initialized. */
GC_API int GC_CALL GC_is_heap_ptr(const void *);

/* The size in bytes of the object that starts at the argument: at least
 * what was asked for. */
GC_API size_t GC_CALL GC_size(const void * /* obj_addr */) GC_ATTR_NONNULL(1);

/* As realloc: the object keeps its kind; grown bytes are zeroed (except
 * maybe for atomic objects); NULL old object allocates; size 0 frees and
 * returns NULL. On failure the old object is left as it was. */
GC_API void *GC_CALL GC_realloc(void * /* old_object */, size_t /* new_size_in_bytes */) GC_ATTR_ALLOC_SIZE(2);

/* Grows the heap by this many bytes: 1 on success, 0 on failure. */
GC_API int GC_CALL GC_expand_hp(size_t /* number_of_bytes */);

/* Caps the heap at n bytes (0: no cap, the default). */
GC_API void GC_CALL GC_set_max_heap_size(GC_word /* n */);

/* ==== Roots ================================================================ */

/* The range [low, high) of static data holds no pointers to the heap:
 * never scan it. Need not be aligned. */
GC_API void GC_CALL GC_exclude_static_roots(void * /* low_address */, void * /* high_address_plus_1 */);

/* Forgets every exclusion above. */
GC_API void GC_CALL GC_clear_exclusion_table(void);

/* Forgets every root range the program registered. */
GC_API void GC_CALL GC_clear_roots(void);

/* Scans [low, high) as a root at every collection. Need not be aligned;
 * low <= high. */
GC_API void GC_CALL GC_add_roots(void * /* low_address */, void * /* high_address_plus_1 */);

/* Unregisters the root ranges that lie wholly within [low, high). */
GC_API void GC_CALL GC_remove_roots(void * /* low_address */, void * /* high_address_plus_1 */);

/* Without interior pointers (GC_all_interior_pointers 0): a pointer n bytes
 * past an object's start also keeps it alive. Best called before any
 * allocation. The GC_debug_ version is for programs that use debugging
 * allocations. */
GC_API void GC_CALL GC_register_displacement(size_t /* n */);
GC_API void GC_CALL GC_debug_register_displacement(size_t /* n */);

/* ==== Collection =========================================================== */

/* A full collection with the world stopped. */
GC_API void GC_CALL GC_gcollect(void);

/* The same, and gives as much memory back to the system as it can (for a
 * low-memory situation). */
GC_API void GC_CALL GC_gcollect_and_unmap(void);

/* Polled during a collection; a nonzero result abandons it. Called with the
 * allocator lock held, maybe with the world stopped: it must be quick and
 * must not touch the heap or call the collector. */
typedef int(GC_CALLBACK *GC_stop_func)(void);

/* A full collection abandoned when stop_func says so: 1 if it completed, 0
 * if it was abandoned or collection is disabled. */
GC_API int GC_CALL GC_try_to_collect(GC_stop_func /* stop_func */) GC_ATTR_NONNULL(1);

/* The stop function of GC_gcollect() and of the automatic collections. */
GC_API void GC_CALL GC_set_stop_func(GC_stop_func /* stop_func */) GC_ATTR_NONNULL(1);
GC_API GC_stop_func GC_CALL GC_get_stop_func(void);

/* Heap statistics, unsynchronized (call them under GC_call_with_alloc_lock
 * when other threads allocate, or use GC_get_heap_usage_safe):
 *   heap size: mapped heap bytes, free space and fragmentation included;
 *   free bytes: a lower bound of the free mapped bytes;
 *   unmapped bytes: heap given back to the system;
 *   bytes since gc: allocated since the last collection;
 *   explicitly freed bytes since the last collection;
 *   total bytes: allocated since the start (wraps);
 *   bytes obtained from the system, unmapped included. */
GC_API size_t GC_CALL GC_get_heap_size(void);
GC_API size_t GC_CALL GC_get_free_bytes(void);
GC_API size_t GC_CALL GC_get_unmapped_bytes(void);
GC_API size_t GC_CALL GC_get_bytes_since_gc(void);
GC_API size_t GC_CALL GC_get_expl_freed_bytes_since_gc(void);
GC_API size_t GC_CALL GC_get_total_bytes(void);
GC_API size_t GC_CALL GC_get_obtained_from_os_bytes(void);

/* Five of the above at once, consistently, under the allocator lock. Any
 * pointer may be NULL. */
GC_API void GC_CALL GC_get_heap_usage_safe(GC_word * /* pheap_size */, GC_word * /* pfree_bytes */,
                                           GC_word * /* punmapped_bytes */, GC_word * /* pbytes_since_gc */,
                                           GC_word * /* ptotal_bytes */);

/* Statistics filled in by GC_get_prof_stats. New fields only ever go at
 * the end. */
struct GC_prof_stats_s {
  GC_word heapsize_full;             /* heap size, unmapped part included */
  GC_word free_bytes_full;           /* free bytes, unmapped part included */
  GC_word unmapped_bytes;            /* GC_get_unmapped_bytes() */
  GC_word bytes_allocd_since_gc;     /* GC_get_bytes_since_gc() */
  GC_word allocd_bytes_before_gc;    /* allocated before the last collection (wraps) */
  GC_word non_gc_bytes;              /* GC_get_non_gc_bytes() */
  GC_word gc_no;                     /* GC_get_gc_no() */
  GC_word markers_m1;                /* GC_get_parallel() */
  GC_word bytes_reclaimed_since_gc;  /* about what the last collection freed */
  GC_word reclaimed_bytes_before_gc; /* about what earlier collections freed (wraps) */
  GC_word expl_freed_bytes_since_gc; /* GC_get_expl_freed_bytes_since_gc() */
  GC_word obtained_from_os_bytes;    /* GC_get_obtained_from_os_bytes() */
};

/* Fills in up to stats_sz bytes of *stats consistently; fields the library
 * does not know are set to all ones. Returns the bytes filled with known
 * values. */
GC_API size_t GC_CALL GC_get_prof_stats(struct GC_prof_stats_s *, size_t /* stats_sz */);
#ifdef GC_THREADS
/* The same without taking the allocator lock. */
GC_API size_t GC_CALL GC_get_prof_stats_unsafe(struct GC_prof_stats_s *, size_t /* stats_sz */);
#endif

/* Entry i of the size map: the size in bytes that a request of i bytes
 * really gets; -1 past the end of the map. Unsynchronized. */
GC_API size_t GC_CALL GC_get_size_map_at(int i);

/* Bytes in use by allocated blocks, under the lock. */
GC_API size_t GC_CALL GC_get_memory_use(void);

/* GC_disable() and GC_enable() nest: collection is off while more disables
 * than enables were called (explicit collections included). */
GC_API void GC_CALL GC_disable(void);
GC_API int GC_CALL GC_is_disabled(void);
GC_API void GC_CALL GC_enable(void);

/* Nonzero before incremental mode is enabled: incremental collection may
 * rely on the program's GC_END_STUBBORN_CHANGE and GC_reachable_here calls
 * (or GC_PTR_STORE_AND_DIRTY) as its write barrier. */
GC_API void GC_CALL GC_set_manual_vdb_allowed(int);
GC_API int GC_CALL GC_get_manual_vdb_allowed(void);

/* Turns on incremental (generational) collection, initializing the
 * collector if needed. Ignored while collection is disabled; not for
 * leak-detection mode. */
GC_API void GC_CALL GC_enable_incremental(void);

/* Nonzero in incremental mode. */
GC_API int GC_CALL GC_is_incremental_mode(void);

/* What incremental mode may write-protect (GC_incremental_protection_needs
 * returns these or-ed together). */
#define GC_PROTECTS_POINTER_HEAP 1
#define GC_PROTECTS_PTRFREE_HEAP 2
#define GC_PROTECTS_STATIC_DATA 4
#define GC_PROTECTS_STACK 8
#define GC_PROTECTS_NONE 0
GC_API int GC_CALL GC_incremental_protection_needs(void);

/* In incremental mode, starts a collection now. */
GC_API void GC_CALL GC_start_incremental_collection(void);

/* Does a little collection work; 0 when there is nothing left to do (call
 * it in a loop until it returns 0). */
GC_API int GC_CALL GC_collect_a_little(void);

/* For large objects that are always referred to by a pointer to somewhere
 * in their first 256 bytes: other words pointing deeper into them do not
 * keep them alive, so fewer false references pin them. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_ignore_off_page(size_t /* lb */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_atomic_ignore_off_page(size_t /* lb */);

/* ==== Debugging allocation =================================================
 * GC_debug_* allocate objects with a header holding the caller's file and
 * line; collections check them for overwritten ends. GC_EXTRAS is what the
 * macros below pass for those, GC_EXTRA_PARAMS the matching parameters. */
#define GC_EXTRAS __FILE__, __LINE__
#define GC_EXTRA_PARAMS const char *s, int i

/* Uncollectable and pointer-free. */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_malloc_atomic_uncollectable(size_t /* size_in_bytes */);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_debug_malloc_atomic_uncollectable(size_t, GC_EXTRA_PARAMS);

GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_debug_malloc(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_debug_malloc_atomic(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_debug_strdup(const char *, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC char *GC_CALL GC_debug_strndup(const char *, size_t, GC_EXTRA_PARAMS) GC_ATTR_NONNULL(1);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_debug_malloc_uncollectable(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_DEPRECATED void *GC_CALL GC_debug_malloc_stubborn(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_debug_malloc_ignore_off_page(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL
    GC_debug_malloc_atomic_ignore_off_page(size_t /* size_in_bytes */, GC_EXTRA_PARAMS);
GC_API void GC_CALL GC_debug_free(void *);
GC_API void *GC_CALL GC_debug_realloc(void * /* old_object */, size_t /* new_size_in_bytes */, GC_EXTRA_PARAMS)
    GC_ATTR_ALLOC_SIZE(2);
GC_API GC_ATTR_DEPRECATED void GC_CALL GC_debug_change_stubborn(const void *);
GC_API void GC_CALL GC_debug_end_stubborn_change(const void *) GC_ATTR_NONNULL(1);

/* Debugging allocations with placeholder file and line: drop-in malloc and
 * realloc replacements (for instance at link time). */
GC_API GC_ATTR_MALLOC GC_ATTR_ALLOC_SIZE(1) void *GC_CALL GC_debug_malloc_replacement(size_t /* size_in_bytes */);
GC_API GC_ATTR_ALLOC_SIZE(2) void *GC_CALL
    GC_debug_realloc_replacement(void * /* object_addr */, size_t /* size_in_bytes */);

/* ==== The allocation macros ================================================
 * What programs call: plain allocations normally, debugging ones under
 * GC_DEBUG (GC_DEBUG_REPLACEMENT: GC_MALLOC and GC_REALLOC use the
 * replacements above). */
#if defined(GC_DEBUG_REPLACEMENT)
#define GC_MALLOC(sz) GC_debug_malloc_replacement(sz)
#define GC_REALLOC(old, sz) GC_debug_realloc_replacement(old, sz)
#elif defined(GC_DEBUG)
#define GC_MALLOC(sz) GC_debug_malloc(sz, GC_EXTRAS)
#define GC_REALLOC(old, sz) GC_debug_realloc(old, sz, GC_EXTRAS)
#else
#define GC_MALLOC(sz) GC_malloc(sz)
#define GC_REALLOC(old, sz) GC_realloc(old, sz)
#endif

/* clang-format off */
#ifdef GC_DEBUG
#define GC_MALLOC_ATOMIC(sz) GC_debug_malloc_atomic(sz, GC_EXTRAS)
#define GC_STRDUP(s) GC_debug_strdup(s, GC_EXTRAS)
#define GC_STRNDUP(s, sz) GC_debug_strndup(s, sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(sz) GC_debug_malloc_atomic_uncollectable(sz, GC_EXTRAS)
#define GC_MALLOC_UNCOLLECTABLE(sz) GC_debug_malloc_uncollectable(sz, GC_EXTRAS)
#define GC_MALLOC_IGNORE_OFF_PAGE(sz) GC_debug_malloc_ignore_off_page(sz, GC_EXTRAS)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(sz) GC_debug_malloc_atomic_ignore_off_page(sz, GC_EXTRAS)
#define GC_FREE(p) GC_debug_free(p)
#define GC_REGISTER_FINALIZER(p, f, d, of, od) GC_debug_register_finalizer(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_IGNORE_SELF(p, f, d, of, od) GC_debug_register_finalizer_ignore_self(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_NO_ORDER(p, f, d, of, od) GC_debug_register_finalizer_no_order(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_UNREACHABLE(p, f, d, of, od) GC_debug_register_finalizer_unreachable(p, f, d, of, od)
#define GC_END_STUBBORN_CHANGE(p) GC_debug_end_stubborn_change(p)
#define GC_PTR_STORE_AND_DIRTY(p, q) GC_debug_ptr_store_and_dirty(p, q)
/* A debugging object starts with its header: links name its true start. */
#define GC_GENERAL_REGISTER_DISAPPEARING_LINK(link, obj) \
  GC_general_register_disappearing_link(link, GC_base((void *)(obj)))
#define GC_REGISTER_LONG_LINK(link, obj) GC_register_long_link(link, GC_base((void *)(obj)))
#define GC_REGISTER_DISPLACEMENT(n) GC_debug_register_displacement(n)
#else
#define GC_MALLOC_ATOMIC(sz) GC_malloc_atomic(sz)
#define GC_STRDUP(s) GC_strdup(s)
#define GC_STRNDUP(s, sz) GC_strndup(s, sz)
#define GC_MALLOC_ATOMIC_UNCOLLECTABLE(sz) GC_malloc_atomic_uncollectable(sz)
#define GC_MALLOC_UNCOLLECTABLE(sz) GC_malloc_uncollectable(sz)
#define GC_MALLOC_IGNORE_OFF_PAGE(sz) GC_malloc_ignore_off_page(sz)
#define GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(sz) GC_malloc_atomic_ignore_off_page(sz)
#define GC_FREE(p) GC_free(p)
#define GC_REGISTER_FINALIZER(p, f, d, of, od) GC_register_finalizer(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_IGNORE_SELF(p, f, d, of, od) GC_register_finalizer_ignore_self(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_NO_ORDER(p, f, d, of, od) GC_register_finalizer_no_order(p, f, d, of, od)
#define GC_REGISTER_FINALIZER_UNREACHABLE(p, f, d, of, od) GC_register_finalizer_unreachable(p, f, d, of, od)
#define GC_END_STUBBORN_CHANGE(p) GC_end_stubborn_change(p)
#define GC_PTR_STORE_AND_DIRTY(p, q) GC_ptr_store_and_dirty(p, q)
#define GC_GENERAL_REGISTER_DISAPPEARING_LINK(link, obj) GC_general_register_disappearing_link(link, obj)
#define GC_REGISTER_LONG_LINK(link, obj) GC_register_long_link(link, obj)
#define GC_REGISTER_DISPLACEMENT(n) GC_register_displacement(n)
#endif /* GC_DEBUG */

/* One object of type t (a simple type name: t* must be a type). NULL when
 * out of memory, unlike C++'s new. */
#define GC_NEW(t) ((t *)GC_MALLOC(sizeof(t)))
#define GC_NEW_ATOMIC(t) ((t *)GC_MALLOC_ATOMIC(sizeof(t)))
#define GC_NEW_UNCOLLECTABLE(t) ((t *)GC_MALLOC_UNCOLLECTABLE(sizeof(t)))
/* clang-format on */

/* ==== Finalization =========================================================
 * A finalizer fn(obj, cd) runs after obj has become unreachable. If two
 * unreachable finalizable objects a -> b, only a is finalized at first, b
 * after a later collection; an object that can reach itself (or a cycle of
 * finalizable objects) is never finalized. fn 0 removes the finalizer; the
 * old one and its data are stored in *ofn and *ocd (either may be NULL).
 * obj must be the start of a heap object (or NULL or outside the heap:
 * then nothing is registered and *ofn, *ocd get NULL). cd stays reachable
 * until fn has run. Nothing in leak-detection mode. The variants differ in
 * which pointers count for the order:
 *   _ignore_self: pointers from the object to itself do not (what C++
 *     needs, since compilers may create them);
 *   _no_order: none do (Java);
 *   _unreachable: runs only once the object is not even reachable from
 *     other finalizable objects (needs GC_java_finalization). */
typedef void(GC_CALLBACK *GC_finalization_proc)(void * /* obj */, void * /* client_data */);

GC_API void GC_CALL GC_register_finalizer(void * /* obj */, GC_finalization_proc /* fn */, void * /* cd */,
                                          GC_finalization_proc * /* ofn */, void ** /* ocd */) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer(void * /* obj */, GC_finalization_proc /* fn */, void * /* cd */,
                                                GC_finalization_proc * /* ofn */, void ** /* ocd */) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_register_finalizer_ignore_self(void * /* obj */, GC_finalization_proc /* fn */, void * /* cd */,
                                                      GC_finalization_proc * /* ofn */, void ** /* ocd */)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer_ignore_self(void * /* obj */, GC_finalization_proc /* fn */,
                                                            void * /* cd */, GC_finalization_proc * /* ofn */,
                                                            void ** /* ocd */) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_register_finalizer_no_order(void * /* obj */, GC_finalization_proc /* fn */, void * /* cd */,
                                                   GC_finalization_proc * /* ofn */, void ** /* ocd */)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer_no_order(void * /* obj */, GC_finalization_proc /* fn */,
                                                         void * /* cd */, GC_finalization_proc * /* ofn */,
                                                         void ** /* ocd */) GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_register_finalizer_unreachable(void * /* obj */, GC_finalization_proc /* fn */, void * /* cd */,
                                                      GC_finalization_proc * /* ofn */, void ** /* ocd */)
    GC_ATTR_NONNULL(1);
GC_API void GC_CALL GC_debug_register_finalizer_unreachable(void * /* obj */, GC_finalization_proc /* fn */,
                                                            void * /* cd */, GC_finalization_proc * /* ofn */,
                                                            void ** /* ocd */) GC_ATTR_NONNULL(1);

/* ==== Result codes ========================================================= */
#define GC_SUCCESS 0
#define GC_DUPLICATE 1     /* already registered */
#define GC_NO_MEMORY 2     /* out of memory */
#define GC_NO_THREADS 2    /* no thread support (no longer returned) */
#define GC_UNIMPLEMENTED 3 /* not available here */
#define GC_NOT_FOUND 4     /* no such link registered */

/* ==== Disappearing links (weak pointers) ===================================
 * A registered link *link is set to NULL when obj becomes unreachable,
 * before any finalizer runs. The link usually holds obj hidden
 * (GC_HIDE_POINTER) so that it does not keep obj alive itself; reading it
 * back safely takes the allocator lock (GC_call_with_alloc_lock). A link
 * goes away when it is unregistered, cleared, or when the object that
 * holds it is collected. Registration returns GC_SUCCESS, GC_DUPLICATE
 * (the link was registered already), GC_NO_MEMORY or, in leak-detection
 * mode, GC_UNIMPLEMENTED. */

/* The link clears when the object that holds it, GC_base(link), becomes
 * unreachable (the old interface). */
GC_API int GC_CALL GC_register_disappearing_link(void ** /* link */) GC_ATTR_NONNULL(1);

/* The link clears when obj (the start of a heap object) becomes
 * unreachable, even if a finalizer may still revive it. */
GC_API int GC_CALL GC_general_register_disappearing_link(void ** /* link */, const void * /* obj */) GC_ATTR_NONNULL(1)
    GC_ATTR_NONNULL(2);

/* Moves a registration from link to new_link (same target, *new_link
 * untouched): GC_SUCCESS, GC_DUPLICATE if new_link is taken, GC_NOT_FOUND
 * if link is not registered. link == new_link just checks. */
GC_API int GC_CALL GC_move_disappearing_link(void ** /* link */, void ** /* new_link */) GC_ATTR_NONNULL(2);

/* 1 if the link was registered (and no longer is), 0 otherwise. */
GC_API int GC_CALL GC_unregister_disappearing_link(void ** /* link */);

/* Long links clear only once obj can no longer be revived by a finalizer. */
GC_API int GC_CALL GC_register_long_link(void ** /* link */, const void * /* obj */) GC_ATTR_NONNULL(1)
    GC_ATTR_NONNULL(2);
GC_API int GC_CALL GC_move_long_link(void ** /* link */, void ** /* new_link */) GC_ATTR_NONNULL(2);
GC_API int GC_CALL GC_unregister_long_link(void ** /* link */);

/* ==== Toggle references ====================================================
 * An object registered here is held strongly or weakly as the callback
 * decides at each collection, for runtimes whose objects have a peer in
 * another memory manager. */
typedef enum { GC_TOGGLE_REF_DROP, GC_TOGGLE_REF_STRONG, GC_TOGGLE_REF_WEAK } GC_ToggleRefStatus;

/* Returns the object's new state; called with the allocator lock held for
 * each registered object. */
typedef GC_ToggleRefStatus(GC_CALLBACK *GC_toggleref_func)(void * /* obj */);
GC_API void GC_CALL GC_set_toggleref_func(GC_toggleref_func);
GC_API GC_toggleref_func GC_CALL GC_get_toggleref_func(void);

/* Registers obj, held strongly or weakly to begin with, until the callback
 * drops it or it is collected. GC_SUCCESS or GC_NO_MEMORY. */
GC_API int GC_CALL GC_toggleref_add(void * /* obj */, int /* is_strong */) GC_ATTR_NONNULL(1);

/* Called with the allocator lock held for each object queued for
 * finalization. May be NULL. */
typedef void(GC_CALLBACK *GC_await_finalize_proc)(void * /* obj */);
GC_API void GC_CALL GC_set_await_finalize_proc(GC_await_finalize_proc);
GC_API GC_await_finalize_proc GC_CALL GC_get_await_finalize_proc(void);

/* Nonzero if finalizers are waiting to run. */
GC_API int GC_CALL GC_should_invoke_finalizers(void);

/* Runs the finalizers that are waiting; returns how many ran. */
GC_API int GC_CALL GC_invoke_finalizers(void);

/* Keeps ptr alive up to this point of the program even when the compiler
 * has no further use for it (so that its finalizer cannot run early). */
GC_API void GC_CALL GC_noop1(GC_word);
#if defined(__GNUC__) && !defined(__INTEL_COMPILER)
#define GC_reachable_here(ptr) __asm__ __volatile__("" : : "X"(ptr) : "memory")
#else
#define GC_reachable_here(ptr) GC_noop1((GC_word)(ptr))
#endif

/* ==== Messages and failures ================================================ */

/* Receives the collector's warnings: msg is a printf format with one
 * GC_word argument. Never NULL. */
typedef void(GC_CALLBACK *GC_warn_proc)(char * /* msg */, GC_word /* arg */);
GC_API void GC_CALL GC_set_warn_proc(GC_warn_proc /* p */) GC_ATTR_NONNULL(1);
GC_API GC_warn_proc GC_CALL GC_get_warn_proc(void);

/* A warn proc that drops every warning. */
GC_API void GC_CALLBACK GC_ignore_warn_proc(char *, GC_word);

/* Where the collector's log goes. */
GC_API void GC_CALL GC_set_log_fd(int);

/* Called on a fatal error with its message just before the process aborts
 * (msg NULL: before exit(1)). Never NULL. */
typedef void(GC_CALLBACK *GC_abort_func)(const char * /* msg */);
GC_API void GC_CALL GC_set_abort_func(GC_abort_func) GC_ATTR_NONNULL(1);
GC_API GC_abort_func GC_CALL GC_get_abort_func(void);

/* Reports out of memory and aborts. */
GC_API void GC_CALL GC_abort_on_oom(void);

/* ==== Hidden pointers ======================================================
 * A pointer stored hidden does not keep its object alive. Revealing it is
 * safe only while the object is known to exist (the allocator lock held,
 * and a disappearing link that would have cleared it). */
typedef GC_word GC_hidden_pointer;
#define GC_HIDE_POINTER(p) (~(GC_hidden_pointer)(p))
#define GC_REVEAL_POINTER(p) ((void *)GC_HIDE_POINTER(p))
#if defined(I_HIDE_POINTERS) || defined(GC_I_HIDE_POINTERS)
/* The old names. */
#define HIDE_POINTER(p) GC_HIDE_POINTER(p)
#define REVEAL_POINTER(p) GC_REVEAL_POINTER(p)
#endif

/* ==== The allocator lock =================================================== */

/* Take and release the collector's lock (not recursive). Nothing without
 * GC_THREADS. */
#ifdef GC_THREADS
GC_API void GC_CALL GC_alloc_lock(void);
GC_API void GC_CALL GC_alloc_unlock(void);
#else
#define GC_alloc_lock() (void)0
#define GC_alloc_unlock() (void)0
#endif

/* Runs fn(client_data) with the allocator lock held and returns its
 * result. */
typedef void *(GC_CALLBACK *GC_fn_type)(void * /* client_data */);
GC_API void *GC_CALL GC_call_with_alloc_lock(GC_fn_type /* fn */, void * /* client_data */) GC_ATTR_NONNULL(1);

/* ==== Threads and stacks =================================================== */

/* The cold end of a thread's stack. */
struct GC_stack_base {
  void *mem_base; /* the stack's highest address on a stack that grows down */
#if defined(__e2k__) || defined(__ia64) || defined(__ia64__)
  void *reg_base; /* the cold end of the register stack */
#endif
};

typedef void *(GC_CALLBACK *GC_stack_base_func)(struct GC_stack_base * /* sb */, void * /* arg */);

/* Calls fn with a stack base somewhere in this call's frame: a usable cold
 * end for a thread that registers itself. */
GC_API void *GC_CALL GC_call_with_stack_base(GC_stack_base_func /* fn */, void * /* arg */) GC_ATTR_NONNULL(1);

/* Starts the parallel marker threads, if the library has them (after fork
 * in a child, or in a single-threaded program). */
GC_API void GC_CALL GC_start_mark_threads(void);

#ifdef GC_THREADS
/* The signals that stop and restart threads for a collection: a choice
 * made before initialization; the getters tell the one in use. */
GC_API void GC_CALL GC_set_suspend_signal(int);
GC_API void GC_CALL GC_set_thr_restart_signal(int);
GC_API int GC_CALL GC_get_suspend_signal(void);
GC_API int GC_CALL GC_get_thr_restart_signal(void);

/* Allows threads that the collector did not create to register themselves;
 * call it from the main thread after initialization, before the first
 * GC_register_my_thread. Implied by the pthread wrappers. */
GC_API void GC_CALL GC_allow_register_threads(void);

/* Registers the calling thread with the cold end of its stack: from then on
 * it may allocate and hold heap pointers, and is stopped for collections.
 * For threads the program did not create through the wrappers; a thread
 * registered so must unregister itself. GC_SUCCESS or GC_DUPLICATE; and,
 * in mallocgc (Boehm aborts), GC_NO_MEMORY when there is no memory for its
 * record: the thread is then not registered and must hold no heap pointer
 * until a later call succeeds. */
GC_API int GC_CALL GC_register_my_thread(const struct GC_stack_base *) GC_ATTR_NONNULL(1);

/* Nonzero if the calling thread is registered. */
GC_API int GC_CALL GC_thread_is_registered(void);

/* The calling thread's stack and alternate signal stack, so that it can be
 * scanned while it runs on the latter. */
GC_API void GC_CALL GC_register_altstack(void * /* stack_start */, GC_word /* stack_size */, void * /* altstack_base */,
                                         GC_word /* altstack_size */);

/* Unregisters the calling thread (registered by GC_register_my_thread, or
 * the main thread once). It must not hold heap pointers afterwards that
 * nothing else keeps. */
GC_API int GC_CALL GC_unregister_my_thread(void);

/* Stop and restart every other registered thread. */
GC_API void GC_CALL GC_stop_world_external(void);
GC_API void GC_CALL GC_start_world_external(void);
#endif /* GC_THREADS */

/* Runs fn(client_data) with the calling thread inactive: it is not stopped
 * for collections and the frames below are not scanned, so fn must not
 * touch the heap (for calls that may block a long time). */
GC_API void *GC_CALL GC_do_blocking(GC_fn_type /* fn */, void * /* client_data */) GC_ATTR_NONNULL(1);

/* The opposite, from inside GC_do_blocking: runs fn active again. */
GC_API void *GC_CALL GC_call_with_gc_active(GC_fn_type /* fn */, void * /* client_data */) GC_ATTR_NONNULL(1);

/* Finds the calling thread's stack base: GC_SUCCESS or GC_UNIMPLEMENTED. */
GC_API int GC_CALL GC_get_stack_base(struct GC_stack_base *) GC_ATTR_NONNULL(1);

/* The stack base the collector holds for the calling (registered) thread;
 * returns the thread's handle for GC_set_stackbottom. */
GC_API void *GC_CALL GC_get_my_stackbottom(struct GC_stack_base *) GC_ATTR_NONNULL(1);

/* Sets the cold end of a thread's stack (handle NULL: the calling thread),
 * for coroutines that switch stacks. Under the allocator lock, or before
 * initialization for the main thread. */
GC_API void GC_CALL GC_set_stackbottom(void * /* gc_thread_handle */, const struct GC_stack_base *) GC_ATTR_NONNULL(2);

/* ==== Pointer checks =======================================================
 * For tools that check pointer arithmetic: a failed check calls the
 * matching print procedure below. */

/* p and q point into the same object (or both outside the heap); returns
 * p. */
GC_API void *GC_CALL GC_same_obj(void * /* p */, void * /* q */);

/* *p += how_much bytes, checked to stay in the object: returns the new
 * value (pre) or the old one (post). */
GC_API void *GC_CALL GC_pre_incr(void **, ptrdiff_t /* how_much */) GC_ATTR_NONNULL(1);
GC_API void *GC_CALL GC_post_incr(void **, ptrdiff_t /* how_much */) GC_ATTR_NONNULL(1);

/* p is somewhere the collector scans; returns p. */
GC_API void *GC_CALL GC_is_visible(void * /* p */);

/* p, if in the heap, is a valid displacement into its object; returns p. */
GC_API void *GC_CALL GC_is_valid_displacement(void * /* p */);

/* Print the collector's state: everything (under the lock), the same
 * titled with name (NULL: the collection number), the heap's blocks, and
 * the registered finalizers and links. */
GC_API void GC_CALL GC_dump(void);
GC_API void GC_CALL GC_dump_named(const char * /* name */);
GC_API void GC_CALL GC_dump_regions(void);
GC_API void GC_CALL GC_dump_finalization(void);

/* Checked pointer arithmetic under GC_DEBUG with GCC-compatible compilers,
 * plain arithmetic otherwise. n counts elements; GC_PTR_ADD evaluates x
 * twice. */
/* clang-format off */
#if defined(GC_DEBUG) && defined(__GNUC__)
#define GC_PTR_ADD3(x, n, type_of_result) ((type_of_result)GC_same_obj((x) + (n), (x)))
#define GC_PRE_INCR3(x, n, type_of_result) ((type_of_result)GC_pre_incr((void **)(&(x)), (n) * sizeof(*x)))
#define GC_POST_INCR3(x, n, type_of_result) ((type_of_result)GC_post_incr((void **)(&(x)), (n) * sizeof(*x)))
#define GC_PTR_ADD(x, n) GC_PTR_ADD3(x, n, __typeof__(x))
#define GC_PRE_INCR(x, n) GC_PRE_INCR3(x, n, __typeof__(x))
#define GC_POST_INCR(x) GC_POST_INCR3(x, 1, __typeof__(x))
#define GC_POST_DECR(x) GC_POST_INCR3(x, -1, __typeof__(x))
#else
#define GC_PTR_ADD(x, n) ((x) + (n))
#define GC_PRE_INCR(x, n) ((x) += (n))
#define GC_POST_INCR(x) ((x)++)
#define GC_POST_DECR(x) ((x)--)
#endif

/* *p = q for p outside the stack, checked under GC_DEBUG. */
#ifdef GC_DEBUG
#define GC_PTR_STORE(p, q) (*(void **)GC_is_visible((void *)(p)) = GC_is_valid_displacement((void *)(q)))
#else
#define GC_PTR_STORE(p, q) (*(void **)(p) = (void *)(q))
#endif
/* clang-format on */

/* *(void **)p = q, then GC_END_STUBBORN_CHANGE(p) and GC_reachable_here(q):
 * a pointer store with the write barrier of manual incremental mode. */
GC_API void GC_CALL GC_ptr_store_and_dirty(void * /* p */, const void * /* q */);
GC_API void GC_CALL GC_debug_ptr_store_and_dirty(void * /* p */, const void * /* q */);

/* Called when the checks above fail. */
GC_API void(GC_CALLBACK *GC_same_obj_print_proc)(void * /* p */, void * /* q */);
GC_API void(GC_CALLBACK *GC_is_valid_displacement_print_proc)(void *);
GC_API void(GC_CALLBACK *GC_is_visible_print_proc)(void *);

/* ==== More allocation and roots ============================================ */

/* A list of objects of lb bytes each, linked through their first words
 * (GC_NEXT): many allocations for one lock acquisition. */
GC_API GC_ATTR_MALLOC void *GC_CALL GC_malloc_many(size_t /* lb */);
#define GC_NEXT(p) (*(void **)(p))

/* Decides whether a data section of a shared library (its file name,
 * start and size) is scanned as a root: nonzero means yes. Called with
 * the allocator lock held. */
typedef int(GC_CALLBACK *GC_has_static_roots_func)(const char * /* dlpi_name */, void * /* section_start */,
                                                   size_t /* section_size */);
GC_API void GC_CALL GC_register_has_static_roots_callback(GC_has_static_roots_func);

/* Nonzero: explicit collections give back as much memory as they can. */
GC_API void GC_CALL GC_set_force_unmap_on_gcollect(int);
GC_API int GC_CALL GC_get_force_unmap_on_gcollect(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

/* ==== Thread redirection =================================================== */
#ifdef GC_PTHREADS
#include "gc_pthread_redirects.h"
#endif

/* ==== GC_INIT ==============================================================
 * Programs call GC_INIT() once from the main thread before anything else
 * of the collector. Settings a program defines as macros before including
 * gc.h are applied around initialization:
 *   GC_DONT_EXPAND, GC_FORCE_UNMAP_ON_GCOLLECT, GC_DONT_GC (collection
 *   off), GC_MAX_RETRIES, GC_ALLOCD_BYTES_PER_FINALIZER,
 *   GC_FREE_SPACE_DIVISOR, GC_FULL_FREQ, GC_TIME_LIMIT, GC_MARKERS,
 *   GC_SIG_SUSPEND, GC_SIG_THR_RESTART, GC_MAXIMUM_HEAP_SIZE before it;
 *   GC_IGNORE_WARN and GC_INITIAL_HEAP_SIZE after it.
 * Each GC_INIT_CONF_* piece is one of those settings, empty when its macro
 * is not defined. On GNU/Linux the collector finds its roots itself:
 * GC_INIT_CONF_ROOTS is empty. */
/* clang-format off */
#define GC_INIT_CONF_ROOTS /* empty */

#ifdef GC_DONT_EXPAND
#define GC_INIT_CONF_DONT_EXPAND GC_set_dont_expand(1)
#else
#define GC_INIT_CONF_DONT_EXPAND /* empty */
#endif

#ifdef GC_FORCE_UNMAP_ON_GCOLLECT
#define GC_INIT_CONF_FORCE_UNMAP_ON_GCOLLECT GC_set_force_unmap_on_gcollect(1)
#else
#define GC_INIT_CONF_FORCE_UNMAP_ON_GCOLLECT /* empty */
#endif

#if defined(GC_DONT_GC)
/* GC_disable() would initialize the collector: set the counter instead. */
#define GC_INIT_CONF_MAX_RETRIES (void)(GC_dont_gc = 1)
#elif defined(GC_MAX_RETRIES)
#define GC_INIT_CONF_MAX_RETRIES GC_set_max_retries(GC_MAX_RETRIES)
#else
#define GC_INIT_CONF_MAX_RETRIES /* empty */
#endif

#ifdef GC_ALLOCD_BYTES_PER_FINALIZER
#define GC_INIT_CONF_ALLOCD_BYTES_PER_FINALIZER GC_set_allocd_bytes_per_finalizer(GC_ALLOCD_BYTES_PER_FINALIZER)
#else
#define GC_INIT_CONF_ALLOCD_BYTES_PER_FINALIZER /* empty */
#endif

#ifdef GC_FREE_SPACE_DIVISOR
#define GC_INIT_CONF_FREE_SPACE_DIVISOR GC_set_free_space_divisor(GC_FREE_SPACE_DIVISOR)
#else
#define GC_INIT_CONF_FREE_SPACE_DIVISOR /* empty */
#endif

#ifdef GC_FULL_FREQ
#define GC_INIT_CONF_FULL_FREQ GC_set_full_freq(GC_FULL_FREQ)
#else
#define GC_INIT_CONF_FULL_FREQ /* empty */
#endif

#ifdef GC_TIME_LIMIT
#define GC_INIT_CONF_TIME_LIMIT GC_set_time_limit(GC_TIME_LIMIT)
#else
#define GC_INIT_CONF_TIME_LIMIT /* empty */
#endif

#if defined(GC_MARKERS) && defined(GC_THREADS)
#define GC_INIT_CONF_MARKERS GC_set_markers_count(GC_MARKERS)
#else
#define GC_INIT_CONF_MARKERS /* empty */
#endif

#if defined(GC_SIG_SUSPEND) && defined(GC_THREADS)
#define GC_INIT_CONF_SUSPEND_SIGNAL GC_set_suspend_signal(GC_SIG_SUSPEND)
#else
#define GC_INIT_CONF_SUSPEND_SIGNAL /* empty */
#endif

#if defined(GC_SIG_THR_RESTART) && defined(GC_THREADS)
#define GC_INIT_CONF_THR_RESTART_SIGNAL GC_set_thr_restart_signal(GC_SIG_THR_RESTART)
#else
#define GC_INIT_CONF_THR_RESTART_SIGNAL /* empty */
#endif

#ifdef GC_MAXIMUM_HEAP_SIZE
#define GC_INIT_CONF_MAXIMUM_HEAP_SIZE GC_set_max_heap_size(GC_MAXIMUM_HEAP_SIZE)
#else
#define GC_INIT_CONF_MAXIMUM_HEAP_SIZE /* empty */
#endif

#ifdef GC_IGNORE_WARN
#define GC_INIT_CONF_IGNORE_WARN GC_set_warn_proc(GC_ignore_warn_proc)
#else
#define GC_INIT_CONF_IGNORE_WARN /* empty */
#endif

#ifdef GC_INITIAL_HEAP_SIZE
/* Grows the heap to at least GC_INITIAL_HEAP_SIZE bytes. */
#define GC_INIT_CONF_INITIAL_HEAP_SIZE                                     \
  {                                                                        \
    size_t GC_init_heap_now_ = GC_get_heap_size();                         \
    if (GC_init_heap_now_ < (size_t)(GC_INITIAL_HEAP_SIZE))                \
      (void)GC_expand_hp((size_t)(GC_INITIAL_HEAP_SIZE) - GC_init_heap_now_); \
  }
#else
#define GC_INIT_CONF_INITIAL_HEAP_SIZE /* empty */
#endif

/* A block, as in Boehm GC, so that both "GC_INIT();" and "GC_INIT()" work
 * as a statement. Calling it more than once does no harm. */
#define GC_INIT()                                \
  {                                              \
    GC_INIT_CONF_DONT_EXPAND;                    \
    GC_INIT_CONF_FORCE_UNMAP_ON_GCOLLECT;        \
    GC_INIT_CONF_MAX_RETRIES;                    \
    GC_INIT_CONF_ALLOCD_BYTES_PER_FINALIZER;     \
    GC_INIT_CONF_FREE_SPACE_DIVISOR;             \
    GC_INIT_CONF_FULL_FREQ;                      \
    GC_INIT_CONF_TIME_LIMIT;                     \
    GC_INIT_CONF_MARKERS;                        \
    GC_INIT_CONF_SUSPEND_SIGNAL;                 \
    GC_INIT_CONF_THR_RESTART_SIGNAL;             \
    GC_INIT_CONF_MAXIMUM_HEAP_SIZE;              \
    GC_init();                                   \
    GC_INIT_CONF_ROOTS;                          \
    GC_INIT_CONF_IGNORE_WARN;                    \
    GC_INIT_CONF_INITIAL_HEAP_SIZE;              \
  }
/* clang-format on */

#endif /* GC_H */
