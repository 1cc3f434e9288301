// mallocgc's Boehm-compatible headers: standard-library allocators that
// take their memory from the collector, so that a container's storage is
// scanned for pointers into the heap:
//
//   std::vector<node*, gc_allocator<node*>> v;   // collectable storage;
//                                                // keeps the nodes alive
//   std::map<K, V, std::less<K>, traceable_allocator<std::pair<const K, V>>> m;
//
//   gc_allocator<T>                  collectable memory: freed by the
//                                    collector once nothing points to it
//                                    (a container held only by the stack
//                                    or by other collectable objects);
//                                    pointer-free for the types declared
//                                    with GC_DECLARE_PTRFREE (char, int,
//                                    double, ...: never scanned);
//   gc_allocator_ignore_off_page<T>  the same for large blocks that are
//                                    always referred to near their start;
//   traceable_allocator<T>           uncollectable memory: scanned, but
//                                    freed only by the container (for
//                                    containers that live where the
//                                    collector does not look, such as
//                                    malloc'd memory or a plain `new`).
//
// Allocation failure throws std::bad_alloc; with GC_NEW_ABORTS_ON_OOM
// defined, or when exceptions are off, it aborts through
// GC_abort_on_oom() instead.
//
// Differences from Boehm's header: the <void> specializations' members are
// public (Boehm's are private by accident, which makes them unusable), and
// the build also works with exceptions off.
#ifndef GC_ALLOCATOR_H
#define GC_ALLOCATOR_H

#include <new>

#include "gc.h"

#if defined(GC_NEW_ABORTS_ON_OOM) || defined(_LIBCPP_NO_EXCEPTIONS) || \
    !(defined(__cpp_exceptions) || defined(__EXCEPTIONS))
#define GC_ALLOCATOR_THROW_OR_ABORT() GC_abort_on_oom()
#else
#define GC_ALLOCATOR_THROW_OR_ABORT() throw std::bad_alloc()
#endif

// Tags telling whether a type holds no pointers.
struct GC_true_type {};
struct GC_false_type {};

// GC_type_traits<T>::GC_is_ptr_free is GC_true_type for the types declared
// pointer-free below (and by the program with GC_DECLARE_PTRFREE), whose
// arrays gc_allocator allocates unscanned.
template <class GC_tp>
struct GC_type_traits {
  GC_false_type GC_is_ptr_free;
};

#define GC_DECLARE_PTRFREE(T)    \
  template <>                    \
  struct GC_type_traits<T> {     \
    GC_true_type GC_is_ptr_free; \
  }

GC_DECLARE_PTRFREE(char);
GC_DECLARE_PTRFREE(signed char);
GC_DECLARE_PTRFREE(unsigned char);
GC_DECLARE_PTRFREE(signed short);
GC_DECLARE_PTRFREE(unsigned short);
GC_DECLARE_PTRFREE(signed int);
GC_DECLARE_PTRFREE(unsigned int);
GC_DECLARE_PTRFREE(signed long);
GC_DECLARE_PTRFREE(unsigned long);
GC_DECLARE_PTRFREE(float);
GC_DECLARE_PTRFREE(double);
GC_DECLARE_PTRFREE(long double);

// n bytes of collectable memory: scanned for GC_false_type, pointer-free
// for GC_true_type.
template <class GC_Tp>
inline void *GC_selective_alloc(size_t GC_n, GC_Tp, bool GC_ignore_off_page) {
  void *GC_obj = GC_ignore_off_page ? GC_MALLOC_IGNORE_OFF_PAGE(GC_n) : GC_MALLOC(GC_n);
  if (GC_obj == 0) GC_ALLOCATOR_THROW_OR_ABORT();
  return GC_obj;
}

template <>
inline void *GC_selective_alloc<GC_true_type>(size_t GC_n, GC_true_type, bool GC_ignore_off_page) {
  void *GC_obj = GC_ignore_off_page ? GC_MALLOC_ATOMIC_IGNORE_OFF_PAGE(GC_n) : GC_MALLOC_ATOMIC(GC_n);
  if (GC_obj == 0) GC_ALLOCATOR_THROW_OR_ABORT();
  return GC_obj;
}

