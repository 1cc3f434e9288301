/* Mark procedures (gc_mark.h): kinds whose template is
 * GC_MAKE_PROC(GC_new_proc(proc), env). The procedure gets the object's
 * address and env; what it hands to GC_MARK_AND_PUSH or
 * GC_mark_and_push is kept (and scanned as its own kind says), what it
 * skips goes. It runs for every reachable object of its kind in every
 * collection, from whichever marker thread: on objects several threads
 * allocated and hold, and once per object however many paths reach it
 * (never once per reference).
 *
 * A procedure may push mark stack entries itself: struct GC_ms_entry is
 * opaque in gc_mark.h, but Boehm's own layout (gc_pmark.h: a start
 * address, then a descriptor word) is what such procedures write, so the
 * test defines it (mse_t). It pushes a length descriptor for a range it
 * wants scanned (here part of a pointer-free buffer: the targets in that
 * part stay, the others go). With much to do, it works in pieces and
 * pushes itself back (GC_MAKE_PROC with the position as env), within
 * mark_stack_limit: the procedure is "always called with at least one
 * empty entry", and one that pushes more entries than the limit leaves
 * room for, here 32768 ranges, must stop at the limit and continue in a
 * later call. GC_set_mark_bit from a procedure keeps an object without
 * scanning it (what only it points to goes), GC_clear_mark_bit undoes a
 * mark, GC_is_marked tells both and is true of the object being scanned.
 * GC_least_plausible_heap_addr <= every heap object, whose every byte is
 * <= GC_greatest_plausible_heap_addr (and its start below it): the inline
 * test of GC_MARK_AND_PUSH lets them through, for small and large objects
 * and for ones made after the heap grew.
 *
 * Counting calls: Boehm's parallel marker sets mark bytes without an
 * atomic read-modify-write (gc_pmark.h: "we may set the bit twice in the
 * concurrent case. This can result in the object being pushed twice"),
 * so a procedure may rarely run twice for one object in one collection:
 * "once" is checked as at least once, at most twice, and at most one in
 * eight objects twice. Procedures of clear kinds may also run on an
 * unused (cleared) object; every object here carries a magic word, and
 * the procedures ignore objects without it. */
#include <gc_mark.h>
#include <pthread.h>
#include <stdatomic.h>

#include "compat_test.h"

#define N 16
#define CHILD 48
#define WORD_BYTES sizeof(GC_word)

/* Boehm's struct GC_ms_entry (gc_pmark.h). */
typedef struct {
  void* mse_start;
  GC_word mse_descr;
} mse_t;

#define MSE(p) ((mse_t*)(p))
#define GC_MSE(p) ((struct GC_ms_entry*)(p))

/* Entries a procedure may still write above msp: msp + 1 .. limit - 1. */
static ptrdiff_t room(struct GC_ms_entry* msp, struct GC_ms_entry* limit) { return MSE(limit) - MSE(msp) - 1; }

static struct GC_ms_entry* push_entry(struct GC_ms_entry* msp, void* start, GC_word descr) {
  mse_t* e = MSE(msp) + 1;
  e->mse_start = start;
  e->mse_descr = descr;
  return GC_MSE(e);
}

/* Every object of a procedure's kind: word 0 is left to the collector
 * (a free object's link), word 1 the magic, word 2 an id for counters. */
enum { W_MAGIC = 1, W_ID = 2, W_DATA = 3 };
#define MAGIC ((GC_word)0x6D61726B70726F63ull) /* "markproc" */
#define MAX_IDS 1024

static atomic_int g_calls[MAX_IDS]; /* first calls (env of the kind) per object */
static atomic_int g_bad_env, g_bad_id, g_bad_bounds, g_min_room = 1 << 30;
static int g_next_id;

static int new_ids(int count) {
  int first = g_next_id;
  g_next_id += count;
  CHECK_CMP(g_next_id, <=, MAX_IDS);
  return first;
}

static void atomic_min(atomic_int* a, int v) {
  int old = atomic_load(a);
  while (v < old && !atomic_compare_exchange_weak(a, &old, v)) {
  }
}

static void atomic_max(atomic_int* a, int v) {
  int old = atomic_load(a);
  while (v > old && !atomic_compare_exchange_weak(a, &old, v)) {
  }
}

static int in_bounds(const void* p, size_t size) {
  uintptr_t least = (uintptr_t)GC_least_plausible_heap_addr;
  uintptr_t greatest = (uintptr_t)GC_greatest_plausible_heap_addr;
  uintptr_t a = (uintptr_t)p;
  return least <= a && a < greatest && a + size - 1 <= greatest;
}

/* The id of an object a procedure was called on, or -1: not set up (a
 * cleared object) or wrong. Checks what every call may check. */
static int enter(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit) {
  atomic_min(&g_min_room, (int)(room(msp, limit) < (1 << 30) ? room(msp, limit) : (1 << 30)));
  if (!in_bounds(addr, WORD_BYTES)) atomic_fetch_add(&g_bad_bounds, 1);
  if (addr[W_MAGIC] != MAGIC) return -1;
  GC_word id = addr[W_ID];
  if (id >= MAX_IDS) {
    atomic_fetch_add(&g_bad_id, 1);
    return -1;
  }
  return (int)id;
}

static void reset_calls(void) {
  for (int i = 0; i < MAX_IDS; i++) atomic_store(&g_calls[i], 0);
}

/* Calls for ids [first, first + count) in the collections since
 * reset_calls(), `cycles` of them: each ran once a cycle, nearly. */
static void check_once_per_cycle(int first, int count, int cycles) {
  int total = 0;
  for (int i = first; i < first + count; i++) {
    int calls = atomic_load(&g_calls[i]);
    CHECK_CMP(calls, >=, cycles);
    CHECK_CMP(calls, <=, 2 * cycles);
    total += calls;
  }
  CHECK_CMP(total, <=, cycles * count + count / 8);
}

