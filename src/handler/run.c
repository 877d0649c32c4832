/* SPDX-License-Identifier: Apache-2.0
 * The collective entry point: validate, pick the mode, dispatch (fused kernel or NCCL), and
 * turn errors the kernels recorded into statuses. Nothing here synchronises the host. */
#include <stdio.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/topology.h"
#include "core/validate.h"
#include "handler/handler.h"
#include "tune/tune.h"
#include "transport/nccl.h"
#include "transport/nvshmem.h"

int mixcomm__mode_is_fused(mixcomm_mode_t mode);

static void describe_tag(const uint32_t* tag, char* buf, size_t size) {
  /* Bit 15 marks a call with uneven rows per DP rank (kernels/uneven.cuh): word 1 then holds a
   * hash of the row counts, the maximum block and the row length instead of the size. */
  const int uneven = (tag[0] >> 15) & 1;
  const unsigned op = (tag[0] >> 8) & 0x7F, mode = (tag[0] >> 4) & 0xF, dtype = tag[0] & 0xF;
  const unsigned long long vecs = (unsigned long long)tag[1] |
                                  ((unsigned long long)((tag[3] >> 16) & 0x1FF) << 31);
  const unsigned row_hash = ((tag[0] >> 20) & 0xF) << 6 | ((tag[3] >> 25) & 0x3F);
  const char* on = mixcomm_op_name((mixcomm_op_t)op);
  const char* mn = mixcomm_mode_name((mixcomm_mode_t)mode);
  const char* dn = mixcomm_dtype_name((mixcomm_dtype_t)dtype);
  char rows[64] = "";
  if (row_hash != 0)
    snprintf(rows, sizeof rows, " with an epilogue (row-length hash 0x%03x)", row_hash);
  if (uneven)
    snprintf(buf, size,
             "%s %s %s%s, uneven rows per DP rank (hash 0x%08x of the counts, maximum and row "
             "length), call #%u, step %u",
             on ? on : "?", mn ? mn : "?", dn ? dn : "?", rows, tag[1], tag[2], tag[3] & 0xFFFF);
  else
    snprintf(buf, size, "%s %s %s%s, %llu bytes per rank block, call #%u, step %u",
             on ? on : "?", mn ? mn : "?", dn ? dn : "?", rows, vecs * 16ull, tag[2],
             tag[3] & 0xFFFF);
}

