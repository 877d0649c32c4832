# SPDX-License-Identifier: Apache-2.0
# mixcomm-perf: the benchmark (tools/mixcomm_perf.c; docs/benchmarks.md). It links the static
# library and uses some of its internal headers (bootstrap, VMM) for the same-run ceilings;
# tools/pingpong.cu holds the flag ping-pong kernel of the latency ceiling.
add_executable(mixcomm-perf
  ${MIXCOMM_ROOT}/tools/mixcomm_perf.c
  ${MIXCOMM_ROOT}/tools/pingpong.cu
  ${MIXCOMM_ROOT}/tools/launch_floor.cu
  ${MIXCOMM_ROOT}/tools/perf_latency.c
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

# mixcomm-bench-epilogue: the fused epilogue against the same call plus a separate kernel
# (tools/bench_epilogue.c; docs/results/epilogue-h200.md).
add_executable(mixcomm-bench-epilogue
  ${MIXCOMM_ROOT}/tools/bench_epilogue.c
  ${MIXCOMM_ROOT}/tools/common/graph_bench.c
  ${MIXCOMM_ROOT}/tools/common/args.c
  ${MIXCOMM_ROOT}/tools/common/refdata.c
  ${MIXCOMM_ROOT}/tools/common/spawn.c)
target_include_directories(mixcomm-bench-epilogue PRIVATE
  ${MIXCOMM_ROOT}/tools ${MIXCOMM_ROOT}/src ${MIXCOMM_GENERATED})
target_link_libraries(mixcomm-bench-epilogue PRIVATE mixcomm_static)
target_compile_definitions(mixcomm-bench-epilogue PRIVATE _GNU_SOURCE)
target_compile_options(mixcomm-bench-epilogue PRIVATE ${MIXCOMM_WARN_FLAGS})

# mixcomm-bench-uneven: uneven rows per DP rank against padding and an equal-size call of the
# same bytes (tools/bench_uneven.c).
add_executable(mixcomm-bench-uneven
  ${MIXCOMM_ROOT}/tools/bench_uneven.c
  ${MIXCOMM_ROOT}/tools/common/graph_bench.c
  ${MIXCOMM_ROOT}/tools/common/args.c
  ${MIXCOMM_ROOT}/tools/common/refdata.c
  ${MIXCOMM_ROOT}/tools/common/spawn.c)
target_include_directories(mixcomm-bench-uneven PRIVATE
  ${MIXCOMM_ROOT}/tools ${MIXCOMM_ROOT}/src ${MIXCOMM_GENERATED})
target_link_libraries(mixcomm-bench-uneven PRIVATE mixcomm_static)
target_compile_definitions(mixcomm-bench-uneven PRIVATE _GNU_SOURCE)
target_compile_options(mixcomm-bench-uneven PRIVATE ${MIXCOMM_WARN_FLAGS})