static void check_no_errors(void) {
  CHECK_CMP(atomic_load(&g_bad_env), ==, 0);
  CHECK_CMP(atomic_load(&g_bad_id), ==, 0);
  CHECK_CMP(atomic_load(&g_bad_bounds), ==, 0);
  CHECK_CMP(atomic_load(&g_min_room), >=, 1); /* "at least one empty entry" */
}

static NOINLINE void* new_child(int i) {
  void* child = GC_malloc(CHILD);
  CHECK(child != NULL);
  fill((char*)child + WORD_BYTES, CHILD - WORD_BYTES, (unsigned)i); /* word 0 is for a link */
  return child;
}

static int child_ok(const void* child, int i) {
  return filled((const char*)child + WORD_BYTES, CHILD - WORD_BYTES, (unsigned)i);
}

static NOINLINE void* new_object(int kind, size_t size, int id) {
  GC_word* object = GC_generic_malloc(size, kind);
  CHECK(object != NULL);
  CHECK(all_zero(object, size));
  object[W_ID] = (GC_word)id;
  object[W_MAGIC] = MAGIC;
  return object;
}

void* volatile mp_root[64];

static void clear_roots(void) {
  for (int i = 0; i < 64; i++) mp_root[i] = NULL;
}

/* --- a procedure that keeps some children and skips others ---------------------------- */

/* Words: KEEP goes to GC_MARK_AND_PUSH, KEEP_FN to GC_mark_and_push,
 * SKIP nowhere; NEXT (another object of the kind) to GC_MARK_AND_PUSH. */
enum { B_KEEP = W_DATA, B_KEEP_FN, B_SKIP, B_NEXT, B_WORDS };
#define BASIC_ENV ((GC_word)0x2A5)

static unsigned g_basic_proc;
static int g_basic;

static struct GC_ms_entry* basic_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit, GC_word env) {
  int id = enter(addr, msp, limit);
  if (id < 0) return msp;
  atomic_fetch_add(&g_calls[id], 1);
  if (env != BASIC_ENV) atomic_fetch_add(&g_bad_env, 1);
  msp = GC_MARK_AND_PUSH((void*)addr[B_KEEP], msp, limit, (void**)&addr[B_KEEP]);
  if (addr[B_KEEP_FN] != 0) msp = GC_mark_and_push((void*)addr[B_KEEP_FN], msp, limit, (void**)&addr[B_KEEP_FN]);
  msp = GC_MARK_AND_PUSH((void*)addr[B_NEXT], msp, limit, (void**)&addr[B_NEXT]);
  return msp;
}

static int g_basic_first;
static uintptr_t g_basic_hidden[N];
static watch_t g_objects[N], g_keep[N], g_keep_fn[N], g_skip[N], g_grandchild[N];

static NOINLINE void make_basic(int i) {
  GC_word* object = new_object(g_basic, B_WORDS * WORD_BYTES, g_basic_first + i);
  void** keep = new_child(i);
  void* grandchild = new_child(i); /* kept through keep, scanned as the NORMAL object it is */
  keep[0] = grandchild;
  void* keep_fn = new_child(i);
  void* skip = new_child(i);
  object[B_KEEP] = (GC_word)keep;
  object[B_KEEP_FN] = (GC_word)keep_fn;
  object[B_SKIP] = (GC_word)skip;
  watch(&g_objects[i], object);
  watch(&g_keep[i], keep);
  watch(&g_grandchild[i], grandchild);
  watch(&g_keep_fn[i], keep_fn);
  watch(&g_skip[i], skip);
  g_basic_hidden[i] = hide(object);
  mp_root[i] = object;
}

static NOINLINE int basic_intact(int i) {
  GC_word* object = reveal(g_basic_hidden[i]);
  void** keep = (void**)object[B_KEEP];
  return child_ok(keep, i) && child_ok(keep[0], i) && child_ok((void*)object[B_KEEP_FN], i);
}

static void test_keeps_what_it_pushes(void) {
  g_basic_first = new_ids(N);
  for (int i = 0; i < N; i++) make_basic(i);
  collect();
  reset_calls();
  collect();
  check_once_per_cycle(g_basic_first, N, 1);
  check_no_errors();
  CHECK_ALL_ALIVE(g_objects, N);
  CHECK_ALL_ALIVE(g_keep, N);
  CHECK_ALL_ALIVE(g_grandchild, N);
  CHECK_ALL_ALIVE(g_keep_fn, N);
  for (int i = 0; i < N; i++) CHECK(basic_intact(i));
  CHECK_MOSTLY_RECLAIMED(g_skip, N);
  clear_roots();
  reset_calls();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_objects, N);
  CHECK_MOSTLY_RECLAIMED(g_keep, N);
  CHECK_MOSTLY_RECLAIMED(g_grandchild, N);
  CHECK_MOSTLY_RECLAIMED(g_keep_fn, N);
  /* Unreachable: (nearly) no calls any more. */
  int calls = 0;
  for (int i = 0; i < N; i++) calls += atomic_load(&g_calls[g_basic_first + i]);
  CHECK_CMP(calls * 8, <=, N);
  unwatch_all(g_objects, N);
  unwatch_all(g_keep, N);
  unwatch_all(g_grandchild, N);
  unwatch_all(g_keep_fn, N);
  unwatch_all(g_skip, N);
}

/* --- once per object, however many paths -------------------------------------------- */

#define PATHS_N 64
void* volatile mp_holder;

