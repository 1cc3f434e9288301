/* Finalization: GC_register_finalizer runs fn(obj, cd) once, after obj
 * becomes unreachable and never before; the previous fn and cd come back
 * through ofn/ocd and fn == 0 removes; cd keeps what it points to; Boehm's
 * topological order (A -> B, both finalizable: A first, B in a later
 * collection); cycles are never finalized with GC_register_finalizer but
 * are with _no_order; _ignore_self ignores a pointer to itself;
 * _unreachable with GC_java_finalization waits while a _no_order object
 * still points to it. Where finalizers run: by default in GC_gcollect's
 * caller before it returns, or in a thread that allocates; with
 * GC_set_finalize_on_demand(1) (or the variable GC_finalize_on_demand)
 * only in GC_invoke_finalizers, with GC_should_invoke_finalizers and the
 * GC_set_finalizer_notifier function telling when some are queued.
 *
 * Every test has its batches of objects to itself: an object of an
 * earlier test that a stale reference kept (see compat_test.h) may still
 * be finalized during a later test, and then touches only its own batch. */
#include <pthread.h>

#include "compat_test.h"

#define N 16
#define SIZE 64
#define HEADER (2 * sizeof(void*)) /* words 0 and 1 are for links, the rest is filled */

typedef struct batch batch_t;

typedef struct {
  batch_t* batch;
  int index;
} slot_t;

struct batch {
  slot_t slot[N]; /* the client data of object i is &slot[i] */
  uintptr_t hidden[N];
  watch_t watch[N];      /* short links */
  watch_t long_watch[N]; /* long links */
  int runs[N];
  GC_word gc_no[N]; /* GC_get_gc_no() when the finalizer ran */
  int intact[N];    /* obj was the object, with its contents */
  int links_ok[N];  /* when it ran, the short link was cleared, the long one not */
  pthread_t ran_on[N];
  batch_t* first;   /* when set, the finalizer of first's object i must have run in an earlier collection */
  batch_t* pointee; /* when set, obj's word 0 points to pointee's object i, not finalized yet */
  int order_ok[N];
};

static pthread_t g_main_thread;
static volatile int g_total_runs; /* all finalizers of this program */

static void init_batch(batch_t* b) {
  memset(b, 0, sizeof *b);
  for (int i = 0; i < N; i++) {
    b->slot[i].batch = b;
    b->slot[i].index = i;
  }
}

static void release_batch(batch_t* b) {
  unwatch_all(b->watch, N);
  unwatch_all(b->long_watch, N);
}

static void GC_CALLBACK record(void* obj, void* cd) {
  slot_t* s = cd;
  batch_t* b = s->batch;
  int i = s->index;
  g_total_runs++;
  b->runs[i]++;
  b->gc_no[i] = GC_get_gc_no();
  b->ran_on[i] = pthread_self();
  b->intact[i] = hide(obj) == b->hidden[i] && filled((char*)obj + HEADER, SIZE - HEADER, (unsigned)i);
  b->links_ok[i] = !alive(&b->watch[i]) && alive(&b->long_watch[i]);
  b->order_ok[i] = 1;
  if (b->first && !(b->first->runs[i] == 1 && b->first->gc_no[i] < b->gc_no[i])) b->order_ok[i] = 0;
  if (b->pointee) {
    void* next = *(void**)obj;
    if (b->pointee->runs[i] != 0 || hide(next) != b->pointee->hidden[i] ||
        !filled((char*)next + HEADER, SIZE - HEADER, (unsigned)i))
      b->order_ok[i] = 0;
  }
}

static void GC_CALLBACK other_finalizer(void* obj, void* cd) {
  (void)obj;
  (void)cd;
  g_total_runs++;
}

static int runs(const batch_t* b) {
  int count = 0;
  for (int i = 0; i < N; i++) count += b->runs[i] != 0;
  return count;
}

/* Each finalizer ran at most once, with its object intact. */
static void check_runs_sane(const batch_t* b) {
  for (int i = 0; i < N; i++) {
    CHECK_CMP(b->runs[i], <=, 1);
    if (b->runs[i]) CHECK(b->intact[i]);
    if (b->runs[i]) CHECK(b->order_ok[i]);
    if (b->runs[i]) CHECK(b->links_ok[i]);
  }
}

#define CHECK_MOSTLY_RAN(b) CHECK_CMP(runs(b) * 8, >=, 7 * N)

typedef void(GC_CALL* register_fn)(void*, GC_finalization_proc, void*, GC_finalization_proc*, void**);

