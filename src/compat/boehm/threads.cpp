// Boehm's thread calls on the core's thread registry: thread creation that
// registers the new thread before its start routine runs, explicit
// registration, stack bases, blocking sections, the suspend signal, thread
// suspension, the allocation lock and fork handling.
//
// GC_alloc_lock is the core's cycle lock: while a thread holds it no cycle
// runs, so no link is cleared and nothing is reclaimed (GC_call_with_alloc_lock
// relies on that); a cycle the holder itself would start is skipped.
#include "gc/threads.hpp"

#include <dlfcn.h>
#include <semaphore.h>

#include <cerrno>
#include <csignal>
#include <mutex>

#include "compat/boehm/boehm.hpp"
#include "gc/collector.hpp"
#include "os/fatal.hpp"
#include "runtime/collect.hpp"
#include "runtime/thread_cache.hpp"

namespace mgc::internal::boehm {

namespace {

GC_on_thread_event_proc g_thread_event = nullptr;
int g_restart_signal = SIGXCPU;  // reported, not used: stopped threads wait on a futex

// What a new thread needs from its creator. It lives on the creator's
// stack, which the collector scans, until the thread has registered and
// taken arg: until then arg may be the only reference to a heap object.
struct StartInfo {
  void* (*fn)(void*);
  void* arg;
  sem_t registered;
  bool ok;  // registered: false when there was no memory for its record
};

void* start_thread(void* p) {
  auto* si = static_cast<StartInfo*>(p);
  void* (*fn)(void*) = si->fn;
  void* arg = si->arg;
  const bool ok = register_thread_scope();  // dropped again when the thread exits
  si->ok = ok;
  sem_post(&si->registered);  // si is gone after this
  return ok ? fn(arg) : nullptr;
}

}  // namespace

void thread_events(GC_EventType e) {
  GC_on_thread_event_proc f = g_thread_event;
  if (f == nullptr) return;
  ThreadRecord* self = this_thread_record();
  for_each_thread_locked([&](ThreadRecord* r) {
    if (r != self && !r->blocked) f(e, reinterpret_cast<void*>(r->thread));
  });
}

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

int GC_pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  ensure_init();
  StartInfo si{fn, arg, {}, false};
  sem_init(&si.registered, 0, 0);
  int err = pthread_create(thread, attr, start_thread, &si);
  if (err == 0) {
    while (sem_wait(&si.registered) != 0 && errno == EINTR) {
    }
    if (!si.ok) {
      // No memory for the new thread's record: it ends without running fn,
      // and the program is told as pthread_create tells a want of
      // resources (Boehm aborts). A joinable thread is joined here, since
      // the program will not.
      int detach = PTHREAD_CREATE_JOINABLE;
      if (attr != nullptr) pthread_attr_getdetachstate(attr, &detach);
      if (detach == PTHREAD_CREATE_JOINABLE) pthread_join(*thread, nullptr);
      err = EAGAIN;
    }
  }
  sem_destroy(&si.registered);
  return err;
}

int GC_pthread_join(pthread_t thread, void** retval) { return pthread_join(thread, retval); }
int GC_pthread_detach(pthread_t thread) { return pthread_detach(thread); }
// A cancelled thread unregisters as any exiting thread does (its
// thread-exit destructor).
int GC_pthread_cancel(pthread_t thread) { return pthread_cancel(thread); }
void GC_pthread_exit(void* retval) { pthread_exit(retval); }

int GC_pthread_sigmask(int how, const sigset_t* set, sigset_t* oldset) {
  if (set == nullptr || how == SIG_UNBLOCK) return pthread_sigmask(how, set, oldset);
  // A registered thread must answer the suspend signal.
  sigset_t fixed = *set;
  sigdelset(&fixed, suspend_signal());
  return pthread_sigmask(how, &fixed, oldset);
}

void* GC_dlopen(const char* path, int mode) {
  ensure_init();
  return dlopen(path, mode);
}

void GC_allow_register_threads(void) { ensure_init(); }

int GC_register_my_thread(const struct GC_stack_base*) {
  ensure_init();
  if (this_thread_record() != nullptr) return GC_DUPLICATE;
  // The whole of the thread's stack is scanned from its stack pointer, so
  // the base given matters only as far as it lies inside that stack.
  // Without memory for its record the thread is not registered, and says
  // so (Boehm aborts): it must not hold heap pointers until a later call
  // succeeds.
  return register_thread_scope() ? GC_SUCCESS : GC_NO_MEMORY;
}

