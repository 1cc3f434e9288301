#include "gc/specials.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>

#include "gc/mark.hpp"
#include "gc/threads.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "os/immortal.hpp"

namespace mgc::internal {

namespace {

struct Finalizer {
  void (*fn)(void*, void*);
  void* data;
  bool doomed;  // found unreachable; moves to the queue after the stop
};

struct Queued {
  void* obj;
  void (*fn)(void*, void*);
  void* data;
};

// Immortal: the finalizer thread waits on these until the process ends.
std::mutex g_specials_lock;
std::unordered_map<std::uintptr_t, Finalizer>& finalizers() {
  static Immortal<std::unordered_map<std::uintptr_t, Finalizer>> x;
  return *x;
}
WeakHandle* g_weak_first = nullptr;

std::mutex g_queue_lock;
std::condition_variable& queue_cv() {
  static Immortal<std::condition_variable> x;
  return *x;
}
std::condition_variable& done_cv() {
  static Immortal<std::condition_variable> x;
  return *x;
}
std::deque<Queued>& queue() {
  static Immortal<std::deque<Queued>> x;
  return *x;
}
std::uint64_t g_queued_total = 0;
std::uint64_t g_done_total = 0;
std::once_flag g_thread_once;

void adjust_specials(std::uintptr_t base, int delta) {
  MSpan* s = mheap().span_of(base);
  if (s == nullptr) fatal("specials: object %#lx has no span", static_cast<unsigned long>(base));
  if (delta > 0) {
    s->specials.fetch_add(1, std::memory_order_relaxed);
  } else {
    s->specials.fetch_sub(1, std::memory_order_relaxed);
  }
}

// Take one queued finalizer and run it. Its own frame, so that once it
// returns no register or slot of the loop's frame holds the object.
[[gnu::noinline]] void run_one_finalizer() {
  Queued q;
  {
    std::unique_lock<std::mutex> g(g_queue_lock);
    queue_cv().wait(g, [] { return !queue().empty(); });
    q = queue().front();
    queue().pop_front();
  }
  q.fn(q.obj, q.data);
}

void finalizer_thread() {
  register_thread();  // the object sits on this stack during the call
  for (;;) {
    clear_vector_registers();
    run_one_finalizer();
    // Before completion is published: once wait_for_finalizers returns, the
    // program may drop the object, and a stop of this thread must then
    // find no copy of it on the stack or in a register.
    scrub_stack_below(16 * 1024);
    clear_vector_registers();
    std::lock_guard<std::mutex> g(g_queue_lock);
    g_done_total++;
    done_cv().notify_all();
  }
}

// The start of the live object holding p, or a fatal error naming what.
std::uintptr_t live_object(const void* p, const char* what) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t base = object_base(a);
  if (base == 0) fatal("%s(%p): not a live object of this heap", what, p);
  return base;
}

}  // namespace

void set_finalizer(void* obj, void (*fn)(void*, void*), void* data) {
  const std::uintptr_t base = live_object(obj, "set_finalizer");
  MSpan* s = mheap().span_of(base);
  if (base != reinterpret_cast<std::uintptr_t>(obj) && s->kind != Kind::kTiny)
    fatal("set_finalizer(%p): not the start of an object (it is inside the object at %#lx)", obj,
          static_cast<unsigned long>(base));
  if (fn != nullptr) std::call_once(g_thread_once, [] { std::thread(finalizer_thread).detach(); });
  std::lock_guard<std::mutex> g(g_specials_lock);
  auto it = finalizers().find(base);
  if (fn == nullptr) {
    if (it != finalizers().end()) {
      finalizers().erase(it);
      adjust_specials(base, -1);
    }
    return;
  }
  if (it != finalizers().end()) {
    it->second = Finalizer{fn, data, false};
    return;
  }
  finalizers().emplace(base, Finalizer{fn, data, false});
  adjust_specials(base, +1);
}

void wait_for_finalizers() {
  std::unique_lock<std::mutex> g(g_queue_lock);
  const std::uint64_t target = g_queued_total;
  done_cv().wait(g, [target] { return g_done_total >= target; });
}

