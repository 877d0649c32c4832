/* SPDX-License-Identifier: Apache-2.0
 * The fused launch of a checked call: kernel arguments from the handler, the call's geometry,
 * and the launch (one node: kernels/intranode.cu; across nodes: the NVSHMEM plugin). */
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "handler/handler.h"
#include "transport/nvshmem_loader.h"

void mixcomm__kargs_init(const mixcomm_handler_t* h, mixcomm__kargs_t* a) {
  memset(a, 0, sizeof *a);
  for (int i = 0; i < h->topo.local_size && i < MIXCOMM_MAX_LOCAL_SIZE; i++)
    a->peers[i] = (char*)(uintptr_t)h->vmm.va[i];
  a->control = h->control;
  a->host = h->host_dev;
  a->plan_grid = h->plan.grid_size;
  a->plan_rows = h->plan.vmm_rows;
  a->row_vecs = h->plan.max_block_size;
  a->slot_bytes = h->plan.vmm_slot_bytes;
  a->tag_bytes = mixcomm__tag_area_bytes(h->plan.vmm_rows);
  a->local_rank = h->topo.local_rank;
  a->local_size = h->topo.local_size;
  a->local_tp = h->topo.local_tp_size;
  a->local_dp = h->topo.local_dp_size;
  a->world_rank_base = h->topo.inter_rank * h->topo.local_size;
  a->dtype = (int)h->config.dtype;
  a->timeout_ns = (uint64_t)h->timeout_ms * 1000000ull;
  a->pdl = h->pdl;
  a->count_puts = h->count_puts;
  a->stamps = h->stamps;
  if (h->nvshmem_ws != NULL) {
    a->ns_base = (char*)h->nvshmem_ws;
    a->ns_signals = (uint64_t*)(a->ns_base + (size_t)MIXCOMM_RING_SLOTS * h->plan.grid_size *
                                                 h->plan.nvshmem_slot_bytes);
    a->ns_slot_bytes = h->plan.nvshmem_slot_bytes;
    a->ns_rows = h->plan.nvshmem_rows;
  }
  a->inter_rank = h->topo.inter_rank;
  a->inter_size = h->topo.inter_size;
  a->inter_tp = h->topo.inter_tp_size;
  a->inter_dp = h->topo.inter_dp_size;
}

mixcomm_status_t mixcomm__handler_geometry(const mixcomm_handler_t* h, mixcomm_op_t op,
                                           mixcomm_mode_t mode, int64_t numel_block,
                                           int64_t row_elems, mixcomm__geometry_t* g) {
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  if (row_elems > 0)
    return mixcomm__geometry_rows(&h->plan, &h->topo, op, mode, esize, numel_block, row_elems,
                                  h->config.min_block_size, h->config.min_num_steps, g);
  return mixcomm__geometry(&h->plan, &h->topo, op, mode, esize, numel_block,
                           h->config.min_block_size, h->config.min_num_steps, g);
}

mixcomm_status_t mixcomm__run_fused(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                    const void* x_in, void* x_out, int64_t numel_block,
                                    int64_t row_elems, const mixcomm__epilogue_args_t* epi,
                                    cudaStream_t stream) {
  return mixcomm__run_fused_v(h, op, mode, x_in, x_out, numel_block, row_elems, epi, NULL,
                              stream);
}

mixcomm_status_t mixcomm__run_fused_v(mixcomm_handler_t* h, mixcomm_op_t op, mixcomm_mode_t mode,
                                      const void* x_in, void* x_out, int64_t numel_block,
                                      int64_t row_elems, const mixcomm__epilogue_args_t* epi,
                                      const mixcomm__uneven_t* uneven, cudaStream_t stream) {
  const size_t esize = mixcomm_dtype_size(h->config.dtype);
  if (h->topo.world_size == 1 && uneven != NULL && uneven->rows_dev != NULL) {
    /* One rank, counts on the device: copy the rows the array names. */
    mixcomm__kargs_t a;
    mixcomm__kargs_init(h, &a);
    a.x_in = x_in;
    a.x_out = x_out;
    a.op = (int)op;
    a.mode = (int)mode;
    a.uneven = *uneven;
    const int e = mixcomm__launch_copy_rows(&a, stream);
    if (e != cudaSuccess)
      return mixcomm__cuda_error(e, "launching the row copy (world_size 1, device counts)");
    return MIXCOMM_SUCCESS;
  }
  if (uneven != NULL && h->topo.inter_size > 1 && mode != MIXCOMM_MODE_FUSED_OPT_WAITS_UC)
    return mixcomm__error(MIXCOMM_ERR_INTERNAL,
                          "uneven rows reached the multi-node kernel of %s, which lacks them "
                          "(only FUSED_OPT_WAITS_UC takes them across nodes)",
                          mixcomm_mode_name(mode));
  if (h->topo.world_size == 1) {
    /* One rank: every operation is the identity. */
    MIXCOMM_CUDA_CHECK(cudaMemcpyAsync(x_out, x_in, (size_t)numel_block * esize,
                                       cudaMemcpyDeviceToDevice, stream),
                       "copying input to output (world_size 1)");
    return MIXCOMM_SUCCESS;
  }
  mixcomm__geometry_t g;
  MIXCOMM_CHECK(mixcomm__handler_geometry(h, op, mode, numel_block,
                                          epi != NULL && epi->row_aligned ? row_elems : 0, &g));
  if (g.grid == 0 && uneven != NULL) {
    /* Every block empty: one CTA of one step still exchanges the tags (intranode.cu). */
    g.grid = 1;
    g.steps = 1;
    g.block = 32;
    g.span = 1;
  }
  if (g.grid == 0)
    return MIXCOMM_SUCCESS;
  mixcomm__kargs_t a;
  mixcomm__kargs_init(h, &a);
  a.x_in = x_in;
  a.x_out = x_out;
  a.vecs = g.vecs;
  a.span = g.span;
  a.steps = g.steps;
  a.chunks = g.chunks;
  a.block = g.block;
  a.op = (int)op;
  a.mode = (int)mode;
  if (uneven != NULL)
    a.uneven = *uneven;
  if (epi != NULL) {
    a.epi = *epi;
    /* Not launched early (programmatic dependent launch): an epilogue call's CTAs are often
     * larger than the previous kernel's (whole rows, up to 1024 threads), and placed early they
     * could hold the SMs that a peer rank's not yet scheduled CTAs of that previous kernel need
     * (seen with 6 ranks filling all 132 SMs: a timeout). Waiting for the previous kernel to
     * finish keeps the co-residency bound of the handler true. */
    a.pdl = 0;
  }
  /* Re-cut the plan's rows into the rows this algorithm uses (geometry capped the block so
   * that a step fits in the shorter rows). */
  int vmm_rows, ns_rows;
  mixcomm__rows_needed(&h->topo, op, mode, &vmm_rows, &ns_rows);
  if (vmm_rows > h->plan.vmm_rows)
    a.row_vecs = (int)((int64_t)h->plan.max_block_size * h->plan.vmm_rows / vmm_rows);
  if (ns_rows > 0)
    a.ns_row_vecs = (int)((int64_t)h->plan.max_block_size * h->plan.nvshmem_rows / ns_rows);
  const int e = h->topo.inter_size > 1 ? mixcomm__nvshmem_launch(&a, stream)
                                        : mixcomm__launch_intranode(&a, stream);
  if (e != cudaSuccess)
    return mixcomm__cuda_error(e, "launching the fused kernel");
  return MIXCOMM_SUCCESS;
}
