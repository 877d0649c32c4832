# SPDX-License-Identifier: Apache-2.0
# NVSHMEM (fused modes across nodes) and the plugin libmixcomm_nvshmem.so built against it.
# NVSHMEM comes from MIXCOMM_NVSHMEM_HOME / $NVSHMEM_HOME (a folder with include/ and lib/), else
# from the nvidia-nvshmem-cu13 wheel of the Python that CMake finds (the Python package build
# passes its own interpreter, so pip's isolated build environment is searched). Without it
# everything else builds and multi-node fused modes are invalid, with a reason saying so.
set(MIXCOMM_NVSHMEM_HOME "$ENV{NVSHMEM_HOME}" CACHE PATH "NVSHMEM installation (include/, lib/)")
if(NOT MIXCOMM_NVSHMEM_HOME)
  if(DEFINED Python_EXECUTABLE)
    set(_mixcomm_python "${Python_EXECUTABLE}")
  elseif(DEFINED Python3_EXECUTABLE)
    set(_mixcomm_python "${Python3_EXECUTABLE}")
  else()
    find_program(_mixcomm_python NAMES python3 python)
  endif()
  if(_mixcomm_python)
    execute_process(
      COMMAND "${_mixcomm_python}" -c "import nvidia.nvshmem as m; print(list(m.__path__)[0])"
      OUTPUT_VARIABLE _mixcomm_nvshmem_wheel OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET
      RESULT_VARIABLE _mixcomm_rc)
    if(_mixcomm_rc EQUAL 0)
      set(MIXCOMM_NVSHMEM_FOUND_IN "${_mixcomm_nvshmem_wheel}")
    endif()
  endif()
else()
  set(MIXCOMM_NVSHMEM_FOUND_IN "${MIXCOMM_NVSHMEM_HOME}")
endif()

set(MIXCOMM_HAVE_NVSHMEM 0)
set(_mixcomm_nv "${MIXCOMM_NVSHMEM_FOUND_IN}")
if(_mixcomm_nv AND EXISTS "${_mixcomm_nv}/include/nvshmem.h"
   AND EXISTS "${_mixcomm_nv}/lib/libnvshmem_device.a")
  file(GLOB _mixcomm_nvshmem_host "${_mixcomm_nv}/lib/libnvshmem_host.so*")
  if(_mixcomm_nvshmem_host)
    list(GET _mixcomm_nvshmem_host 0 MIXCOMM_NVSHMEM_HOST_LIB)
    set(MIXCOMM_HAVE_NVSHMEM 1)
  endif()
endif()
message(STATUS "mixcomm: NVSHMEM plugin ${MIXCOMM_HAVE_NVSHMEM} (${_mixcomm_nv})")
if(MIXCOMM_REQUIRE_NVSHMEM AND NOT MIXCOMM_HAVE_NVSHMEM)
  message(FATAL_ERROR "mixcomm: NVSHMEM not found (looked in '${_mixcomm_nv}'): install the "
    "nvidia-nvshmem-cu13==3.4.5 wheel for the Python CMake uses, or set MIXCOMM_NVSHMEM_HOME")
endif()

if(MIXCOMM_HAVE_NVSHMEM)
  # The plugin: NVSHMEM host calls and the multi-node kernels, device-linked with NVSHMEM's
  # device library. libmixcomm loads it with dlopen (from its own folder) only for jobs across
  # nodes. Installed, it finds libnvshmem_host.so.3 next to itself, through
  # MIXCOMM_NVSHMEM_INSTALL_RPATH, or through the loader's path; never through a path of the
  # build machine.
  add_library(mixcomm_nvshmem SHARED
    ${MIXCOMM_ROOT}/src/nvshmem_plugin/host_glue.cu ${MIXCOMM_ROOT}/src/nvshmem_plugin/internode.cu)
  set_target_properties(mixcomm_nvshmem PROPERTIES
    CUDA_SEPARABLE_COMPILATION ON CUDA_RESOLVE_DEVICE_SYMBOLS ON
    BUILD_RPATH "${_mixcomm_nv}/lib"
    INSTALL_RPATH "$ORIGIN;${MIXCOMM_NVSHMEM_INSTALL_RPATH}")
  target_include_directories(mixcomm_nvshmem PRIVATE
    ${MIXCOMM_ROOT}/include ${MIXCOMM_ROOT}/src ${MIXCOMM_GENERATED} ${_mixcomm_nv}/include)
  target_compile_options(mixcomm_nvshmem PRIVATE --expt-relaxed-constexpr -lineinfo)
  target_link_libraries(mixcomm_nvshmem PRIVATE
    ${_mixcomm_nv}/lib/libnvshmem_device.a ${MIXCOMM_NVSHMEM_HOST_LIB} CUDA::cudart_static)
endif()
