// Boehm's typed allocation (gc_typed.h) on the core's typed kind.
//
// GC_make_descriptor gives Boehm's own encodings where they fit, so that a
// descriptor a program builds by hand means the same: a length (pointers
// in the first n bytes, GC_DS_LENGTH) or a bitmap of up to 62 words read
// from the top bit down (GC_DS_BITMAP); longer layouts are interned here
// and named by a GC_DS_PROC descriptor whose environment is their index.
// GC_malloc_explicitly_typed then allocates a typed object whose pointer
// bits are the descriptor's, for the requested size (words beyond the
// descriptor hold no pointers, as Boehm says); the layout of each
// (descriptor, size) is interned once and remembered per thread.
#include <mutex>
#include <unordered_map>
#include <vector>

#include "compat/boehm/boehm.hpp"
#include "heap/type_info.hpp"
#include "mallocgc/mallocgc.hpp"
#include "os/fatal.hpp"
#include "os/immortal.hpp"
#include "os/mutex.hpp"

namespace mgc::internal::boehm {
namespace {

constexpr std::size_t kWordBits = 64;
constexpr std::size_t kBitmapWords = kWordBits - GC_DS_TAG_BITS;  // words a bitmap descriptor covers
// GC_DS_PROC descriptors of long layouts: this mark procedure index, one of
// those Boehm reserves for itself, and the layout's index as environment.
constexpr GC_word kLongLayoutProc = 1;
constexpr unsigned kLogMaxMarkProcs = 6;

struct Layouts {
  Mutex lock;
  std::vector<std::vector<GC_word>> long_layouts;  // bitmaps, word 0 first
  struct Key {
    GC_descr d;
    std::size_t size;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const { return std::hash<GC_word>()(k.d * 31 + k.size); }
  };
  std::unordered_map<Key, const TypeInfo*, KeyHash> types;
};
Layouts& layouts() {
  static Immortal<Layouts> x;
  return *x;
}

bool is_pointer_word(const std::vector<GC_word>& bits, std::size_t w) {
  return w / kWordBits < bits.size() && ((bits[w / kWordBits] >> (w % kWordBits)) & 1);
}

// The pointer words of d, word 0 first; false for a descriptor that is
// none of ours or Boehm's typed forms.
bool descriptor_bits(GC_descr d, std::vector<GC_word>* out) {
  out->clear();
  switch (d & GC_DS_TAGS) {
    case GC_DS_LENGTH: {
      const std::size_t words = d / sizeof(GC_word);
      out->assign((words + kWordBits - 1) / kWordBits, 0);
      for (std::size_t w = 0; w < words; w++) (*out)[w / kWordBits] |= GC_word{1} << (w % kWordBits);
      return true;
    }
    case GC_DS_BITMAP: {
      out->assign(1, 0);
      for (std::size_t w = 0; w < kBitmapWords; w++)
        if ((d >> (kWordBits - 1 - w)) & 1) (*out)[0] |= GC_word{1} << w;
      return true;
    }
    case GC_DS_PROC: {
      if (((d >> GC_DS_TAG_BITS) & ((1u << kLogMaxMarkProcs) - 1)) != kLongLayoutProc) return false;
      const std::size_t index = d >> (GC_DS_TAG_BITS + kLogMaxMarkProcs);
      std::lock_guard<Mutex> g(layouts().lock);
      if (index >= layouts().long_layouts.size()) return false;
      *out = layouts().long_layouts[index];
      return true;
    }
    default:
      return false;
  }
}

// The interned layout of a typed object of size bytes (padding included)
// whose pointer words are bits (those of its first bits_words words), or
// with period nonzero an array whose elements of period words each have
// those bits. nullptr when it has no pointer word.
const TypeInfo* layout_for(const std::vector<GC_word>& bits, std::size_t bits_words, std::size_t size,
                           std::size_t period) {
  std::vector<std::size_t> offsets;
  const std::size_t words = period != 0 ? period : size / sizeof(GC_word);
  for (std::size_t w = 0; w < words && w < bits_words; w++)
    if (is_pointer_word(bits, w)) offsets.push_back(w * sizeof(GC_word));
  if (offsets.empty()) return nullptr;
  TypeError e;
  const TypeInfo* t = intern_type(size, offsets.data(), offsets.size(), &e, period);
  if (t == nullptr && e != TypeError::kNoMemory) fatal("typed allocation: %s", type_error_string(e));
  return t;
}

// The layout of GC_malloc_explicitly_typed(size, d): the thread remembers
// the last few it used, the process all of them.
const TypeInfo* type_of(GC_descr d, std::size_t size, bool* no_pointers) {
  struct Entry {
    GC_descr d;
    std::size_t size;
    const TypeInfo* type;
  };
  static __thread Entry recent[8];
  Entry& e = recent[(d ^ (d >> 9) ^ size) % 8];
  if (e.type != nullptr && e.d == d && e.size == size) {
    *no_pointers = false;
    return e.type;
  }
  {
    std::lock_guard<Mutex> g(layouts().lock);
    auto it = layouts().types.find({d, size});
    if (it != layouts().types.end()) {
      *no_pointers = it->second == nullptr;
      if (it->second != nullptr) e = {d, size, it->second};
      return it->second;
    }
  }
  std::vector<GC_word> bits;
  if (!descriptor_bits(d, &bits)) fatal("GC_malloc_explicitly_typed: %#lx is not a type descriptor", d);
  const TypeInfo* t = layout_for(bits, bits.size() * kWordBits, padded(size), 0);
  *no_pointers = t == nullptr;
  std::lock_guard<Mutex> g(layouts().lock);
  layouts().types.emplace(Layouts::Key{d, size}, t);
  if (t != nullptr) e = {d, size, t};
  return t;
}

void* typed_alloc_or_oom(std::size_t size, GC_descr d) {
  bool no_pointers = false;
  const TypeInfo* t = type_of(d, size, &no_pointers);
  if (no_pointers) return GC_malloc_atomic(size);
  if (t == nullptr) return call_oom_fn(size);
  const mgc::Type type(t);
  void* p = mgc::alloc_typed(type);
  return p != nullptr ? p : out_of_memory(size, [&] { return mgc::alloc_typed(type); });
}

}  // namespace

void lock_layouts() { layouts().lock.lock(); }
void unlock_layouts() { layouts().lock.unlock(); }

}  // namespace mgc::internal::boehm