mixcomm_status_t mixcomm__handler_poll_error(mixcomm_handler_t* h) {
  if (h->host->abort && h->host->error.status == 0)
    return mixcomm__error(MIXCOMM_ERR_ABORTED,
                          "rank %d: the handler was aborted (mixcomm_handler_abort); shut it down",
                          h->topo.world_rank);
  const int status = h->host->error.status;
  if (status == 0 && h->host->peer_lost != 0) { /* no kernel was waiting when it was seen */
    h->state = MIXCOMM_STATE_FAILED;
    return mixcomm__error(MIXCOMM_ERR_PEER_LOST,
                          "rank %d: the connection to rank %d closed (%s): its process died or "
                          "its bootstrap failed; the handler is unusable, shut it down",
                          h->topo.world_rank, h->host->peer_lost - 1,
                          mixcomm__peer_watch_how(h));
  }
  if (status == 0)
    return MIXCOMM_SUCCESS;
  h->state = MIXCOMM_STATE_FAILED;
  const mixcomm__error_record_t* e = &h->host->error;
  const char* op = mixcomm_op_name((mixcomm_op_t)e->op);
  const char* mode = mixcomm_mode_name((mixcomm_mode_t)e->mode);
  switch (status) {
    case MIXCOMM_ERR_TIMEOUT:
      return mixcomm__error(MIXCOMM_ERR_TIMEOUT,
                            "rank %d: a %s %s kernel waited %d ms for rank %d (local rank %d, "
                            "step %d, CTA %d) and gave up: is that rank alive and making the same "
                            "calls? The handler is unusable; shut it down",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?", h->timeout_ms,
                            e->peer_world_rank, e->peer_local_rank, e->step, e->cta);
    case MIXCOMM_ERR_MISMATCH: {
      if (e->row == -2) { /* a cross-node signal (src/nvshmem/internode.cu) */
        const unsigned long long want =
            (unsigned long long)e->tag_expected[0] | (unsigned long long)e->tag_expected[1] << 32;
        const unsigned long long got =
            (unsigned long long)e->tag_received[0] | (unsigned long long)e->tag_received[1] << 32;
        return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                              "rank %d ran %s %s but rank %d (another node) signalled a "
                              "different call (signal 0x%llx, expected 0x%llx: the top 24 bits "
                              "hash op, mode, dtype and size): every rank must make the same "
                              "calls with the same shapes; the handler is unusable, shut it down",
                              h->topo.world_rank, op ? op : "?", mode ? mode : "?",
                              e->peer_world_rank, got, want);
      }
      char want[160], got[160];
      describe_tag(e->tag_expected, want, sizeof want);
      describe_tag(e->tag_received, got, sizeof got);
      return mixcomm__error(MIXCOMM_ERR_MISMATCH,
                            "rank %d ran [%s] but rank %d (local rank %d) sent [%s]: every rank "
                            "must make the same calls with the same shapes; the handler is "
                            "unusable, shut it down",
                            h->topo.world_rank, want, e->peer_world_rank, e->peer_local_rank, got);
    }
    case MIXCOMM_ERR_INVALID_USAGE:
      return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                            "rank %d: the handler was used from two streams at once (a %s %s "
                            "kernel found another of the same handler running): order a "
                            "handler's calls on one stream, or make the streams wait for each "
                            "other with events; the handler is unusable, shut it down",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?");
    case MIXCOMM_ERR_PEER_LOST:
      return mixcomm__error(MIXCOMM_ERR_PEER_LOST,
                            "rank %d: a %s %s kernel (step %d, CTA %d) stopped waiting because "
                            "the connection to rank %d closed (%s): its process died or its "
                            "bootstrap failed; the handler is unusable, shut it down",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?", e->step, e->cta,
                            e->peer_world_rank, mixcomm__peer_watch_how(h));
    case MIXCOMM_ERR_INVALID_ARGUMENT:
      if (e->row == -3) { /* kernels/uneven.cuh: a device-array row count out of range */
        const long long value =
            (long long)((uint64_t)e->tag_received[0] | (uint64_t)e->tag_received[1] << 32);
        const long long bound =
            (long long)((uint64_t)e->tag_expected[0] | (uint64_t)e->tag_expected[1] << 32);
        return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                              "rank %d: a %s %s kernel read dp_rows[%d] = %lld from the device "
                              "array, outside [0, max_rows=%lld] given to mixcomm_run_v_device: "
                              "nothing was written; the handler is unusable, shut it down",
                              h->topo.world_rank, op ? op : "?", mode ? mode : "?", e->step,
                              value, bound);
      }
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "rank %d: kernel error %d",
                            h->topo.world_rank, status);
    case MIXCOMM_ERR_ABORTED:
      return mixcomm__error(MIXCOMM_ERR_ABORTED,
                            "rank %d: a %s %s kernel stopped because the handler was aborted",
                            h->topo.world_rank, op ? op : "?", mode ? mode : "?");
    default:
      return mixcomm__error((mixcomm_status_t)status, "rank %d: kernel error %d",
                            h->topo.world_rank, status);
  }
}

mixcomm_status_t mixcomm_handler_async_error(const mixcomm_handler_t* h, int* peer) {
  if (peer != NULL)
    *peer = -1;
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "async_error"));
  if (h->host->error.status == 0) {
    if (h->host->peer_lost != 0) {
      if (peer != NULL)
        *peer = h->host->peer_lost - 1;
      return MIXCOMM_ERR_PEER_LOST;
    }
    return h->host->abort ? MIXCOMM_ERR_ABORTED : MIXCOMM_SUCCESS;
  }
  if (peer != NULL)
    *peer = h->host->error.peer_world_rank;
  return (mixcomm_status_t)h->host->error.status;
}

mixcomm_status_t mixcomm_handler_abort(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "abort"));
  h->host->abort = 1; /* kernels poll it while they wait; mixcomm_run checks it */
  __sync_synchronize();
  return MIXCOMM_SUCCESS;
}

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
  if (epi != NULL && epi->row_aligned)
    MIXCOMM_CHECK(mixcomm__geometry_rows(&h->plan, &h->topo, op, mode, esize, numel_block,
                                         row_elems, h->config.min_block_size,
                                         h->config.min_num_steps, &g));
  else
    MIXCOMM_CHECK(mixcomm__geometry(&h->plan, &h->topo, op, mode, esize, numel_block,
                                    h->config.min_block_size, h->config.min_num_steps, &g));
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

