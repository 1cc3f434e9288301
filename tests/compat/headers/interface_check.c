/* The interface check of mallocgc's Boehm-compatible headers
 * (include/boehm/): compiled against them as C11 (this file), as C++17
 * (interface_check_cxx.cpp) and as C11 with GC_DEBUG and every GC_INIT
 * setting (interface_check_debug.c), into one program linked against
 * mallocgc's libgc.so.1 (test compat_headers_interface). The same three
 * compilations against Boehm GC's own headers, linked against the
 * system's libgc (headers_interface_boehm), show that what is written here
 * is Boehm's interface and not merely ours.
 *
 * What it checks:
 *   - every function libgc.so.1 exports and Boehm's headers declare has
 *     the signature written here: its address initializes a pointer of that
 *     type, which neither C (-Werror) nor C++ accepts for another type;
 *   - every exported variable, by the type of its address;
 *   - the typedefs, constants, enum values and struct layouts of the ABI;
 *   - the macros, run: allocation, finalizer and link registration, typed
 *     and inline allocation, hidden pointers, pointer stores, threads.
 * Deprecated declarations are used only here with the warning silenced;
 * deprecated_check.cmake checks that exactly those are deprecated.
 *
 * Built with -Wall -Wextra -Werror, GC_THREADS and _GNU_SOURCE. */
#ifndef HEADERS_CHECK_ENTRY
#define HEADERS_CHECK_ENTRY headers_check_c
#endif

#include <gc.h>
#include <gc/gc_backptr.h>
#include <gc/gc_disclaim.h>
#include <gc/gc_gcj.h>
#include <gc/gc_inline.h>
#include <gc/gc_mark.h>
#include <gc/gc_tiny_fl.h>
#include <gc/gc_typed.h>
#include <gc/javaxfc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
#include <gc/gc_allocator.h>
#include <gc/gc_cpp.h>

#include <type_traits>
#define SAME_TYPE(a, b) (std::is_same<a, b>::value)
#define STATIC_CHECK(c) static_assert(c, #c)
#define CHECK_EXTERN_C extern "C"
#else
#define SAME_TYPE(a, b) _Generic((a *)0, b * : 1, default : 0)
#define STATIC_CHECK(c) _Static_assert(c, #c)
#define CHECK_EXTERN_C
#endif

/* The variant compiled, for the messages. */
#define CHECK_STR2(x) #x
#define CHECK_STR(x) CHECK_STR2(x)
static const char *const variant = CHECK_STR(HEADERS_CHECK_ENTRY);

static int failures, checks;

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    checks++;                                                                               \
    if (!(cond)) {                                                                          \
      failures++;                                                                           \
      fprintf(stderr, "%s: %s:%d: check failed: %s\n", variant, __FILE__, __LINE__, #cond); \
    }                                                                                       \
  } while (0)

/* ==== Types ================================================================ */

typedef void *(*exp_oom_func)(size_t);
typedef void (*exp_on_heap_resize_proc)(GC_word);
typedef void (*exp_on_collection_event_proc)(GC_EventType);
typedef void (*exp_on_thread_event_proc)(GC_EventType, void *);
typedef void (*exp_finalizer_notifier_proc)(void);
typedef int (*exp_stop_func)(void);
typedef void (*exp_finalization_proc)(void *, void *);
typedef GC_ToggleRefStatus (*exp_toggleref_func)(void *);
typedef void (*exp_await_finalize_proc)(void *);
typedef void (*exp_warn_proc)(char *, GC_word);
typedef void (*exp_abort_func)(const char *);
typedef void *(*exp_fn_type)(void *);
typedef void *(*exp_stack_base_func)(struct GC_stack_base *, void *);
typedef int (*exp_has_static_roots_func)(const char *, void *, size_t);
typedef struct GC_ms_entry *(*exp_mark_proc)(GC_word *, struct GC_ms_entry *, struct GC_ms_entry *, GC_word);
typedef void (*exp_describe_type_fn)(void *, char *);
typedef void (*exp_start_callback_proc)(void);
typedef void (*exp_push_other_roots_proc)(void);
typedef void (*exp_reachable_object_proc)(void *, size_t, void *);
typedef int (*exp_disclaim_proc)(void *);
typedef void (*exp_print_proc1)(void *);
typedef void (*exp_print_proc2)(void *, void *);

