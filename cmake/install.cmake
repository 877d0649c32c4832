# SPDX-License-Identifier: Apache-2.0
# `cmake --install`: the header, both libraries, the NVSHMEM plugin, the tools, a CMake package
# (find_package(mixcomm CONFIG): mixcomm::mixcomm, mixcomm::mixcomm_static) and pkg-config files
# (mixcomm, mixcomm-static). Every installed path is relative to the prefix, so the tree can be
# moved or packaged.
include(CMakePackageConfigHelpers)
set(MIXCOMM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mixcomm)

set_target_properties(mixcomm PROPERTIES EXPORT_NAME mixcomm)
set_target_properties(mixcomm_static PROPERTIES EXPORT_NAME mixcomm_static)
install(TARGETS mixcomm mixcomm_static EXPORT mixcommTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${MIXCOMM_ROOT}/include/mixcomm.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET mixcomm_nvshmem)
  # Loaded with dlopen from libmixcomm's folder: not part of the link interface.
  install(TARGETS mixcomm_nvshmem LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()
foreach(tool mixcomm-info mixcomm-perf mixcomm-bench-epilogue)
  if(TARGET ${tool})
    # The tools hold the static library, which looks for the plugin next to the executable and
    # then through the executable's RUNPATH: point that at the installed lib/.
    set_target_properties(${tool} PROPERTIES BUILD_RPATH "$ORIGIN"
      INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(FILES ${MIXCOMM_ROOT}/LICENSE ${MIXCOMM_ROOT}/README.md ${MIXCOMM_ROOT}/CHANGELOG.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

install(EXPORT mixcommTargets NAMESPACE mixcomm:: DESTINATION ${MIXCOMM_CMAKE_DIR})
configure_package_config_file(${MIXCOMM_ROOT}/cmake/mixcommConfig.cmake.in
  ${PROJECT_BINARY_DIR}/packaging/mixcommConfig.cmake
  INSTALL_DESTINATION ${MIXCOMM_CMAKE_DIR})
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/packaging/mixcommConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/packaging/mixcommConfig.cmake
  ${PROJECT_BINARY_DIR}/packaging/mixcommConfigVersion.cmake
  DESTINATION ${MIXCOMM_CMAKE_DIR})

# pkg-config: paths relative to the .pc file's folder (${pcfiledir}); the CUDA toolkit's folders
# are variables a user can redefine (pkg-config --define-variable=cuda_root=/opt/cuda).
file(RELATIVE_PATH MIXCOMM_PC_TO_PREFIX
  ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" MIXCOMM_PC_TO_PREFIX "${MIXCOMM_PC_TO_PREFIX}")
get_filename_component(MIXCOMM_CUDA_ROOT "${CUDAToolkit_BIN_DIR}" DIRECTORY)
# CUDAToolkit_INCLUDE_DIRS may be a list (newer toolkits add include/cccl): the first is the
# toolkit's include folder.
list(GET CUDAToolkit_INCLUDE_DIRS 0 MIXCOMM_CUDA_INCLUDE_DIR)
file(RELATIVE_PATH MIXCOMM_CUDA_INCLUDE_REL ${MIXCOMM_CUDA_ROOT} ${MIXCOMM_CUDA_INCLUDE_DIR})
file(RELATIVE_PATH MIXCOMM_CUDA_LIB_REL ${MIXCOMM_CUDA_ROOT} ${CUDAToolkit_LIBRARY_DIR})
foreach(pc mixcomm mixcomm-static)
  configure_file(${MIXCOMM_ROOT}/cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/packaging/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/${pc}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
