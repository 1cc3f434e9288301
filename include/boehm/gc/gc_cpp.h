// mallocgc's Boehm-compatible headers: the C++ interface of Boehm GC 8.2.
//
// Objects of classes derived from `gc` live in the collected heap and are
// freed by the collector once unreachable; those derived from `gc_cleanup`
// also have their destructor run then. Placements choose the heap for one
// allocation, for any type:
//
//   class Node : public gc { Node* next; };         // collectable
//   class File : public gc_cleanup { ~File(); };    // ~File() runs when
//                                                   // collected
//   Node* a = new Node;                  // collectable
//   Node* b = new (NoGC) Node;           // uncollectable: delete it
//   int* v = new (UseGC) int[100];       // collectable, scanned
//   char* s = new (PointerFreeGC) char[64];          // never scanned
//   T* t = ::new (UseGC, my_cleanup, data) T;        // my_cleanup(t, data)
//                                                    // when t is collected
//
//   UseGC (alias GC unless GC_NAME_CONFLICT)  collectable, scanned
//   NoGC                  uncollectable, scanned
//   PointerFreeGC         collectable, not scanned
//   PointerFreeNoGC       uncollectable, not scanned (with
//                         GC_ATOMIC_UNCOLLECTABLE defined)
//
// `delete` works on all of them and frees at once (but not on an object
// allocated with an explicit cleanup function). An object is reachable
// from roots, from other reachable objects, and from objects with a
// cleanup (pointers from an object to itself do not count): of two
// unreachable objects with cleanups where A points to B, A's runs first and
// B's at a later collection; a cycle of them is never cleaned up. The
// destructors of an array of gc_cleanup objects are not run (give the array
// an explicit cleanup function instead).
//
// Everything here is inline: programs need only libgc.so.1, not Boehm's
// libgccpp. What differs from Boehm GC's gc_cpp.h with libgccpp:
//   - The global ::operator new and ::operator delete (and the array forms)
//     are NOT replaced. libgccpp makes every plain `new` allocate
//     uncollectable, scanned memory from the collector (with
//     GC_OPERATOR_NEW_ARRAY, `new[]` too); here a plain `new` of a class not
//     derived from `gc` still uses the C++ runtime's heap, which the
//     collector does not scan. A pointer to a collectable object kept only
//     in such memory (a plain `new` object, a std::vector with the default
//     allocator) does not keep it alive: allocate the holder with
//     `new (NoGC)`, or use gc_allocator or traceable_allocator
//     (gc_allocator.h) for containers.
//   - Allocation failure throws std::bad_alloc from the header
//     (GC_throw_bad_alloc is inline here); with GC_NEW_ABORTS_ON_OOM
//     defined, or when exceptions are off, it aborts through
//     GC_abort_on_oom().
//   - A gc_cleanup object made by copy construction registers its cleanup
//     like a default-constructed one (Boehm's implicit copy constructor
//     registers nothing, so such a copy was never destroyed).
//   - The array placement new has a matching placement delete.
//
// With GC_NAMESPACE defined everything but the global operators is in
// namespace boehmgc. GC_NO_FINALIZATION turns gc_cleanup's cleanup off.
#ifndef GC_CPP_H
#define GC_CPP_H

#include <new>

#include "gc.h"

#ifdef GC_NAMESPACE
#define GC_NS_QUALIFY(T) boehmgc::T
#else
#define GC_NS_QUALIFY(T) T
#endif

// The calling convention of cleanup functions.
#define GC_cdecl GC_CALLBACK

// Array forms of the operators, on unless GC_NO_OPERATOR_NEW_ARRAY.
#if !defined(GC_NO_OPERATOR_NEW_ARRAY) && !defined(GC_OPERATOR_NEW_ARRAY)
#define GC_OPERATOR_NEW_ARRAY
#endif