mixcomm_status_t mixcomm__check_device_pointer(const mixcomm_handler_t* h, const void* p,
                                              const char* name) {
  struct cudaPointerAttributes attr;
  cudaError_t e = cudaPointerGetAttributes(&attr, p);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return mixcomm__cuda_error((int)e, name);
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s=%p is not device memory (memory type %d): pass a GPU buffer", name,
                          p, (int)attr.type);
  if (attr.type == cudaMemoryTypeDevice && attr.device != h->device)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                          "%s=%p is on device %d but the handler uses device %d", name, p,
                          attr.device, h->device);
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__resolve_mode(mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows,
                                      int64_t row_elems, int epilogue, mixcomm_mode_t* mode) {
  mixcomm_mode_t m = *mode;
  if (m == MIXCOMM_MODE_DEFAULT || m == MIXCOMM_MODE_AUTOTUNE) {
    if (m == MIXCOMM_MODE_AUTOTUNE &&
        !mixcomm_topology_mode_valid(&h->topo, &h->caps, m, NULL))
      return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT,
                            "mode AUTOTUNE is not valid: %s", mixcomm_mode_invalid_reason(h, m));
    MIXCOMM_CHECK(mixcomm__select_mode(h, op, rows, row_elems, epilogue, &m));
  } else if (m < 0 || m >= MIXCOMM_NUM_MODES) {
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "mode=%d is not a mode", (int)m);
  } else if (!mixcomm_topology_mode_valid(&h->topo, &h->caps, m, NULL)) {
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "mode %s is not valid here: %s",
                          mixcomm_mode_name(m), mixcomm_mode_invalid_reason(h, m));
  }
  *mode = m;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__run_admit(mixcomm_handler_t* h) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "run"));
  MIXCOMM_CHECK(mixcomm__handler_poll_error(h));
  if (h->state == MIXCOMM_STATE_CHECKPOINTED)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE,
                          "run: the workspace is released by checkpoint_prepare; call "
                          "checkpoint_restore first");
  if (h->state != MIXCOMM_STATE_READY)
    return mixcomm__error(MIXCOMM_ERR_INVALID_USAGE, "run: the handler is not ready (state %d)",
                          (int)h->state);
  int current = -1;
  MIXCOMM_CUDA_CHECK(cudaGetDevice(&current), "run: reading the current CUDA device");
  return mixcomm__validate_current_device(current, h->device, h->topo.world_rank, "run");
}

mixcomm_status_t mixcomm_run(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                             void* x_out, int64_t rows, int64_t row_elems, mixcomm_mode_t mode,
                             cudaStream_t stream) {
  MIXCOMM_CHECK(mixcomm__run_admit(h));
  mixcomm__run_shape_t shape;
  MIXCOMM_CHECK(mixcomm__validate_run(&h->topo, h->config.dtype, op, x_in, x_out, rows,
                                      row_elems, &shape));
  MIXCOMM_CHECK(mixcomm__resolve_mode(h, op, rows, row_elems, 0, &mode));
  if (rows == 0)
    return MIXCOMM_SUCCESS;
  MIXCOMM_CHECK(mixcomm__check_device_pointer(h, x_in, "x_in"));
  MIXCOMM_CHECK(mixcomm__check_device_pointer(h, x_out, "x_out"));
  if (mixcomm__mode_is_fused(mode))
    return mixcomm__run_fused(h, op, mode, x_in, x_out, shape.numel_block, row_elems, NULL,
                              stream);
  return mixcomm__nccl_run(h, op, mode, x_in, x_out, shape.numel_block, stream);
}

int64_t mixcomm_output_rows(const mixcomm_handler_t* h, mixcomm_op_t op, int64_t rows) {
  if (mixcomm__handler_usable(h, "output_rows") != MIXCOMM_SUCCESS || rows < 0 ||
      !mixcomm_topology_op_valid(&h->topo, op))
    return -1;
  if (mixcomm__op_is_gather(op))
    return rows * h->topo.dp_size;
  if (mixcomm__op_is_scatter(op))
    return rows % h->topo.dp_size == 0 ? rows / h->topo.dp_size : -1;
  return rows;
}

mixcomm_status_t mixcomm_get_valid_op_list(const mixcomm_handler_t* h, mixcomm_op_t* ops,
                                           int capacity, int* count) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "get_valid_op_list"));
  if (count == NULL || (ops == NULL && capacity > 0))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "get_valid_op_list: NULL argument");
  int n = 0;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++) {
    if (!mixcomm_topology_op_valid(&h->topo, (mixcomm_op_t)op))
      continue;
    if (n < capacity)
      ops[n] = (mixcomm_op_t)op;
    n++;
  }
  *count = n;
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm_get_valid_mode_list(const mixcomm_handler_t* h, mixcomm_mode_t* modes,
                                             int capacity, int* count) {
  MIXCOMM_CHECK(mixcomm__handler_usable(h, "get_valid_mode_list"));
  if (count == NULL || (modes == NULL && capacity > 0))
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "get_valid_mode_list: NULL argument");
  int n = 0;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    if (!mixcomm_topology_mode_valid(&h->topo, &h->caps, (mixcomm_mode_t)m, NULL))
      continue;
    if (n < capacity)
      modes[n] = (mixcomm_mode_t)m;
    n++;
  }
  *count = n;
  return MIXCOMM_SUCCESS;
}

const char* mixcomm_mode_invalid_reason(const mixcomm_handler_t* h, mixcomm_mode_t mode) {
  if (mixcomm__handler_usable(h, "mode_invalid_reason") != MIXCOMM_SUCCESS)
    return "not a live handler";
  const char* why = NULL;
  if (mixcomm_topology_mode_valid(&h->topo, &h->caps, mode, &why))
    return NULL;
  return why;
}
