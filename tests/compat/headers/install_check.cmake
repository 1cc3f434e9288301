# The compat_headers_install test: install the build into a scratch prefix,
# then build and run install_consumer.c and install_consumer.cpp with the
# flags of the installed bdw-gc.pc only (mallocgc's Boehm headers and
# libgc.so.1, cmake/boehm_headers.cmake), and check that the programs load
# the installed libgc.so.1 and that nothing was installed where it would
# shadow the system's Boehm GC.
#
#   cmake -DBUILD_DIR=<build> -DWORK_DIR=<scratch> -DSOURCE_DIR=<this dir>
#         -DC_COMPILER=<cc> -DCXX_COMPILER=<c++> [-DPKG_CONFIG=<pkg-config>]
#         -P install_check.cmake

cmake_minimum_required(VERSION 3.25)

foreach(var BUILD_DIR WORK_DIR SOURCE_DIR C_COMPILER CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_check.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)

function(run)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "" "" "COMMAND")
  list(JOIN ARG_COMMAND " " shown)
  message(STATUS "compat_headers_install: ${shown}")
  execute_process(COMMAND ${ARG_COMMAND} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "compat_headers_install: FAILED (${rc}): ${shown}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
run(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

file(GLOB_RECURSE pc_files ${prefix}/*/mallocgc/boehm/pkgconfig/bdw-gc.pc)
if(NOT pc_files)
  message(STATUS "compat_headers_install: skipped: no bdw-gc.pc installed (cmake/boehm_headers.cmake is not included)")
  return()
endif()
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "compat_headers_install: pkg-config not found (Debian: pkg-config)")
endif()
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
get_filename_component(gc_lib_dir ${pc_dir} DIRECTORY)

# The layout: the headers under include/mallocgc/boehm, nothing that a
# plain -I<prefix>/include or the system's pkg-config would find.
foreach(file include/mallocgc/boehm/gc.h include/mallocgc/boehm/gc_cpp.h include/mallocgc/boehm/gc/gc.h
             include/mallocgc/boehm/gc/gc_allocator.h)
  if(NOT EXISTS ${prefix}/${file})
    message(FATAL_ERROR "compat_headers_install: ${prefix}/${file} not installed")
  endif()
endforeach()
file(GLOB shadowing ${prefix}/include/gc.h ${prefix}/include/gc ${prefix}/*/pkgconfig/bdw-gc.pc
     ${prefix}/*/*/pkgconfig/bdw-gc.pc)
if(shadowing)
  message(FATAL_ERROR "compat_headers_install: installed where it shadows Boehm GC: ${shadowing}")
endif()
foreach(file libgc.so libgc.so.1)
  if(NOT EXISTS ${gc_lib_dir}/${file})
    message(FATAL_ERROR "compat_headers_install: ${gc_lib_dir}/${file} not installed")
  endif()
endforeach()

# Only our bdw-gc.pc is visible to pkg-config.
set(ENV{PKG_CONFIG_LIBDIR} "${pc_dir}")
unset(ENV{PKG_CONFIG_PATH})
execute_process(COMMAND ${PKG_CONFIG} --modversion bdw-gc
  OUTPUT_VARIABLE version OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT version STREQUAL "8.2.2")
  message(FATAL_ERROR "compat_headers_install: bdw-gc version '${version}' (${rc}), expected 8.2.2")
endif()
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs bdw-gc
  OUTPUT_VARIABLE pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compat_headers_install: pkg-config --cflags --libs bdw-gc failed")
endif()
message(STATUS "compat_headers_install: bdw-gc ${version}: ${pc_flags}")
separate_arguments(pc_flag_list UNIX_COMMAND "${pc_flags}")

run(COMMAND ${C_COMPILER} -std=c11 -Wall -Wextra -Werror ${SOURCE_DIR}/install_consumer.c ${pc_flag_list}
            -o ${WORK_DIR}/consumer_c)
run(COMMAND ${CXX_COMPILER} -std=c++17 -Wall -Wextra -Werror ${SOURCE_DIR}/install_consumer.cpp ${pc_flag_list}
            -o ${WORK_DIR}/consumer_cxx)

file(REAL_PATH ${gc_lib_dir}/libgc.so.1 installed_lib)
foreach(program consumer_c consumer_cxx)
  unset(ENV{LD_LIBRARY_PATH})
  run(COMMAND ${WORK_DIR}/${program})
  # The run path of bdw-gc.pc, not the loader's default, found libgc.so.1.
  execute_process(COMMAND ldd ${WORK_DIR}/${program} OUTPUT_VARIABLE ldd_out RESULT_VARIABLE rc)
  if(rc EQUAL 0)
    if(NOT ldd_out MATCHES "libgc\\.so\\.1 => ([^ \n]+)")
      message(FATAL_ERROR "compat_headers_install: ${program} does not load libgc.so.1:\n${ldd_out}")
    endif()
    file(REAL_PATH ${CMAKE_MATCH_1} loaded_lib)
    if(NOT loaded_lib STREQUAL installed_lib)
      message(FATAL_ERROR "compat_headers_install: ${program} loads ${loaded_lib}, not ${installed_lib}")
    endif()
    if(ldd_out MATCHES "libgccpp")
      message(FATAL_ERROR "compat_headers_install: ${program} needs libgccpp:\n${ldd_out}")
    endif()
  endif()
endforeach()
message(STATUS "compat_headers_install: the installed headers and bdw-gc.pc work")