STATIC_CHECK(SAME_TYPE(GC_PTR, void *));
STATIC_CHECK(SAME_TYPE(GC_word, unsigned long));
STATIC_CHECK(SAME_TYPE(GC_signed_word, long));
STATIC_CHECK(SAME_TYPE(GC_hidden_pointer, GC_word));
STATIC_CHECK(SAME_TYPE(GC_descr, GC_word));
STATIC_CHECK(SAME_TYPE(GC_bitmap, GC_word *));
STATIC_CHECK(SAME_TYPE(GC_oom_func, exp_oom_func));
STATIC_CHECK(SAME_TYPE(GC_on_heap_resize_proc, exp_on_heap_resize_proc));
STATIC_CHECK(SAME_TYPE(GC_on_collection_event_proc, exp_on_collection_event_proc));
STATIC_CHECK(SAME_TYPE(GC_on_thread_event_proc, exp_on_thread_event_proc));
STATIC_CHECK(SAME_TYPE(GC_finalizer_notifier_proc, exp_finalizer_notifier_proc));
STATIC_CHECK(SAME_TYPE(GC_stop_func, exp_stop_func));
STATIC_CHECK(SAME_TYPE(GC_finalization_proc, exp_finalization_proc));
STATIC_CHECK(SAME_TYPE(GC_toggleref_func, exp_toggleref_func));
STATIC_CHECK(SAME_TYPE(GC_await_finalize_proc, exp_await_finalize_proc));
STATIC_CHECK(SAME_TYPE(GC_warn_proc, exp_warn_proc));
STATIC_CHECK(SAME_TYPE(GC_abort_func, exp_abort_func));
STATIC_CHECK(SAME_TYPE(GC_fn_type, exp_fn_type));
STATIC_CHECK(SAME_TYPE(GC_stack_base_func, exp_stack_base_func));
STATIC_CHECK(SAME_TYPE(GC_has_static_roots_func, exp_has_static_roots_func));
STATIC_CHECK(SAME_TYPE(GC_mark_proc, exp_mark_proc));
STATIC_CHECK(SAME_TYPE(GC_describe_type_fn, exp_describe_type_fn));
STATIC_CHECK(SAME_TYPE(GC_start_callback_proc, exp_start_callback_proc));
STATIC_CHECK(SAME_TYPE(GC_push_other_roots_proc, exp_push_other_roots_proc));
STATIC_CHECK(SAME_TYPE(GC_reachable_object_proc, exp_reachable_object_proc));
STATIC_CHECK(SAME_TYPE(GC_disclaim_proc, exp_disclaim_proc));

/* Layouts. */
STATIC_CHECK(sizeof(GC_word) == sizeof(void *));
STATIC_CHECK(sizeof(struct GC_stack_base) == sizeof(void *));
STATIC_CHECK(offsetof(struct GC_stack_base, mem_base) == 0);
STATIC_CHECK(sizeof(struct GC_prof_stats_s) == 12 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, heapsize_full) == 0 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, free_bytes_full) == 1 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, unmapped_bytes) == 2 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, bytes_allocd_since_gc) == 3 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, allocd_bytes_before_gc) == 4 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, non_gc_bytes) == 5 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, gc_no) == 6 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, markers_m1) == 7 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, bytes_reclaimed_since_gc) == 8 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, reclaimed_bytes_before_gc) == 9 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, expl_freed_bytes_since_gc) == 10 * sizeof(GC_word));
STATIC_CHECK(offsetof(struct GC_prof_stats_s, obtained_from_os_bytes) == 11 * sizeof(GC_word));
STATIC_CHECK(sizeof(struct GC_timeval_s) == 2 * sizeof(unsigned long));
STATIC_CHECK(offsetof(struct GC_timeval_s, tv_nsec) == sizeof(unsigned long));
STATIC_CHECK(sizeof(struct GC_ms_entry) == sizeof(void *));
STATIC_CHECK(sizeof(struct GC_finalizer_closure) == 2 * sizeof(void *));
STATIC_CHECK(offsetof(struct GC_finalizer_closure, cd) == sizeof(void *));
STATIC_CHECK(sizeof(GC_EventType) == sizeof(int));
STATIC_CHECK(sizeof(GC_ToggleRefStatus) == sizeof(int));
STATIC_CHECK(sizeof(GC_ref_kind) == sizeof(int));

/* ==== Constants ============================================================ */

