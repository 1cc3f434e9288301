# compat_headers_coverage: interface_check.c checks every function and
# variable that libgc.so.1 exports and Boehm's headers declare, as listed
# in exports/libgc-8.2-exports.tsv ("in_public_header yes"). Fails naming
# the symbols the check lacks, so that a new export gets its line there.
#
#   cmake -DTSV=<libgc-8.2-exports.tsv> -DCHECK_SOURCE=<interface_check.c> -P coverage_check.cmake

cmake_minimum_required(VERSION 3.25)

foreach(var TSV CHECK_SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "coverage_check.cmake: -D${var}=... is required")
  endif()
endforeach()

# Exported, and mentioned by Boehm's headers only in a comment.
set(not_declared GC_printf)

file(STRINGS ${TSV} rows)
file(READ ${CHECK_SOURCE} source)
set(missing)
set(count 0)
foreach(row IN LISTS rows)
  string(REPLACE "\t" ";" fields "${row}")
  list(LENGTH fields nfields)
  if(nfields LESS 3)
    continue()
  endif()
  list(GET fields 0 name)
  list(GET fields 1 kind)
  list(GET fields 2 in_header)
  if(NOT in_header STREQUAL "yes" OR name IN_LIST not_declared)
    continue()
  endif()
  math(EXPR count "${count} + 1")
  if(kind STREQUAL "func")
    set(pattern "FN\\([^;]*[ \n]${name},[ \n]*\\(")
  else()
    set(pattern "DATA\\([^\n]*, ${name}\\);")
  endif()
  if(NOT source MATCHES "${pattern}")
    list(APPEND missing ${name})
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "coverage_check: interface_check.c does not check: ${missing}")
endif()
if(count LESS 250)
  message(FATAL_ERROR "coverage_check: only ${count} declared symbols in ${TSV}")
endif()
message(STATUS "coverage_check: interface_check.c checks all ${count} declared symbols of libgc.so.1")