static NOINLINE void make_ring(int first) {
  void** holder = GC_malloc(PATHS_N * sizeof(void*));
  CHECK(holder != NULL);
  GC_word* previous = NULL;
  for (int i = 0; i < PATHS_N; i++) {
    GC_word* object = new_object(g_basic, B_WORDS * WORD_BYTES, first + i);
    holder[i] = object;                               /* path 1: a NORMAL object */
    mp_root[i] = object;                              /* path 2: a root */
    if (previous) previous[B_NEXT] = (GC_word)object; /* path 3: another object's procedure */
    previous = object;
  }
  previous[B_NEXT] = (GC_word)holder[0];
  mp_holder = holder;
}

static void test_once_per_object(void) {
  int first = new_ids(PATHS_N);
  make_ring(first);
  for (int cycle = 0; cycle < 3; cycle++) {
    reset_calls();
    collect();
    check_once_per_cycle(first, PATHS_N, 1);
  }
  reset_calls();
  for (int cycle = 0; cycle < 4; cycle++) collect();
  check_once_per_cycle(first, PATHS_N, 4);
  check_no_errors();
  mp_holder = NULL;
  clear_roots();
}

/* --- objects of several threads ---------------------------------------------------------- */

#define THREADS 3
#define PER_THREAD 32

static pthread_barrier_t g_ready, g_checked;
static int g_thread_first;
static watch_t g_thread_keep[THREADS * PER_THREAD];
static watch_t g_thread_objects[THREADS * PER_THREAD];

static NOINLINE void* make_thread_objects(int t) {
  void** array = GC_malloc(PER_THREAD * sizeof(void*));
  CHECK(array != NULL);
  for (int j = 0; j < PER_THREAD; j++) {
    int k = t * PER_THREAD + j;
    GC_word* object = new_object(g_basic, B_WORDS * WORD_BYTES, g_thread_first + k);
    void* keep = new_child(k);
    object[B_KEEP] = (GC_word)keep;
    watch(&g_thread_keep[k], keep);
    watch(&g_thread_objects[k], object);
    array[j] = object;
  }
  return array;
}

static NOINLINE int thread_objects_intact(void** array, int t) {
  for (int j = 0; j < PER_THREAD; j++) {
    GC_word* object = array[j];
    if (object[W_MAGIC] != MAGIC || !child_ok((void*)object[B_KEEP], t * PER_THREAD + j)) return 0;
  }
  return 1;
}

static void* holding_thread(void* arg) {
  int t = (int)(intptr_t)arg;
  /* The only reference: this thread's stack. */
  void* volatile array = make_thread_objects(t);
  pthread_barrier_wait(&g_ready); /* main collects */
  pthread_barrier_wait(&g_checked);
  int ok = thread_objects_intact(array, t);
  array = NULL;
  scrub();
  return (void*)(intptr_t)ok;
}

static void test_several_threads(void) {
  g_thread_first = new_ids(THREADS * PER_THREAD);
  pthread_barrier_init(&g_ready, NULL, THREADS + 1);
  pthread_barrier_init(&g_checked, NULL, THREADS + 1);
  pthread_t threads[THREADS];
  for (int t = 0; t < THREADS; t++) CHECK(pthread_create(&threads[t], NULL, holding_thread, (void*)(intptr_t)t) == 0);
  pthread_barrier_wait(&g_ready);
  reset_calls();
  collect();
  check_once_per_cycle(g_thread_first, THREADS * PER_THREAD, 1);
  check_no_errors();
  CHECK_ALL_ALIVE(g_thread_objects, THREADS * PER_THREAD);
  CHECK_ALL_ALIVE(g_thread_keep, THREADS * PER_THREAD);
  pthread_barrier_wait(&g_checked);
  for (int t = 0; t < THREADS; t++) {
    void* ok;
    CHECK(pthread_join(threads[t], &ok) == 0);
    CHECK(ok == (void*)1);
  }
  collect();
  CHECK_MOSTLY_RECLAIMED(g_thread_objects, THREADS * PER_THREAD);
  CHECK_MOSTLY_RECLAIMED(g_thread_keep, THREADS * PER_THREAD);
  unwatch_all(g_thread_objects, THREADS * PER_THREAD);
  unwatch_all(g_thread_keep, THREADS * PER_THREAD);
  pthread_barrier_destroy(&g_ready);
  pthread_barrier_destroy(&g_checked);
}

/* --- pushing a range ----------------------------------------------------------------------- */

/* BUF is a pointer-free object of SLOTS child pointers; the procedure
 * marks it and pushes its first PUSHED slots with a length descriptor. */
enum { S_BUF = W_DATA, S_PUSHED, S_WORDS };
#define SLOTS 8

static int g_range;
static atomic_int g_range_fallbacks;

static struct GC_ms_entry* range_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit, GC_word env) {
  (void)env;
  int id = enter(addr, msp, limit);
  if (id < 0) return msp;
  atomic_fetch_add(&g_calls[id], 1);
  GC_word* buf = (GC_word*)addr[S_BUF];
  if (buf == NULL) return msp;
  msp = GC_MARK_AND_PUSH(buf, msp, limit, (void**)&addr[S_BUF]);
  GC_word pushed = addr[S_PUSHED];
  if (room(msp, limit) >= 1) return push_entry(msp, buf, (pushed * WORD_BYTES) | GC_DS_LENGTH);
  /* No room left after marking buf (it pushed nothing, being pointer-free:
   * not expected): mark the slots here. */
  atomic_fetch_add(&g_range_fallbacks, 1);
  for (GC_word i = 0; i < pushed; i++) msp = GC_MARK_AND_PUSH((void*)buf[i], msp, limit, (void**)&buf[i]);
  return msp;
}

static watch_t g_in_range[N * SLOTS / 2], g_out_of_range[N * SLOTS / 2], g_buffers[N];
static uintptr_t g_range_hidden[N];

