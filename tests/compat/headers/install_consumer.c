/* A program built only against the installed mallocgc Boehm headers and
 * libgc.so.1, through pkg-config's bdw-gc (install_check.cmake). */
#include <gc.h>
#include <gc/gc_typed.h>
#include <stdio.h>
#include <string.h>

#ifndef MALLOCGC_BOEHM_HEADERS
#error "<gc.h> is not mallocgc's: the installed headers are not first on the include path"
#endif

int main(void) {
  GC_INIT();
  char *s = GC_STRDUP("installed");
  GC_word bm[1] = {0};
  GC_set_bit(bm, 0);
  void **typed = (void **)GC_MALLOC_EXPLICITLY_TYPED(4 * sizeof(void *), GC_make_descriptor(bm, 1));
  if (s == NULL || strcmp(s, "installed") != 0 || typed == NULL) return 1;
  typed[0] = s;
  GC_gcollect();
  if (strcmp((const char *)typed[0], "installed") != 0) return 1;
  printf("install_consumer.c: ok, library %u.%u.%u\n", GC_get_version() >> 16, (GC_get_version() >> 8) & 0xff,
         GC_get_version() & 0xff);
  return 0;
}