// Placement delete forms (what runs when a constructor throws).
#ifndef GC_PLACEMENT_DELETE
#define GC_PLACEMENT_DELETE
#endif

// Reports that operator new found no memory.
#if defined(GC_NEW_ABORTS_ON_OOM) || defined(_LIBCPP_NO_EXCEPTIONS) || \
    !(defined(__cpp_exceptions) || defined(__EXCEPTIONS))
#define GC_OP_NEW_OOM_CHECK(obj)   \
  do {                             \
    if (!(obj)) GC_abort_on_oom(); \
  } while (0)
#else
inline void GC_CALL GC_throw_bad_alloc() { throw std::bad_alloc(); }
#define GC_OP_NEW_OOM_CHECK(obj)      \
  do {                                \
    if (!(obj)) GC_throw_bad_alloc(); \
  } while (0)
#endif

#ifdef GC_NAMESPACE
namespace boehmgc {
#endif

// Where an allocation goes (see the top of this file).
enum GCPlacement {
  UseGC,
#ifndef GC_NAME_CONFLICT
  GC = UseGC,
#endif
  NoGC,
  PointerFreeGC
#ifdef GC_ATOMIC_UNCOLLECTABLE
  ,
  PointerFreeNoGC
#endif
};

// Base class of collectable objects: `new` allocates them in the collected
// heap unless given another placement.
class gc {
 public:
  inline void *operator new(size_t GC_bytes);
  inline void *operator new(size_t GC_bytes, GCPlacement GC_gcp);
  // Placement into memory the caller provides (the other overloads hide the
  // global one).
  inline void *operator new(size_t GC_bytes, void *GC_p) GC_NOEXCEPT;
  inline void operator delete(void *GC_obj) GC_NOEXCEPT;

#ifdef GC_PLACEMENT_DELETE
  inline void operator delete(void *, GCPlacement) GC_NOEXCEPT;
  inline void operator delete(void *, void *) GC_NOEXCEPT;
#endif

#ifdef GC_OPERATOR_NEW_ARRAY
  inline void *operator new[](size_t GC_bytes);
  inline void *operator new[](size_t GC_bytes, GCPlacement GC_gcp);
  inline void *operator new[](size_t GC_bytes, void *GC_p) GC_NOEXCEPT;
  inline void operator delete[](void *GC_obj) GC_NOEXCEPT;
#ifdef GC_PLACEMENT_DELETE
  inline void operator delete[](void *, GCPlacement) GC_NOEXCEPT;
  inline void operator delete[](void *, void *) GC_NOEXCEPT;
#endif
#endif
};

// Base class of collectable objects whose destructor runs when the
// collector finds them unreachable (also for a class with a gc_cleanup
// member). The cleanup is registered on the heap object that contains
// this one; an object outside the collected heap gets none.
class gc_cleanup : virtual public gc {
 public:
  inline gc_cleanup();
  inline gc_cleanup(const gc_cleanup &);
  inline virtual ~gc_cleanup();

 private:
  inline void register_cleanup_();
  inline static void GC_cdecl cleanup(void *GC_obj, void *GC_clientData);
};

extern "C" {
// A cleanup function given to placement new: cleanup(obj, clientData).
typedef void(GC_CALLBACK *GCCleanUpFunc)(void * /* obj */, void * /* clientData */);
}

#ifdef GC_NAMESPACE
}  // namespace boehmgc
#endif

// Allocates size bytes as gcp says. For UseGC with a cleanup function,
// cleanup(obj, clientData) runs when obj becomes unreachable, instead of
// any destructor, and obj must not be deleted. No cleanup with NoGC, nor
// for gc_cleanup objects (they have their own).
inline void *operator new(size_t GC_bytes, GC_NS_QUALIFY(GCPlacement) GC_gcp, GC_NS_QUALIFY(GCCleanUpFunc) = 0,
                          void * = 0);