STATIC_CHECK(GC_VERSION_MAJOR == 8 && GC_VERSION_MINOR == 2 && GC_VERSION_MICRO == 2);
STATIC_CHECK(GC_SUCCESS == 0 && GC_DUPLICATE == 1 && GC_NO_THREADS == 2 && GC_NO_MEMORY == 2);
STATIC_CHECK(GC_UNIMPLEMENTED == 3 && GC_NOT_FOUND == 4);
STATIC_CHECK(GC_TIME_UNLIMITED == 999999);
STATIC_CHECK(GC_PROTECTS_NONE == 0 && GC_PROTECTS_POINTER_HEAP == 1 && GC_PROTECTS_PTRFREE_HEAP == 2);
STATIC_CHECK(GC_PROTECTS_STATIC_DATA == 4 && GC_PROTECTS_STACK == 8);
STATIC_CHECK(GC_EVENT_START == 0 && GC_EVENT_MARK_START == 1 && GC_EVENT_MARK_END == 2);
STATIC_CHECK(GC_EVENT_RECLAIM_START == 3 && GC_EVENT_RECLAIM_END == 4 && GC_EVENT_END == 5);
STATIC_CHECK(GC_EVENT_PRE_STOP_WORLD == 6 && GC_EVENT_POST_STOP_WORLD == 7);
STATIC_CHECK(GC_EVENT_PRE_START_WORLD == 8 && GC_EVENT_POST_START_WORLD == 9);
STATIC_CHECK(GC_EVENT_THREAD_SUSPENDED == 10 && GC_EVENT_THREAD_UNSUSPENDED == 11);
STATIC_CHECK(GC_TOGGLE_REF_DROP == 0 && GC_TOGGLE_REF_STRONG == 1 && GC_TOGGLE_REF_WEAK == 2);
STATIC_CHECK(GC_UNREFERENCED == 0 && GC_NO_SPACE == 1 && GC_REFD_FROM_ROOT == 2 && GC_REFD_FROM_REG == 3);
STATIC_CHECK(GC_REFD_FROM_HEAP == 4 && GC_FINALIZER_REFD == 5);
STATIC_CHECK(GC_PROC_BYTES == 100 && GC_LOG_MAX_MARK_PROCS == 6 && GC_MAX_MARK_PROCS == 64);
STATIC_CHECK(GC_RESERVED_MARK_PROCS == 8 && GC_GCJ_RESERVED_MARK_PROC_INDEX == 0);
STATIC_CHECK(GC_DS_TAG_BITS == 2 && GC_DS_TAGS == 3);
STATIC_CHECK(GC_DS_LENGTH == 0 && GC_DS_BITMAP == 1 && GC_DS_PROC == 2 && GC_DS_PER_OBJECT == 3);
STATIC_CHECK(GC_MAKE_PROC(5, 3) == ((((3 << 6) | 5) << 2) | 2));
STATIC_CHECK(GC_INDIR_PER_OBJ_BIAS == 0x10);
STATIC_CHECK(GC_TYPE_DESCR_LEN == 40);
STATIC_CHECK(GC_I_PTRFREE == 0 && GC_I_NORMAL == 1);
STATIC_CHECK(GC_GRANULE_BYTES == 2 * sizeof(void *) && GC_GRANULE_WORDS == 2);
#if defined(__LP64__)
STATIC_CHECK(GC_GRANULE_BYTES == 16 && GC_TINY_FREELISTS == 25);
#endif
STATIC_CHECK(GC_RAW_BYTES_FROM_INDEX(3) == 3 * GC_GRANULE_BYTES);
STATIC_CHECK(GC_WORDS_TO_GRANULES(5) == 2 && GC_WORDS_TO_WHOLE_GRANULES(5) == 3);
STATIC_CHECK(GC_WORDSZ == 8 * sizeof(GC_word));

struct check_typed {
  void *a;
  long b;
  void *c;
  char pad[8 * sizeof(GC_word)];
};
STATIC_CHECK(GC_WORD_OFFSET(struct check_typed, c) == 2);
STATIC_CHECK(GC_WORD_LEN(struct check_typed) == 11);
STATIC_CHECK(GC_BITMAP_SIZE(struct check_typed) == 1);

/* Thread support as GC_THREADS selects it on GNU/Linux. */
#if !defined(GC_PTHREADS) || !defined(GC_LINUX_THREADS) || !defined(GC_HAVE_PTHREAD_EXIT)
#error "GC_THREADS should give GC_PTHREADS, GC_LINUX_THREADS and GC_HAVE_PTHREAD_EXIT"
#endif
#if !defined(GC_NO_THREAD_REDIRECTS) && !defined(pthread_create)
#error "GC_THREADS should redirect pthread_create"
#endif

/* ==== Functions ============================================================
 * One line per function of libgc.so.1 that Boehm's headers declare
 * (../exports/libgc-8.2-exports.tsv, "in_public_header yes"), with Boehm's
 * signature. GC_printf is exported but declared by no header. */
static int functions_seen;

static void seen(void (*fn)(void)) {
  if (fn != 0) functions_seen++;
}

#define FN(ret, name, args)            \
  do {                                 \
    ret(*const check_fn_) args = name; \
    seen((void (*)(void))check_fn_);   \
  } while (0)

