// The heap's own bookkeeping is not a root (DESIGN.md: the writable data of
// the program is scanned "minus the allocator's own metadata";
// src/gc/roots: exclude_from_roots). The heap's globals hold addresses
// such as an arena's base, a span's base or the next free page, which are
// also the addresses of the objects placed there: were those globals
// scanned, the first object of the process, of a span, or a large object
// would never be reclaimed.
//
// Checked directly, not through an object's fate: after objects of many
// classes, kinds and sizes were allocated, collected and allocated again,
// no word of the global root ranges the collector lists (snapshot_globals)
// points into the heap. Nothing in this test program keeps a heap address
// in a global, so any such word is bookkeeping. (Whether the process's
// first object is reclaimed cannot be asked reliably: see
// allocate_the_first_object in gc_test_support.hpp.)
#include <dlfcn.h>
#include <sys/auxv.h>

#include <cstdint>
#include <cstring>

#include "../valgrind/under_valgrind.hpp"
#include "gc/roots.hpp"
#include "gc_test_support.hpp"

namespace {

const auto* const kGcOff = testing::AddGlobalTestEnvironment(new gctest::AutomaticCollectionOff);

// Objects of many classes, kinds and sizes; dropped at once.
[[gnu::noinline]] void allocate_all_kinds() {
  const std::size_t sizes[] = {8, 16, 48, 96, 208, 1024, 3072, 9472, 27264, 32768, 40000, 100000, 3 << 20};
  for (int round = 0; round < 3; round++) {
    for (std::size_t size : sizes) {
      for (int i = 0; i < 70; i++) {  // past a 64-object chunk
        std::memset(mgc::alloc(size), 1, 8);
        std::memset(mgc::alloc_noscan(size), 1, 8);
        std::memset(mgc::alloc_typed(mgc::Type(size < 16 ? 16 : size, {8})), 1, 8);
        if (size > 32768) break;
      }
    }
    mgc::collect();
  }
}

// A word of a root range, read as the collector reads it: AddressSanitizer
// must not check it (the redzones between globals are part of the ranges),
// and under memcheck the copy is made defined (collector_defined_word),
// since a root range may hold bytes no one initialised (with the mprotect
// tracker in use, valgrind's concurrent run: "Conditional jump ... depends
// on uninitialised value(s)" here and in find_object, 19 errors).
[[gnu::noinline]] __attribute__((no_sanitize("address"))) const void* load_word(std::uintptr_t a) {
  return reinterpret_cast<const void*>(
      mgc::internal::collector_defined_word(*reinterpret_cast<const std::uintptr_t*>(a)));
}

std::string describe(std::uintptr_t where) {
  Dl_info info{};
  std::string s = testing::PrintToString(reinterpret_cast<void*>(where));
  if (::dladdr(reinterpret_cast<void*>(where), &info) != 0) {
    if (info.dli_sname != nullptr) s += std::string(" in ") + info.dli_sname;
    if (info.dli_fname != nullptr) s += std::string(" of ") + info.dli_fname;
  }
  return s;
}

// The dynamic linker's base (the kernel's AT_BASE): its data holds none of
// the heap's bookkeeping. Not found through one of its symbols: a copy
// relocation of _r_debug into this program would leave the collector
// reading a copy the linker never updates.
std::uintptr_t dynamic_linker_base() { return static_cast<std::uintptr_t>(::getauxval(AT_BASE)); }

bool in_dynamic_linker(std::uintptr_t where, std::uintptr_t ld_base) {
  Dl_info info{};
  return ld_base != 0 && ::dladdr(reinterpret_cast<void*>(where), &info) != 0 &&
         reinterpret_cast<std::uintptr_t>(info.dli_fbase) == ld_base;
}

TEST(GcHeapMetadata, GlobalRootRangesHoldNoHeapAddresses) {
  // Under valgrind a word of ld.so's .bss (the cycles its relocation took,
  // kept for LD_DEBUG=statistics: about 1e5 natively, 0.6e8 to 1.4e8
  // measured under memcheck) falls into the heap, which valgrind maps near
  // 0x8000000; it is no pointer, and ld.so keeps no bookkeeping of ours, so
  // the dynamic linker's data is left out there.
  const std::uintptr_t skip_ld = mgctest::under_valgrind() ? dynamic_linker_base() : 0;
  allocate_all_kinds();
  mgc::internal::GlobalsSnapshot snap;
  mgc::internal::snapshot_globals(&snap);
  ASSERT_FALSE(snap.ranges.empty());
  int found = 0;
  bool saw_first_object = false;
  for (const auto& r : snap.ranges) {
    for (std::uintptr_t a = (r.begin + 7) & ~std::uintptr_t{7}; a + 8 <= r.end; a += 8) {
      const void* v = load_word(a);
      if (a == reinterpret_cast<std::uintptr_t>(&gctest::g_first_object)) {  // the one heap address we keep
        saw_first_object = true;
        continue;
      }
      mgc::ObjectInfo info;
      if (v != nullptr && mgc::find_object(v, &info) && !in_dynamic_linker(a, skip_ld)) {
        if (++found <= 10)
          ADD_FAILURE() << "the global word at " << describe(a) << " holds heap address " << v << " (object at "
                        << info.base << ", " << info.size << " bytes): scanned as a root, it keeps that object alive";
      }
    }
  }
  EXPECT_EQ(found, 0);
  EXPECT_TRUE(saw_first_object) << "the ranges miss this program's .bss: the check above proves nothing";
}

}  // namespace