#ifdef GC_PLACEMENT_DELETE
inline void operator delete(void *, GC_NS_QUALIFY(GCPlacement), GC_NS_QUALIFY(GCCleanUpFunc), void *) GC_NOEXCEPT;
#endif

#ifdef GC_OPERATOR_NEW_ARRAY
// The same for arrays.
inline void *operator new[](size_t GC_bytes, GC_NS_QUALIFY(GCPlacement) GC_gcp, GC_NS_QUALIFY(GCCleanUpFunc) = 0,
                            void * = 0);
#ifdef GC_PLACEMENT_DELETE
inline void operator delete[](void *, GC_NS_QUALIFY(GCPlacement), GC_NS_QUALIFY(GCCleanUpFunc), void *) GC_NOEXCEPT;
#endif
#endif

// ---- Implementation ---------------------------------------------------------

#ifdef GC_NAMESPACE
namespace boehmgc {
#endif

// size bytes from the heap that gcp names.
inline void *GC_placement_alloc_(size_t GC_bytes, GCPlacement GC_gcp) {
  void *GC_obj;
  switch (GC_gcp) {
    case UseGC:
      GC_obj = GC_MALLOC(GC_bytes);
      break;
    case PointerFreeGC:
      GC_obj = GC_MALLOC_ATOMIC(GC_bytes);
      break;
#ifdef GC_ATOMIC_UNCOLLECTABLE
    case PointerFreeNoGC:
      GC_obj = GC_MALLOC_ATOMIC_UNCOLLECTABLE(GC_bytes);
      break;
#endif
    case NoGC:
    default:
      GC_obj = GC_MALLOC_UNCOLLECTABLE(GC_bytes);
      break;
  }
  GC_OP_NEW_OOM_CHECK(GC_obj);
  return GC_obj;
}

inline void *gc::operator new(size_t GC_bytes) {
  void *GC_obj = GC_MALLOC(GC_bytes);
  GC_OP_NEW_OOM_CHECK(GC_obj);
  return GC_obj;
}

inline void *gc::operator new(size_t GC_bytes, GCPlacement GC_gcp) { return GC_placement_alloc_(GC_bytes, GC_gcp); }

inline void *gc::operator new(size_t, void *GC_p) GC_NOEXCEPT { return GC_p; }

inline void gc::operator delete(void *GC_obj) GC_NOEXCEPT { GC_FREE(GC_obj); }

#ifdef GC_PLACEMENT_DELETE
inline void gc::operator delete(void *GC_obj, GCPlacement) GC_NOEXCEPT { GC_FREE(GC_obj); }

inline void gc::operator delete(void *, void *) GC_NOEXCEPT {}
#endif

#ifdef GC_OPERATOR_NEW_ARRAY
inline void *gc::operator new[](size_t GC_bytes) { return gc::operator new(GC_bytes); }

inline void *gc::operator new[](size_t GC_bytes, GCPlacement GC_gcp) { return gc::operator new(GC_bytes, GC_gcp); }

inline void *gc::operator new[](size_t, void *GC_p) GC_NOEXCEPT { return GC_p; }

inline void gc::operator delete[](void *GC_obj) GC_NOEXCEPT { gc::operator delete(GC_obj); }

#ifdef GC_PLACEMENT_DELETE
inline void gc::operator delete[](void *GC_obj, GCPlacement) GC_NOEXCEPT { gc::operator delete(GC_obj); }

inline void gc::operator delete[](void *, void *) GC_NOEXCEPT {}
#endif
#endif

// Registers cleanup() as the finalizer of the heap object holding this one,
// with this subobject's offset as its data. If the object already had a
// finalizer (an enclosing gc_cleanup registered first), that one is put
// back: the outermost cleanup runs, and its virtual destructor destroys the
// whole object. Pointers from the object to itself do not delay it.
inline void gc_cleanup::register_cleanup_() {
#ifndef GC_NO_FINALIZATION
  void *GC_self = static_cast<void *>(this);
  void *GC_obj_base = GC_base(GC_self);
  if (GC_obj_base == 0) return;  // not in the collected heap
  GC_finalization_proc GC_old_proc = 0;
  void *GC_old_data = 0;
  // The plain (not debugging) registration: GC_base gave the real start.
  GC_register_finalizer_ignore_self(
      GC_obj_base, reinterpret_cast<GC_finalization_proc>(cleanup),
      reinterpret_cast<void *>(static_cast<char *>(GC_self) - static_cast<char *>(GC_obj_base)), &GC_old_proc,
      &GC_old_data);
  if (GC_old_proc != 0) GC_register_finalizer_ignore_self(GC_obj_base, GC_old_proc, GC_old_data, 0, 0);
#endif
}

inline gc_cleanup::gc_cleanup() { register_cleanup_(); }

inline gc_cleanup::gc_cleanup(const gc_cleanup &) : gc() { register_cleanup_(); }

// An object destroyed by delete (or by its own cleanup) loses its
// finalizer, so that it does not run a second time.
inline gc_cleanup::~gc_cleanup() {
#ifndef GC_NO_FINALIZATION
  void *GC_obj_base = GC_base(static_cast<void *>(this));
  if (GC_obj_base != 0) GC_register_finalizer_ignore_self(GC_obj_base, 0, 0, 0, 0);
#endif
}

// The finalizer: runs the (virtual) destructor of the gc_cleanup subobject
// at offset displ in the unreachable object obj. The collector frees the
// memory afterwards.
inline void GC_cdecl gc_cleanup::cleanup(void *GC_obj, void *GC_displ) {
  gc_cleanup *GC_self =
      reinterpret_cast<gc_cleanup *>(static_cast<char *>(GC_obj) + reinterpret_cast<ptrdiff_t>(GC_displ));
  GC_self->~gc_cleanup();
}

#ifdef GC_NAMESPACE
}  // namespace boehmgc
#endif