static NOINLINE void make_range_object(int i, int id) {
  GC_word* object = new_object(g_range, S_WORDS * WORD_BYTES, id);
  void** buf = GC_malloc_atomic(SLOTS * sizeof(void*));
  CHECK(buf != NULL);
  /* In place first: a collection while the children are made must find
   * the first ones through the procedure (buf is not scanned). */
  object[S_PUSHED] = SLOTS / 2;
  object[S_BUF] = (GC_word)buf;
  for (int s = 0; s < SLOTS; s++) {
    buf[s] = new_child(i);
    if (s < SLOTS / 2) {
      watch(&g_in_range[i * SLOTS / 2 + s], buf[s]);
    } else {
      watch(&g_out_of_range[i * SLOTS / 2 + s - SLOTS / 2], buf[s]);
    }
  }
  watch(&g_buffers[i], buf);
  g_range_hidden[i] = hide(object);
  mp_root[i] = object;
}

static NOINLINE int range_intact(int i) {
  GC_word* object = reveal(g_range_hidden[i]);
  void** buf = (void**)object[S_BUF];
  for (int s = 0; s < SLOTS / 2; s++)
    if (!child_ok(buf[s], i)) return 0;
  return 1;
}

static void test_pushes_a_range(void) {
  int first = new_ids(N);
  for (int i = 0; i < N; i++) make_range_object(i, first + i);
  reset_calls();
  collect();
  collect();
  check_once_per_cycle(first, N, 2);
  check_no_errors();
  CHECK_ALL_ALIVE(g_buffers, N);
  CHECK_ALL_ALIVE(g_in_range, N * SLOTS / 2);
  for (int i = 0; i < N; i++) CHECK(range_intact(i));
  CHECK_MOSTLY_RECLAIMED(g_out_of_range, N * SLOTS / 2); /* in the buffer, but not pushed */
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_buffers, N);
  CHECK_MOSTLY_RECLAIMED(g_in_range, N * SLOTS / 2);
  unwatch_all(g_buffers, N);
  unwatch_all(g_in_range, N * SLOTS / 2);
  unwatch_all(g_out_of_range, N * SLOTS / 2);
}

/* --- more entries than the limit allows: in pieces, pushing itself back --------------------- */

/* BUF: a pointer-free buffer of COUNT child pointers (pointer-free
 * children). The procedure marks a few children itself (some work
 * before pushing more than one entry), then pushes ranges of
 * RANGE_WORDS slots, as many as fit, and if some are left, itself below
 * them with the position to go on from as env. */
enum { M_BUF = W_DATA, M_COUNT, M_WORDS };
#define MANY (64 * 1024)
#define RANGE_WORDS 2
#define DIRECT 4
#define SAMPLE 64 /* every SAMPLE-th child is watched */

static unsigned g_many_proc;
static int g_many;
static atomic_int g_many_first_calls, g_many_calls, g_many_self_pushes, g_many_ranges, g_many_max_room;

static struct GC_ms_entry* many_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit, GC_word env) {
  int id = enter(addr, msp, limit);
  if (id < 0) return msp;
  atomic_fetch_add(&g_many_calls, 1);
  atomic_max(&g_many_max_room, (int)(room(msp, limit) < (1 << 30) ? room(msp, limit) : (1 << 30)));
  GC_word* buf = (GC_word*)addr[M_BUF];
  GC_word count = addr[M_COUNT];
  if (buf == NULL) return msp;
  GC_word i = env;
  if (i == 0) {
    atomic_fetch_add(&g_calls[id], 1);
    atomic_fetch_add(&g_many_first_calls, 1);
    msp = GC_MARK_AND_PUSH(buf, msp, limit, (void**)&addr[M_BUF]);
  }
  for (int d = 0; d < DIRECT && i < count; d++, i++) msp = GC_MARK_AND_PUSH((void*)buf[i], msp, limit, (void**)&buf[i]);
  if (i >= count) return msp;
  ptrdiff_t free_entries = room(msp, limit);
  if (free_entries < 1) {
    /* Nowhere to push (the children are pointer-free and push nothing:
     * not expected): the rest here. */
    for (; i < count; i++) msp = GC_MARK_AND_PUSH((void*)buf[i], msp, limit, (void**)&buf[i]);
    return msp;
  }
  GC_word ranges = (count - i + RANGE_WORDS - 1) / RANGE_WORDS;
  if (ranges > (GC_word)free_entries) {
    ranges = (GC_word)free_entries - 1;
    GC_word next = i + ranges * RANGE_WORDS;
    msp = push_entry(msp, addr, GC_MAKE_PROC((GC_word)g_many_proc, next));
    atomic_fetch_add(&g_many_self_pushes, 1);
    count = next;
  }
  for (; i < count; i += RANGE_WORDS) {
    GC_word words = count - i < RANGE_WORDS ? count - i : RANGE_WORDS;
    msp = push_entry(msp, &buf[i], (words * WORD_BYTES) | GC_DS_LENGTH);
    atomic_fetch_add(&g_many_ranges, 1);
  }
  return msp;
}

static watch_t g_many_children[MANY / SAMPLE + 1];
static watch_t g_many_buffer;
static uintptr_t g_many_hidden;
#define SAMPLES (MANY / SAMPLE + 1)

static int sample_slot(int s) { return s < MANY / SAMPLE ? s * SAMPLE + SAMPLE / 2 : MANY - 1; }

