// libFuzzer harness over the public API: each input is a sequence of
// operations (allocate of every kind and size, free, drop, link one object
// to another, finalizers, weak references, root ranges added and removed,
// collections, a second thread that allocates and collects), and after
// every step every object the program still holds is checked whole.
//
// What would be a finding:
//   - an object held (in a slot, which is a root, or through a link from a
//     held object, or from a registered root range) whose contents changed:
//     it was freed or reused while reachable;
//   - a finalizer run on an object the program had not dropped;
//   - a weak reference that reads null while its object is held;
//   - any crash, sanitizer report or fatal error of the library on valid
//     use.
// Built with clang's -fsanitize=fuzzer and ASan+UBSan (the `fuzz` preset;
// README "Fuzzing").
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "mallocgc/mallocgc.hpp"

namespace {

constexpr int kSlots = 32;
constexpr std::uint64_t kDropped = 0xD0D0D0D0D0D0D0D0u;
constexpr std::uint64_t kHeld = 0xCAFEF00DCAFEF00Du;

// Every object starts with this header; conservative ones may carry a link
// to another object in `link`. The rest is filled with a pattern that is
// never a heap address (bit 63 set).
struct Header {
  std::uint64_t state;  // kHeld, or kDropped once the program let it go
  std::uint64_t id;
  std::uint64_t size;
  void* link;
};

enum class Kind : std::uint8_t { conservative, noscan, typed };

struct Slot {
  Header* obj = nullptr;
  Kind kind = Kind::conservative;
  bool finalizable = false;  // has a finalizer: never a link target
  bool target = false;       // some object links to it: never finalizable
  mgc::internal::WeakHandle* weak = nullptr;
};

// Static storage: the slots are roots.
Slot g_slots[kSlots];
std::uint64_t g_next_id = 1;
// A root range in malloc'd memory (not scanned unless registered).
void** g_range = nullptr;
bool g_range_registered = false;
std::atomic<std::uint64_t> g_finalized{0};

[[noreturn]] void finding(const char* what, std::uint64_t id) {
  std::fprintf(stderr, "api_fuzzer: %s (object %llu)\n", what, static_cast<unsigned long long>(id));
  std::abort();
}

std::uint64_t word_of(std::uint64_t id, std::size_t i) { return (id * 0x9E3779B97F4A7C15u + i) | (1ull << 63); }

void fill(Header* h) {
  auto* w = reinterpret_cast<std::uint64_t*>(h);
  for (std::size_t i = sizeof(Header) / 8; i < h->size / 8; i++) w[i] = word_of(h->id, i);
}

void check(const Header* h) {
  if (h->state != kHeld) finding("a held object's header changed", h->id);
  const auto* w = reinterpret_cast<const std::uint64_t*>(h);
  for (std::size_t i = sizeof(Header) / 8; i < h->size / 8; i++)
    if (w[i] != word_of(h->id, i)) finding("a held object's contents changed", h->id);
  if (h->link != nullptr) check(static_cast<const Header*>(h->link));
}

void check_all() {
  for (const Slot& s : g_slots) {
    if (s.obj == nullptr) continue;
    check(s.obj);
    if (s.weak != nullptr && mgc::internal::weak_get(s.weak) != s.obj)
      finding("a weak reference lost a held object", s.obj->id);
  }
  if (g_range_registered && g_range[0] != nullptr) check(static_cast<const Header*>(g_range[0]));
}

const mgc::Type& pair_type() {
  // Header's link word is a pointer; the rest is data.
  static const mgc::Type t(64, {24});
  return t;
}

Header* allocate(Kind kind, std::size_t size) {
  size = size < sizeof(Header) ? sizeof(Header) : (size + 7) & ~std::size_t{7};
  void* p = nullptr;
  switch (kind) {
    case Kind::conservative:
      p = mgc::alloc(size);
      break;
    case Kind::noscan:
      p = mgc::alloc_noscan(size);
      break;
    case Kind::typed:
      size = 64;
      p = mgc::alloc_typed(pair_type());
      break;
  }
  if (p == nullptr) finding("allocation failed", g_next_id);
  auto* h = static_cast<Header*>(p);
  *h = {kHeld, g_next_id++, size, nullptr};
  fill(h);
  return h;
}

void on_finalize(void* obj, void*) {
  const auto* h = static_cast<const Header*>(obj);
  if (h->state != kDropped) finding("finalizer ran on an object the program still held", h->id);
  g_finalized.fetch_add(1, std::memory_order_relaxed);
}

// Let go of slot i's object (without freeing it).
void drop(Slot& s) {
  if (s.obj == nullptr) return;
  if (s.weak != nullptr) mgc::internal::weak_destroy(s.weak), s.weak = nullptr;
  // Only an object nothing else links to may be declared dropped: a
  // finalizer on it would be wrong otherwise (targets never get one).
  if (!s.target) s.obj->state = kDropped;
  s.obj = nullptr;
  s.finalizable = s.target = false;
}

void release_range() {
  if (g_range == nullptr) return;
  if (g_range_registered) mgc::remove_roots(g_range, g_range + 1);
  std::free(g_range);
  g_range = nullptr;
  g_range_registered = false;
}

void reset() {
  for (Slot& s : g_slots) drop(s);
  release_range();
}

void second_thread(std::uint64_t n) {
  std::thread([n] {
    Header* keep = allocate(Kind::conservative, 64);
    Header* last = keep;
    for (std::uint64_t i = 0; i < n; i++) {
      const Kind kind = i % 3 == 0 ? Kind::noscan : Kind::conservative;
      Header* x = allocate(kind, 16 + (i * 40) % 600);
      if (kind == Kind::conservative && i % 5 == 1) {  // a chain of scanned objects
        last->link = x;
        last = x;
      }
    }
    mgc::collect();
    check(keep);
  }).join();
}

// Reads the input a byte at a time; zeros past its end.
struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() { return n == 0 ? 0 : (n--, *p++); }
  std::size_t u16() { return byte() | (static_cast<std::size_t>(byte()) << 8); }
};

