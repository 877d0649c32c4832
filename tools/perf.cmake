# SPDX-License-Identifier: Apache-2.0
# The benchmark tools. They link the static library and use some of its internal headers
# (bootstrap, handler, VMM, kernel launchers).

# mixcomm_add_tool(NAME SOURCE...): a tool built from its sources, with the rank spawning,
# the command-line numbers and the reference data that every tool shares.
function(mixcomm_add_tool name)
  add_executable(${name} ${ARGN}
    ${MIXCOMM_ROOT}/tools/common/args.c
    ${MIXCOMM_ROOT}/tools/common/refdata.c
    ${MIXCOMM_ROOT}/tools/common/spawn.c)
  target_include_directories(${name} PRIVATE
    ${MIXCOMM_ROOT}/tools ${MIXCOMM_ROOT}/src ${MIXCOMM_GENERATED})
  target_link_libraries(${name} PRIVATE mixcomm_static)
  target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
  target_compile_options(${name} PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${MIXCOMM_WARN_FLAGS}>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
endfunction()

# mixcomm-perf: the benchmark (tools/perf/, opened by tools/perf/main.c; docs/benchmarks.md);
# tools/perf/pingpong.cu holds the flag ping-pong kernel of the latency ceiling and
# tools/perf/launch_floor.cu the kernel of the launch floor.
set(MIXCOMM_PERF_DIR ${MIXCOMM_ROOT}/tools/perf)
mixcomm_add_tool(mixcomm-perf
  ${MIXCOMM_PERF_DIR}/main.c
  ${MIXCOMM_PERF_DIR}/options.c
  ${MIXCOMM_PERF_DIR}/rank.c
  ${MIXCOMM_PERF_DIR}/sweep.c
  ${MIXCOMM_PERF_DIR}/work.c
  ${MIXCOMM_PERF_DIR}/ceilings.c
  ${MIXCOMM_PERF_DIR}/case.c
  ${MIXCOMM_PERF_DIR}/calls.c
  ${MIXCOMM_PERF_DIR}/metrics.c
  ${MIXCOMM_PERF_DIR}/report.c
  ${MIXCOMM_PERF_DIR}/context.c
  ${MIXCOMM_PERF_DIR}/latency.c
  ${MIXCOMM_PERF_DIR}/pingpong.cu
  ${MIXCOMM_PERF_DIR}/launch_floor.cu)

# mixcomm-bench-epilogue: the fused epilogue against the same call plus a separate kernel
# (tools/bench_epilogue.c; docs/results/epilogue-h200.md).
mixcomm_add_tool(mixcomm-bench-epilogue
  ${MIXCOMM_ROOT}/tools/bench_epilogue.c
  ${MIXCOMM_ROOT}/tools/common/bench_rank.c
  ${MIXCOMM_ROOT}/tools/common/graph_bench.c)

# mixcomm-bench-uneven: uneven rows per DP rank against padding and an equal-size call of the
# same bytes (tools/bench_uneven.c).
mixcomm_add_tool(mixcomm-bench-uneven
  ${MIXCOMM_ROOT}/tools/bench_uneven.c
  ${MIXCOMM_ROOT}/tools/common/bench_rank.c
  ${MIXCOMM_ROOT}/tools/common/graph_bench.c)
