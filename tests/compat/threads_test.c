/* Threads: GC_pthread_create (and pthread_create, which gc.h redirects to
 * it) registers the new thread before its start routine runs, so what its
 * stack holds survives collections another thread starts, and is released
 * when dropped; GC_pthread_join, GC_pthread_detach and GC_pthread_exit;
 * GC_pthread_sigmask never blocks GC_get_suspend_signal(); a thread made
 * with the system's pthread_create registers itself with
 * GC_register_my_thread (after GC_allow_register_threads; stack base from
 * GC_get_stack_base or GC_call_with_stack_base) and leaves with
 * GC_unregister_my_thread (until then, its stack is scanned even in
 * thread-exit destructors); GC_thread_is_registered; GC_do_blocking (a
 * thread inside it, even one that cannot take the suspend signal, does not
 * delay another thread's collection) and GC_call_with_gc_active (frames
 * inside it are scanned again); GC_get_suspend_signal and
 * GC_get_thr_restart_signal give signals usable in a sigset_t.
 *
 * Not stated: that an unregistered thread's stack is not scanned (Boehm
 * does not scan it, but a library that found more roots would be no less
 * correct), nor that frames inside GC_do_blocking are skipped. Avoided,
 * since Boehm 8.2.2 fails them (see where): GC_pthread_join on a thread the
 * system created, and a collection while a thread is inside GC_do_blocking
 * before it enters GC_call_with_gc_active. */
#include <pthread.h>
#include <signal.h>

/* The system's functions, taken before gc.h redefines the names to GC_
 * wrappers. */
static int (*const plain_pthread_create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*) = pthread_create;
static int (*const plain_pthread_join)(pthread_t, void**) = pthread_join;
static int (*const plain_pthread_sigmask)(int, const sigset_t*, sigset_t*) = pthread_sigmask;

#include "compat_test.h"

#define N 16
#define SIZE 64

/* --- phases shared by a test and its thread -------------------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_phase;

static void set_phase(int phase) {
  pthread_mutex_lock(&g_lock);
  g_phase = phase;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);
}

static void wait_phase(int phase) {
  pthread_mutex_lock(&g_lock);
  while (g_phase < phase) pthread_cond_wait(&g_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
}

/* --- objects held by a thread ------------------------------------------------------------ */

static watch_t g_obj[N];
static uintptr_t g_hidden[N];

static NOINLINE void make_objects(void) {
  for (int i = 0; i < N; i++) {
    void* p = GC_malloc(SIZE);
    CHECK(p != NULL);
    fill(p, SIZE, (unsigned)i);
    watch(&g_obj[i], p);
    g_hidden[i] = hide(p);
  }
}

static int g_held_intact;

/* In the thread: the only references are in this frame between phases 1
 * and 2 (main collects), then dropped and scrubbed before phase 3 (main
 * collects again). */
static NOINLINE void hold_objects(void) {
  void* volatile held[N];
  for (int i = 0; i < N; i++) held[i] = reveal(g_hidden[i]);
  set_phase(1);
  wait_phase(2);
  g_held_intact = 1;
  for (int i = 0; i < N; i++)
    if (!filled(held[i], SIZE, (unsigned)i)) g_held_intact = 0;
  for (int i = 0; i < N; i++) held[i] = NULL;
}

static NOINLINE void hold_then_drop(void) {
  hold_objects();
  scrub();
  set_phase(3);
  wait_phase(4);
}

/* In main, while a thread runs hold_then_drop. */
static void check_thread_stack_scanned(void) {
  wait_phase(1);
  collect();
  collect();
  CHECK_ALL_ALIVE(g_obj, N); /* held only on the thread's stack */
  set_phase(2);
  wait_phase(3);
  CHECK(g_held_intact);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_obj, N); /* dropped, the thread still registered */
  set_phase(4);
  unwatch_all(g_obj, N);
}

/* --- GC_pthread_create ---------------------------------------------------------------------- */

static int g_registered_at_start;