static void check_functions(void) {
  FN(void, GC_abort_on_oom, (void));
  FN(void, GC_add_roots, (void *, void *));
  FN(void, GC_alloc_lock, (void));
  FN(void, GC_alloc_unlock, (void));
  FN(void, GC_allow_register_threads, (void));
  FN(void, GC_atfork_child, (void));
  FN(void, GC_atfork_parent, (void));
  FN(void, GC_atfork_prepare, (void));
  FN(void *, GC_base, (void *));
  FN(void *, GC_call_with_alloc_lock, (GC_fn_type, void *));
  FN(void *, GC_call_with_gc_active, (GC_fn_type, void *));
  FN(void *, GC_call_with_stack_base, (GC_stack_base_func, void *));
  FN(void *, GC_calloc_explicitly_typed, (size_t, size_t, GC_descr));
  FN(void, GC_clear_exclusion_table, (void));
  FN(void, GC_clear_mark_bit, (const void *));
  FN(void, GC_clear_roots, (void));
  FN(void *, GC_clear_stack, (void *));
  FN(int, GC_collect_a_little, (void));
  FN(void, GC_debug_end_stubborn_change, (const void *));
  FN(void, GC_debug_free, (void *));
  FN(void *, GC_debug_gcj_malloc, (size_t, void *, const char *, int));
  FN(void *, GC_debug_generic_or_special_malloc, (size_t, int, const char *, int));
  FN(void *, GC_debug_malloc, (size_t, const char *, int));
  FN(void *, GC_debug_malloc_atomic, (size_t, const char *, int));
  FN(void *, GC_debug_malloc_atomic_ignore_off_page, (size_t, const char *, int));
  FN(void *, GC_debug_malloc_atomic_uncollectable, (size_t, const char *, int));
  FN(void *, GC_debug_malloc_ignore_off_page, (size_t, const char *, int));
  FN(void *, GC_debug_malloc_replacement, (size_t));
  FN(void *, GC_debug_malloc_uncollectable, (size_t, const char *, int));
  FN(void, GC_debug_ptr_store_and_dirty, (void *, const void *));
  FN(void *, GC_debug_realloc, (void *, size_t, const char *, int));
  FN(void *, GC_debug_realloc_replacement, (void *, size_t));
  FN(void, GC_debug_register_displacement, (size_t));
  FN(void, GC_debug_register_finalizer, (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_debug_register_finalizer_ignore_self,
     (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_debug_register_finalizer_no_order,
     (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_debug_register_finalizer_unreachable,
     (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(char *, GC_debug_strdup, (const char *, const char *, int));
  FN(char *, GC_debug_strndup, (const char *, size_t, const char *, int));
  FN(void, GC_deinit, (void));
  FN(void, GC_disable, (void));
  FN(void *, GC_dlopen, (const char *, int));
  FN(void *, GC_do_blocking, (GC_fn_type, void *));
  FN(void, GC_dump, (void));
  FN(void, GC_dump_finalization, (void));
  FN(void, GC_dump_named, (const char *));
  FN(void, GC_dump_regions, (void));
  FN(void, GC_enable, (void));
  FN(void, GC_enable_incremental, (void));
  FN(void, GC_end_stubborn_change, (const void *));
  FN(void, GC_enumerate_reachable_objects_inner, (GC_reachable_object_proc, void *));
  FN(void, GC_exclude_static_roots, (void *, void *));
  FN(int, GC_expand_hp, (size_t));
  FN(void, GC_finalize_all, (void));
  FN(void *, GC_finalized_malloc, (size_t, const struct GC_finalizer_closure *));
  FN(void, GC_free, (void *));
  FN(void *, GC_gcj_malloc, (size_t, void *));
  FN(void *, GC_gcj_malloc_ignore_off_page, (size_t, void *));
  FN(void, GC_gcollect, (void));
  FN(void, GC_gcollect_and_unmap, (void));
  FN(int, GC_general_register_disappearing_link, (void **, const void *));
  FN(void *, GC_generic_malloc, (size_t, int));
  FN(void *, GC_generic_malloc_ignore_off_page, (size_t, int));
  FN(void, GC_generic_malloc_many, (size_t, int, void **));
  FN(void *, GC_generic_malloc_uncollectable, (size_t, int));
  FN(void *, GC_generic_or_special_malloc, (size_t, int));
  FN(GC_abort_func, GC_get_abort_func, (void));
  FN(int, GC_get_all_interior_pointers, (void));
  FN(GC_word, GC_get_allocd_bytes_per_finalizer, (void));
  FN(GC_await_finalize_proc, GC_get_await_finalize_proc, (void));
  FN(size_t, GC_get_bytes_since_gc, (void));
  FN(size_t, GC_get_debug_header_size, (void));
  FN(int, GC_get_disable_automatic_collection, (void));
  FN(int, GC_get_dont_expand, (void));
  FN(int, GC_get_dont_precollect, (void));
  FN(size_t, GC_get_expl_freed_bytes_since_gc, (void));
  FN(int, GC_get_finalize_on_demand, (void));
  FN(GC_finalizer_notifier_proc, GC_get_finalizer_notifier, (void));
  FN(int, GC_get_find_leak, (void));
  FN(int, GC_get_force_unmap_on_gcollect, (void));
  FN(size_t, GC_get_free_bytes, (void));
  FN(GC_word, GC_get_free_space_divisor, (void));
  FN(int, GC_get_full_freq, (void));
  FN(unsigned long, GC_get_full_gc_total_time, (void));
  FN(GC_word, GC_get_gc_no, (void));
  FN(size_t, GC_get_heap_size, (void));
  FN(void, GC_get_heap_usage_safe, (GC_word *, GC_word *, GC_word *, GC_word *, GC_word *));
  FN(int, GC_get_java_finalization, (void));
  FN(int, GC_get_kind_and_size, (const void *, size_t *));
  FN(int, GC_get_manual_vdb_allowed, (void));
  FN(int, GC_get_max_prior_attempts, (void));
  FN(GC_word, GC_get_max_retries, (void));
  FN(size_t, GC_get_memory_use, (void));
  FN(size_t, GC_get_min_bytes_allocd, (void));
  FN(void *, GC_get_my_stackbottom, (struct GC_stack_base *));
  FN(int, GC_get_no_dls, (void));
  FN(GC_word, GC_get_non_gc_bytes, (void));
  FN(size_t, GC_get_obtained_from_os_bytes, (void));
  FN(GC_on_collection_event_proc, GC_get_on_collection_event, (void));
  FN(GC_on_heap_resize_proc, GC_get_on_heap_resize, (void));
  FN(GC_on_thread_event_proc, GC_get_on_thread_event, (void));
  FN(GC_oom_func, GC_get_oom_fn, (void));
  FN(int, GC_get_pages_executable, (void));
  FN(int, GC_get_parallel, (void));
  FN(size_t, GC_get_prof_stats, (struct GC_prof_stats_s *, size_t));
  FN(size_t, GC_get_prof_stats_unsafe, (struct GC_prof_stats_s *, size_t));
  FN(GC_push_other_roots_proc, GC_get_push_other_roots, (void));
  FN(int, GC_get_rate, (void));
  FN(size_t, GC_get_size_map_at, (int));
  FN(int, GC_get_stack_base, (struct GC_stack_base *));
  FN(GC_start_callback_proc, GC_get_start_callback, (void));
  FN(GC_stop_func, GC_get_stop_func, (void));
  FN(int, GC_get_suspend_signal, (void));
  FN(int, GC_get_thr_restart_signal, (void));
  FN(unsigned long, GC_get_time_limit, (void));
  FN(struct GC_timeval_s, GC_get_time_limit_tv, (void));
  FN(GC_toggleref_func, GC_get_toggleref_func, (void));
  FN(size_t, GC_get_total_bytes, (void));
  FN(size_t, GC_get_unmapped_bytes, (void));
  FN(unsigned, GC_get_version, (void));
  FN(GC_warn_proc, GC_get_warn_proc, (void));
  FN(void, GC_ignore_warn_proc, (char *, GC_word));
  FN(int, GC_incremental_protection_needs, (void));
  FN(void, GC_init, (void));
  FN(void, GC_init_finalized_malloc, (void));
  FN(void, GC_init_gcj_malloc, (int, void *));
  FN(int, GC_invoke_finalizers, (void));
  FN(int, GC_is_disabled, (void));
  FN(int, GC_is_heap_ptr, (const void *));
  FN(int, GC_is_incremental_mode, (void));
  FN(int, GC_is_init_called, (void));
  FN(int, GC_is_marked, (const void *));
  FN(int, GC_is_thread_suspended, (pthread_t));
  FN(int, GC_is_tmp_root, (void *));
  FN(void *, GC_is_valid_displacement, (void *));
  FN(void *, GC_is_visible, (void *));
  FN(GC_descr, GC_make_descriptor, (const GC_word *, size_t));
  FN(void *, GC_malloc, (size_t));
  FN(void *, GC_malloc_atomic, (size_t));
  FN(void *, GC_malloc_atomic_ignore_off_page, (size_t));
  FN(void *, GC_malloc_atomic_uncollectable, (size_t));
  FN(void *, GC_malloc_explicitly_typed, (size_t, GC_descr));
  FN(void *, GC_malloc_explicitly_typed_ignore_off_page, (size_t, GC_descr));
  FN(void *, GC_malloc_ignore_off_page, (size_t));
  FN(void *, GC_malloc_kind, (size_t, int));
  FN(void *, GC_malloc_kind_global, (size_t, int));
  FN(void *, GC_malloc_many, (size_t));
  FN(void *, GC_malloc_uncollectable, (size_t));
  FN(struct GC_ms_entry *, GC_mark_and_push, (void *, struct GC_ms_entry *, struct GC_ms_entry *, void **));
  FN(void *, GC_memalign, (size_t, size_t));
  FN(int, GC_move_disappearing_link, (void **, void **));
  FN(int, GC_move_long_link, (void **, void **));
  FN(void **, GC_new_free_list, (void));
  FN(void **, GC_new_free_list_inner, (void));
  FN(unsigned, GC_new_kind, (void **, GC_word, int, int));
  FN(unsigned, GC_new_kind_inner, (void **, GC_word, int, int));
  FN(unsigned, GC_new_proc, (GC_mark_proc));
  FN(unsigned, GC_new_proc_inner, (GC_mark_proc));
#ifdef MALLOCGC_BOEHM_HEADERS /* Boehm declares it for non-GNU compilers only */
  FN(void, GC_noop1, (GC_word));
#endif
  FN(int, GC_posix_memalign, (void **, size_t, size_t));
  FN(void *, GC_post_incr, (void **, ptrdiff_t));
  FN(void *, GC_pre_incr, (void **, ptrdiff_t));
  FN(void, GC_print_free_list, (int, size_t));
  FN(int, GC_pthread_cancel, (pthread_t));
  FN(int, GC_pthread_create, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *));
  FN(int, GC_pthread_detach, (pthread_t));
  FN(void, GC_pthread_exit, (void *));
  FN(int, GC_pthread_join, (pthread_t, void **));
  FN(int, GC_pthread_sigmask, (int, const sigset_t *, sigset_t *));
  FN(void, GC_ptr_store_and_dirty, (void *, const void *));
  FN(void, GC_push_all, (void *, void *));
  FN(void, GC_push_all_eager, (void *, void *));
  FN(void, GC_push_conditional, (void *, void *, int));
  FN(void, GC_push_finalizer_structures, (void));
  FN(void *, GC_realloc, (void *, size_t));
  FN(void, GC_register_altstack, (void *, GC_word, void *, GC_word));
  FN(void, GC_register_describe_type_fn, (int, GC_describe_type_fn));
  FN(int, GC_register_disappearing_link, (void **));
  FN(void, GC_register_disclaim_proc, (int, GC_disclaim_proc, int));
  FN(void, GC_register_displacement, (size_t));
  FN(void, GC_register_finalizer, (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_register_finalizer_ignore_self, (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_register_finalizer_no_order, (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_register_finalizer_unreachable, (void *, GC_finalization_proc, void *, GC_finalization_proc *, void **));
  FN(void, GC_register_has_static_roots_callback, (GC_has_static_roots_func));
  FN(int, GC_register_long_link, (void **, const void *));
  FN(int, GC_register_my_thread, (const struct GC_stack_base *));
  FN(void, GC_remove_roots, (void *, void *));
  FN(void, GC_resume_thread, (pthread_t));
  FN(void *, GC_same_obj, (void *, void *));
  FN(void, GC_set_abort_func, (GC_abort_func));
  FN(void, GC_set_all_interior_pointers, (int));
  FN(void, GC_set_allocd_bytes_per_finalizer, (GC_word));
  FN(void, GC_set_await_finalize_proc, (GC_await_finalize_proc));
  FN(void, GC_set_disable_automatic_collection, (int));
  FN(void, GC_set_dont_expand, (int));
  FN(void, GC_set_dont_precollect, (int));
  FN(void, GC_set_finalize_on_demand, (int));
  FN(void, GC_set_finalizer_notifier, (GC_finalizer_notifier_proc));
  FN(void, GC_set_find_leak, (int));
  FN(void, GC_set_force_unmap_on_gcollect, (int));
  FN(void, GC_set_free_space_divisor, (GC_word));
  FN(void, GC_set_full_freq, (int));
  FN(void, GC_set_handle_fork, (int));
  FN(void, GC_set_java_finalization, (int));
  FN(void, GC_set_log_fd, (int));
  FN(void, GC_set_manual_vdb_allowed, (int));
  FN(void, GC_set_mark_bit, (const void *));
  FN(void, GC_set_markers_count, (unsigned));
  FN(void, GC_set_max_heap_size, (GC_word));
  FN(void, GC_set_max_prior_attempts, (int));
  FN(void, GC_set_max_retries, (GC_word));
  FN(void, GC_set_min_bytes_allocd, (size_t));
  FN(void, GC_set_no_dls, (int));
  FN(void, GC_set_non_gc_bytes, (GC_word));
  FN(void, GC_set_on_collection_event, (GC_on_collection_event_proc));
  FN(void, GC_set_on_heap_resize, (GC_on_heap_resize_proc));
  FN(void, GC_set_on_thread_event, (GC_on_thread_event_proc));
  FN(void, GC_set_oom_fn, (GC_oom_func));
  FN(void, GC_set_pages_executable, (int));
  FN(void, GC_set_push_other_roots, (GC_push_other_roots_proc));
  FN(void, GC_set_rate, (int));
  FN(void, GC_set_stackbottom, (void *, const struct GC_stack_base *));
  FN(void, GC_set_start_callback, (GC_start_callback_proc));
  FN(void, GC_set_stop_func, (GC_stop_func));
  FN(void, GC_set_suspend_signal, (int));
  FN(void, GC_set_thr_restart_signal, (int));
  FN(void, GC_set_time_limit, (unsigned long));
  FN(void, GC_set_time_limit_tv, (struct GC_timeval_s));
  FN(void, GC_set_toggleref_func, (GC_toggleref_func));
  FN(void, GC_set_warn_proc, (GC_warn_proc));
  FN(int, GC_should_invoke_finalizers, (void));
  FN(size_t, GC_size, (const void *));
  FN(void, GC_start_incremental_collection, (void));
  FN(void, GC_start_mark_threads, (void));
  FN(void, GC_start_performance_measurement, (void));
  FN(void, GC_start_world_external, (void));
  FN(void, GC_stop_world_external, (void));
  FN(char *, GC_strdup, (const char *));
  FN(char *, GC_strndup, (const char *, size_t));
  FN(void, GC_suspend_thread, (pthread_t));
  FN(int, GC_thread_is_registered, (void));
  FN(int, GC_toggleref_add, (void *, int));
  FN(int, GC_try_to_collect, (GC_stop_func));
  FN(int, GC_unregister_disappearing_link, (void **));
  FN(int, GC_unregister_long_link, (void **));
  FN(int, GC_unregister_my_thread, (void));
  /* The deprecated ones. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  FN(void, GC_change_stubborn, (const void *));
  FN(void, GC_debug_change_stubborn, (const void *));
  FN(void *, GC_debug_malloc_stubborn, (size_t, const char *, int));
  FN(void *, GC_malloc_stubborn, (size_t));
#pragma GCC diagnostic pop
}

/* ==== Variables ============================================================ */
static int variables_seen;

static void seen_var(const volatile void *p) {
  if (p != 0) variables_seen++;
}

#define DATA(type, name)            \
  do {                              \
    type *const check_var_ = &name; \
    seen_var(check_var_);           \
  } while (0)

static void check_variables(void) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  DATA(int, GC_all_interior_pointers);
  DATA(size_t, GC_debug_header_size);
  DATA(int, GC_dont_expand);
  DATA(int, GC_dont_gc);
  DATA(int, GC_dont_precollect);
  DATA(int, GC_finalize_on_demand);
  DATA(exp_finalizer_notifier_proc, GC_finalizer_notifier);
  DATA(int, GC_find_leak);
  DATA(GC_word, GC_free_space_divisor);
  DATA(int, GC_full_freq);
  DATA(GC_word, GC_gc_no);
  DATA(int, GC_java_finalization);
  DATA(GC_word, GC_max_retries);
  DATA(int, GC_no_dls);
  DATA(GC_word, GC_non_gc_bytes);
  DATA(exp_on_heap_resize_proc, GC_on_heap_resize);
  DATA(exp_oom_func, GC_oom_fn);
  DATA(int, GC_parallel);
  DATA(char *, GC_stackbottom);
  DATA(unsigned long, GC_time_limit);
  DATA(int, GC_use_entire_heap);
#pragma GCC diagnostic pop
  DATA(int, GC_gcj_debug_kind);
  DATA(int, GC_gcj_kind);
  DATA(void *, GC_greatest_plausible_heap_addr);
  DATA(void *, GC_least_plausible_heap_addr);
  DATA(exp_print_proc1, GC_is_valid_displacement_print_proc);
  DATA(exp_print_proc1, GC_is_visible_print_proc);
  DATA(exp_print_proc2, GC_same_obj_print_proc);
}

/* ==== The macros, run ====================================================== */

static int finalized_count;

static void GC_CALLBACK count_finalizer(void *obj, void *cd) {
  (void)obj;
  (void)cd;
  finalized_count++;
}

struct pair {
  void *first;
  void *second;
};

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)

/* Never called: the mark-procedure macros compile. */
CHECK_EXTERN_C struct GC_ms_entry *CHECK_CAT(HEADERS_CHECK_ENTRY, _mark_proc)(GC_word *addr, struct GC_ms_entry *msp,
                                                                              struct GC_ms_entry *lim, GC_word env);
CHECK_EXTERN_C struct GC_ms_entry *CHECK_CAT(HEADERS_CHECK_ENTRY, _mark_proc)(GC_word *addr, struct GC_ms_entry *msp,
                                                                              struct GC_ms_entry *lim, GC_word env) {
  (void)env;
  return GC_MARK_AND_PUSH((void *)addr[0], msp, lim, (void **)addr);
}

static void *GC_CALLBACK with_lock(void *arg) { return arg; }

static void *thread_body(void *arg) {
  (void)arg;
  return GC_thread_is_registered() ? GC_MALLOC(24) : 0;
}

static void check_allocation(void) {
  struct pair *p = GC_NEW(struct pair);
  CHECK(p != 0 && p->first == 0 && p->second == 0);
  double *d = GC_NEW_ATOMIC(double);
  CHECK(d != 0);
  int *u = GC_NEW_UNCOLLECTABLE(int);
  CHECK(u != 0 && *u == 0);
  GC_FREE(u);

  char *s = (char *)GC_MALLOC(16);
  CHECK(s != 0);
  strcpy(s, "mallocgc");
  s = (char *)GC_REALLOC(s, 4096);
  CHECK(s != 0 && strcmp(s, "mallocgc") == 0);
  char *dup = GC_STRDUP("boehm");
  CHECK(dup != 0 && strcmp(dup, "boehm") == 0);
  char *ndup = GC_STRNDUP("boehm gc", 5);
  CHECK(ndup != 0 && strcmp(ndup, "boehm") == 0);

  void *a = GC_MALLOC_ATOMIC(100);
  void *au = GC_MALLOC_ATOMIC_UNCOLLECTABLE(100);
  void *big = GC_MALLOC_IGNORE_OFF_PAGE(100000);
  void *abig = GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(100000);
  void *st = GC_MALLOC_STUBBORN(40);
  CHECK(a != 0 && au != 0 && big != 0 && abig != 0 && st != 0);
  GC_FREE(au);
  GC_END_STUBBORN_CHANGE(st);
  GC_reachable_here(st);
#ifndef GC_DEBUG
  CHECK(GC_size(a) >= 100);
  CHECK(GC_base((char *)big + 5000) == big);
#else
  /* A debugging object's base is its header. */
  CHECK(GC_USR_PTR_FROM_BASE(GC_base(a)) == a);
#endif

  /* Pointer stores. */
  GC_PTR_STORE(&p->first, s);
  GC_PTR_STORE_AND_DIRTY(&p->second, dup);
  CHECK(p->first == s && p->second == dup);

  /* Hidden pointers. */
  GC_hidden_pointer h = GC_HIDE_POINTER(p);
  CHECK(h == ~(GC_word)p && GC_REVEAL_POINTER(h) == (void *)p);

  /* Finalizers: register, then read back while removing. */
  GC_finalization_proc ofn = 0;
  void *ocd = 0;
  GC_REGISTER_FINALIZER(p, count_finalizer, s, 0, 0);
  GC_REGISTER_FINALIZER(p, 0, 0, &ofn, &ocd);
  CHECK(ofn == count_finalizer && ocd == s);
  GC_REGISTER_FINALIZER_IGNORE_SELF(p, count_finalizer, 0, 0, 0);
  GC_REGISTER_FINALIZER_IGNORE_SELF(p, 0, 0, &ofn, 0);
  CHECK(ofn == count_finalizer);
  GC_REGISTER_FINALIZER_NO_ORDER(p, count_finalizer, 0, 0, 0);
  GC_REGISTER_FINALIZER_NO_ORDER(p, 0, 0, &ofn, 0);
  CHECK(ofn == count_finalizer);
  GC_REGISTER_FINALIZER_UNREACHABLE(p, count_finalizer, 0, 0, 0);
  GC_REGISTER_FINALIZER_UNREACHABLE(p, 0, 0, &ofn, 0);
  CHECK(ofn == count_finalizer);

  /* Links. */
  static void *link;
  link = (void *)GC_HIDE_POINTER(s);
  CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&link, s) == GC_SUCCESS);
  CHECK(GC_GENERAL_REGISTER_DISAPPEARING_LINK(&link, s) == GC_DUPLICATE);
  CHECK(GC_unregister_disappearing_link(&link) == 1);
  CHECK(GC_REGISTER_LONG_LINK(&link, s) == GC_SUCCESS);
  CHECK(GC_unregister_long_link(&link) == 1);
  GC_REGISTER_DISPLACEMENT(0);

  /* GC_malloc_many's list. */
  void *list = GC_malloc_many(32);
  CHECK(list != 0);
  int n = 0;
  for (void *q = list; q != 0 && n < 1000; q = GC_NEXT(q)) n++;
  CHECK(n >= 1);
}

static void check_typed(void) {
  GC_word bm[GC_BITMAP_SIZE(struct check_typed)] = {0};
  GC_set_bit(bm, GC_WORD_OFFSET(struct check_typed, a));
  GC_set_bit(bm, GC_WORD_OFFSET(struct check_typed, c));
  CHECK(GC_get_bit(bm, 0) == 1 && GC_get_bit(bm, 1) == 0 && GC_get_bit(bm, 2) == 1);
  CHECK(bm[0] == 5);
  GC_descr d = GC_make_descriptor(bm, GC_WORD_LEN(struct check_typed));
  struct check_typed *t = (struct check_typed *)GC_MALLOC_EXPLICITLY_TYPED(sizeof(struct check_typed), d);
  CHECK(t != 0 && t->a == 0 && t->c == 0);
  struct check_typed *arr = (struct check_typed *)GC_CALLOC_EXPLICITLY_TYPED(4, sizeof(struct check_typed), d);
  CHECK(arr != 0 && arr[3].c == 0);
}

#ifndef GC_DEBUG
static void *tiny_fl[GC_TINY_FREELISTS];

static void check_inline(void) {
  void *r = 0;
  GC_MALLOC_WORDS(r, 3, tiny_fl);
  CHECK(r != 0 && ((void **)r)[0] == 0 && GC_size(r) >= 3 * sizeof(void *));
  void *q = 0;
  GC_MALLOC_ATOMIC_WORDS(q, 5, tiny_fl);
  CHECK(q != 0 && GC_size(q) >= 5 * sizeof(void *));
  void *cell = 0;
  GC_CONS(cell, r, q, tiny_fl);
  CHECK(cell != 0 && ((void **)cell)[0] == r && ((void **)cell)[1] == q);
}
#endif

static void check_threads(void) {
  GC_alloc_lock();
  GC_alloc_unlock();
  int x = 7;
  CHECK(GC_call_with_alloc_lock(with_lock, &x) == &x);
  struct GC_stack_base sb;
  CHECK(GC_get_stack_base(&sb) == GC_SUCCESS && sb.mem_base != 0);
  pthread_t t;
  void *result = 0;
  CHECK(pthread_create(&t, 0, thread_body, 0) == 0); /* GC_pthread_create */
  CHECK(pthread_join(t, &result) == 0);
  CHECK(result != 0);
}

static struct GC_finalizer_closure closure = {count_finalizer, 0};

static void check_kinds(void) {
  unsigned proc = GC_new_proc(CHECK_CAT(HEADERS_CHECK_ENTRY, _mark_proc));
  GC_word descr = GC_MAKE_PROC(proc, 0);
  CHECK((descr & GC_DS_TAGS) == GC_DS_PROC);
  GC_init_finalized_malloc();
  void *f = GC_finalized_malloc(32, &closure);
  CHECK(f != 0);
  size_t size = 0;
  CHECK(GC_get_kind_and_size(GC_base(f), &size) >= 0 && size >= 32);
}

CHECK_EXTERN_C int HEADERS_CHECK_ENTRY(void);
CHECK_EXTERN_C int HEADERS_CHECK_ENTRY(void) {
  GC_INIT();
  CHECK(GC_is_init_called());
  CHECK(GC_get_version() == ((GC_VERSION_MAJOR << 16) | (GC_VERSION_MINOR << 8) | GC_VERSION_MICRO));
  check_functions();
  check_variables();
  check_allocation();
  check_typed();
#ifndef GC_DEBUG
  check_inline();
#endif
  check_threads();
  check_kinds();
#ifdef HEADERS_CHECK_AFTER
  HEADERS_CHECK_AFTER();
#endif
  GC_gcollect();
  printf("%s: %d functions, %d variables, %d checks, %d failed\n", variant, functions_seen, variables_seen, checks,
         failures);
  return failures;
}

#ifndef HEADERS_CHECK_NO_MAIN
CHECK_EXTERN_C int headers_check_cxx(void);
CHECK_EXTERN_C int headers_check_debug(void);

int main(void) {
  int failed = 0;
  failed += headers_check_debug() != 0;
  failed += HEADERS_CHECK_ENTRY() != 0;
  failed += headers_check_cxx() != 0;
  printf("%d passed, %d failed\n", 3 - failed, failed);
  return failed == 0 ? 0 : 1;
}
#endif
