/* SPDX-License-Identifier: Apache-2.0
 * CUDA driver entry points, resolved at run time through the runtime
 * (cudaGetDriverEntryPointByVersion), so libmixcomm links no libcuda and loads on machines
 * without a GPU. */
#ifndef MIXCOMM_TRANSPORT_CUDA_DRIVER_H_
#define MIXCOMM_TRANSPORT_CUDA_DRIVER_H_

#include <cuda.h>
#include <cudaTypedefs.h>

#include "core/error.h"
#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, minimum driver version of the signature) */
#define MIXCOMM_DRIVER_FUNCTIONS(X)         \
  X(cuGetErrorName, 6000)                   \
  X(cuGetErrorString, 6000)                 \
  X(cuDeviceGet, 2000)                      \
  X(cuDeviceGetAttribute, 2000)             \
  X(cuMemGetAllocationGranularity, 10020)   \
  X(cuMemCreate, 10020)                     \
  X(cuMemRelease, 10020)                    \
  X(cuMemExportToShareableHandle, 10020)    \
  X(cuMemImportFromShareableHandle, 10020)  \
  X(cuMemAddressReserve, 10020)             \
  X(cuMemAddressFree, 10020)                \
  X(cuMemMap, 10020)                        \
  X(cuMemUnmap, 10020)                      \
  X(cuMemSetAccess, 10020)                  \
  X(cuDeviceCanAccessPeer, 4000)            \
  X(cuDeviceGetByPCIBusId, 4010)            \
  X(cuDeviceGetPCIBusId, 4010)              \
  X(cuDeviceGetP2PAttribute, 8000)

typedef struct mixcomm__driver {
#define MIXCOMM_X_FIELD(name, ver) PFN_##name##_v##ver name;
  MIXCOMM_DRIVER_FUNCTIONS(MIXCOMM_X_FIELD)
#undef MIXCOMM_X_FIELD
} mixcomm__driver_t;

/* Resolve every entry point once (thread-safe); NULL-free table or an error. */
mixcomm_status_t mixcomm__driver(const mixcomm__driver_t** out);

/* "<what>: CUDA_ERROR_X (text)" as MIXCOMM_ERR_CUDA (MIXCOMM_ERR_OUT_OF_MEMORY for OOM). */
mixcomm_status_t mixcomm__cu_error(CUresult r, const char* what);

#define MIXCOMM_CU_CHECK_GOTO(call, what, st, label) \
  MIXCOMM__CALL_CHECK_GOTO(CUresult, CUDA_SUCCESS, mixcomm__cu_error, call, what, st, label)

#ifdef __cplusplus
}
#endif

#endif