// The members every allocator below has; Alloc is the allocator template,
// ALLOC_EXPR(bytes) how it gets memory.
// clang-format off
#define GC_ALLOCATOR_MEMBERS_(Alloc, GC_Tp)                                     \
 public:                                                                        \
  typedef size_t size_type;                                                     \
  typedef ptrdiff_t difference_type;                                            \
  typedef GC_Tp *pointer;                                                       \
  typedef const GC_Tp *const_pointer;                                           \
  typedef GC_Tp &reference;                                                     \
  typedef const GC_Tp &const_reference;                                         \
  typedef GC_Tp value_type;                                                     \
                                                                                \
  template <class GC_Tp1>                                                       \
  struct rebind {                                                               \
    typedef Alloc<GC_Tp1> other;                                                \
  };                                                                            \
                                                                                \
  Alloc() GC_NOEXCEPT {}                                                        \
  Alloc(const Alloc &) GC_NOEXCEPT {}                                           \
  template <class GC_Tp1>                                                       \
  GC_ATTR_EXPLICIT Alloc(const Alloc<GC_Tp1> &) GC_NOEXCEPT {}                  \
  ~Alloc() GC_NOEXCEPT {}                                                       \
                                                                                \
  Alloc &operator=(const Alloc &) GC_NOEXCEPT { return *this; }                \
                                                                                \
  pointer address(reference GC_x) const { return &GC_x; }                       \
  const_pointer address(const_reference GC_x) const { return &GC_x; }           \
                                                                                \
  /* Frees at once; the collector would free it anyway. */                      \
  void deallocate(pointer GC_p, size_type /* n */) GC_NOEXCEPT { GC_FREE(GC_p); } \
                                                                                \
  size_type max_size() const GC_NOEXCEPT { return size_t(-1) / sizeof(GC_Tp); } \
                                                                                \
  void construct(pointer GC_p, const GC_Tp &GC_val) { new (GC_p) GC_Tp(GC_val); } \
  void destroy(pointer GC_p) { GC_p->~GC_Tp(); }

// The <void> specialization: types and rebind only.
#define GC_ALLOCATOR_VOID_(Alloc) \
  template <>                     \
  class Alloc<void> {             \
   public:                        \
    typedef size_t size_type;     \
    typedef ptrdiff_t difference_type; \
    typedef void *pointer;        \
    typedef const void *const_pointer; \
    typedef void value_type;      \
    template <class GC_Tp1>       \
    struct rebind {               \
      typedef Alloc<GC_Tp1> other; \
    };                            \
  }

// All instances of an allocator are interchangeable.
#define GC_ALLOCATOR_EQUALITY_(Alloc)                                                    \
  template <class GC_T1, class GC_T2>                                                    \
  inline bool operator==(const Alloc<GC_T1> &, const Alloc<GC_T2> &) GC_NOEXCEPT {       \
    return true;                                                                         \
  }                                                                                      \
  template <class GC_T1, class GC_T2>                                                    \
  inline bool operator!=(const Alloc<GC_T1> &, const Alloc<GC_T2> &) GC_NOEXCEPT {       \
    return false;                                                                        \
  }
// clang-format on

// Collectable memory, pointer-free for GC_DECLARE_PTRFREE types. n may be
// 0.
template <class GC_Tp>
class gc_allocator {
  GC_ALLOCATOR_MEMBERS_(gc_allocator, GC_Tp)

  GC_Tp *allocate(size_type GC_n, const void * = 0) {
    GC_type_traits<GC_Tp> GC_traits;
    return static_cast<GC_Tp *>(GC_selective_alloc(GC_n * sizeof(GC_Tp), GC_traits.GC_is_ptr_free, false));
  }
};
GC_ALLOCATOR_VOID_(gc_allocator);
GC_ALLOCATOR_EQUALITY_(gc_allocator)

// The same for large blocks always referred to near their start.
template <class GC_Tp>
class gc_allocator_ignore_off_page {
  GC_ALLOCATOR_MEMBERS_(gc_allocator_ignore_off_page, GC_Tp)

  GC_Tp *allocate(size_type GC_n, const void * = 0) {
    GC_type_traits<GC_Tp> GC_traits;
    return static_cast<GC_Tp *>(GC_selective_alloc(GC_n * sizeof(GC_Tp), GC_traits.GC_is_ptr_free, true));
  }
};
GC_ALLOCATOR_VOID_(gc_allocator_ignore_off_page);
GC_ALLOCATOR_EQUALITY_(gc_allocator_ignore_off_page)

// Uncollectable memory, always scanned (whatever the element type): the
// container frees it.
template <class GC_Tp>
class traceable_allocator {
  GC_ALLOCATOR_MEMBERS_(traceable_allocator, GC_Tp)

  GC_Tp *allocate(size_type GC_n, const void * = 0) {
    void *GC_obj = GC_MALLOC_UNCOLLECTABLE(GC_n * sizeof(GC_Tp));
    if (GC_obj == 0) GC_ALLOCATOR_THROW_OR_ABORT();
    return static_cast<GC_Tp *>(GC_obj);
  }
};
GC_ALLOCATOR_VOID_(traceable_allocator);
GC_ALLOCATOR_EQUALITY_(traceable_allocator)

#undef GC_ALLOCATOR_MEMBERS_
#undef GC_ALLOCATOR_VOID_
#undef GC_ALLOCATOR_EQUALITY_

#endif  // GC_ALLOCATOR_H
