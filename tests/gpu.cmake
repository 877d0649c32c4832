# SPDX-License-Identifier: Apache-2.0
# GPU test suite (runs on the device machine: scripts/gpu-suite.sh); built everywhere so CI
# compiles it.
add_executable(mixcomm-gpu-tests
  ${MIXCOMM_ROOT}/tests/gpu/gpu_tests.c
  ${MIXCOMM_ROOT}/tests/gpu/gpu_rank.c
  ${MIXCOMM_ROOT}/tests/gpu/checked_case.c
  ${MIXCOMM_ROOT}/tests/gpu/calls.c
  ${MIXCOMM_ROOT}/tests/gpu/checkpoint.c
  ${MIXCOMM_ROOT}/tests/gpu/epilogue.c
  ${MIXCOMM_ROOT}/tests/gpu/uneven.c
  ${MIXCOMM_ROOT}/tests/gpu/uneven_errors.c
  ${MIXCOMM_ROOT}/tools/common/args.c
  ${MIXCOMM_ROOT}/tools/common/refdata.c
  ${MIXCOMM_ROOT}/tools/common/spawn.c)
target_include_directories(mixcomm-gpu-tests PRIVATE
  ${MIXCOMM_ROOT}/tests ${MIXCOMM_ROOT}/tools ${MIXCOMM_ROOT}/src
  ${MIXCOMM_GENERATED})
target_link_libraries(mixcomm-gpu-tests PRIVATE mixcomm_static)
target_compile_options(mixcomm-gpu-tests PRIVATE ${MIXCOMM_WARN_FLAGS})
target_compile_definitions(mixcomm-gpu-tests PRIVATE _GNU_SOURCE)
