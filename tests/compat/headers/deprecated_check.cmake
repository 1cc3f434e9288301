# Checks the deprecation attributes of a Boehm header set: compiles
# deprecated_check.c and expects a deprecation warning for each name it
# uses (they are Boehm GC 8.2's deprecated declarations), and no other
# diagnostic.
#
#   cmake -DCOMPILER=<cc> -DSOURCE=<deprecated_check.c> [-DINCLUDE_DIRS=<dir;...>]
#         -P deprecated_check.cmake

cmake_minimum_required(VERSION 3.25)

foreach(var COMPILER SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "deprecated_check.cmake: -D${var}=... is required")
  endif()
endforeach()

set(names
  GC_gc_no GC_parallel GC_oom_fn GC_on_heap_resize GC_find_leak GC_all_interior_pointers
  GC_finalize_on_demand GC_java_finalization GC_finalizer_notifier GC_dont_gc GC_dont_expand
  GC_use_entire_heap GC_full_freq GC_non_gc_bytes GC_no_dls GC_free_space_divisor GC_max_retries
  GC_stackbottom GC_dont_precollect GC_time_limit GC_debug_header_size
  GC_malloc_stubborn GC_change_stubborn GC_debug_malloc_stubborn GC_debug_change_stubborn)

set(include_flags)
foreach(dir IN LISTS INCLUDE_DIRS)
  list(APPEND include_flags -I${dir})
endforeach()

# The C locale: plain quotes in the messages.
set(ENV{LC_ALL} C)
execute_process(
  COMMAND ${COMPILER} -std=c11 -fsyntax-only -Wall -Wextra -Wdeprecated-declarations
          -DGC_THREADS -D_GNU_SOURCE ${include_flags} ${SOURCE}
  RESULT_VARIABLE rc
  ERROR_VARIABLE out
  OUTPUT_VARIABLE out_stdout)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "deprecated_check: compilation failed:\n${out}")
endif()

set(missing)
foreach(name IN LISTS names)
  if(NOT out MATCHES "'${name}' is deprecated")
    list(APPEND missing ${name})
  endif()
endforeach()
string(REGEX MATCHALL "warning: [^\n]*" warnings "${out}")
list(LENGTH warnings nwarnings)
list(LENGTH names nnames)
if(missing OR NOT nwarnings EQUAL nnames)
  message(FATAL_ERROR "deprecated_check: expected ${nnames} deprecation warnings, got ${nwarnings}; "
                      "not deprecated: ${missing}\n${out}")
endif()
message(STATUS "deprecated_check: all ${nnames} deprecated declarations warn, nothing else does")
