// Boehm GC's C++ interface (gc_cpp.h, gc_allocator.h), run: built against
// mallocgc's headers (include/boehm/) and linked against mallocgc's
// libgc.so.1 (test compat_gc_cpp), and built against Boehm's own headers
// and linked against the system's libgc and libgccpp (gc_cpp_boehm), which
// shows that what is checked here is Boehm's behaviour.
//
//   gc_class          objects of a class derived from `gc` are collected
//   gc_cleanup        a gc_cleanup object's (most derived) destructor runs
//                     once it is unreachable and a collection ran; never
//                     for a reachable one; once only after `delete`
//   placement_cleanup ::new (UseGC, fn, data) runs fn(obj, data)
//   nogc              `new (NoGC)` objects survive collections, keep what
//                     they point to alive, and can be deleted
//   pointer_free      `new (PointerFreeGC)` memory is not scanned
//   gc_allocator      a std::vector<T*, gc_allocator<T*>> held by a root
//                     keeps its elements alive; its storage is collectable;
//                     pointer-free for int
//   traceable         containers with traceable_allocator, themselves in
//                     memory the collector does not scan (a plain `new`),
//                     keep their elements alive until destroyed
//   std_allocator     the documented difference: with libgccpp (Boehm) a
//                     plain `new` is scanned; with mallocgc's headers
//                     (libgccpp not needed) it is the C++ runtime's heap,
//                     which is not scanned
//
// As in ../compat_test.h: raw heap pointers live only in noinline helpers;
// the tests watch objects through disappearing links holding hidden
// addresses, scrub the stack before each collection whose outcome they
// check, check "kept" strictly and "reclaimed" on batches of which nearly
// all must go.
#include <gc/gc_allocator.h>
#include <gc/gc_cpp.h>
#include <gc/gc_inline.h>  // GC_I_PTRFREE, GC_I_NORMAL
#include <gc/gc_mark.h>    // GC_get_kind_and_size
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <list>
#include <map>
#include <vector>

