# SPDX-License-Identifier: Apache-2.0
# Read by ctest when it starts (TEST_INCLUDE_FILES, tests/tests.cmake, which sets
# MIXCOMM_TEST_RUNNER above this text): registers every test that the runner lists.
if(NOT EXISTS "${MIXCOMM_TEST_RUNNER}")
  add_test(mixcomm-tests-not-built "${CMAKE_COMMAND}" -E echo
    "build first (cmake --build): ${MIXCOMM_TEST_RUNNER} does not exist")
  set_tests_properties(mixcomm-tests-not-built PROPERTIES WILL_FAIL TRUE)
  return()
endif()
execute_process(COMMAND "${MIXCOMM_TEST_RUNNER}" --list
  OUTPUT_VARIABLE mixcomm_test_names RESULT_VARIABLE mixcomm_rc)
if(NOT mixcomm_rc EQUAL 0)
  add_test(mixcomm-tests-list "${MIXCOMM_TEST_RUNNER}" --list)
  return()
endif()
string(REGEX REPLACE "\n$" "" mixcomm_test_names "${mixcomm_test_names}")
string(REPLACE "\n" ";" mixcomm_test_names "${mixcomm_test_names}")
foreach(name IN LISTS mixcomm_test_names)
  add_test(${name} "${MIXCOMM_TEST_RUNNER}" --test ${name})
  # The runner enforces each test's own limit; this one only catches a stuck runner.
  set_tests_properties(${name} PROPERTIES TIMEOUT 900)
endforeach()