int GC_unregister_my_thread(void) {
  unregister_thread_fully();
  return GC_SUCCESS;
}

int GC_thread_is_registered(void) { return this_thread_record() != nullptr; }

void GC_register_altstack(void*, GC_word, void* altstack, GC_word altstack_size) {
  if (ThreadRecord* r = this_thread_record()) {
    const auto lo = reinterpret_cast<std::uintptr_t>(altstack);
    set_altstack(r, lo, lo + altstack_size);
  }
}

int GC_get_stack_base(struct GC_stack_base* sb) {
  std::uintptr_t lo, hi;
  if (!current_stack_bounds(&lo, &hi)) return GC_UNIMPLEMENTED;
  sb->mem_base = reinterpret_cast<void*>(hi);
  return GC_SUCCESS;
}

void* GC_call_with_stack_base(GC_stack_base_func fn, void* arg) {
  GC_stack_base sb;
  sb.mem_base = __builtin_frame_address(0);
  return fn(&sb, arg);
}

void* GC_get_my_stackbottom(struct GC_stack_base* sb) {
  ThreadRecord* r = this_thread_record();
  if (r == nullptr) {
    GC_get_stack_base(sb);
    return nullptr;
  }
  sb->mem_base = reinterpret_cast<void*>(r->stack_hi);
  return r;
}

void GC_set_stackbottom(void* handle, const struct GC_stack_base* sb) {
  auto* r = static_cast<ThreadRecord*>(handle);
  if (r == nullptr) r = this_thread_record();
  if (r == nullptr) {
    GC_stackbottom = static_cast<char*>(sb->mem_base);  // before initialisation
    return;
  }
  set_stack_bottom(r, reinterpret_cast<std::uintptr_t>(sb->mem_base));
}

void* GC_do_blocking(GC_fn_type fn, void* arg) { return call_blocking(fn, arg); }
void* GC_call_with_gc_active(GC_fn_type fn, void* arg) { return call_active(fn, arg); }

void GC_set_suspend_signal(int sig) {
  if (!g_initialized.load()) set_suspend_signal(sig);
}
void GC_set_thr_restart_signal(int sig) {
  if (!g_initialized.load()) g_restart_signal = sig;
}
int GC_get_suspend_signal(void) { return suspend_signal(); }
int GC_get_thr_restart_signal(void) { return g_restart_signal; }

void GC_stop_world_external(void) {
  ensure_init();
  stop_world_external();
}
void GC_start_world_external(void) { start_world_external(); }

void GC_suspend_thread(void* thread) {
  ensure_init();
  suspend_thread(reinterpret_cast<pthread_t>(thread));
}
void GC_resume_thread(void* thread) { resume_thread(reinterpret_cast<pthread_t>(thread)); }
int GC_is_thread_suspended(void* thread) { return thread_suspended(reinterpret_cast<pthread_t>(thread)) ? 1 : 0; }

void GC_set_on_thread_event(GC_on_thread_event_proc f) { g_thread_event = f; }
GC_on_thread_event_proc GC_get_on_thread_event(void) { return g_thread_event; }

void GC_alloc_lock(void) {
  lock_collector();
  tls_holds_alloc_lock = true;
}

void GC_alloc_unlock(void) {
  tls_holds_alloc_lock = false;
  unlock_collector();
}

void* GC_call_with_alloc_lock(GC_fn_type fn, void* arg) {
  GC_alloc_lock();
  void* result = fn(arg);
  GC_alloc_unlock();
  return result;
}

// Boehm: nonzero installs the handlers, -1 means the program calls
// GC_atfork_* itself, 0 leaves fork alone. The core's handlers are
// installed at first use and act in the automatic mode, the default here
// (Boehm's Debian build handles fork too); the manual calls act only in
// the manual mode ("no-op if handled automatically").
void GC_set_handle_fork(int v) {
  set_fork_mode(v > 0 ? kForkAutomatic : v < 0 ? kForkManual : kForkNone);
  if (v > 0) install_fork_handlers();
}

void GC_atfork_prepare(void) {
  if (fork_mode() == kForkManual) fork_prepare();
}
void GC_atfork_parent(void) { fork_parent(); }  // only if prepare took the locks
void GC_atfork_child(void) { fork_child(); }

}  // extern "C"