static NOINLINE void make_many(int id) {
  GC_word* object = new_object(g_many, M_WORDS * WORD_BYTES, id);
  void** buf = GC_malloc_atomic(MANY * sizeof(void*));
  CHECK(buf != NULL);
  /* Counted as they come: collections while the children are made find
   * them through the procedure only (buf is not scanned). */
  object[M_BUF] = (GC_word)buf;
  for (int s = 0; s < MANY; s++) {
    void* child = GC_malloc_atomic(16);
    CHECK(child != NULL);
    fill(child, 16, (unsigned)s);
    buf[s] = child;
    object[M_COUNT] = (GC_word)s + 1;
  }
  for (int s = 0; s < SAMPLES; s++) watch(&g_many_children[s], buf[sample_slot(s)]);
  watch(&g_many_buffer, buf);
  g_many_hidden = hide(object);
  mp_root[0] = object;
}

static NOINLINE int many_intact(int upto) {
  GC_word* object = reveal(g_many_hidden);
  void** buf = (void**)object[M_BUF];
  for (int s = 0; s < upto; s++)
    if (!filled(buf[s], 16, (unsigned)s)) return 0;
  return 1;
}

static NOINLINE void set_many_count(GC_word count) { ((GC_word*)reveal(g_many_hidden))[M_COUNT] = count; }

static void test_many_entries_in_pieces(void) {
  int id = new_ids(1);
  make_many(id);
  collect();
  atomic_store(&g_many_first_calls, 0);
  atomic_store(&g_many_self_pushes, 0);
  atomic_store(&g_many_ranges, 0);
  atomic_store(&g_many_max_room, 0);
  atomic_store(&g_many_calls, 0);
  collect();
  check_no_errors();
  CHECK_CMP(atomic_load(&g_many_first_calls), >=, 1);
  CHECK_CMP(atomic_load(&g_many_first_calls), <=, 2);
  /* It had to stop at the limit: the ranges were more than any room it
   * was given, and it went on from where it stopped. */
  int needed = (MANY - DIRECT) / RANGE_WORDS;
  if (getenv("MGC_COMPAT_VERBOSE"))
    fprintf(stderr, "many: %d calls, %d pushed itself back, %d ranges, largest room %d, smallest %d\n",
            atomic_load(&g_many_calls), atomic_load(&g_many_self_pushes), atomic_load(&g_many_ranges),
            atomic_load(&g_many_max_room), atomic_load(&g_min_room));
  if (atomic_load(&g_many_max_room) < needed) CHECK_CMP(atomic_load(&g_many_self_pushes), >=, 1);
  CHECK_CMP(atomic_load(&g_many_ranges), >=, needed - DIRECT * atomic_load(&g_many_self_pushes));
  CHECK(alive(&g_many_buffer));
  CHECK_ALL_ALIVE(g_many_children, SAMPLES);
  CHECK(many_intact(MANY));

  /* Half of them: the rest of the buffer is not scanned any more. */
  set_many_count(MANY / 2);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_many_children, SAMPLES / 2);
  CHECK_MOSTLY_RECLAIMED(g_many_children + SAMPLES / 2, SAMPLES - SAMPLES / 2);
  CHECK(many_intact(MANY / 2));

  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_many_children, SAMPLES);
  unwatch_all(g_many_children, SAMPLES);
  unwatch(&g_many_buffer);
}

/* --- in pieces through GC_MARK_AND_PUSH ------------------------------------------------------ */

/* COUNT children inline from word CHILDREN on; CHUNK a call, the
 * procedure pushing itself back (first, so that its entry is below what
 * the children push). */
enum { C_COUNT = W_DATA, C_CHILDREN };
#define CHUNKED_CHILDREN 512
#define CHUNK 16
#define CHUNKED_N 4
#define CHUNKED_WORDS (C_CHILDREN + CHUNKED_CHILDREN)

static unsigned g_chunked_proc;
static int g_chunked;
static atomic_int g_chunked_calls[CHUNKED_N];

static struct GC_ms_entry* chunked_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit,
                                        GC_word env) {
  int id = enter(addr, msp, limit);
  if (id < 0) return msp;
  if (env == 0) atomic_fetch_add(&g_calls[id], 1);
  GC_word index = addr[C_COUNT] >> 32; /* the test's own index, in the high half */
  if (index < CHUNKED_N) atomic_fetch_add(&g_chunked_calls[index], 1);
  GC_word count = addr[C_COUNT] & 0xFFFFFFFFu;
  GC_word i = env, end = i + CHUNK < count ? i + CHUNK : count;
  if (end < count) msp = push_entry(msp, addr, GC_MAKE_PROC((GC_word)g_chunked_proc, end));
  for (; i < end; i++) msp = GC_MARK_AND_PUSH((void*)addr[C_CHILDREN + i], msp, limit, (void**)&addr[C_CHILDREN + i]);
  return msp;
}

static watch_t g_chunked_children[CHUNKED_N * CHUNKED_CHILDREN];
static uintptr_t g_chunked_hidden[CHUNKED_N];

static NOINLINE void make_chunked(int n, int id) {
  GC_word* object = new_object(g_chunked, CHUNKED_WORDS * WORD_BYTES, id);
  /* The count first: a collection while the children are made must find
   * the ones already there through the procedure. */
  object[C_COUNT] = ((GC_word)n << 32) | CHUNKED_CHILDREN;
  for (int i = 0; i < CHUNKED_CHILDREN; i++) {
    void* child = new_child(i);
    object[C_CHILDREN + i] = (GC_word)child;
    watch(&g_chunked_children[n * CHUNKED_CHILDREN + i], child);
  }
  g_chunked_hidden[n] = hide(object);
  mp_root[n] = object;
}

static NOINLINE int chunked_intact(int n, int upto) {
  GC_word* object = reveal(g_chunked_hidden[n]);
  for (int i = 0; i < upto; i++)
    if (!child_ok((void*)object[C_CHILDREN + i], i)) return 0;
  return 1;
}

