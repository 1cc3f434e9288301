// A shared object for gc_dlopen_test: it has writable segments of its own
// (.bss and .data) that hold heap pointers the test gives it. It does not
// link against mallocgc; the collector must find its globals through the
// list of loaded modules alone.
extern "C" {

[[gnu::visibility("default")]] void* volatile gctest_module_bss_slot;  // .bss
static char gctest_module_anchor;
[[gnu::visibility("default")]] void* volatile gctest_module_data_slot = &gctest_module_anchor;  // .data

// which: 0 the .bss slot, 1 the .data slot. nullptr restores the initial value.
[[gnu::visibility("default")]] void gctest_module_set(int which, void* p) {
  if (which == 0) {
    gctest_module_bss_slot = p;
  } else {
    gctest_module_data_slot = p != nullptr ? p : &gctest_module_anchor;
  }
}

[[gnu::visibility("default")]] void* gctest_module_get(int which) {
  return which == 0 ? gctest_module_bss_slot : gctest_module_data_slot;
}

}  // extern "C"