void* volatile finalize_root[N];

static void clear_roots(void) {
  for (int i = 0; i < N; i++) finalize_root[i] = NULL;
}

static NOINLINE void* new_object(batch_t* b, int i, register_fn reg) {
  void** p = GC_malloc(SIZE);
  CHECK(p != NULL);
  fill((char*)p + HEADER, SIZE - HEADER, (unsigned)i);
  b->hidden[i] = hide(p);
  watch(&b->watch[i], p);
  watch_long(&b->long_watch[i], p);
  if (reg) reg(p, record, &b->slot[i], NULL, NULL);
  return p;
}

static NOINLINE void make_batch(batch_t* b, register_fn reg, int rooted) {
  init_batch(b);
  for (int i = 0; i < N; i++) {
    void* p = new_object(b, i, reg);
    if (rooted) finalize_root[i] = p;
  }
}

/* --- once, after unreachable ------------------------------------------------------ */

static batch_t b_once, b_rooted;

static void test_runs_once(void) {
  make_batch(&b_once, GC_register_finalizer, 0);
  collect();
  /* Ran in GC_gcollect's caller, before it returned. */
  CHECK_MOSTLY_RAN(&b_once);
  for (int i = 0; i < N; i++)
    if (b_once.runs[i]) CHECK(pthread_equal(b_once.ran_on[i], g_main_thread));
  CHECK_MOSTLY_RECLAIMED(b_once.watch, N); /* short links clear before finalizers run */
  collect();
  collect();
  check_runs_sane(&b_once);                     /* never twice */
  CHECK_MOSTLY_RECLAIMED(b_once.long_watch, N); /* freed after */
  release_batch(&b_once);
}

static void test_not_while_reachable(void) {
  make_batch(&b_rooted, GC_register_finalizer, 1);
  for (int i = 0; i < 3; i++) collect();
  CHECK_CMP(runs(&b_rooted), ==, 0);
  CHECK_ALL_ALIVE(b_rooted.watch, N);
  CHECK_ALL_ALIVE(b_rooted.long_watch, N);
  clear_roots();
  collect();
  CHECK_MOSTLY_RAN(&b_rooted);
  check_runs_sane(&b_rooted);
  release_batch(&b_rooted);
}

/* --- ofn, ocd, removal ----------------------------------------------------------- */

static batch_t b_removed;

static NOINLINE void registrations(int i) {
  void* p = new_object(&b_removed, i, NULL);
  static int cd1, cd2;
  GC_finalization_proc ofn = other_finalizer;
  void* ocd = &cd1;
  GC_register_finalizer(p, record, &cd1, &ofn, &ocd);
  CHECK(ofn == NULL && ocd == NULL); /* none before */
  GC_register_finalizer(p, other_finalizer, &cd2, &ofn, &ocd);
  CHECK(ofn == record && ocd == &cd1);
  GC_register_finalizer(p, record, &b_removed.slot[i], NULL, NULL); /* ofn, ocd may be NULL */
  GC_register_finalizer(p, 0, NULL, &ofn, &ocd);                    /* fn == 0 removes */
  CHECK(ofn == record && ocd == &b_removed.slot[i]);
  GC_register_finalizer(p, 0, NULL, &ofn, &ocd);
  CHECK(ofn == NULL && ocd == NULL);
}

static void test_ofn_ocd_and_removal(void) {
  init_batch(&b_removed);
  for (int i = 0; i < N; i++) registrations(i);
  collect();
  collect();
  CHECK_CMP(runs(&b_removed), ==, 0);
  CHECK_MOSTLY_RECLAIMED(b_removed.long_watch, N); /* collected without a finalizer */
  release_batch(&b_removed);

  /* Outside the heap: fn is ignored, *ofn and *ocd set to NULL. */
  static int not_heap;
  GC_finalization_proc ofn = other_finalizer;
  void* ocd = &not_heap;
  GC_register_finalizer(&not_heap, record, &not_heap, &ofn, &ocd);
  CHECK(ofn == NULL && ocd == NULL);
}

/* --- client data ------------------------------------------------------------------- */

static batch_t b_cd_owner, b_cd;

/* Object i of b_cd_owner is rooted and finalizable, its client data is
 * object i of b_cd (referenced nowhere else), whose word 0 holds the slot
 * the finalizer needs. */