inline void *operator new(size_t GC_bytes, GC_NS_QUALIFY(GCPlacement) GC_gcp, GC_NS_QUALIFY(GCCleanUpFunc) GC_cleanup,
                          void *GC_clientData) {
#ifndef GC_NO_FINALIZATION
  if (GC_gcp == GC_NS_QUALIFY(UseGC) && GC_cleanup != 0) {
    void *GC_obj = GC_MALLOC(GC_bytes);
    GC_OP_NEW_OOM_CHECK(GC_obj);
    GC_REGISTER_FINALIZER_IGNORE_SELF(GC_obj, GC_cleanup, GC_clientData, 0, 0);
    return GC_obj;
  }
#else
  (void)GC_cleanup;
  (void)GC_clientData;
#endif
  return GC_NS_QUALIFY(GC_placement_alloc_)(GC_bytes, GC_gcp);
}

#ifdef GC_PLACEMENT_DELETE
inline void operator delete(void *GC_obj, GC_NS_QUALIFY(GCPlacement), GC_NS_QUALIFY(GCCleanUpFunc),
                            void *) GC_NOEXCEPT {
  GC_FREE(GC_obj);
}
#endif

#ifdef GC_OPERATOR_NEW_ARRAY
inline void *operator new[](size_t GC_bytes, GC_NS_QUALIFY(GCPlacement) GC_gcp, GC_NS_QUALIFY(GCCleanUpFunc) GC_cleanup,
                            void *GC_clientData) {
  return ::operator new(GC_bytes, GC_gcp, GC_cleanup, GC_clientData);
}
#ifdef GC_PLACEMENT_DELETE
inline void operator delete[](void *GC_obj, GC_NS_QUALIFY(GCPlacement), GC_NS_QUALIFY(GCCleanUpFunc),
                              void *) GC_NOEXCEPT {
  GC_FREE(GC_obj);
}
#endif
#endif

#endif  // GC_CPP_H
