# mallocgc's own Boehm GC 8.2 header family (include/boehm/), for programs
# written against Boehm's API that link mallocgc's libgc.so.1 (target
# mallocgc_boehm) without Boehm installed. Included from the top-level
# CMakeLists.txt after mallocgc_boehm is defined.
#
#   mallocgc_boehm_headers   INTERFACE target: the build tree's include/boehm,
#                            where <gc.h> and <gc/gc.h> (and the rest of gc/)
#                            are found
#
# Installed (never where the system's Boehm GC lives, so that neither can
# shadow the other by accident):
#
#   <includedir>/mallocgc/boehm/gc.h, gc_cpp.h, gc/*.h
#   <libdir>/mallocgc/boehm/libgc.so            the link-time name of
#                                               libgc.so.1 (installed with it
#                                               by the top-level file)
#   <libdir>/mallocgc/boehm/pkgconfig/bdw-gc.pc Boehm's package name and
#                                               version, with these paths
#
# A program builds against them with
#   PKG_CONFIG_PATH=<libdir>/mallocgc/boehm/pkgconfig pkg-config --cflags --libs bdw-gc
# which also sets the run path, so that the program loads this libgc.so.1
# and not the system's.

set(MALLOCGC_BOEHM_HEADERS_DIR ${PROJECT_SOURCE_DIR}/include/boehm)

add_library(mallocgc_boehm_headers INTERFACE)
target_include_directories(mallocgc_boehm_headers INTERFACE $<BUILD_INTERFACE:${MALLOCGC_BOEHM_HEADERS_DIR}>)

set(MALLOCGC_BOEHM_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/mallocgc/boehm)
set(MALLOCGC_BOEHM_INSTALL_LIBDIR ${CMAKE_INSTALL_LIBDIR}/mallocgc/boehm)

install(DIRECTORY ${MALLOCGC_BOEHM_HEADERS_DIR}/
  DESTINATION ${MALLOCGC_BOEHM_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")

# The top-level file installs libgc.so.1 without its libgc.so symlink (a
# library loaded by programs built elsewhere); compiling against the headers
# needs it, next to the library, for -lgc.
install(TARGETS mallocgc_boehm
  LIBRARY DESTINATION ${MALLOCGC_BOEHM_INSTALL_LIBDIR} NAMELINK_ONLY)

# bdw-gc.pc finds its prefix relative to itself (${pcfiledir}), as
# mallocgc.pc does, unless the install directories are absolute.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(mgc_bdwgc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(mgc_bdwgc_libdir "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(mgc_bdwgc_includedir "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH mgc_bdwgc_up /${MALLOCGC_BOEHM_INSTALL_LIBDIR}/pkgconfig /)
  string(REGEX REPLACE "/$" "" mgc_bdwgc_up "${mgc_bdwgc_up}")
  set(mgc_bdwgc_prefix "\${pcfiledir}/${mgc_bdwgc_up}")
  set(mgc_bdwgc_libdir "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(mgc_bdwgc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/boehm-pkgconfig/bdw-gc.pc @ONLY CONTENT [=[
prefix=@mgc_bdwgc_prefix@
libdir=@mgc_bdwgc_libdir@
includedir=@mgc_bdwgc_includedir@
gclibdir=${libdir}/mallocgc/boehm

Name: Boehm-Demers-Weiser Conservative Garbage Collector (mallocgc)
Description: Boehm GC 8.2's API on mallocgc: mallocgc's libgc.so.1 and headers
Version: 8.2.2
Libs: -L${gclibdir} -Wl,-rpath,${gclibdir} -lgc -lpthread -ldl
Cflags: -I${includedir}/mallocgc/boehm
]=])

install(FILES ${PROJECT_BINARY_DIR}/boehm-pkgconfig/bdw-gc.pc
  DESTINATION ${MALLOCGC_BOEHM_INSTALL_LIBDIR}/pkgconfig)