using namespace mgc::internal;
using namespace mgc::internal::boehm;

extern "C" {

GC_descr GC_make_descriptor(const GC_word* bm, size_t len) {
  // The last pointer word decides the form.
  std::size_t last = 0;
  bool any = false;
  for (std::size_t w = 0; w < len; w++)
    if ((bm[w / kWordBits] >> (w % kWordBits)) & 1) last = w, any = true;
  if (!any) return GC_DS_LENGTH;  // nothing to scan
  bool prefix = true;
  for (std::size_t w = 0; w <= last; w++)
    if (!((bm[w / kWordBits] >> (w % kWordBits)) & 1)) prefix = false;
  if (prefix) return (last + 1) * sizeof(GC_word) | GC_DS_LENGTH;
  if (last < kBitmapWords) {
    GC_descr d = GC_DS_BITMAP;
    for (std::size_t w = 0; w <= last; w++)
      if ((bm[w / kWordBits] >> (w % kWordBits)) & 1) d |= GC_word{1} << (kWordBits - 1 - w);
    return d;
  }
  std::vector<GC_word> bits((last + kWordBits) / kWordBits, 0);
  for (std::size_t w = 0; w <= last; w++)
    if ((bm[w / kWordBits] >> (w % kWordBits)) & 1) bits[w / kWordBits] |= GC_word{1} << (w % kWordBits);
  std::lock_guard<Mutex> g(layouts().lock);
  auto& all = layouts().long_layouts;
  std::size_t index = 0;
  while (index < all.size() && all[index] != bits) index++;
  if (index == all.size()) all.push_back(std::move(bits));
  return (index << (GC_DS_TAG_BITS + kLogMaxMarkProcs)) | (kLongLayoutProc << GC_DS_TAG_BITS) | GC_DS_PROC;
}

void* GC_malloc_explicitly_typed(size_t size, GC_descr d) { return typed_alloc_or_oom(size, d); }

void* GC_malloc_explicitly_typed_ignore_off_page(size_t size, GC_descr d) { return typed_alloc_or_oom(size, d); }

void* GC_calloc_explicitly_typed(size_t n, size_t elem_size, GC_descr d) {
  if (elem_size != 0 && n > SIZE_MAX / elem_size) return call_oom_fn(SIZE_MAX);
  const std::size_t size = n * elem_size;
  std::vector<GC_word> bits;
  if (!descriptor_bits(d, &bits)) fatal("GC_calloc_explicitly_typed: %#lx is not a type descriptor", d);
  bool any = false;
  for (GC_word b : bits) any = any || b != 0;
  if (!any) return GC_malloc_atomic(size);
  // An array's layout repeats the element's. Elements that are not whole
  // words are scanned conservatively: every word, a superset.
  if (elem_size % sizeof(GC_word) != 0 || n == 0) return GC_malloc(size);
  const TypeInfo* t = layout_for(bits, bits.size() * kWordBits, padded(size), elem_size / sizeof(GC_word));
  if (t == nullptr) return GC_malloc(size);
  const mgc::Type type(t);
  void* p = mgc::alloc_typed(type);
  return p != nullptr ? p : out_of_memory(size, [&] { return mgc::alloc_typed(type); });
}

}  // extern "C"