static void GC_CALLBACK record_via_cd(void* obj, void* cd) {
  void** data = cd;
  slot_t* s = data[0];
  record(obj, s);
  batch_t* b = s->batch;
  /* The client data is intact too. */
  if (hide(data) != b_cd.hidden[s->index] || !filled((char*)data + HEADER, SIZE - HEADER, (unsigned)s->index))
    b->intact[s->index] = 0;
}

static NOINLINE void make_cd_pair(int i) {
  void* owner = new_object(&b_cd_owner, i, NULL);
  void** data = new_object(&b_cd, i, NULL);
  data[0] = &b_cd_owner.slot[i];
  GC_register_finalizer(owner, record_via_cd, data, NULL, NULL);
  finalize_root[i] = owner;
}

static void test_client_data_kept(void) {
  init_batch(&b_cd_owner);
  init_batch(&b_cd);
  for (int i = 0; i < N; i++) make_cd_pair(i);
  collect();
  collect();
  CHECK_ALL_ALIVE(b_cd.watch, N); /* reachable through cd only */
  clear_roots();
  collect();
  CHECK_MOSTLY_RAN(&b_cd_owner);
  check_runs_sane(&b_cd_owner);
  collect();
  collect();
  CHECK_MOSTLY_RECLAIMED(b_cd.long_watch, N); /* released once the finalizer ran */
  release_batch(&b_cd_owner);
  release_batch(&b_cd);
}

/* --- order ---------------------------------------------------------------------- */

static batch_t b_a, b_b;

/* a -> b, both registered with `reg`. */
static NOINLINE void make_chain(batch_t* a, batch_t* b, int i, register_fn reg_a, register_fn reg_b, int cycle) {
  void** pa = new_object(a, i, NULL);
  void** pb = new_object(b, i, NULL);
  pa[0] = pb;
  if (cycle) pb[0] = pa;
  reg_a(pa, record, &a->slot[i], NULL, NULL);
  reg_b(pb, record, &b->slot[i], NULL, NULL);
}

static void test_topological_order(void) {
  init_batch(&b_a);
  init_batch(&b_b);
  b_a.pointee = &b_b; /* when a's finalizer runs, b's has not */
  b_b.first = &b_a;   /* b's runs in a later collection than a's */
  for (int i = 0; i < N; i++) make_chain(&b_a, &b_b, i, GC_register_finalizer, GC_register_finalizer, 0);
  collect();
  CHECK_MOSTLY_RAN(&b_a);
  CHECK_CMP(runs(&b_b), ==, 0); /* the pointees wait */
  for (int i = 0; i < 4; i++) collect();
  CHECK_MOSTLY_RAN(&b_b);
  check_runs_sane(&b_a);
  check_runs_sane(&b_b);
  release_batch(&b_a);
  release_batch(&b_b);
}

static batch_t b_cycle_a, b_cycle_b, b_free_a, b_free_b;

static NOINLINE void remove_finalizers(batch_t* b) {
  for (int i = 0; i < N; i++) GC_register_finalizer(reveal(b->hidden[i]), 0, NULL, NULL, NULL);
}

static void test_cycles(void) {
  /* Ordered: a finalizable cycle is never finalized (nor collected). */
  init_batch(&b_cycle_a);
  init_batch(&b_cycle_b);
  for (int i = 0; i < N; i++) make_chain(&b_cycle_a, &b_cycle_b, i, GC_register_finalizer, GC_register_finalizer, 1);
  for (int i = 0; i < 3; i++) collect();
  CHECK_CMP(runs(&b_cycle_a), ==, 0);
  CHECK_CMP(runs(&b_cycle_b), ==, 0);
  CHECK_MOSTLY_RECLAIMED(b_cycle_a.watch, N); /* short links: unreachable, */
  CHECK_ALL_ALIVE(b_cycle_a.long_watch, N);   /* long links: but not freed */
  CHECK_ALL_ALIVE(b_cycle_b.long_watch, N);
  /* Without the finalizers the cycles are ordinary garbage. */
  remove_finalizers(&b_cycle_a);
  remove_finalizers(&b_cycle_b);
  collect();
  CHECK_MOSTLY_RECLAIMED(b_cycle_a.long_watch, N);
  CHECK_MOSTLY_RECLAIMED(b_cycle_b.long_watch, N);
  CHECK_CMP(runs(&b_cycle_a) + runs(&b_cycle_b), ==, 0);
  release_batch(&b_cycle_a);
  release_batch(&b_cycle_b);

  /* _no_order: both members are finalized, in the same collection. */
  init_batch(&b_free_a);
  init_batch(&b_free_b);
  for (int i = 0; i < N; i++)
    make_chain(&b_free_a, &b_free_b, i, GC_register_finalizer_no_order, GC_register_finalizer_no_order, 1);
  collect();
  CHECK_MOSTLY_RAN(&b_free_a);
  CHECK_MOSTLY_RAN(&b_free_b);
  check_runs_sane(&b_free_a);
  check_runs_sane(&b_free_b);
  collect();
  CHECK_MOSTLY_RECLAIMED(b_free_a.long_watch, N);
  CHECK_MOSTLY_RECLAIMED(b_free_b.long_watch, N);
  release_batch(&b_free_a);
  release_batch(&b_free_b);
}

