# Run by doctest_discover_tests (doctest's doctest.cmake) after each unit
# test binary links, in place of doctest's own doctestAddTests.cmake:
# tests/CMakeLists.txt points _DOCTEST_DISCOVER_TESTS_SCRIPT here. Same
# inputs (-D TEST_EXECUTABLE=..., TEST_PREFIX=..., CTEST_FILE=...) and the
# same output, a CTest script with one add_test per TEST_CASE, but:
#
# - A case's name may hold ';'. doctest's script (2.4.9 in Debian 12, and
#   upstream) turns the listing into a CMake list, so "a; b" became two tests,
#   "a" and " b", each running no case at all, and passing.
# - cmake -D trims the value, so TEST_PREFIX "unit_zones: " arrives as
#   "unit_zones:"; a prefix ending in ':' gets its space back.
#
# TEST_SPEC, TEST_EXTRA_ARGS, TEST_PROPERTIES, TEST_SUFFIX and TEST_LIST work
# as in doctest's script; ADD_LABELS and JUNIT_OUTPUT_DIR are not supported.

if(TEST_ADD_LABELS OR TEST_JUNIT_OUTPUT_DIR)
  message(FATAL_ERROR "tests/unit/doctest_add_tests.cmake: ADD_LABELS and JUNIT_OUTPUT_DIR are not supported")
endif()
if(NOT EXISTS "${TEST_EXECUTABLE}")
  message(FATAL_ERROR "Specified test executable '${TEST_EXECUTABLE}' does not exist")
endif()

set(prefix "${TEST_PREFIX}")
if(prefix MATCHES ":$")
  string(APPEND prefix " ")
endif()

set(spec)
if(TEST_SPEC MATCHES .)
  set(spec "--test-case=${TEST_SPEC}")
endif()
execute_process(
  COMMAND ${TEST_EXECUTOR} "${TEST_EXECUTABLE}" ${spec} --list-test-cases
  OUTPUT_VARIABLE output
  ERROR_VARIABLE errors
  RESULT_VARIABLE result
  WORKING_DIRECTORY "${TEST_WORKING_DIR}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "Error running test executable '${TEST_EXECUTABLE}' --list-test-cases:\n"
                      "  Result: ${result}\n  Output: ${output}\n  Errors: ${errors}\n")
endif()

# One argument of a CMake command: a bracket argument unless plain.
function(cmake_argument out value)
  if(value MATCHES "[^-./:a-zA-Z0-9_=]")
    if(value MATCHES "]==]")
      message(FATAL_ERROR "a test name or argument holds ']==]': ${value}")
    endif()
    set(${out} "[==[${value}]==]" PARENT_SCOPE)
  else()
    set(${out} "${value}" PARENT_SCOPE)
  endif()
endfunction()

set(executor "")
foreach(arg IN LISTS TEST_EXECUTOR)
  cmake_argument(a "${arg}")
  string(APPEND executor "${a} ")
endforeach()
set(arguments "")
foreach(arg IN LISTS TEST_EXTRA_ARGS)
  cmake_argument(a "${arg}")
  string(APPEND arguments " ${a}")
endforeach()
set(properties "")
foreach(p IN LISTS TEST_PROPERTIES)
  cmake_argument(a "${p}")
  string(APPEND properties " ${a}")
endforeach()
cmake_argument(executable "${TEST_EXECUTABLE}")
cmake_argument(directory "${TEST_WORKING_DIR}")

# The listing, a line at a time, without ever making a CMake list of it: from
# each remaining line's start to the next newline.
set(script "")
set(names "")
string(REPLACE "\r" "" output "${output}")
string(APPEND output "\n")
while(NOT output STREQUAL "")
  string(FIND "${output}" "\n" end)
  string(SUBSTRING "${output}" 0 ${end} line)
  math(EXPR next "${end} + 1")
  string(SUBSTRING "${output}" ${next} -1 output)
  if(line STREQUAL "" OR line MATCHES "^=+$" OR line MATCHES "^\\[doctest\\] ")
    continue()
  endif()
  cmake_argument(name "${prefix}${line}${TEST_SUFFIX}")
  # doctest's filters split at ',' unless escaped.
  string(REPLACE "," "\\," filter "${line}")
  cmake_argument(filter "--test-case=${filter}")
  string(APPEND script
    "add_test(${name} ${executor}${executable} ${filter}${arguments})\n"
    "set_tests_properties(${name} PROPERTIES WORKING_DIRECTORY ${directory}${properties})\n")
  string(APPEND names " ${name}")
endwhile()
if(TEST_LIST)
  # The names, ';' in them escaped, for scripts that set properties on them.
  string(REPLACE ";" "\\;" escaped "${names}")
  string(APPEND script "set(${TEST_LIST}${escaped})\n")
endif()

file(WRITE "${CTEST_FILE}" "${script}")