void step(Reader& r) {
  const std::uint8_t op = r.byte() % 12;
  Slot& s = g_slots[r.byte() % kSlots];
  Slot& t = g_slots[r.byte() % kSlots];
  switch (op) {
    case 0:
    case 1:
    case 2: {  // allocate into s (dropping what it held)
      drop(s);
      const auto kind = static_cast<Kind>(op);
      const std::size_t size = r.byte() % 4 == 0 ? 8192 + r.u16() * 8 : r.u16() % 2048;
      s.obj = allocate(kind, size);
      s.kind = kind;
      break;
    }
    case 3:  // free s explicitly
      if (s.obj != nullptr && !s.target && !s.finalizable) {
        if (s.weak != nullptr) mgc::internal::weak_destroy(s.weak), s.weak = nullptr;
        mgc::free(s.obj);
        s.obj = nullptr;
      }
      break;
    case 4:  // drop s
      drop(s);
      break;
    case 5:  // s links to t (s keeps t alive once t's slot lets go)
      if (s.obj != nullptr && t.obj != nullptr && &s != &t && s.kind != Kind::noscan && s.obj->link == nullptr &&
          !t.finalizable && t.obj->link == nullptr) {
        s.obj->link = t.obj;
        t.target = true;
      }
      break;
    case 6:  // finalizer on s
      if (s.obj != nullptr && !s.target && !s.finalizable && s.obj->link == nullptr) {
        mgc::set_finalizer(s.obj, on_finalize, nullptr);
        s.finalizable = true;
      }
      break;
    case 7:  // weak reference to s
      if (s.obj != nullptr && s.weak == nullptr) s.weak = mgc::internal::weak_create(s.obj);
      break;
    case 8:  // a registered root range holds s's object; s lets go of it
      if (s.obj != nullptr && !s.finalizable && g_range == nullptr) {
        g_range = static_cast<void**>(std::calloc(1, sizeof(void*)));
        if (g_range == nullptr) break;
        mgc::add_roots(g_range, g_range + 1);
        g_range_registered = true;
        g_range[0] = s.obj;
        s.target = true;  // reachable from elsewhere now
        drop(s);
      }
      break;
    case 9:  // the range goes (its object with it, unless linked)
      release_range();
      break;
    case 10:
      mgc::collect();
      if (r.byte() % 4 == 0) mgc::wait_for_finalizers();
      break;
    case 11:
      second_thread(r.byte() * 4);
      break;
  }
  check_all();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader r{data, size};
  for (int i = 0; i < 256 && r.n != 0; i++) step(r);
  reset();
  return 0;
}
