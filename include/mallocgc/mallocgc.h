/* mallocgc: the C API. Same meaning as the C++ API in mallocgc.hpp.
 *
 *   #include <mallocgc/mallocgc.h>
 *
 *   size_t offsets[] = {0, 8};
 *   const mgc_type_t* pair = mgc_type_create(16, offsets, 2);
 *   void* p = mgc_alloc_typed(pair);       // scanned by its pointer bits
 *   char* s = mgc_alloc_noscan(100);       // never scanned
 *   void** q = mgc_alloc(32);              // conservatively scanned
 *   mgc_free(s);                           // optional explicit free
 *
 * Memory comes back zeroed, 16-byte aligned from 16 bytes up. A size that
 * overflows or that the OS refuses returns NULL. mgc_free of anything but
 * the start of a live object aborts with a message naming the address.
 * Compiles as C11 and as C++.
 */
#ifndef MALLOCGC_MALLOCGC_H
#define MALLOCGC_MALLOCGC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of size classes, class 0 ("not small") included. */
#define MGC_NUM_SIZE_CLASSES 67

/* An interned type layout: immortal, never freed. */
typedef struct mgc_type mgc_type_t;

/* Layout of size bytes whose pointer words sit at the given byte offsets
 * (multiples of 8, below size). NULL for a malformed layout or when memory
 * is exhausted. */
const mgc_type_t* mgc_type_create(size_t size, const size_t* pointer_offsets, size_t count);

void* mgc_alloc(size_t size);        /* conservatively scanned */
void* mgc_alloc_noscan(size_t size); /* never scanned */
void* mgc_alloc_typed(const mgc_type_t* type);
void mgc_free(void* p); /* NULL is ignored */

typedef struct mgc_size_class_stats {
  size_t size;      /* bytes per object */
  uint64_t mallocs; /* cumulative objects allocated */
  uint64_t frees;   /* cumulative objects freed */
} mgc_size_class_stats_t;

typedef struct mgc_stats {
  uint64_t heap_alloc;           /* bytes in allocated objects */
  uint64_t heap_objects;         /* allocated objects */
  uint64_t heap_sys;             /* bytes of heap memory committed from the OS */
  uint64_t heap_reserved;        /* bytes of address space reserved */
  uint64_t heap_inuse;           /* bytes in spans that hold objects */
  uint64_t heap_idle;            /* committed bytes in free page runs */
  uint64_t heap_released;        /* of heap_idle, bytes returned to the OS */
  uint64_t mallocs;              /* cumulative objects allocated */
  uint64_t frees;                /* cumulative objects freed */
  uint64_t large_mallocs;        /* of mallocs, objects above 32 KiB */
  uint64_t large_frees;          /* of frees, objects above 32 KiB */
  uint64_t tiny_mallocs;         /* of mallocs, tiny objects (noscan, under 16 bytes) */
  uint64_t tiny_frees;           /* of frees, tiny objects */
  uint64_t num_threads;          /* threads with an allocation cache */
  uint64_t num_gc;               /* completed collection cycles */
  uint64_t heap_goal;            /* heap size at which the next cycle starts */
  uint64_t next_gc;              /* = heap_goal */
  uint64_t heap_live_after_mark; /* bytes the last mark found reachable */
  uint64_t gc_roots_bytes;       /* bytes of root ranges the last mark scanned */
  uint64_t pause_total_ns;       /* all stop-the-world pauses, ever */
  uint64_t pause_ns[256];        /* last 256 pauses; latest at (num_gc + 255) % 256 */
  double gc_cpu_fraction;        /* collector CPU time / process CPU time */
  uint64_t gc_cpu_limited;       /* cycles put off by the GC CPU limiter */
  mgc_size_class_stats_t by_size[MGC_NUM_SIZE_CLASSES];
} mgc_stats_t;

void mgc_stats(mgc_stats_t* out);

/* The collector: see mallocgc.hpp for the full contract of each call. */
void mgc_collect(void);
size_t mgc_release_memory(void); /* collect, then return every free page to the OS; bytes released */
int mgc_start_trace(void);       /* record the collector's timeline; 0 when no memory */
void mgc_stop_trace(void);
int mgc_write_trace(const char* path);       /* Chrome trace JSON of what was recorded; 0 on error (errno) */
int mgc_set_gc_percent(int percent);         /* returns the old value; <0: off */
int64_t mgc_set_memory_limit(int64_t bytes); /* returns the old limit; <0: query */
void mgc_add_roots(void* begin, void* end);
void mgc_remove_roots(void* begin, void* end);
/* Heap profile (see mallocgc.hpp): bytes between samples, 0 off, <0 only
 * asks; returns the old rate. Writing returns 0, or -1 with errno set. */
int64_t mgc_set_memprofile_rate(int64_t bytes);
int mgc_write_heap_profile(const char* path);
/* 1, or 0 with nothing changed when the finalizer table cannot grow. */
int mgc_set_finalizer(void* obj, void (*fn)(void* obj, void* data), void* data);
void mgc_wait_for_finalizers(void);
/* Threads that hold heap pointers without allocating register explicitly;
 * calls nest. A thread registers itself at its first allocation. Returns 1,
 * or 0 when there was no memory for the thread's record (not registered). */
int mgc_register_thread(void);
void mgc_unregister_thread(void);

typedef struct mgc_weak mgc_weak_t;
mgc_weak_t* mgc_weak_create(void* p);    /* NULL when out of memory */
void* mgc_weak_get(const mgc_weak_t* w); /* NULL once p was found unreachable */
void mgc_weak_destroy(mgc_weak_t* w);

#ifdef __cplusplus
}
#endif

#endif /* MALLOCGC_MALLOCGC_H */
