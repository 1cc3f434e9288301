/* Finalization on demand, as guile and other runtimes with a finalizer
 * thread use it. With GC_set_finalize_on_demand(1), finalizers do not run
 * on their own: not in GC_gcollect's caller, not in threads that allocate
 * (however much they allocate and collect); GC_should_invoke_finalizers
 * is true once some are queued; GC_invoke_finalizers runs them in its
 * caller and returns how many ran. The GC_set_finalizer_notifier
 * function is called when finalizers are queued: at most once per
 * collection ("Invoked at most once per GC cycle"; Boehm records
 * GC_gc_no at each call), from a thread that allocates or collects (here
 * the main thread: the notifier runs after GC_gcollect's collection, or
 * when an allocation finds the queue non-empty after one), and not at
 * all when nothing is queued. A finalizer thread of the program, woken
 * through a pipe the notifier writes to, runs them all while the main
 * thread allocates and collects. After GC_set_finalize_on_demand(0) they
 * run on their own again (in GC_gcollect's caller), and the notifier is
 * "never invoked unless GC_finalize_on_demand is set".
 *
 * Every test has its batches to itself (see finalize_test.c): a
 * straggler of an earlier test may still be finalized later, and counts
 * only in the totals, which the checks allow for. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "compat_test.h"

#define N 16
#define SIZE 64

typedef struct batch batch_t;

typedef struct {
  batch_t* batch;
  int index;
} slot_t;

struct batch {
  slot_t slot[N];
  uintptr_t hidden[N];
  watch_t watch[N];
  atomic_int runs[N];
  pthread_t ran_on[N];
  int intact[N];
};

static pthread_t g_main_thread;
static atomic_int g_total_runs; /* every finalizer of this program */

static void GC_CALLBACK record(void* obj, void* cd) {
  slot_t* s = cd;
  batch_t* b = s->batch;
  int i = s->index;
  b->ran_on[i] = pthread_self();
  b->intact[i] = hide(obj) == b->hidden[i] && filled(obj, SIZE, (unsigned)i);
  atomic_fetch_add(&b->runs[i], 1);
  atomic_fetch_add(&g_total_runs, 1);
}

static int runs(batch_t* b) {
  int count = 0;
  for (int i = 0; i < N; i++) count += atomic_load(&b->runs[i]) != 0;
  return count;
}

static int mostly_ran(batch_t* b) { return runs(b) * 8 >= 7 * N; }

/* Each ran at most once, with its object intact, on `thread`. */
static void check_ran_on(batch_t* b, pthread_t thread) {
  for (int i = 0; i < N; i++) {
    int r = atomic_load(&b->runs[i]);
    CHECK_CMP(r, <=, 1);
    if (r) {
      CHECK(b->intact[i]);
      CHECK(pthread_equal(b->ran_on[i], thread));
    }
  }
}

static NOINLINE void make_batch(batch_t* b) {
  memset(b, 0, sizeof *b);
  for (int i = 0; i < N; i++) {
    b->slot[i].batch = b;
    b->slot[i].index = i;
    void* p = GC_malloc(SIZE);
    CHECK(p != NULL);
    fill(p, SIZE, (unsigned)i);
    b->hidden[i] = hide(p);
    watch(&b->watch[i], p);
    GC_register_finalizer(p, record, &b->slot[i], NULL, NULL);
  }
}

static void release_batch(batch_t* b) { unwatch_all(b->watch, N); }

/* Large objects go through Boehm's GC_generic_malloc, where an allocating
 * thread runs queued finalizers (or calls the notifier). */
static NOINLINE void allocate_garbage(int count) {
  for (int i = 0; i < count; i++) {
    char* p = GC_malloc(64 * 1024);
    CHECK(p != NULL);
    p[0] = 1;
  }
}

static void* allocating_thread(void* arg) {
  (void)arg;
  allocate_garbage(1024);
  GC_gcollect();
  allocate_garbage(1024);
  return NULL;
}

/* --- not on their own ------------------------------------------------------------------ */

static batch_t b_quiet;