static void* created_thread(void* arg) {
  g_registered_at_start = GC_thread_is_registered();
  hold_then_drop();
  return arg;
}

static void check_created(int (*create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*)) {
  static int token;
  pthread_t t;
  void* result = NULL;
  g_phase = 0;
  g_registered_at_start = 0;
  make_objects();
  CHECK(create(&t, NULL, created_thread, &token) == 0);
  check_thread_stack_scanned();
  CHECK(GC_pthread_join(t, &result) == 0);
  CHECK(result == &token);
  CHECK(g_registered_at_start);
}

static void test_gc_pthread_create(void) {
  CHECK(GC_thread_is_registered()); /* main is, implicitly */
  check_created(GC_pthread_create);
}

static int create_via_macro(pthread_t* t, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  return pthread_create(t, attr, fn, arg); /* GC_pthread_create, through gc.h */
}

static void test_redirected_pthread_create(void) { check_created(create_via_macro); }

/* --- join, detach, exit ---------------------------------------------------------------------- */

#define EXIT_VALUE ((void*)(uintptr_t)0x5678)

/* Exits from a few frames down, not by returning. */
static NOINLINE void exit_inner(void) { GC_pthread_exit(EXIT_VALUE); }

static NOINLINE void exit_outer(void) {
  exit_inner();
  abort(); /* not reached */
}

static void* exiting_thread(void* arg) {
  (void)arg;
  char* p = GC_malloc(100);
  CHECK(p != NULL);
  exit_outer();
  return NULL;
}

#ifdef GC_HAVE_PTHREAD_EXIT
static void* exiting_thread_macro(void* arg) {
  (void)arg;
  pthread_exit(EXIT_VALUE); /* GC_pthread_exit, through gc.h */
}
#endif

static volatile int g_detached_done;

static void* detached_thread(void* arg) {
  (void)arg;
  for (int i = 0; i < 1000; i++) CHECK(GC_malloc(1000) != NULL);
  pthread_mutex_lock(&g_lock);
  g_detached_done++;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);
  return NULL;
}

/* Builds and checks a list of its own while others collect. */
static void* list_thread(void* arg) {
  int n = (int)(uintptr_t)arg;
  void** list = NULL;
  for (int i = 0; i < n; i++) {
    void** node = GC_malloc(4 * sizeof(void*));
    CHECK(node != NULL);
    node[0] = list;
    node[1] = (void*)(uintptr_t)i;
    list = node;
    if (i % 500 == 0) GC_gcollect();
  }
  for (int i = n - 1; i >= 0; i--, list = list[0]) CHECK(list[1] == (void*)(uintptr_t)i);
  return (void*)(uintptr_t)n;
}

