# SPDX-License-Identifier: Apache-2.0
# CPU test suite: one runner binary, each test in its own child process (tests/runner.c).
file(GLOB MIXCOMM_UNIT_TESTS CONFIGURE_DEPENDS ${MIXCOMM_ROOT}/tests/unit/test_*.c)
add_executable(mixcomm-tests
  ${MIXCOMM_ROOT}/tests/runner.c
  ${MIXCOMM_ROOT}/tests/harness/json_read.c
  ${MIXCOMM_ROOT}/tests/harness/ranks.c
  ${MIXCOMM_ROOT}/tests/harness/tool_run.c
  ${MIXCOMM_ROOT}/tools/common/args.c
  ${MIXCOMM_ROOT}/tools/common/spawn.c
  ${MIXCOMM_ROOT}/tests/unit/fixtures.c
  ${MIXCOMM_UNIT_TESTS})
target_include_directories(mixcomm-tests PRIVATE
  ${MIXCOMM_ROOT}/tests ${MIXCOMM_ROOT}/src ${MIXCOMM_ROOT}/tools ${MIXCOMM_GENERATED})
target_link_libraries(mixcomm-tests PRIVATE mixcomm_static)
target_compile_options(mixcomm-tests PRIVATE ${MIXCOMM_WARN_FLAGS})
target_compile_definitions(mixcomm-tests PRIVATE _GNU_SOURCE
  MIXCOMM_INFO_PATH="$<TARGET_FILE:mixcomm-info>"
  MIXCOMM_PERF_PATH="$<TARGET_FILE:mixcomm-perf>")
add_dependencies(mixcomm-tests mixcomm-info mixcomm-perf)

# ctest: one test per runner test, each run alone by the runner in its own process
# (`mixcomm-tests --test NAME`). The list comes from the built runner when ctest starts
# (tests/ctest_tests.cmake), so a new test needs no CMake change.
file(READ ${MIXCOMM_ROOT}/tests/ctest_tests.cmake MIXCOMM_CTEST_SCRIPT)
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/mixcomm_ctest.cmake
  CONTENT "set(MIXCOMM_TEST_RUNNER \"$<TARGET_FILE:mixcomm-tests>\")\n${MIXCOMM_CTEST_SCRIPT}")
set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES
  ${PROJECT_BINARY_DIR}/mixcomm_ctest.cmake)

# The Python binding's CPU tests, against this build's libmixcomm.so, when pytest is there.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "import pytest"
    RESULT_VARIABLE MIXCOMM_NO_PYTEST OUTPUT_QUIET ERROR_QUIET)
  if(MIXCOMM_NO_PYTEST EQUAL 0)
    add_test(NAME python_binding
      COMMAND ${Python3_EXECUTABLE} -m pytest -q -p no:cacheprovider ${MIXCOMM_ROOT}/python/tests)
    set_tests_properties(python_binding PROPERTIES TIMEOUT 300 ENVIRONMENT
      "MIXCOMM_LIBRARY=$<TARGET_FILE:mixcomm>;PYTHONPATH=${MIXCOMM_ROOT}/python")
  endif()
endif()