static void test_not_on_their_own(void) {
  GC_set_finalize_on_demand(1);
  CHECK(GC_get_finalize_on_demand() == 1);
  make_batch(&b_quiet);
  for (int i = 0; i < 3; i++) {
    collect();
    allocate_garbage(1024); /* 64 MiB: collections on the way */
  }
  pthread_t t;
  CHECK(pthread_create(&t, NULL, allocating_thread, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  collect();
  CHECK_CMP(runs(&b_quiet), ==, 0);
  CHECK_MOSTLY_RECLAIMED(b_quiet.watch, N); /* unreachable, and queued */
  CHECK(GC_should_invoke_finalizers());

  int before = atomic_load(&g_total_runs);
  int invoked = GC_invoke_finalizers();
  CHECK_CMP(invoked, ==, atomic_load(&g_total_runs) - before);
  CHECK(mostly_ran(&b_quiet));
  check_ran_on(&b_quiet, g_main_thread);
  CHECK(!GC_should_invoke_finalizers());
  CHECK_CMP(GC_invoke_finalizers(), ==, 0);
  release_batch(&b_quiet);
  GC_set_finalize_on_demand(0);
}

/* --- the notifier ------------------------------------------------------------------------ */

#define MAX_NOTES 4096

static atomic_int g_notes;
static GC_word g_note_gc_no[MAX_NOTES];
static pthread_t g_note_thread[MAX_NOTES];
static int g_note_fd = -1; /* when set, each note is also written there */
static atomic_int g_note_write_failures;
static atomic_int g_bytes_written; /* to g_note_fd */
/* When set, the notifier allocates, as guile's does (it queues an async):
 * it must be called where the allocator may be entered. */
static int g_note_allocates;
static void* volatile g_note_allocation;

static void GC_CALLBACK notifier(void) {
  int k = atomic_fetch_add(&g_notes, 1);
  if (k < MAX_NOTES) {
    g_note_gc_no[k] = GC_get_gc_no();
    g_note_thread[k] = pthread_self();
  }
  if (g_note_allocates) {
    void** p = (void**)GC_MALLOC(2 * sizeof(void*));
    CHECK(p != NULL);
    p[0] = (void*)g_note_allocation;
    g_note_allocation = p;
  }
  if (g_note_fd >= 0) {
    char c = 'n';
    if (write(g_note_fd, &c, 1) == 1) {
      atomic_fetch_add(&g_bytes_written, 1);
    } else {
      atomic_fetch_add(&g_note_write_failures, 1);
    }
  }
}

/* Notes [from, to): each in a collection of its own, from `thread`
 * (when given), and no more of them than the collections since
 * `gc_no`. */
static void check_notes(int from, int to, GC_word gc_no, const pthread_t* thread) {
  CHECK_CMP(to, <=, MAX_NOTES);
  CHECK_CMP((GC_word)(to - from), <=, GC_get_gc_no() - gc_no);
  for (int k = from; k < to; k++) {
    if (thread) CHECK(pthread_equal(g_note_thread[k], *thread));
    if (k > from) CHECK_CMP(g_note_gc_no[k], >, g_note_gc_no[k - 1]);
  }
}

static batch_t b_noted, b_noted_alloc;

static void test_notifier(void) {
  GC_set_finalize_on_demand(1);
  CHECK(GC_get_finalizer_notifier() == NULL);
  GC_set_finalizer_notifier(notifier);
  CHECK(GC_get_finalizer_notifier() == notifier);
  GC_invoke_finalizers(); /* stragglers */

  /* Nothing queued: no call. */
  int notes = atomic_load(&g_notes);
  collect();
  if (!GC_should_invoke_finalizers()) CHECK_CMP(atomic_load(&g_notes), ==, notes);
  GC_invoke_finalizers();

  /* Queued by GC_gcollect: a call, in the caller, before it returns. */
  GC_word gc_no = GC_get_gc_no();
  notes = atomic_load(&g_notes);
  make_batch(&b_noted);
  collect();
  CHECK(GC_should_invoke_finalizers());
  CHECK_CMP(atomic_load(&g_notes), >=, notes + 1);
  /* Still queued through more collections: at most one call each. */
  for (int i = 0; i < 4; i++) collect();
  check_notes(notes, atomic_load(&g_notes), gc_no, &g_main_thread);
  CHECK_CMP(runs(&b_noted), ==, 0); /* the notifier only tells */
  CHECK_CMP(GC_invoke_finalizers(), >=, 7 * N / 8);
  CHECK(mostly_ran(&b_noted));
  check_ran_on(&b_noted, g_main_thread);

  /* Queued by collections that allocation starts: the allocating
   * thread hears of them, out of the allocator (the notifier allocates). */
  g_note_allocates = 1;
  gc_no = GC_get_gc_no();
  notes = atomic_load(&g_notes);
  make_batch(&b_noted_alloc);
  scrub();
  for (int i = 0; i < 100000 && atomic_load(&g_notes) == notes; i++) allocate_garbage(1);
  CHECK_CMP(atomic_load(&g_notes), >, notes);
  CHECK_CMP(GC_get_gc_no(), >, gc_no);
  check_notes(notes, atomic_load(&g_notes), gc_no, &g_main_thread);
  CHECK_CMP(runs(&b_noted_alloc), ==, 0);
  g_note_allocates = 0;
  CHECK(g_note_allocation != NULL);
  g_note_allocation = NULL;
  GC_invoke_finalizers();
  collect(); /* stragglers of the batch */
  GC_invoke_finalizers();
  CHECK(mostly_ran(&b_noted_alloc));
  check_ran_on(&b_noted_alloc, g_main_thread);

  GC_set_finalizer_notifier(0);
  CHECK(GC_get_finalizer_notifier() == NULL);
  GC_set_finalize_on_demand(0);
  release_batch(&b_noted);
  release_batch(&b_noted_alloc);
}

/* --- a finalizer thread -------------------------------------------------------------------- */

/* The notifier writes a byte to a pipe; the finalizer thread reads it
 * and runs what is queued; main waits until the thread has answered
 * every byte written so far (a handshake, not a delay). */
static int g_pipe[2];
static pthread_t g_finalizer_thread;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_answered_cv = PTHREAD_COND_INITIALIZER;
static int g_answered;       /* bytes read and answered (under g_lock) */
static atomic_int g_invoked; /* what GC_invoke_finalizers returned there */

static void* finalizer_thread(void* arg) {
  (void)arg;
  for (;;) {
    char c;
    ssize_t r = read(g_pipe[0], &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r != 1 || c == 'q') break;
    atomic_fetch_add(&g_invoked, GC_invoke_finalizers());
    pthread_mutex_lock(&g_lock);
    g_answered++;
    pthread_cond_broadcast(&g_answered_cv);
    pthread_mutex_unlock(&g_lock);
  }
  return NULL;
}

static void wait_for_answers(void) {
  int written = atomic_load(&g_bytes_written);
  pthread_mutex_lock(&g_lock);
  while (g_answered < written) pthread_cond_wait(&g_answered_cv, &g_lock);
  pthread_mutex_unlock(&g_lock);
}

#define ROUNDS 6
static batch_t b_rounds[ROUNDS];

static void test_finalizer_thread(void) {
  CHECK(pipe(g_pipe) == 0);
  CHECK(fcntl(g_pipe[1], F_SETFL, O_NONBLOCK) == 0); /* the notifier never blocks */
  g_note_fd = g_pipe[1];
  GC_set_finalize_on_demand(1);
  GC_invoke_finalizers(); /* stragglers */
  int notes = atomic_load(&g_notes);
  GC_word gc_no = GC_get_gc_no();
  int total_before = atomic_load(&g_total_runs);
  GC_set_finalizer_notifier(notifier);
  CHECK(pthread_create(&g_finalizer_thread, NULL, finalizer_thread, NULL) == 0);

  for (int round = 0; round < ROUNDS; round++) {
    batch_t* b = &b_rounds[round];
    make_batch(b);
    /* Allocation (collections on the way) and collections: the thread
     * runs the finalizers, main never does. */
    for (int tries = 0; tries < 20 && !mostly_ran(b); tries++) {
      allocate_garbage(256);
      collect();
      wait_for_answers();
    }
    CHECK(mostly_ran(b));
    check_ran_on(b, g_finalizer_thread);
  }

  char q = 'q';
  CHECK(write(g_pipe[1], &q, 1) == 1);
  CHECK(pthread_join(g_finalizer_thread, NULL) == 0);
  GC_set_finalizer_notifier(0);
  g_note_fd = -1;
  CHECK_CMP(atomic_load(&g_note_write_failures), ==, 0);
  check_notes(notes, atomic_load(&g_notes), gc_no, &g_main_thread);
  /* Every finalizer that ran, ran in the finalizer thread's
   * GC_invoke_finalizers, which counted it. */
  CHECK_CMP(atomic_load(&g_invoked), ==, atomic_load(&g_total_runs) - total_before);
  close(g_pipe[0]);
  close(g_pipe[1]);
  for (int round = 0; round < ROUNDS; round++) release_batch(&b_rounds[round]);
  GC_set_finalize_on_demand(0);
}

/* --- on their own again ------------------------------------------------------------------ */

static batch_t b_again;

static void test_automatic_again(void) {
  GC_set_finalize_on_demand(1);
  GC_invoke_finalizers();
  GC_set_finalize_on_demand(0);
  CHECK(GC_get_finalize_on_demand() == 0);
  GC_set_finalizer_notifier(notifier); /* installed, but not on demand */
  int notes = atomic_load(&g_notes);
  make_batch(&b_again);
  collect(); /* runs them before it returns */
  CHECK(mostly_ran(&b_again));
  check_ran_on(&b_again, g_main_thread);
  CHECK(!GC_should_invoke_finalizers());
  allocate_garbage(512);
  collect();
  CHECK_CMP(atomic_load(&g_notes), ==, notes);
  GC_set_finalizer_notifier(0);
  release_batch(&b_again);
}

int main(void) {
  GC_INIT();
  g_main_thread = pthread_self();
  run("not on their own", test_not_on_their_own);
  run("GC_set_finalizer_notifier", test_notifier);
  run("a finalizer thread woken by the notifier", test_finalizer_thread);
  run("on their own again", test_automatic_again);
  return finish();
}
