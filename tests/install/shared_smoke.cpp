// shared_library_link: a program linked against libmallocgc.so (not the
// static library the other tests use) allocates through the inline fast
// path and the slow paths, checks that memory comes back zeroed and
// aligned, and frees. Exit code 0 means pass.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mallocgc/mallocgc.hpp>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "shared_smoke: FAILED: %s\n", what);
    failures++;
  }
}

bool all_zero(const void* p, std::size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

struct Node {
  Node* next;
  long value;
};

}  // namespace

int main() {
  // Sizes on the inline fast path (tiny, small) and beyond it (medium, large).
  const std::size_t sizes[] = {1, 8, 15, 16, 24, 100, 256, 257, 4000, 32768, 100000};
  for (std::size_t size : sizes) {
    for (int round = 0; round < 2; round++) {  // the second round may reuse freed slots
      void* a = mgc::alloc(size);
      void* b = mgc::alloc_noscan(size);
      expect(a != nullptr && b != nullptr, "alloc/alloc_noscan returned nullptr");
      if (a == nullptr || b == nullptr) continue;
      expect(a != b, "two live allocations share an address");
      expect(all_zero(a, size), "mgc::alloc memory is not zeroed");
      expect(all_zero(b, size), "mgc::alloc_noscan memory is not zeroed");
      if (size >= 16) expect(aligned16(a) && aligned16(b), "an allocation of 16 bytes or more is not 16-aligned");
      std::memset(a, 0xab, size);
      std::memset(b, 0xcd, size);
      mgc::free(a);
      mgc::free(b);
    }
  }

  Node* list = nullptr;
  for (long i = 0; i < 1000; i++) list = mgc::make<Node>(list, i);
  long sum = 0;
  for (Node* n = list; n != nullptr; n = n->next) sum += n->value;
  expect(sum == 999L * 1000 / 2, "the linked list built with mgc::make lost a node");

  auto* numbers = mgc::make<std::uint64_t[64]>();
  expect(all_zero(numbers, sizeof(std::uint64_t[64])), "mgc::make<uint64_t[64]> is not zeroed");
  mgc::free(numbers);

  mgc::free(nullptr);  // ignored

  if (failures != 0) return 1;
  std::printf("shared_smoke: ok\n");
  return 0;
}
