# SPDX-License-Identifier: Apache-2.0
# Reliability programs (run on the device machine; docs/reliability.md), built everywhere so CI
# compiles them:
#   mixcomm-fault-tests  dead, diverging, silent and aborted ranks; misuse (tests/gpu/faults.c)
#   mixcomm-soak         a long random stream of checked collectives (tests/gpu/soak.c)
foreach(prog fault-tests soak)
  if(prog STREQUAL "fault-tests")
    set(src ${CMAKE_SOURCE_DIR}/tests/gpu/faults.c)
  else()
    set(src ${CMAKE_SOURCE_DIR}/tests/gpu/soak.c)
  endif()
  add_executable(mixcomm-${prog}
    ${src}
    ${CMAKE_SOURCE_DIR}/tools/common/args.c
    ${CMAKE_SOURCE_DIR}/tools/common/refdata.c
    ${CMAKE_SOURCE_DIR}/tools/common/spawn.c)
  target_include_directories(mixcomm-${prog} PRIVATE
    ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/tools ${CMAKE_SOURCE_DIR}/src
    ${CMAKE_BINARY_DIR}/generated)
  target_link_libraries(mixcomm-${prog} PRIVATE mixcomm_static)
  target_compile_options(mixcomm-${prog} PRIVATE ${MIXCOMM_WARN_FLAGS})
  target_compile_definitions(mixcomm-${prog} PRIVATE _GNU_SOURCE)
endforeach()
