// Uses an installed mallocgc: builds a linked list in collected memory and
// checks it. Exit code 0 means pass.
#include <cstdio>
#include <mallocgc/mallocgc.hpp>

struct Node {
  Node* next;
  long value;
};

int main() {
  Node* list = nullptr;
  for (long i = 1; i <= 10000; i++) list = mgc::make<Node>(list, i);

  long count = 0;
  long sum = 0;
  for (Node* n = list; n != nullptr; n = n->next) {
    count++;
    sum += n->value;
  }
  if (count != 10000 || sum != 10000L * 10001 / 2) {
    std::fprintf(stderr, "consumer: list has %ld nodes summing to %ld\n", count, sum);
    return 1;
  }
  std::printf("consumer: ok (%ld nodes)\n", count);
  return 0;
}
