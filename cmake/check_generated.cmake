# Runs a generator into a file and compares it with the committed copy.
#
#   cmake -DGENERATOR=<exe> -DOUTPUT=<file> -DEXPECTED=<file> -P check_generated.cmake
#
# Used by the size_classes_generated test: the committed
# include/mallocgc/internal/size_classes.hpp must be what tools/mksizeclasses
# writes today.
foreach(var GENERATOR OUTPUT EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_generated.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND ${GENERATOR} ${OUTPUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${GENERATOR} failed (${rc})")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${OUTPUT} ${EXPECTED} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  find_program(DIFF diff)
  if(DIFF)
    execute_process(COMMAND ${DIFF} -u ${EXPECTED} ${OUTPUT})
  endif()
  message(FATAL_ERROR "${EXPECTED} differs from what ${GENERATOR} writes (${OUTPUT}).\n"
                      "Regenerate it: cmake --build <build-dir> --target update_size_classes")
endif()
message(STATUS "${EXPECTED} is up to date")
