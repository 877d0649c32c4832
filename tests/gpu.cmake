# SPDX-License-Identifier: Apache-2.0
# GPU test suite (runs on the device machine: scripts/gpu-suite.sh); built everywhere so CI
# compiles it.
add_executable(mixcomm-gpu-tests
  ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_tests.c
  ${CMAKE_SOURCE_DIR}/tests/gpu/gpu_rank.c
  ${CMAKE_SOURCE_DIR}/tests/gpu/epilogue.c
  ${CMAKE_SOURCE_DIR}/tools/common/refdata.c
  ${CMAKE_SOURCE_DIR}/tools/common/spawn.c)
target_include_directories(mixcomm-gpu-tests PRIVATE
  ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/tools ${CMAKE_SOURCE_DIR}/src
  ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(mixcomm-gpu-tests PRIVATE mixcomm_static)
target_compile_options(mixcomm-gpu-tests PRIVATE ${MIXCOMM_WARN_FLAGS})
target_compile_definitions(mixcomm-gpu-tests PRIVATE _GNU_SOURCE)
