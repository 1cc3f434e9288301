// Boehm's finalization on the core's specials: the four registration calls
// (ordered, ignore-self, no-order, unreachable), disappearing links short
// and long, toggle references, and where finalizers run.
//
// Finalizers run in threads that allocate (the core's caller policy: at the
// end of an allocation slow path, and around GC_gcollect), or only in
// GC_invoke_finalizers when GC_finalize_on_demand is set, when the
// program's GC_finalizer_notifier hears of them from the collecting
// thread. The face starts no thread of its own: a runtime such as ECL
// calls into its interpreter from a finalizer and must not be entered
// from a thread it does not know.
//
// Toggle references (GC_toggleref_add): at the start of every cycle the
// program's callback says of each registered object whether it is held
// strongly (a root for this cycle), weakly (dropped from the list once it
// is found unreachable) or no more.
#include <mutex>
#include <vector>

#include "compat/boehm/boehm.hpp"
#include "gc/mark.hpp"
#include "gc/specials.hpp"
#include "heap/mheap.hpp"
#include "os/fatal.hpp"
#include "os/immortal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal::boehm {

void toggleref_before_mark();
void toggleref_after_mark();
void push_togglerefs();

namespace {

void register_finalizer(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn, void** ocd,
                        FinalizerOrder order) {
  ensure_init();
  // Boehm: an object outside the heap gets no finalizer, and says so
  // through the out-parameters.
  if (obj == nullptr || object_base(reinterpret_cast<std::uintptr_t>(obj)) == 0) {
    if (ofn != nullptr) *ofn = nullptr;
    if (ocd != nullptr) *ocd = nullptr;
    return;
  }
  FinalizerEntry old;
  // No memory for the table: as Boehm does when GC_oom_fn gives none,
  // nothing is registered and *ofn, *ocd are left as they were.
  if (!set_finalizer(obj, fn, cd, order, &old)) return;
  if (ofn != nullptr) *ofn = old.fn;
  if (ocd != nullptr) *ocd = old.data;
}

int link_result(LinkResult r) {
  switch (r) {
    case LinkResult::kSuccess:
      return GC_SUCCESS;
    case LinkResult::kDuplicate:
      return GC_DUPLICATE;
    case LinkResult::kNotFound:
      return GC_NOT_FOUND;
    case LinkResult::kNoMemory:
      return GC_NO_MEMORY;
  }
  return GC_NO_MEMORY;
}

int register_link_checked(void** link, const void* obj, bool long_link) {
  ensure_init();
  if (reinterpret_cast<std::uintptr_t>(link) % sizeof(void*) != 0)
    fatal("GC_register%s: bad link address %p (not aligned)", long_link ? "_long_link" : "_disappearing_link",
          static_cast<void*>(link));
  const std::uintptr_t base = object_base(reinterpret_cast<std::uintptr_t>(obj));
  // Boehm keys the link by obj as given; a pointer outside the heap never
  // dies, so its link is never cleared.
  if (base == 0) return GC_SUCCESS;
  return link_result(register_link(link, base, long_link));
}

struct ToggleRef {
  std::uintptr_t hidden;  // ~address: the list itself keeps nothing alive
  bool strong;
};
Mutex g_toggle_lock;
std::vector<ToggleRef>& togglerefs() {
  static Immortal<std::vector<ToggleRef>> x;
  return *x;
}
GC_toggleref_func g_toggleref_func = nullptr;
GC_await_finalize_proc g_await_proc = nullptr;

void on_queue(void* obj) {
  if (GC_await_finalize_proc f = g_await_proc) f(obj);
}

}  // namespace

void toggleref_before_mark() {
  GC_toggleref_func decide = g_toggleref_func;
  if (decide == nullptr) return;
  std::lock_guard<Mutex> g(g_toggle_lock);
  auto& list = togglerefs();
  std::size_t kept = 0;
  for (ToggleRef& r : list) {
    if (r.hidden == 0) continue;
    switch (decide(reinterpret_cast<void*>(~r.hidden))) {
      case GC_TOGGLE_REF_DROP:
        continue;
      case GC_TOGGLE_REF_STRONG:
        r.strong = true;
        break;
      case GC_TOGGLE_REF_WEAK:
        r.strong = false;
        break;
    }
    list[kept++] = r;
  }
  list.resize(kept);
}