static NOINLINE void halve_chunked(int n) {
  GC_word* object = reveal(g_chunked_hidden[n]);
  object[C_COUNT] = ((GC_word)n << 32) | (CHUNKED_CHILDREN / 2);
}

static void test_in_pieces(void) {
  int first = new_ids(CHUNKED_N);
  for (int n = 0; n < CHUNKED_N; n++) make_chunked(n, first + n);
  collect();
  reset_calls();
  for (int n = 0; n < CHUNKED_N; n++) atomic_store(&g_chunked_calls[n], 0);
  collect();
  check_once_per_cycle(first, CHUNKED_N, 1);
  check_no_errors();
  for (int n = 0; n < CHUNKED_N; n++) CHECK_CMP(atomic_load(&g_chunked_calls[n]), >=, CHUNKED_CHILDREN / CHUNK);
  CHECK_ALL_ALIVE(g_chunked_children, CHUNKED_N * CHUNKED_CHILDREN);
  for (int n = 0; n < CHUNKED_N; n++) CHECK(chunked_intact(n, CHUNKED_CHILDREN));

  /* The procedure looks at the first half only now. */
  for (int n = 0; n < CHUNKED_N; n++) halve_chunked(n);
  collect();
  for (int n = 0; n < CHUNKED_N; n++) {
    CHECK_ALL_ALIVE(g_chunked_children + n * CHUNKED_CHILDREN, CHUNKED_CHILDREN / 2);
    CHECK_MOSTLY_RECLAIMED(g_chunked_children + n * CHUNKED_CHILDREN + CHUNKED_CHILDREN / 2, CHUNKED_CHILDREN / 2);
    CHECK(chunked_intact(n, CHUNKED_CHILDREN / 2));
  }
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_chunked_children, CHUNKED_N * CHUNKED_CHILDREN);
  unwatch_all(g_chunked_children, CHUNKED_N * CHUNKED_CHILDREN);
}

/* --- mark bits from a procedure -------------------------------------------------------------- */

/* SET: marked with GC_set_mark_bit only (kept, not scanned: what its
 * word 0 points to goes); CLEARED: marked, then cleared (goes); PUSHED:
 * through GC_MARK_AND_PUSH (marked afterwards). */
enum { K_SET = W_DATA, K_CLEARED, K_PUSHED, K_WORDS };

static int g_bits;
static atomic_int g_bits_calls, g_self_unmarked, g_set_unmarked, g_cleared_marked, g_set_then_marked, g_pushed_unmarked;

static struct GC_ms_entry* bits_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit, GC_word env) {
  (void)env;
  int id = enter(addr, msp, limit);
  if (id < 0) return msp;
  atomic_fetch_add(&g_calls[id], 1);
  atomic_fetch_add(&g_bits_calls, 1);
  if (!GC_is_marked(addr)) atomic_fetch_add(&g_self_unmarked, 1);
  void* set = (void*)addr[K_SET];
  if (set != NULL) {
    GC_set_mark_bit(set);
    if (GC_is_marked(set) != 1) atomic_fetch_add(&g_set_unmarked, 1);
  }
  void* cleared = (void*)addr[K_CLEARED];
  if (cleared != NULL) {
    GC_set_mark_bit(cleared);
    if (GC_is_marked(cleared) != 1) atomic_fetch_add(&g_set_then_marked, 1);
    GC_clear_mark_bit(cleared);
    if (GC_is_marked(cleared) != 0) atomic_fetch_add(&g_cleared_marked, 1);
  }
  void* pushed = (void*)addr[K_PUSHED];
  if (pushed != NULL) {
    msp = GC_MARK_AND_PUSH(pushed, msp, limit, (void**)&addr[K_PUSHED]);
    if (GC_is_marked(pushed) != 1) atomic_fetch_add(&g_pushed_unmarked, 1);
  }
  return msp;
}

static watch_t g_set[N], g_set_child[N], g_cleared[N], g_pushed[N], g_bits_objects[N];
static uintptr_t g_bits_hidden[N];

static NOINLINE void make_bits(int i, int id) {
  GC_word* object = new_object(g_bits, K_WORDS * WORD_BYTES, id);
  void** set = new_child(i);
  void* set_child = new_child(i);
  set[0] = set_child;
  void* cleared = new_child(i);
  void* pushed = new_child(i);
  object[K_SET] = (GC_word)set;
  object[K_CLEARED] = (GC_word)cleared;
  object[K_PUSHED] = (GC_word)pushed;
  watch(&g_set[i], set);
  watch(&g_set_child[i], set_child);
  watch(&g_cleared[i], cleared);
  watch(&g_pushed[i], pushed);
  watch(&g_bits_objects[i], object);
  g_bits_hidden[i] = hide(object);
  mp_root[i] = object;
}

static NOINLINE int bits_intact(int i) {
  GC_word* object = reveal(g_bits_hidden[i]);
  return child_ok((void*)object[K_SET], i) && child_ok((void*)object[K_PUSHED], i);
}

/* The cleared objects are gone: their addresses must not reach the
 * procedure again (their memory may hold new objects by now). */
static NOINLINE void forget_cleared(void) {
  for (int i = 0; i < N; i++) ((GC_word*)reveal(g_bits_hidden[i]))[K_CLEARED] = 0;
}