static batch_t b_self, b_self_ignored;

static NOINLINE void make_self_referencing(batch_t* b, register_fn reg) {
  init_batch(b);
  for (int i = 0; i < N; i++) {
    void** p = new_object(b, i, NULL);
    p[1] = p; /* a pointer to itself */
    reg(p, record, &b->slot[i], NULL, NULL);
  }
}

static void test_ignore_self(void) {
  make_self_referencing(&b_self, GC_register_finalizer);
  make_self_referencing(&b_self_ignored, GC_register_finalizer_ignore_self);
  collect();
  collect();
  CHECK_CMP(runs(&b_self), ==, 0); /* a cycle of one */
  CHECK_ALL_ALIVE(b_self.long_watch, N);
  CHECK_MOSTLY_RAN(&b_self_ignored);
  check_runs_sane(&b_self_ignored);
  remove_finalizers(&b_self);
  collect();
  CHECK_MOSTLY_RECLAIMED(b_self.long_watch, N);
  release_batch(&b_self);
  release_batch(&b_self_ignored);
}

/* --- _unreachable with GC_java_finalization -------------------------------------------- */

static batch_t b_no_order, b_unreachable, b_alone;

static void test_unreachable(void) {
  int java = GC_get_java_finalization();
  GC_set_java_finalization(1);
  CHECK(GC_get_java_finalization() == 1);

  /* n (_no_order) -> u (_unreachable): n's finalizer could still bring u
   * back, so u waits until n is gone. */
  init_batch(&b_no_order);
  init_batch(&b_unreachable);
  b_no_order.pointee = &b_unreachable;
  b_unreachable.first = &b_no_order;
  for (int i = 0; i < N; i++)
    make_chain(&b_no_order, &b_unreachable, i, GC_register_finalizer_no_order, GC_register_finalizer_unreachable, 0);
  /* Alone, an _unreachable object is finalized as any other. */
  make_batch(&b_alone, GC_register_finalizer_unreachable, 0);
  collect();
  CHECK_MOSTLY_RAN(&b_no_order);
  CHECK_MOSTLY_RAN(&b_alone);
  CHECK_CMP(runs(&b_unreachable), ==, 0);
  for (int i = 0; i < 4; i++) collect();
  CHECK_MOSTLY_RAN(&b_unreachable);
  check_runs_sane(&b_no_order);
  check_runs_sane(&b_unreachable);
  check_runs_sane(&b_alone);
  release_batch(&b_no_order);
  release_batch(&b_unreachable);
  release_batch(&b_alone);
  GC_set_java_finalization(java);
}

/* --- where finalizers run ----------------------------------------------------------- */

static batch_t b_thread;
static volatile int g_thread_allocations;

/* Allocates large objects (through the allocator's slow path) until the
 * queued finalizers have run here, or for a bounded while. */
static void* allocating_thread(void* arg) {
  (void)arg;
  for (int i = 0; i < 4000 && runs(&b_thread) * 8 < 7 * N; i++) {
    char* p = GC_malloc(64 * 1024);
    CHECK(p != NULL);
    p[0] = 1;
    g_thread_allocations++;
  }
  return NULL;
}

static void test_run_by_allocating_thread(void) {
  /* Queue them without running them, then let a thread allocate. */
  GC_set_finalize_on_demand(1);
  make_batch(&b_thread, GC_register_finalizer, 0);
  collect();
  CHECK_CMP(runs(&b_thread), ==, 0);
  CHECK(GC_should_invoke_finalizers());
  GC_set_finalize_on_demand(0);

  pthread_t t;
  CHECK(pthread_create(&t, NULL, allocating_thread, NULL) == 0); /* GC_pthread_create */
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_MOSTLY_RAN(&b_thread);
  check_runs_sane(&b_thread);
  for (int i = 0; i < N; i++)
    if (b_thread.runs[i]) CHECK(pthread_equal(b_thread.ran_on[i], t));
  release_batch(&b_thread);
}

