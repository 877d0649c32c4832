# SPDX-License-Identifier: Apache-2.0
# CPU test suite: one runner binary, each test in its own child process (tests/runner.c).
file(GLOB MIXCOMM_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
add_executable(mixcomm-tests
  ${CMAKE_SOURCE_DIR}/tests/runner.c
  ${CMAKE_SOURCE_DIR}/tests/harness/ranks.c
  ${MIXCOMM_UNIT_TESTS})
target_include_directories(mixcomm-tests PRIVATE
  ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(mixcomm-tests PRIVATE mixcomm_static)
target_compile_options(mixcomm-tests PRIVATE ${MIXCOMM_WARN_FLAGS})
target_compile_definitions(mixcomm-tests PRIVATE _GNU_SOURCE
  MIXCOMM_INFO_PATH="$<TARGET_FILE:mixcomm-info>")
add_dependencies(mixcomm-tests mixcomm-info)
