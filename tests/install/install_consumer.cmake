# The install_consumer test: install the build into a scratch prefix, then
# build and run the programs of examples/consumer against the installed tree
# only: main.cpp through find_package(mallocgc) (shared and static), and
# consumer.c through pkg-config.
#
#   cmake -DBUILD_DIR=<build> -DCONSUMER_SOURCE_DIR=<examples/consumer>
#         -DWORK_DIR=<scratch> -DGENERATOR=<generator> -DC_COMPILER=<cc>
#         -DCXX_COMPILER=<c++> [-DPKG_CONFIG=<pkg-config>]
#         [-DSANITIZE_FLAGS="<flags>"] -P install_consumer.cmake
#
# In a sanitizer build the consumers are built with the same flags, so that
# the sanitizer runtime comes first in the programs' libraries.
foreach(var BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR C_COMPILER CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/consumer)

# Runs a command, echoing it; fails the test when it fails.
function(run)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "" "" "COMMAND")
  list(JOIN ARG_COMMAND " " shown)
  message(STATUS "install_consumer: ${shown}")
  execute_process(COMMAND ${ARG_COMMAND} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: FAILED (${rc}): ${shown}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

run(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# Where the libraries and mallocgc.pc went (lib, lib64 or lib/<multiarch>).
file(GLOB_RECURSE pc_files ${prefix}/*/mallocgc.pc)
if(NOT pc_files)
  message(FATAL_ERROR "install_consumer: no mallocgc.pc under ${prefix}")
endif()
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
get_filename_component(lib_dir ${pc_dir} DIRECTORY)
if(NOT EXISTS ${lib_dir}/libmallocgc.so OR NOT EXISTS ${lib_dir}/libmallocgc.a)
  message(FATAL_ERROR "install_consumer: libmallocgc.so and libmallocgc.a are not both in ${lib_dir}")
endif()

# --- C++ through find_package(mallocgc) -------------------------------------

set(sanitize_flags "${SANITIZE_FLAGS}")
separate_arguments(sanitize_list UNIX_COMMAND "${sanitize_flags}")
run(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build} -G ${GENERATOR}
            -DCMAKE_BUILD_TYPE=Release
            -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
            -DCMAKE_PREFIX_PATH=${prefix}
            -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
            "-DCMAKE_CXX_FLAGS=${sanitize_flags}"
            "-DCMAKE_EXE_LINKER_FLAGS=${sanitize_flags}")
run(COMMAND ${CMAKE_COMMAND} --build ${consumer_build})
set(ENV{LD_LIBRARY_PATH} "${lib_dir}:$ENV{LD_LIBRARY_PATH}")
run(COMMAND ${consumer_build}/consumer)
run(COMMAND ${consumer_build}/consumer_static)

# The program must have loaded the installed libmallocgc.so, not the build's.
execute_process(COMMAND ldd ${consumer_build}/consumer OUTPUT_VARIABLE ldd_out RESULT_VARIABLE rc)
if(rc EQUAL 0 AND NOT ldd_out MATCHES "libmallocgc\\.so[^\n]*=> ${lib_dir}/libmallocgc\\.so")
  message(FATAL_ERROR "install_consumer: consumer does not load ${lib_dir}/libmallocgc.so:\n${ldd_out}")
endif()

# --- C through pkg-config ---------------------------------------------------

if(NOT PKG_CONFIG)
  message(FATAL_ERROR "install_consumer: pkg-config not found (Debian: pkg-config)")
endif()
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs mallocgc
  OUTPUT_VARIABLE pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install_consumer: pkg-config --cflags --libs mallocgc failed")
endif()
message(STATUS "install_consumer: pkg-config --cflags --libs mallocgc: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
run(COMMAND ${C_COMPILER} -std=c11 -Wall -Wextra -pedantic -Werror ${sanitize_list}
            ${CONSUMER_SOURCE_DIR}/consumer.c ${pc_flags} -o ${WORK_DIR}/consumer_c)
run(COMMAND ${WORK_DIR}/consumer_c)

message(STATUS "install_consumer: ok")