static batch_t b_demand, b_demand_var;

static NOINLINE void allocate_garbage(int count) {
  for (int i = 0; i < count; i++) {
    char* p = GC_malloc(64 * 1024);
    CHECK(p != NULL);
    p[0] = 1;
  }
}

static void check_on_demand(batch_t* b) {
  make_batch(b, GC_register_finalizer, 0);
  collect();
  allocate_garbage(512); /* enough to collect again */
  collect();
  CHECK_CMP(runs(b), ==, 0); /* queued, not run */
  CHECK(GC_should_invoke_finalizers());
  int total = g_total_runs;
  int invoked = GC_invoke_finalizers();
  CHECK_CMP(invoked, ==, g_total_runs - total);
  CHECK_MOSTLY_RAN(b);
  check_runs_sane(b);
  for (int i = 0; i < N; i++)
    if (b->runs[i]) CHECK(pthread_equal(b->ran_on[i], g_main_thread));
  CHECK(!GC_should_invoke_finalizers());
  CHECK_CMP(GC_invoke_finalizers(), ==, 0);
  release_batch(b);
}

static void test_finalize_on_demand(void) {
  CHECK(GC_get_finalize_on_demand() == 0); /* the default */
  GC_set_finalize_on_demand(1);
  CHECK(GC_get_finalize_on_demand() == 1);
  check_on_demand(&b_demand);
  GC_set_finalize_on_demand(0);
  CHECK(GC_get_finalize_on_demand() == 0);

  /* Older programs write the variable. */
  GC_finalize_on_demand = 1;
  CHECK(GC_get_finalize_on_demand() == 1);
  check_on_demand(&b_demand_var);
  GC_finalize_on_demand = 0;
  CHECK(GC_get_finalize_on_demand() == 0);
}

static batch_t b_notified;
static volatile int g_notifications;

static void GC_CALLBACK notifier(void) { g_notifications++; }

static void test_finalizer_notifier(void) {
  GC_set_finalize_on_demand(1);
  CHECK(GC_get_finalizer_notifier() == NULL);
  GC_set_finalizer_notifier(notifier);
  CHECK(GC_get_finalizer_notifier() == notifier);

  GC_word gc_no = GC_get_gc_no();
  make_batch(&b_notified, GC_register_finalizer, 0);
  collect();
  CHECK_CMP(g_notifications, >=, 1);
  CHECK_CMP((GC_word)g_notifications, <=, GC_get_gc_no() - gc_no); /* at most once per collection */
  CHECK_CMP(runs(&b_notified), ==, 0);
  CHECK_CMP(GC_invoke_finalizers(), >=, 1);
  CHECK_MOSTLY_RAN(&b_notified);

  /* Nothing queued, no call. (A straggler from an earlier test may be
   * queued; then the call is right.) */
  int before = g_notifications;
  collect();
  if (!GC_should_invoke_finalizers()) CHECK_CMP(g_notifications, ==, before);
  GC_invoke_finalizers();

  GC_set_finalizer_notifier(0);
  CHECK(GC_get_finalizer_notifier() == NULL);
  GC_set_finalize_on_demand(0);
  release_batch(&b_notified);
}

static void test_invoke_finalizers_by_default(void) {
  collect(); /* runs whatever is queued */
  CHECK(!GC_should_invoke_finalizers());
  CHECK_CMP(GC_invoke_finalizers(), ==, 0);
}

int main(void) {
  GC_INIT();
  g_main_thread = pthread_self();
  GC_set_warn_proc(count_warning); /* Boehm warns of each finalization cycle */
  run("runs once, in GC_gcollect's caller", test_runs_once);
  run("not while reachable", test_not_while_reachable);
  run("ofn, ocd and removal", test_ofn_ocd_and_removal);
  run("client data kept", test_client_data_kept);
  run("topological order", test_topological_order);
  run("cycles, _no_order", test_cycles);
  run("_ignore_self", test_ignore_self);
  run("_unreachable with GC_java_finalization", test_unreachable);
  run("GC_invoke_finalizers by default", test_invoke_finalizers_by_default);
  run("run by an allocating thread", test_run_by_allocating_thread);
  run("GC_set_finalize_on_demand, GC_finalize_on_demand", test_finalize_on_demand);
  run("GC_set_finalizer_notifier", test_finalizer_notifier);
  return finish();
}
