// interface_check.c compiled as C++17 (see there), with gc_cpp.h and
// gc_allocator.h in the same translation unit as every C header.
#include <vector>

#define HEADERS_CHECK_ENTRY headers_check_cxx
#define HEADERS_CHECK_NO_MAIN
#define HEADERS_CHECK_AFTER check_cpp_headers
static void check_cpp_headers();
#include "interface_check.c"

namespace {

struct Collectable : gc {
  int value = 1;
};

struct Cleaned : gc_cleanup {
  int value = 2;
};

}  // namespace

// The C++ headers compile together with the C ones and their operators
// work; tests/compat/cpp/gc_cpp_test.cpp checks their behaviour.
static void check_cpp_headers() {
  STATIC_CHECK(UseGC == 0 && NoGC == 1 && PointerFreeGC == 2);
#ifndef GC_NAME_CONFLICT
  STATIC_CHECK(GC == UseGC);
#endif
  Collectable *c = new Collectable;
  CHECK(c != 0 && c->value == 1 && GC_base(c) != 0);
  Collectable *u = new (NoGC) Collectable;
  CHECK(u != 0 && GC_base(u) != 0);
  delete u;
  Cleaned *k = new Cleaned;
  CHECK(k->value == 2);
  delete k;
  int *ints = new (PointerFreeGC) int[16];
  CHECK(ints != 0 && GC_base(ints) != 0);
  std::vector<Collectable *, gc_allocator<Collectable *>> v(10, c);
  CHECK(GC_base(v.data()) != 0);
  std::vector<int, traceable_allocator<int>> w(5, 3);
  CHECK(GC_base(w.data()) != 0 && w[4] == 3);
  CHECK((gc_allocator<int>() == gc_allocator<double>()));
  CHECK(!(traceable_allocator<int>() != traceable_allocator<char>()));
  gc_allocator_ignore_off_page<long>::rebind<char>::other rebound;
  char *chars = rebound.allocate(100);
  CHECK(chars != 0);
  rebound.deallocate(chars, 100);
}