static void test_mark_bits(void) {
  int first = new_ids(N);
  for (int i = 0; i < N; i++) make_bits(i, first + i);
  reset_calls();
  collect();
  forget_cleared();
  check_once_per_cycle(first, N, 1);
  check_no_errors();
  CHECK_CMP(atomic_load(&g_bits_calls), >=, N);
  CHECK_CMP(atomic_load(&g_self_unmarked), ==, 0);
  CHECK_CMP(atomic_load(&g_set_unmarked), ==, 0);
  CHECK_CMP(atomic_load(&g_set_then_marked), ==, 0);
  CHECK_CMP(atomic_load(&g_cleared_marked), ==, 0);
  CHECK_CMP(atomic_load(&g_pushed_unmarked), ==, 0);
  CHECK_ALL_ALIVE(g_bits_objects, N);
  CHECK_ALL_ALIVE(g_set, N);
  CHECK_ALL_ALIVE(g_pushed, N);
  for (int i = 0; i < N; i++) CHECK(bits_intact(i));
  CHECK_MOSTLY_RECLAIMED(g_set_child, N); /* marked, never scanned */
  CHECK_MOSTLY_RECLAIMED(g_cleared, N);
  collect();
  CHECK_ALL_ALIVE(g_set, N);
  clear_roots();
  collect();
  CHECK_MOSTLY_RECLAIMED(g_bits_objects, N);
  CHECK_MOSTLY_RECLAIMED(g_set, N);
  CHECK_MOSTLY_RECLAIMED(g_pushed, N);
  unwatch_all(g_set, N);
  unwatch_all(g_set_child, N);
  unwatch_all(g_cleared, N);
  unwatch_all(g_pushed, N);
  unwatch_all(g_bits_objects, N);
}

/* --- the plausible heap bounds ------------------------------------------------------------ */

typedef struct {
  uintptr_t least, greatest;
} bounds_t;

static void* GC_CALLBACK read_bounds(void* arg) {
  bounds_t* b = arg;
  b->least = (uintptr_t)GC_least_plausible_heap_addr;
  b->greatest = (uintptr_t)GC_greatest_plausible_heap_addr;
  return NULL;
}

static NOINLINE void check_in_bounds(const void* p) {
  bounds_t b;
  GC_call_with_alloc_lock(read_bounds, &b);
  CHECK(b.least < b.greatest);
  uintptr_t a = (uintptr_t)p;
  size_t size = GC_size(p);
  CHECK(a >= b.least);
  CHECK(a < b.greatest);
  CHECK(a + size - 1 <= b.greatest);
}

#define GROWTH_BLOCK (1024 * 1024)
#define BOUNDS_CHILDREN 6
void* volatile mp_growth;

static NOINLINE void check_objects_in_bounds(void) {
  static const size_t sizes[] = {16, 100, 2048, 40 * 1024, 1024 * 1024, 16 * 1024 * 1024};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    check_in_bounds(GC_malloc(sizes[s]));
    check_in_bounds(GC_malloc_atomic(sizes[s]));
    check_in_bounds(GC_generic_malloc(sizes[s], g_basic));
  }
}

/* A procedure object whose children (small and large, made after the
 * heap grew) reach it only through GC_MARK_AND_PUSH's inline test. */
static watch_t g_bounds_children[BOUNDS_CHILDREN], g_bounds_objects[BOUNDS_CHILDREN / 2];

static NOINLINE void make_bounds_objects(int first) {
  static const size_t sizes[] = {CHILD, 8 * 1024 * 1024};
  for (int i = 0; i < BOUNDS_CHILDREN / 2; i++) {
    GC_word* object = new_object(g_basic, B_WORDS * WORD_BYTES, first + i);
    void* keep = GC_malloc(sizes[i % 2]);
    void* keep_fn = GC_malloc_atomic(sizes[(i + 1) % 2]);
    CHECK(keep != NULL && keep_fn != NULL);
    check_in_bounds(object);
    check_in_bounds(keep);
    check_in_bounds(keep_fn);
    object[B_KEEP] = (GC_word)keep;
    object[B_KEEP_FN] = (GC_word)keep_fn;
    watch(&g_bounds_children[2 * i], keep);
    watch(&g_bounds_children[2 * i + 1], keep_fn);
    watch(&g_bounds_objects[i], object);
    mp_root[i] = object;
  }
}

/* Keeps more than the whole heap holds now: it has to grow. */
static NOINLINE void grow_heap(void) {
  size_t count = GC_get_heap_size() / GROWTH_BLOCK + 32;
  void** blocks = GC_malloc(count * sizeof(void*));
  CHECK(blocks != NULL);
  mp_growth = blocks;
  for (size_t i = 0; i < count; i++) {
    blocks[i] = GC_malloc_atomic(GROWTH_BLOCK);
    CHECK(blocks[i] != NULL);
    check_in_bounds(blocks[i]);
  }
}

static void test_plausible_bounds(void) {
  check_objects_in_bounds();
  size_t heap = GC_get_heap_size();
  grow_heap();
  CHECK_CMP(GC_get_heap_size(), >, heap);
  check_objects_in_bounds();
  int first = new_ids(BOUNDS_CHILDREN / 2);
  make_bounds_objects(first);
  reset_calls();
  collect();
  check_no_errors(); /* every object a procedure saw was in bounds */
  check_once_per_cycle(first, BOUNDS_CHILDREN / 2, 1);
  CHECK_ALL_ALIVE(g_bounds_objects, BOUNDS_CHILDREN / 2);
  CHECK_ALL_ALIVE(g_bounds_children, BOUNDS_CHILDREN);
  clear_roots();
  mp_growth = NULL;
  collect();
  unwatch_all(g_bounds_children, BOUNDS_CHILDREN);
  unwatch_all(g_bounds_objects, BOUNDS_CHILDREN / 2);
}

static int new_proc_kind(GC_mark_proc proc, GC_word env, unsigned* index) {
  unsigned i = GC_new_proc(proc);
  if (index) *index = i;
  return (int)GC_new_kind(GC_new_free_list(), GC_MAKE_PROC((GC_word)i, env), 0, 1);
}

/* --- old data in slots not handed out yet ---------------------------------------------------- */