#define NOINLINE __attribute__((noinline))

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      fflush(stderr);                                                          \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#define CHECK_CMP(a, op, b)                                                                                           \
  do {                                                                                                                \
    long check_a_ = (long)(a), check_b_ = (long)(b);                                                                  \
    if (!(check_a_ op check_b_)) {                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s %s %s (%ld %s %ld)\n", __FILE__, __LINE__, #a, #op, #b, check_a_, #op, \
              check_b_);                                                                                              \
      fflush(stderr);                                                                                                 \
      abort();                                                                                                        \
    }                                                                                                                 \
  } while (0)

namespace {

// ---- helpers (as in ../compat_test.h) ---------------------------------------

constexpr uintptr_t kMask = 0xA5C396F00F693C5Aull;  // bit 63 set: never an address

uintptr_t hide(const void* p) { return reinterpret_cast<uintptr_t>(p) ^ kMask; }
void* reveal(uintptr_t h) { return reinterpret_cast<void*>(h ^ kMask); }

// Clears the stack below the caller and the scratch registers.
NOINLINE __attribute__((no_sanitize("address"))) void scrub() {
  char buf[64 * 1024];
  memset(buf, 0, sizeof buf);
  __asm__ __volatile__("" : : "r"(buf) : "memory");
#if defined(__x86_64__)
  __asm__ __volatile__(
      "xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\txor %%esi, %%esi\n\t"
      "xor %%edi, %%edi\n\txor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\t"
      "xor %%r11d, %%r11d\n\tpxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
      "pxor %%xmm3, %%xmm3\n\t" ::
          : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "memory",
            "cc");
#endif
}

// A full collection whose outcome the caller checks, then the finalizers
// it made ready.
NOINLINE void collect() {
  scrub();
  GC_gcollect();
  GC_invoke_finalizers();
}

// A disappearing link to an object, holding its hidden address: cleared by
// the collector when the object becomes unreachable. Lives in static
// memory.
struct Watch {
  void* link;
};

void watch(Watch* w, const void* obj) {
  w->link = reinterpret_cast<void*>(hide(obj));
  CHECK(GC_general_register_disappearing_link(&w->link, obj) == GC_SUCCESS);
}

bool alive(const Watch* w) { return *static_cast<void* const volatile*>(&w->link) != nullptr; }

// The watched object, for noinline helpers only, while alive.
void* watched(const Watch* w) {
  return reveal(reinterpret_cast<uintptr_t>(*static_cast<void* const volatile*>(&w->link)));
}

void unwatch(Watch* w) {
  if (alive(w)) CHECK(GC_unregister_disappearing_link(&w->link) == 1);
  w->link = nullptr;
}

int count_alive(const Watch* ws, int n) {
  int count = 0;
  for (int i = 0; i < n; i++) count += alive(&ws[i]);
  return count;
}

void unwatch_all(Watch* ws, int n) {
  for (int i = 0; i < n; i++) unwatch(&ws[i]);
}

// At most one in eight of a batch that became unreachable survives.
#define CHECK_MOSTLY_RECLAIMED(ws, n)                                                                           \
  do {                                                                                                          \
    int alive_ = count_alive((ws), (n));                                                                        \
    if (getenv("MGC_COMPAT_VERBOSE")) fprintf(stderr, "%s:%d: %d/%d alive\n", __FILE__, __LINE__, alive_, (n)); \
    CHECK_CMP(alive_ * 8, <=, (n));                                                                             \
  } while (0)

#define CHECK_ALL_ALIVE(ws, n) CHECK_CMP(count_alive((ws), (n)), ==, (n))

constexpr int kBatch = 200;
Watch g_watches[kBatch];

// ---- the classes -------------------------------------------------------------

// A collectable node with a payload that says whether it is intact.
struct Node : public gc {
  Node* next = nullptr;
  unsigned payload[6];
  explicit Node(unsigned seed) {
    for (unsigned i = 0; i < 6; i++) payload[i] = seed * 31u + i;
  }
  bool intact(unsigned seed) const {
    for (unsigned i = 0; i < 6; i++)
      if (payload[i] != seed * 31u + i) return false;
    return true;
  }
};

volatile int g_base_destroyed;
volatile int g_derived_destroyed;
volatile int g_tagged_destroyed;

struct Tracked : public gc_cleanup {
  unsigned tag;
  explicit Tracked(unsigned t) : tag(t) {}
  ~Tracked() override {
    g_base_destroyed = g_base_destroyed + 1;
    if (tag == 42) g_tagged_destroyed = g_tagged_destroyed + 1;
  }
};

struct DerivedTracked : public Tracked {
  char extra[40];
  DerivedTracked() : Tracked(7) { memset(extra, 7, sizeof extra); }
  ~DerivedTracked() override { g_derived_destroyed = g_derived_destroyed + 1; }
};

// A class not derived from gc, for placement new.
struct Plain {
  long value[4];
};

volatile int g_plain_cleaned;

void GC_CALLBACK plain_cleanup(void* obj, void* data) {
  CHECK(obj != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(data) == 1234);
  g_plain_cleaned = g_plain_cleaned + 1;
}

// ---- gc_class ------------------------------------------------------------------

NOINLINE void make_nodes(Watch* ws, int n) {
  for (int i = 0; i < n; i++) {
    Node* node = new Node(static_cast<unsigned>(i));
    CHECK(GC_base(node) == node);
    watch(&ws[i], node);
  }
}

void test_gc_class() {
  make_nodes(g_watches, kBatch);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_watches, kBatch);
  unwatch_all(g_watches, kBatch);

  // Arrays of gc objects are collectable too.
  Node* arr = new Node[4]{Node(1), Node(2), Node(3), Node(4)};
  CHECK(GC_base(arr) != nullptr && arr[3].intact(4));
  delete[] arr;
}

// ---- gc_cleanup ------------------------------------------------------------

constexpr int kKept = 24;
Tracked* g_kept[kKept];  // roots

NOINLINE void make_kept() {
  for (int i = 0; i < kKept; i++) g_kept[i] = new Tracked(42);
}

NOINLINE bool kept_intact() {
  for (int i = 0; i < kKept; i++)
    if (g_kept[i]->tag != 42) return false;
  return true;
}

NOINLINE void drop_kept() {
  for (int i = 0; i < kKept; i++) g_kept[i] = nullptr;
}

NOINLINE void make_tracked(int n) {
  for (int i = 0; i < n; i++) {
    if (i % 2 == 0) {
      new Tracked(static_cast<unsigned>(i) + 1000);
    } else {
      new DerivedTracked;
    }
  }
}

NOINLINE void delete_one_tracked() {
  Tracked* t = new Tracked(42);
  delete t;  // destructor now, and never again
}

void test_gc_cleanup() {
  make_kept();
  delete_one_tracked();
  CHECK_CMP(g_tagged_destroyed, ==, 1);
  g_base_destroyed = 0;

  make_tracked(kBatch);
  for (int round = 0; round < 5 && g_base_destroyed * 8 < kBatch * 7; round++) collect();
  // Nearly all ran; for a DerivedTracked, its own destructor too (the
  // destructor is virtual).
  CHECK_CMP(g_base_destroyed * 8, >=, kBatch * 7);
  CHECK_CMP(g_base_destroyed, <=, kBatch);
  CHECK_CMP(g_derived_destroyed * 8, >=, (kBatch / 2) * 7);
  CHECK_CMP(g_derived_destroyed, <=, kBatch / 2);

  // The reachable ones were not destroyed, the deleted one not a second
  // time.
  CHECK_CMP(g_tagged_destroyed, ==, 1);
  CHECK(kept_intact());

  // Once unreachable, the kept ones go too.
  drop_kept();
  for (int round = 0; round < 5 && (g_tagged_destroyed - 1) * 8 < kKept * 7; round++) collect();
  CHECK_CMP((g_tagged_destroyed - 1) * 8, >=, kKept * 7);
  CHECK_CMP(g_tagged_destroyed - 1, <=, kKept);

  // A gc_cleanup outside the collected heap registers nothing.
  {
    Tracked on_stack(5);
    CHECK(GC_base(&on_stack) == nullptr);
  }
}

// ---- placement_cleanup -----------------------------------------------------

NOINLINE void make_plain(int n) {
  for (int i = 0; i < n; i++) {
    Plain* p = ::new (UseGC, plain_cleanup, reinterpret_cast<void*>(1234)) Plain;
    CHECK(GC_base(p) != nullptr);
    p->value[0] = i;
  }
}

void test_placement_cleanup() {
  make_plain(kBatch);
  for (int round = 0; round < 5 && g_plain_cleaned * 8 < kBatch * 7; round++) collect();
  CHECK_CMP(g_plain_cleaned * 8, >=, kBatch * 7);
  CHECK_CMP(g_plain_cleaned, <=, kBatch);

  // The plain placements: collectable and uncollectable storage for any type.
  int* ints = new (UseGC) int[10];
  CHECK(GC_base(ints) != nullptr);
  int* kept = new (NoGC) int[10];
  CHECK(GC_base(kept) != nullptr);
  // Not `delete[]`: without libgccpp the global delete is the C++ runtime's.
  GC_FREE(kept);
}

// ---- nogc ------------------------------------------------------------------

// An uncollectable holder pointing to a collectable node.
struct Holder : public gc {
  Node* node;
  unsigned seed;
};

uintptr_t g_hidden_holders[kBatch];

NOINLINE void make_holders(int n) {
  for (int i = 0; i < n; i++) {
    Holder* h = new (NoGC) Holder;
    h->seed = static_cast<unsigned>(i) + 500;
    h->node = new Node(h->seed);
    g_hidden_holders[i] = hide(h);
    watch(&g_watches[i], h->node);
  }
}

NOINLINE bool holders_intact(int n) {
  for (int i = 0; i < n; i++) {
    Holder* h = static_cast<Holder*>(reveal(g_hidden_holders[i]));
    if (h->seed != static_cast<unsigned>(i) + 500 || h->node != watched(&g_watches[i]) || !h->node->intact(h->seed))
      return false;
  }
  return true;
}

NOINLINE void delete_holders(int n) {
  for (int i = 0; i < n; i++) {
    delete static_cast<Holder*>(reveal(g_hidden_holders[i]));
    g_hidden_holders[i] = 0;
  }
}

void test_nogc() {
  make_holders(kBatch);
  collect();
  collect();
  // Only hidden pointers to the holders remain: uncollectable, they survive
  // and keep their nodes.
  CHECK_ALL_ALIVE(g_watches, kBatch);
  CHECK(holders_intact(kBatch));
  delete_holders(kBatch);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_watches, kBatch);
  unwatch_all(g_watches, kBatch);
}

// ---- pointer_free ----------------------------------------------------------

Node** g_pointer_free_array;  // a root to pointer-free memory

NOINLINE void fill_pointer_free(int n) {
  g_pointer_free_array = new (PointerFreeGC) Node*[n];
  for (int i = 0; i < n; i++) {
    g_pointer_free_array[i] = new Node(static_cast<unsigned>(i));
    watch(&g_watches[i], g_pointer_free_array[i]);
  }
}

void test_pointer_free() {
  fill_pointer_free(kBatch);
  collect();
  // The array is kept by its root but not scanned: the nodes go.
  CHECK(GC_base(g_pointer_free_array) != nullptr);
  CHECK_MOSTLY_RECLAIMED(g_watches, kBatch);
  unwatch_all(g_watches, kBatch);
  g_pointer_free_array = nullptr;
}

// ---- gc_allocator ----------------------------------------------------------

std::vector<Node*, gc_allocator<Node*>> g_gc_vector;  // a root

NOINLINE void fill_gc_vector(int n) {
  for (int i = 0; i < n; i++) {
    Node* node = new Node(static_cast<unsigned>(i) + 77);
    g_gc_vector.push_back(node);  // regrows: old storage is freed or collected
    watch(&g_watches[i], node);
  }
  CHECK(GC_base(g_gc_vector.data()) == g_gc_vector.data());
}

NOINLINE bool gc_vector_intact(int n) {
  if (static_cast<int>(g_gc_vector.size()) != n) return false;
  for (int i = 0; i < n; i++)
    if (g_gc_vector[i] != watched(&g_watches[i]) || !g_gc_vector[i]->intact(static_cast<unsigned>(i) + 77))
      return false;
  return true;
}

NOINLINE void drop_gc_vector() { std::vector<Node*, gc_allocator<Node*>>().swap(g_gc_vector); }

NOINLINE void check_int_storage() {
  std::vector<int, gc_allocator<int>> ints(1000, 5);
  size_t size = 0;
  CHECK(GC_get_kind_and_size(ints.data(), &size) == GC_I_PTRFREE);  // int is declared pointer-free
  CHECK(size >= 1000 * sizeof(int));
  std::vector<void*, gc_allocator_ignore_off_page<void*>> big(100000);
  CHECK(GC_get_kind_and_size(big.data(), &size) == GC_I_NORMAL && size >= 100000 * sizeof(void*));
  std::map<int, Node*, std::less<int>, gc_allocator<std::pair<const int, Node*>>> m;  // rebinds to the tree's nodes
  m[1] = new Node(1);
  CHECK(m[1]->intact(1));
}

void test_gc_allocator() {
  fill_gc_vector(kBatch);
  collect();
  collect();
  // The vector's storage holds the only pointers: every node survives.
  CHECK_ALL_ALIVE(g_watches, kBatch);
  CHECK(gc_vector_intact(kBatch));

  drop_gc_vector();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_watches, kBatch);
  unwatch_all(g_watches, kBatch);
  check_int_storage();
}