WeakHandle* weak_create(const void* p) {
  if (p == nullptr) return nullptr;
  const std::uintptr_t base = live_object(p, "weak reference to");
  auto* h = new (std::nothrow) WeakHandle();
  if (h == nullptr) return nullptr;
  h->target.store(reinterpret_cast<std::uintptr_t>(p), std::memory_order_relaxed);
  h->base = base;
  std::lock_guard<std::mutex> g(g_specials_lock);
  h->prev = nullptr;
  h->next = g_weak_first;
  if (g_weak_first != nullptr) g_weak_first->prev = h;
  g_weak_first = h;
  adjust_specials(base, +1);
  return h;
}

void* weak_get(const WeakHandle* h) { return reinterpret_cast<void*>(h->target.load(std::memory_order_acquire)); }

void weak_destroy(WeakHandle* h) {
  {
    std::lock_guard<std::mutex> g(g_specials_lock);
    if (h->prev != nullptr) {
      h->prev->next = h->next;
    } else {
      g_weak_first = h->next;
    }
    if (h->next != nullptr) h->next->prev = h->prev;
    if (h->target.load(std::memory_order_relaxed) != 0) adjust_specials(h->base, -1);
  }
  delete h;
}

void drop_specials(std::uintptr_t base) {
  std::lock_guard<std::mutex> g(g_specials_lock);
  auto it = finalizers().find(base);
  if (it != finalizers().end()) {
    finalizers().erase(it);
    adjust_specials(base, -1);
  }
  for (WeakHandle* h = g_weak_first; h != nullptr; h = h->next) {
    if (h->base == base && h->target.load(std::memory_order_relaxed) != 0) {
      h->target.store(0, std::memory_order_release);
      adjust_specials(base, -1);
    }
  }
}

void lock_specials() {
  g_specials_lock.lock();
  g_queue_lock.lock();
}

void unlock_specials() {
  g_queue_lock.unlock();
  g_specials_lock.unlock();
}

void mark_finalizer_roots() {
  for (const auto& [base, f] : finalizers()) {
    mark_object_at(reinterpret_cast<std::uintptr_t>(f.data), RootKind::kFinalizer);
    if (f.doomed) {
      mark_object_at(base, RootKind::kFinalizer);
    } else {
      mark_referents_of(base);
    }
  }
  for (const Queued& q : queue()) {
    mark_object_at(reinterpret_cast<std::uintptr_t>(q.obj), RootKind::kFinalizer);
    mark_object_at(reinterpret_cast<std::uintptr_t>(q.data), RootKind::kFinalizer);
  }
}

void clear_dead_weak_refs() {
  for (WeakHandle* h = g_weak_first; h != nullptr; h = h->next) {
    const std::uintptr_t t = h->target.load(std::memory_order_relaxed);
    if (t != 0 && !object_marked(t)) {
      h->target.store(0, std::memory_order_release);
      adjust_specials(h->base, -1);
    }
  }
}

std::size_t doom_unreachable_finalizables() {
  std::size_t n = 0;
  for (auto& [base, f] : finalizers()) {
    if (f.doomed || object_marked(base)) continue;
    f.doomed = true;
    mark_object_at(base, RootKind::kFinalizer);
    n++;
  }
  return n;
}

void queue_doomed_finalizers() {
  std::lock_guard<std::mutex> g(g_specials_lock);
  bool any = false;
  for (auto it = finalizers().begin(); it != finalizers().end();) {
    if (!it->second.doomed) {
      ++it;
      continue;
    }
    {
      std::lock_guard<std::mutex> q(g_queue_lock);
      queue().push_back({reinterpret_cast<void*>(it->first), it->second.fn, it->second.data});
      g_queued_total++;
    }
    adjust_specials(it->first, -1);
    it = finalizers().erase(it);
    any = true;
  }
  if (any) queue_cv().notify_all();
}

}  // namespace mgc::internal
