// The C++ side of install_check.cmake: gc_cpp.h under Boehm's top-level
// name, and gc_allocator.h, from the installed headers; no libgccpp.
#include <gc/gc_allocator.h>
#include <gc_cpp.h>

#include <cstdio>
#include <vector>

#ifndef MALLOCGC_BOEHM_HEADERS
#error "<gc_cpp.h> is not mallocgc's: the installed headers are not first on the include path"
#endif

namespace {
struct Cell : public gc {
  int value;
  explicit Cell(int v) : value(v) {}
};
}  // namespace

int main() {
  GC_INIT();
  std::vector<Cell*, gc_allocator<Cell*>> cells;
  for (int i = 0; i < 1000; i++) cells.push_back(new Cell(i));
  GC_gcollect();
  for (int i = 0; i < 1000; i++)
    if (cells[i]->value != i) return 1;
  Cell* uncollectable = new (NoGC) Cell(7);
  delete uncollectable;
  std::puts("install_consumer.cpp: ok");
  return 0;
}