void push_togglerefs() {
  // World stopped, during the mark: the lock is not taken (no thread can
  // hold it mid-cycle: the list changes only before the stop and here).
  for (const ToggleRef& r : togglerefs())
    if (r.hidden != 0 && r.strong) mark_object_at(~r.hidden, RootKind::kExplicit);
}

void toggleref_after_mark() {
  for (ToggleRef& r : togglerefs())
    if (r.hidden != 0 && !r.strong && !object_marked(~r.hidden)) r.hidden = 0;
}

void lock_togglerefs() { g_toggle_lock.lock(); }
void unlock_togglerefs() { g_toggle_lock.unlock(); }

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

void GC_register_finalizer(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn, void** ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, FinalizerOrder::kOrdered);
}

void GC_register_finalizer_ignore_self(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                       void** ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, FinalizerOrder::kIgnoreSelf);
}

void GC_register_finalizer_no_order(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                    void** ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, FinalizerOrder::kNoOrder);
}

void GC_register_finalizer_unreachable(void* obj, GC_finalization_proc fn, void* cd, GC_finalization_proc* ofn,
                                       void** ocd) {
  register_finalizer(obj, fn, cd, ofn, ocd, FinalizerOrder::kUnreachable);
}

int GC_register_disappearing_link(void** link) {
  // The link points into (the start of) the object that holds it.
  const std::uintptr_t base = object_base(reinterpret_cast<std::uintptr_t>(link));
  if (base == 0) return GC_SUCCESS;
  return register_link_checked(link, reinterpret_cast<void*>(base), false);
}

int GC_general_register_disappearing_link(void** link, const void* obj) {
  return register_link_checked(link, obj, false);
}

int GC_move_disappearing_link(void** link, void** new_link) { return link_result(move_link(link, new_link, false)); }

int GC_unregister_disappearing_link(void** link) { return unregister_link(link, false) ? 1 : 0; }

int GC_register_long_link(void** link, const void* obj) { return register_link_checked(link, obj, true); }

int GC_move_long_link(void** link, void** new_link) { return link_result(move_link(link, new_link, true)); }

int GC_unregister_long_link(void** link) { return unregister_link(link, true) ? 1 : 0; }

void GC_set_toggleref_func(GC_toggleref_func f) { g_toggleref_func = f; }
GC_toggleref_func GC_get_toggleref_func(void) { return g_toggleref_func; }

int GC_toggleref_add(void* obj, int is_strong) {
  ensure_init();
  if (g_toggleref_func == nullptr) return GC_SUCCESS;
  std::lock_guard<Mutex> g(g_toggle_lock);
  try {
    togglerefs().push_back({~reinterpret_cast<std::uintptr_t>(obj), is_strong != 0});
  } catch (const std::bad_alloc&) {
    return GC_NO_MEMORY;
  }
  return GC_SUCCESS;
}

void GC_set_await_finalize_proc(GC_await_finalize_proc f) {
  g_await_proc = f;
  set_queue_hook(f != nullptr ? on_queue : nullptr);
}
GC_await_finalize_proc GC_get_await_finalize_proc(void) { return g_await_proc; }

int GC_should_invoke_finalizers(void) { return g_finalizers_queued.load(std::memory_order_relaxed) != 0; }

int GC_invoke_finalizers(void) { return static_cast<int>(run_queued_finalizers()); }

void GC_finalize_all(void) {
  ensure_init();
  // Finalizers may register more; stop when a round does nothing (also
  // when called from a finalizer, where no other finalizer runs).
  for (;;) {
    const std::size_t queued = queue_all_finalizers();
    const std::size_t ran = run_queued_finalizers();
    if (queued == 0 && ran == 0) break;
  }
}

void GC_set_finalize_on_demand(int v) { GC_finalize_on_demand = v; }
int GC_get_finalize_on_demand(void) { return GC_finalize_on_demand; }
void GC_set_java_finalization(int v) { GC_java_finalization = v; }
int GC_get_java_finalization(void) { return GC_java_finalization; }
void GC_set_finalizer_notifier(GC_finalizer_notifier_proc f) { GC_finalizer_notifier = f; }
GC_finalizer_notifier_proc GC_get_finalizer_notifier(void) { return GC_finalizer_notifier; }

}  // extern "C"