// ---- traceable -------------------------------------------------------------

typedef std::vector<Node*, traceable_allocator<Node*>> TracedVector;
typedef std::list<Node*, traceable_allocator<Node*>> TracedList;

uintptr_t g_hidden_vector, g_hidden_list;

NOINLINE void make_traced(int n) {
  // The containers themselves are in the C++ runtime's heap (or, with
  // libgccpp, uncollectable): not where the collector looks for roots.
  TracedVector* v = new TracedVector;
  TracedList* l = new TracedList;
  for (int i = 0; i < n; i++) {
    Node* node = new Node(static_cast<unsigned>(i) + 9);
    if (i % 2 == 0)
      v->push_back(node);
    else
      l->push_back(node);
    watch(&g_watches[i], node);
  }
  g_hidden_vector = hide(v);
  g_hidden_list = hide(l);
}

NOINLINE bool traced_intact(int n) {
  TracedVector* v = static_cast<TracedVector*>(reveal(g_hidden_vector));
  TracedList* l = static_cast<TracedList*>(reveal(g_hidden_list));
  if (static_cast<int>(v->size() + l->size()) != n) return false;
  for (size_t i = 0; i < v->size(); i++)
    if (!(*v)[i]->intact(static_cast<unsigned>(2 * i) + 9)) return false;
  unsigned seed = 10;
  for (Node* node : *l) {
    if (!node->intact(seed)) return false;
    seed += 2;
  }
  return true;
}

