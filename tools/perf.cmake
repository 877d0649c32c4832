# SPDX-License-Identifier: Apache-2.0
# mixcomm-perf: the benchmark (tools/mixcomm_perf.c; docs/benchmarks.md). It links the static
# library and uses some of its internal headers (bootstrap, VMM) for the same-run ceilings;
# tools/pingpong.cu holds the flag ping-pong kernel of the latency ceiling.
add_executable(mixcomm-perf
  tools/mixcomm_perf.c
  tools/pingpong.cu
  tools/common/args.c
  tools/common/refdata.c
  tools/common/spawn.c)
target_include_directories(mixcomm-perf PRIVATE
  ${CMAKE_SOURCE_DIR}/tools ${CMAKE_SOURCE_DIR}/src ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(mixcomm-perf PRIVATE mixcomm_static)
target_compile_definitions(mixcomm-perf PRIVATE _GNU_SOURCE)
target_compile_options(mixcomm-perf PRIVATE
  $<$<COMPILE_LANGUAGE:C>:${MIXCOMM_WARN_FLAGS}>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
install(TARGETS mixcomm-perf)

# mixcomm-bench-epilogue: the fused epilogue against the same call plus a separate kernel
# (tools/bench_epilogue.c; docs/results/epilogue-h200.md).
add_executable(mixcomm-bench-epilogue
  tools/bench_epilogue.c
  tools/common/args.c
  tools/common/refdata.c
  tools/common/spawn.c)
target_include_directories(mixcomm-bench-epilogue PRIVATE
  ${CMAKE_SOURCE_DIR}/tools ${CMAKE_SOURCE_DIR}/src ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(mixcomm-bench-epilogue PRIVATE mixcomm_static)
target_compile_definitions(mixcomm-bench-epilogue PRIVATE _GNU_SOURCE)
target_compile_options(mixcomm-bench-epilogue PRIVATE ${MIXCOMM_WARN_FLAGS})