/* A procedure runs on whatever a conservative word points to, so it may
 * be called on a slot no program holds (guile's thread procedure returns
 * at once when it finds a cleared object there, and follows its words
 * otherwise). Boehm clears the free objects of a clear kind; here a
 * thread's cache reserves free slots before it hands them out, and those
 * must be cleared too. Objects of the kind are filled with STALE and
 * dropped; after a collection freed them, one new object makes a cache
 * reserve their slots again, and words pointing at every 16 bytes of its
 * page make the next collection call the procedure on all of them: none
 * may show STALE. */
#define STALE ((GC_word)0x5354414C45535441ull) /* "STALESTA" */
#define STALE_COUNT 4000
#define STALE_ROOTS 512 /* every 16 bytes of an 8 KiB page */
static int g_stale_kind;
static atomic_int g_stale_seen, g_stale_calls;
uintptr_t volatile mp_stale_root[STALE_ROOTS];

static struct GC_ms_entry* stale_proc(GC_word* addr, struct GC_ms_entry* msp, struct GC_ms_entry* limit, GC_word env) {
  (void)limit, (void)env;
  atomic_fetch_add(&g_stale_calls, 1);
  for (int w = 1; w < 6; w++)
    if (addr[w] == STALE) atomic_fetch_add(&g_stale_seen, 1);
  return msp;
}

/* Whole spans of ordinary objects full of STALE, dropped: their pages go
 * back to the heap with the words still in them, and a span of the
 * procedure's kind made next may get them. */
static NOINLINE void drop_stale_objects(void) {
  for (int i = 0; i < STALE_COUNT; i++) {
    GC_word* object = GC_malloc(6 * WORD_BYTES);
    CHECK(object != NULL);
    for (int w = 0; w < 6; w++) object[w] = STALE;
  }
}

static NOINLINE void point_at_page_of_new_object(void) {
  GC_word* object = GC_generic_malloc(6 * WORD_BYTES, g_stale_kind);
  CHECK(object != NULL);
  CHECK(all_zero(object, 6 * WORD_BYTES));
  uintptr_t page = (uintptr_t)object & ~(uintptr_t)8191;
  for (int i = 0; i < STALE_ROOTS; i++) mp_stale_root[i] = page + 16 * (uintptr_t)i;
}

/* The reservation must belong to another thread: a collecting thread
 * gives its own cache back first. This one allocates, then waits (its
 * cache holding what it reserved) until the collection is over. */
static pthread_mutex_t g_stale_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_stale_cond = PTHREAD_COND_INITIALIZER;
static int g_stale_state; /* 0 start, 1 allocated, 2 collected */

static void* stale_holder(void* arg) {
  (void)arg;
  point_at_page_of_new_object();
  pthread_mutex_lock(&g_stale_lock);
  g_stale_state = 1;
  pthread_cond_broadcast(&g_stale_cond);
  while (g_stale_state != 2) pthread_cond_wait(&g_stale_cond, &g_stale_lock);
  pthread_mutex_unlock(&g_stale_lock);
  return NULL;
}

static void test_no_old_data(void) {
  g_stale_kind = new_proc_kind(stale_proc, 0, NULL);
  for (int round = 0; round < 4; round++) {
    drop_stale_objects();
    collect();
    collect();
    atomic_store(&g_stale_seen, 0);
    atomic_store(&g_stale_calls, 0);
    g_stale_state = 0;
    pthread_t holder;
    CHECK(pthread_create(&holder, NULL, stale_holder, NULL) == 0);
    pthread_mutex_lock(&g_stale_lock);
    while (g_stale_state != 1) pthread_cond_wait(&g_stale_cond, &g_stale_lock);
    pthread_mutex_unlock(&g_stale_lock);
    collect();
    pthread_mutex_lock(&g_stale_lock);
    g_stale_state = 2;
    pthread_cond_broadcast(&g_stale_cond);
    pthread_mutex_unlock(&g_stale_lock);
    CHECK(pthread_join(holder, NULL) == 0);
    for (int i = 0; i < STALE_ROOTS; i++) mp_stale_root[i] = 0;
#if defined(__SANITIZE_ADDRESS__) && !defined(MGC_BOEHM_REFERENCE)
    /* Sanitizer builds keep reserved slots poisoned and call no mark
     * procedure on them (an instrumented one would read poisoned memory). */
    CHECK_CMP(atomic_load(&g_stale_calls), >=, 1); /* the new object */
#else
    CHECK_CMP(atomic_load(&g_stale_calls), >, 1); /* the new object and reserved slots */
#endif
    CHECK_CMP(atomic_load(&g_stale_seen), ==, 0);
  }
}

int main(void) {
  GC_INIT();
  g_basic = new_proc_kind(basic_proc, BASIC_ENV, &g_basic_proc);
  g_range = new_proc_kind(range_proc, 0, NULL);
  g_many = new_proc_kind(many_proc, 0, &g_many_proc);
  g_chunked = new_proc_kind(chunked_proc, 0, &g_chunked_proc);
  g_bits = new_proc_kind(bits_proc, 0, NULL);
  CHECK(g_basic_proc != g_many_proc && g_many_proc != g_chunked_proc);
  run("keeps what it pushes, the rest goes", test_keeps_what_it_pushes);
  run("once per object and cycle, however many paths", test_once_per_object);
  run("objects of several threads", test_several_threads);
  run("pushes a range with a length descriptor", test_pushes_a_range);
  run("more entries than the limit: in pieces", test_many_entries_in_pieces);
  run("in pieces through GC_MARK_AND_PUSH", test_in_pieces);
  run("GC_set_mark_bit, GC_clear_mark_bit, GC_is_marked", test_mark_bits);
  run("GC_least/greatest_plausible_heap_addr", test_plausible_bounds);
  run("never on old data in a reserved slot", test_no_old_data);
  return finish();
}