static void test_join_detach_exit(void) {
  pthread_t t;
  void* result = NULL;
  CHECK(GC_pthread_create(&t, NULL, exiting_thread, NULL) == 0);
  CHECK(GC_pthread_join(t, &result) == 0);
  CHECK(result == EXIT_VALUE);
#ifdef GC_HAVE_PTHREAD_EXIT
  CHECK(pthread_create(&t, NULL, exiting_thread_macro, NULL) == 0);
  CHECK(pthread_join(t, &result) == 0); /* GC_pthread_join, through gc.h */
  CHECK(result == EXIT_VALUE);
#endif

  g_detached_done = 0;
  for (int i = 0; i < 4; i++) {
    CHECK(GC_pthread_create(&t, NULL, detached_thread, NULL) == 0);
    CHECK(GC_pthread_detach(t) == 0);
  }
  pthread_mutex_lock(&g_lock);
  while (g_detached_done < 4) pthread_cond_wait(&g_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
  for (int i = 0; i < 3; i++) GC_gcollect(); /* with the detached threads ending */

  /* Several threads at once, collecting too. */
  pthread_t many[6];
  for (int i = 0; i < 6; i++) CHECK(GC_pthread_create(&many[i], NULL, list_thread, (void*)(uintptr_t)3000) == 0);
  for (int i = 0; i < 3; i++) GC_gcollect();
  for (int i = 0; i < 6; i++) {
    CHECK(GC_pthread_join(many[i], &result) == 0);
    CHECK(result == (void*)(uintptr_t)3000);
  }
}

/* --- GC_pthread_sigmask ------------------------------------------------------------------------ */

static int g_mask_ok;

static void* masking_thread(void* arg) {
  int use_macro = (int)(uintptr_t)arg;
  sigset_t all, current;
  sigfillset(&all);
  int rc = use_macro ? pthread_sigmask(SIG_SETMASK, &all, NULL) /* GC_pthread_sigmask, through gc.h */
                     : GC_pthread_sigmask(SIG_BLOCK, &all, NULL);
  CHECK(rc == 0);
  CHECK(plain_pthread_sigmask(SIG_BLOCK, NULL, &current) == 0);
  g_mask_ok = !sigismember(&current, GC_get_suspend_signal()) && sigismember(&current, SIGUSR1) &&
              sigismember(&current, SIGTERM);
  set_phase(1);
  wait_phase(2); /* main collects: this thread must still stop */
  return NULL;
}

static void check_sigmask(int use_macro) {
  pthread_t t;
  g_phase = 0;
  g_mask_ok = 0;
  CHECK(GC_pthread_create(&t, NULL, masking_thread, (void*)(uintptr_t)use_macro) == 0);
  wait_phase(1);
  CHECK(g_mask_ok);
  GC_word before = GC_get_gc_no();
  GC_gcollect(); /* would hang if the thread could not be suspended */
  CHECK_CMP(GC_get_gc_no(), ==, before + 1);
  set_phase(2);
  CHECK(GC_pthread_join(t, NULL) == 0);
}

static void test_pthread_sigmask(void) {
  check_sigmask(0);
  check_sigmask(1);
}

/* --- GC_register_my_thread on a thread the system made -------------------------------------------- */

static int g_plain_ok;

static void* plain_thread(void* arg) {
  (void)arg;
  int local = 0;
  struct GC_stack_base sb;
  CHECK(!GC_thread_is_registered());
  CHECK(GC_get_stack_base(&sb) == GC_SUCCESS);
  CHECK((char*)sb.mem_base > (char*)&local); /* the stack's cold end, above us */
  CHECK(GC_register_my_thread(&sb) == GC_SUCCESS);
  CHECK(GC_thread_is_registered());
  CHECK(GC_register_my_thread(&sb) == GC_DUPLICATE);
  hold_then_drop();
  CHECK(GC_unregister_my_thread() == GC_SUCCESS);
  CHECK(!GC_thread_is_registered());
  g_plain_ok = 1;
  return NULL;
}

/* The same, registered from inside GC_call_with_stack_base, where
 * unregistering is also allowed. */
static void* GC_CALLBACK registered_with_base(struct GC_stack_base* sb, void* arg) {
  int local = 0;
  CHECK(sb != NULL && sb->mem_base != NULL);
  CHECK((char*)sb->mem_base > (char*)&local);
  CHECK(GC_register_my_thread(sb) == GC_SUCCESS);
  hold_then_drop();
  CHECK(GC_unregister_my_thread() == GC_SUCCESS);
  return (char*)arg + 1;
}

static void* plain_thread_with_base(void* arg) {
  (void)arg;
  static char token[2];
  CHECK(!GC_thread_is_registered());
  CHECK(GC_call_with_stack_base(registered_with_base, token) == token + 1);
  CHECK(!GC_thread_is_registered());
  g_plain_ok = 1;
  return NULL;
}

static void check_plain(void* (*start)(void*)) {
  pthread_t t;
  g_phase = 0;
  g_plain_ok = 0;
  make_objects();
  CHECK(plain_pthread_create(&t, NULL, start, NULL) == 0);
  check_thread_stack_scanned();
  /* Joined with the system's pthread_join. Boehm 8.2.2 treats a thread
   * registered with GC_register_my_thread as detached and deletes its entry
   * in GC_unregister_my_thread; GC_pthread_join (what gc.h makes
   * pthread_join) looks the entry up before joining and dereferences it
   * after (pthread_support.c: t -> flags), so when the thread has already
   * unregistered it reads through NULL: a crash in about 1 run of 20. */
  CHECK(plain_pthread_join(t, NULL) == 0);
  CHECK(g_plain_ok);
}

static void test_register_my_thread(void) {
  GC_allow_register_threads();
  check_plain(plain_thread);
  check_plain(plain_thread_with_base);
}

/* --- a registered thread's own thread-exit destructors ------------------------------------------ */

/* Guile's thread-exit destructor unmaps the thread's VM stack, which its
 * mark procedure for thread objects reads, and only then calls
 * GC_unregister_my_thread: until that call the thread is stopped and
 * scanned like any registered thread, whatever order pthread runs the
 * library's destructors and the program's in. */
static pthread_key_t g_program_key;
static int g_registered_in_destructor;

static void program_exit_destructor(void* arg) {
  (void)arg;
  g_registered_in_destructor = GC_thread_is_registered();
  hold_then_drop(); /* what this frame holds is kept, then released */
  CHECK(GC_unregister_my_thread() == GC_SUCCESS);
  CHECK(!GC_thread_is_registered());
  g_plain_ok = 1;
}

static void* thread_with_exit_destructor(void* arg) {
  struct GC_stack_base sb;
  CHECK(GC_get_stack_base(&sb) == GC_SUCCESS);
  CHECK(GC_register_my_thread(&sb) == GC_SUCCESS);
  CHECK(pthread_setspecific(g_program_key, &g_program_key) == 0);
  return arg;
}

static void test_unregister_in_exit_destructor(void) {
  GC_allow_register_threads();
  /* Made after the library's own keys (main has allocated), so that glibc,
   * which runs destructors in the order keys were made, calls the
   * library's first in each round. */
  CHECK(pthread_key_create(&g_program_key, program_exit_destructor) == 0);
  g_registered_in_destructor = 0;
  check_plain(thread_with_exit_destructor);
  CHECK(g_registered_in_destructor);
  CHECK(pthread_key_delete(g_program_key) == 0);
}

/* --- GC_get_stack_base, GC_call_with_stack_base on main --------------------------------------------- */

static void* GC_CALLBACK with_base(struct GC_stack_base* sb, void* arg) {
  int local = 0;
  CHECK(sb != NULL && sb->mem_base != NULL);
  CHECK((char*)sb->mem_base > (char*)&local);
  return (char*)arg + 1;
}

static void test_stack_base(void) {
  static char token[2];
  int local = 0;
  struct GC_stack_base sb;
  CHECK(GC_get_stack_base(&sb) == GC_SUCCESS);
  CHECK((char*)sb.mem_base > (char*)&local);
  CHECK(GC_call_with_stack_base(with_base, token) == token + 1);
}

/* --- GC_do_blocking, GC_call_with_gc_active ---------------------------------------------------------- */

#define BLOCKING_RESULT ((void*)(uintptr_t)0x99)
#define ACTIVE_RESULT ((void*)(uintptr_t)0x42)

static void* GC_CALLBACK blocked(void* arg) {
  (void)arg;
  /* Block even the suspend signal: if the collector tried to stop this
   * thread now, it would wait forever (and the alarm fail the test). */
  sigset_t suspend, old;
  sigemptyset(&suspend);
  sigaddset(&suspend, GC_get_suspend_signal());
  CHECK(plain_pthread_sigmask(SIG_BLOCK, &suspend, &old) == 0);
  set_phase(1);
  wait_phase(2);
  CHECK(plain_pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
  return BLOCKING_RESULT;
}

static void* blocked_thread(void* arg) {
  (void)arg;
  return GC_do_blocking(blocked, NULL);
}

static void* g_active_result;
static int g_active_intact;

static NOINLINE void* GC_CALLBACK active(void* arg) {
  (void)arg;
  void* volatile held = reveal(g_hidden[0]);
  set_phase(1);
  wait_phase(2); /* main collects: this frame is scanned */
  g_active_intact = filled(held, SIZE, 0);
  held = NULL;
  return ACTIVE_RESULT;
}

static void* GC_CALLBACK blocking_then_active(void* arg) {
  (void)arg;
  g_active_result = GC_call_with_gc_active(active, NULL);
  return BLOCKING_RESULT;
}

static void* active_thread(void* arg) {
  (void)arg;
  return GC_do_blocking(blocking_then_active, NULL);
}

static void* active_only_thread(void* arg) {
  (void)arg;
  return GC_call_with_gc_active(active, NULL);
}

static void test_do_blocking(void) {
  pthread_t t;
  void* result = NULL;
  g_phase = 0;
  CHECK(GC_pthread_create(&t, NULL, blocked_thread, NULL) == 0);
  wait_phase(1);
  GC_word before = GC_get_gc_no();
  collect(); /* not delayed by the blocked thread */
  CHECK_CMP(GC_get_gc_no(), ==, before + 1);
  set_phase(2);
  CHECK(GC_pthread_join(t, &result) == 0);
  CHECK(result == BLOCKING_RESULT);
}

/* Boehm 8.2.2 does not scan such a frame if a collection happened while
 * the thread was inside GC_do_blocking before it called
 * GC_call_with_gc_active (the object held there is reclaimed), so no
 * collection happens in between here. */
static void test_call_with_gc_active(void) {
  pthread_t t;
  void* result = NULL;
  g_phase = 0;
  make_objects();
  CHECK(GC_pthread_create(&t, NULL, active_thread, NULL) == 0);
  wait_phase(1);
  collect();
  CHECK(alive(&g_obj[0])); /* held in a frame of GC_call_with_gc_active */
  set_phase(2);
  CHECK(GC_pthread_join(t, &result) == 0);
  CHECK(result == BLOCKING_RESULT);
  CHECK(g_active_result == ACTIVE_RESULT);
  CHECK(g_active_intact);
  collect();
  CHECK_MOSTLY_RECLAIMED(g_obj, N);
  unwatch_all(g_obj, N);

  /* Outside GC_do_blocking it just calls fn. */
  g_phase = 0;
  make_objects();
  CHECK(GC_pthread_create(&t, NULL, active_only_thread, NULL) == 0);
  wait_phase(1);
  collect();
  CHECK(alive(&g_obj[0]));
  set_phase(2);
  CHECK(GC_pthread_join(t, &result) == 0);
  CHECK(result == ACTIVE_RESULT);
  unwatch_all(g_obj, N);
}

/* --- signals ------------------------------------------------------------------------------------ */

static void test_signals(void) {
  int suspend = GC_get_suspend_signal();
  int restart = GC_get_thr_restart_signal();
  CHECK(suspend > 0 && suspend < NSIG);
  CHECK(restart > 0 && restart < NSIG);
  CHECK(suspend != restart);
  sigset_t set;
  CHECK(sigemptyset(&set) == 0);
  CHECK(sigaddset(&set, suspend) == 0);
  CHECK(sigaddset(&set, restart) == 0);
  CHECK(sigismember(&set, suspend) == 1);
  CHECK(sigismember(&set, restart) == 1);
}

int main(void) {
  GC_INIT();
  run("GC_pthread_create", test_gc_pthread_create);
  run("pthread_create redirected", test_redirected_pthread_create);
  run("join, detach, exit", test_join_detach_exit);
  run("GC_pthread_sigmask", test_pthread_sigmask);
  run("GC_register_my_thread", test_register_my_thread);
  run("GC_unregister_my_thread in a thread-exit destructor", test_unregister_in_exit_destructor);
  run("GC_get_stack_base, GC_call_with_stack_base", test_stack_base);
  run("GC_do_blocking", test_do_blocking);
  run("GC_call_with_gc_active", test_call_with_gc_active);
  run("suspend and restart signals", test_signals);
  return finish();
}
