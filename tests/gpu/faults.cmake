# SPDX-License-Identifier: Apache-2.0
# Reliability programs (run on the device machine; docs/reliability.md), built everywhere so CI
# compiles them:
#   mixcomm-fault-tests  dead, diverging, silent and aborted ranks; misuse (tests/gpu/faults/)
#   mixcomm-soak         a long random stream of checked collectives (tests/gpu/soak/)
set(MIXCOMM_FAULT_TESTS_SOURCES
  ${MIXCOMM_ROOT}/tests/gpu/faults/main.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/driver.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/scenarios.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/judge.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/rank.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/common.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/creation.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/dead_peer.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/stuck_peer.c
  ${MIXCOMM_ROOT}/tests/gpu/faults/misuse.c)
set(MIXCOMM_SOAK_SOURCES
  ${MIXCOMM_ROOT}/tests/gpu/soak/main.c
  ${MIXCOMM_ROOT}/tests/gpu/soak/plan.c
  ${MIXCOMM_ROOT}/tests/gpu/soak/rank.c
  ${MIXCOMM_ROOT}/tests/gpu/soak/dry_run.c)
foreach(prog fault-tests soak)
  if(prog STREQUAL "fault-tests")
    set(srcs ${MIXCOMM_FAULT_TESTS_SOURCES})
  else()
    set(srcs ${MIXCOMM_SOAK_SOURCES})
  endif()
  add_executable(mixcomm-${prog}
    ${srcs}
    ${MIXCOMM_ROOT}/tests/gpu/harness.c
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
# The CPU suite runs the soak's --dry-run (its host-side self-check needs no GPU).
target_compile_definitions(mixcomm-tests PRIVATE MIXCOMM_SOAK_PATH="$<TARGET_FILE:mixcomm-soak>")
add_dependencies(mixcomm-tests mixcomm-soak)