NOINLINE void delete_traced() {
  delete static_cast<TracedVector*>(reveal(g_hidden_vector));
  delete static_cast<TracedList*>(reveal(g_hidden_list));
  g_hidden_vector = g_hidden_list = 0;
}

void test_traceable() {
  make_traced(kBatch);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_watches, kBatch);
  CHECK(traced_intact(kBatch));
  delete_traced();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_watches, kBatch);
  unwatch_all(g_watches, kBatch);
}

// ---- std_allocator ---------------------------------------------------------

uintptr_t g_hidden_std_vector;

NOINLINE void make_std_vector(int n) {
  std::vector<Node*>* v = new std::vector<Node*>;
  for (int i = 0; i < n; i++) {
    Node* node = new Node(static_cast<unsigned>(i));
    v->push_back(node);
    watch(&g_watches[i], node);
  }
  g_hidden_std_vector = hide(v);
}

NOINLINE void delete_std_vector() {
  delete static_cast<std::vector<Node*>*>(reveal(g_hidden_std_vector));
  g_hidden_std_vector = 0;
}

void test_std_allocator() {
  make_std_vector(kBatch);
  collect();
#ifdef MALLOCGC_BOEHM_HEADERS
  // The global operator new is the C++ runtime's: the vector's storage is
  // not scanned and does not keep the nodes.
  CHECK_MOSTLY_RECLAIMED(g_watches, kBatch);
#else
  // libgccpp's operator new allocates uncollectable, scanned memory.
  CHECK_ALL_ALIVE(g_watches, kBatch);
#endif
  unwatch_all(g_watches, kBatch);
  delete_std_vector();
}

int g_passed;

void run(const char* name, void (*test)()) {
  alarm(120);
  test();
  alarm(0);
  printf("ok %s\n", name);
  fflush(stdout);
  g_passed++;
}

}  // namespace

int main() {
  GC_INIT();
  run("gc_class", test_gc_class);
  run("gc_cleanup", test_gc_cleanup);
  run("placement_cleanup", test_placement_cleanup);
  run("nogc", test_nogc);
  run("pointer_free", test_pointer_free);
  run("gc_allocator", test_gc_allocator);
  run("traceable", test_traceable);
  run("std_allocator", test_std_allocator);
  printf("%d passed, 0 failed\n", g_passed);
  return 0;
}
