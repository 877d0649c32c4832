# SPDX-License-Identifier: Apache-2.0
# Reliability programs (run on the device machine; docs/reliability.md), built everywhere so CI
# compiles them:
#   mixcomm-fault-tests  dead, diverging, silent and aborted ranks; misuse (tests/gpu/faults.c)
#   mixcomm-soak         a long random stream of checked collectives (tests/gpu/soak.c)
foreach(prog fault-tests soak)
  if(prog STREQUAL "fault-tests")
    set(src ${MIXCOMM_ROOT}/tests/gpu/faults.c)
  else()
    set(src ${MIXCOMM_ROOT}/tests/gpu/soak.c)
  endif()
  add_executable(mixcomm-${prog}
    ${src}
    ${MIXCOMM_ROOT}/tools/common/args.c
    ${MIXCOMM_ROOT}/tools/common/refdata.c
    ${MIXCOMM_ROOT}/tools/common/spawn.c)
  target_include_directories(mixcomm-${prog} PRIVATE
    ${MIXCOMM_ROOT}/tests ${MIXCOMM_ROOT}/tools ${MIXCOMM_ROOT}/src
    ${MIXCOMM_GENERATED})
  target_link_libraries(mixcomm-${prog} PRIVATE mixcomm_static)
  target_compile_options(mixcomm-${prog} PRIVATE ${MIXCOMM_WARN_FLAGS})
  target_compile_definitions(mixcomm-${prog} PRIVATE _GNU_SOURCE)
endforeach()
