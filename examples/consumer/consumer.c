/* Uses an installed mallocgc from C through pkg-config:
 *
 *   cc consumer.c $(pkg-config --cflags --libs mallocgc) -o consumer_c
 *
 * Exit code 0 means pass. */
#include <mallocgc/mallocgc.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  size_t offsets[] = {0, 8};
  const mgc_type_t* pair = mgc_type_create(16, offsets, 2);
  void** p = mgc_alloc_typed(pair);
  char* s = mgc_alloc_noscan(100);
  void** q = mgc_alloc(32);
  if (pair == NULL || p == NULL || s == NULL || q == NULL) {
    fprintf(stderr, "consumer_c: allocation failed\n");
    return 1;
  }
  if (p[0] != NULL || p[1] != NULL || q[0] != NULL || q[3] != NULL || s[99] != 0) {
    fprintf(stderr, "consumer_c: memory is not zeroed\n");
    return 1;
  }
  p[0] = q;
  strcpy(s, "hello");
  mgc_free(s);
  printf("consumer_c: ok\n");
  return 0;
}
