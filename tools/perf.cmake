# SPDX-License-Identifier: Apache-2.0
# mixcomm-perf: the benchmark (tools/mixcomm_perf.c; docs/benchmarks.md). It links the static
# library and uses some of its internal headers (bootstrap, VMM) for the same-run ceilings;
# tools/pingpong.cu holds the flag ping-pong kernel of the latency ceiling.
add_executable(mixcomm-perf
  ${MIXCOMM_ROOT}/tools/mixcomm_perf.c
  ${MIXCOMM_ROOT}/tools/pingpong.cu
  ${MIXCOMM_ROOT}/tools/common/args.c
  ${MIXCOMM_ROOT}/tools/common/refdata.c
  ${MIXCOMM_ROOT}/tools/common/spawn.c)
target_include_directories(mixcomm-perf PRIVATE
  ${MIXCOMM_ROOT}/tools ${MIXCOMM_ROOT}/src ${MIXCOMM_GENERATED})
target_link_libraries(mixcomm-perf PRIVATE mixcomm_static)
target_compile_definitions(mixcomm-perf PRIVATE _GNU_SOURCE)
target_compile_options(mixcomm-perf PRIVATE
  $<$<COMPILE_LANGUAGE:C>:${MIXCOMM_WARN_FLAGS}>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
