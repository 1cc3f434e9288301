/* mallocgc's Boehm-compatible headers: the version of Boehm GC's API that
 * these headers describe. Only gc.h includes this file (it does nothing
 * otherwise); GC_get_version() tells the version of the library a program
 * runs on, which may differ. */
#if defined(GC_H)

/* The API is Boehm GC 8.2.2's. */
#define GC_TMP_VERSION_MAJOR 8
#define GC_TMP_VERSION_MINOR 2
#define GC_TMP_VERSION_MICRO 2

/* A program may define GC_VERSION_* itself; then they must agree. */
#ifdef GC_VERSION_MAJOR
#if GC_VERSION_MAJOR != GC_TMP_VERSION_MAJOR || GC_VERSION_MINOR != GC_TMP_VERSION_MINOR || \
    GC_VERSION_MICRO != GC_TMP_VERSION_MICRO
#error "GC_VERSION_MAJOR/MINOR/MICRO disagree with gc_version.h (8.2.2)"
#endif
#else
#define GC_VERSION_MAJOR GC_TMP_VERSION_MAJOR
#define GC_VERSION_MINOR GC_TMP_VERSION_MINOR
#define GC_VERSION_MICRO GC_TMP_VERSION_MICRO
#endif

#endif /* GC_H */
