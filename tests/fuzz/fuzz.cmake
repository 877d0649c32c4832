# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets for every place mixcomm reads bytes it did not write (tests/fuzz/README.md).
# Built only with -DMIXCOMM_BUILD_FUZZERS=ON and clang as the C compiler; scripts/fuzz.sh and
# scripts/fuzz-ci.sh configure such a build in build-fuzz/. The library's host sources are
# compiled again here with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's coverage
# instrumentation, so the targets run exactly the library's code; nothing CUDA is built.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "MIXCOMM_BUILD_FUZZERS needs clang as the C compiler "
                      "(-DCMAKE_C_COMPILER=clang): the fuzz targets use libFuzzer")
endif()

set(MIXCOMM_FUZZ_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all)
set(MIXCOMM_FUZZ_FLAGS ${MIXCOMM_FUZZ_SANITIZE} -fno-omit-frame-pointer -g -O1)

file(GLOB_RECURSE MIXCOMM_FUZZ_HOST_SOURCES CONFIGURE_DEPENDS ${MIXCOMM_ROOT}/src/*.c)
list(FILTER MIXCOMM_FUZZ_HOST_SOURCES EXCLUDE REGEX "/src/nvshmem_plugin/")
# A static archive: each target links only the objects it needs (no CUDA kernels).
add_library(mixcomm_fuzz_host STATIC ${MIXCOMM_FUZZ_HOST_SOURCES})
target_include_directories(mixcomm_fuzz_host
  PUBLIC ${MIXCOMM_ROOT}/include ${MIXCOMM_ROOT}/src ${MIXCOMM_GENERATED}
         ${CUDAToolkit_INCLUDE_DIRS})
target_compile_definitions(mixcomm_fuzz_host PUBLIC _GNU_SOURCE)
target_compile_options(mixcomm_fuzz_host PRIVATE ${MIXCOMM_FUZZ_FLAGS}
  -fsanitize=fuzzer-no-link ${MIXCOMM_WARN_FLAGS})

set(MIXCOMM_FUZZ_TARGETS tcp_hello tcp_messages fd_exchange cache tool_args env)
set(MIXCOMM_FUZZ_EXECUTABLES "")
foreach(t ${MIXCOMM_FUZZ_TARGETS})
  list(APPEND MIXCOMM_FUZZ_EXECUTABLES fuzz_${t})
  add_executable(fuzz_${t} ${CMAKE_CURRENT_LIST_DIR}/fuzz_${t}.c)
  target_include_directories(fuzz_${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_compile_options(fuzz_${t} PRIVATE ${MIXCOMM_FUZZ_FLAGS} -fsanitize=fuzzer
    ${MIXCOMM_WARN_FLAGS})
  target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer ${MIXCOMM_FUZZ_SANITIZE})
  target_link_libraries(fuzz_${t} PRIVATE mixcomm_fuzz_host CUDA::cudart_static Threads::Threads
    ${CMAKE_DL_LIBS} m)
endforeach()
# The tools' parsers: mixcomm-info's source is included by tool_info.c (its parsers are static
# there); mixcomm-perf's command line is a file of its own (tools/perf/options.c).
target_include_directories(fuzz_tool_args PRIVATE ${MIXCOMM_ROOT}/tools)
target_sources(fuzz_tool_args PRIVATE ${CMAKE_CURRENT_LIST_DIR}/tool_info.c
  ${CMAKE_CURRENT_LIST_DIR}/tool_perf.c ${MIXCOMM_ROOT}/tools/perf/options.c
  ${MIXCOMM_ROOT}/tools/common/args.c ${MIXCOMM_ROOT}/tools/common/spawn.c)
add_custom_target(mixcomm_fuzzers DEPENDS ${MIXCOMM_FUZZ_EXECUTABLES})
