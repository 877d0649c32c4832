# SPDX-License-Identifier: Apache-2.0
# The Python wheel (scikit-build-core, pyproject.toml): libmixcomm.so and the NVSHMEM plugin go to
# mixcomm/lib/ inside the package. The plugin finds libnvshmem_host.so.3 in the
# nvidia-nvshmem-cu13 wheel installed beside the package (site-packages/nvidia/nvshmem/lib),
# through a RUNPATH relative to itself: the installed package needs no environment variable.
if(NOT TARGET mixcomm_nvshmem)
  message(FATAL_ERROR "mixcomm: the Python package needs the NVSHMEM plugin (configure with "
    "-DMIXCOMM_REQUIRE_NVSHMEM=ON and the nvidia-nvshmem-cu13 build requirement)")
endif()
set_target_properties(mixcomm_nvshmem PROPERTIES
  INSTALL_RPATH "$ORIGIN;$ORIGIN/../../nvidia/nvshmem/lib")
install(TARGETS mixcomm mixcomm_nvshmem LIBRARY DESTINATION mixcomm/lib)
