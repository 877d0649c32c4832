/* SPDX-License-Identifier: Apache-2.0
 * One collective call with residual add, RMSNorm and FP8 quantisation of its result, once its
 * arguments are checked and its mode is concrete (semantics in mixcomm.h, device side in
 * kernels/epilogue.cuh; the checks: dispatch.c and run_uneven.c). This file decides, per call,
 * where P is kept for the row pass (the stash), which rank adds the residual and where, and
 * launches: the fused kernels do everything in one launch; the NCCL modes and a world of one
 * rank run the exchange, then the epilogue kernel. Temporaries come from cudaMallocAsync on the
 * call's stream, so the call stays graph capturable. */
#include <string.h>

#include <cuda_runtime_api.h>

#include "core/error.h"
#include "core/topology.h"
#include "core/validate.h"
#include "handler/handler.h"
#include "transport/nccl.h"

/* Output bytes per CTA up to which the row pass runs inside the collective kernel (measured on
 * the H200 with ranks sharing the GPU: in-kernel and separate passes cost the same at about
 * 64-128 KiB per CTA; docs/results/epilogue-h200.md). */
#define EPILOGUE_PASS_MAX_BYTES (128u * 1024u)

typedef struct call {
  mixcomm_handler_t* h;
  mixcomm_op_t op;
  mixcomm_mode_t mode;
  const void* x_in;
  void* x_out;
  int64_t row_elems;
  mixcomm__run_shape_t shape;
  const mixcomm_epilogue_t* e;
  cudaStream_t stream;
  int gather;
  void* temp; /* the stash when no output can hold P of every row (freed at the end) */
  const mixcomm__uneven_t* u; /* uneven rows per DP rank (run_uneven.c); NULL: equal blocks */
} call_t;

/* Release a stream-ordered temporary (if any); a failure becomes st unless st already holds one. */
static void free_temp(void* p, cudaStream_t stream, const char* what, mixcomm_status_t* st) {
  if (p == NULL)
    return;
  const cudaError_t e = cudaFreeAsync(p, stream);
  if (e != cudaSuccess && *st == MIXCOMM_SUCCESS)
    *st = mixcomm__cuda_error((int)e, what);
}

/* The epilogue arguments every path shares; the caller sets where the residual is added. */
static mixcomm_status_t epilogue_args(call_t* c, mixcomm__epilogue_args_t* a) {
  const mixcomm_epilogue_t* e = c->e;
  memset(a, 0, sizeof *a);
  a->on = 1;
  a->own_block = c->gather ? c->h->topo.dp_rank : 0;
  a->row_vecs = (int)(c->row_elems * (int64_t)mixcomm_dtype_size(c->h->config.dtype) / 16);
  a->eps = e->rms_eps;
  a->residual_in = e->residual_in;
  a->residual_out = e->residual_out;
  a->gamma = e->rms_gamma;
  a->norm_out = e->norm_out;
  a->quant_out = e->quant_out;
  a->scale = e->quant_scale;
  a->normalize = e->norm_out != NULL || e->quant_out != NULL;
  if (!a->normalize)
    return MIXCOMM_SUCCESS;
  /* The stash holds P of every output row until the row pass: residual_out when it covers them
   * (not for gather ops, whose residual_out is one block), else norm_out (normalised in place),
   * else a temporary. */
  if (!c->gather && e->residual_out != NULL) {
    a->stash = e->residual_out;
    a->stash_is_residual = 1;
  } else if (e->norm_out != NULL) {
    a->stash = e->norm_out;
  } else {
    MIXCOMM_CUDA_CHECK(cudaMallocAsync(&c->temp, (size_t)c->shape.out_bytes, c->stream),
                       "allocating the epilogue's temporary (quant_out without norm_out)");
    a->stash = c->temp;
  }
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t epilogue_kernel(call_t* c, const void* s, const mixcomm__epilogue_args_t* a,
                                        int rows_only);

/* The epilogue kernel over uneven output blocks of a gather op (host counts: NCCL modes): one
 * launch per non-empty block, every output pointer moved to the block, residual_out written by
 * the launch of this rank's own block only. */
static mixcomm_status_t epilogue_kernel_blocks(call_t* c, const void* s,
                                               const mixcomm__epilogue_args_t* a) {
  const size_t esize = mixcomm_dtype_size(c->h->config.dtype);
  const int64_t V = c->u->row_vecs;
  int64_t off = 0; /* vectors before block k */
  for (int k = 0; k < c->u->blocks; k++) {
    const int64_t len = c->u->rows[k] * V;
    if (len > 0) {
      mixcomm__epilogue_launch_t l;
      memset(&l, 0, sizeof l);
      l.s = s != NULL ? (const char*)s + off * 16 : NULL;
      l.x_out = c->x_out != NULL ? (char*)c->x_out + off * 16 : NULL;
      l.vecs = len;
      l.blocks = 1;
      l.dtype = (int)c->h->config.dtype;
      l.e = *a;
      l.e.own_block = k == c->h->topo.dp_rank ? 0 : -1;
      if (a->stash != NULL)
        l.e.stash = (char*)a->stash + off * 16;
      if (a->norm_out != NULL)
        l.e.norm_out = (char*)a->norm_out + off * 16;
      if (a->quant_out != NULL)
        l.e.quant_out = (char*)a->quant_out + off * 16 / (int64_t)esize;
      const int err = mixcomm__launch_epilogue(&l, c->stream);
      if (err != cudaSuccess)
        return mixcomm__cuda_error(err, "launching the epilogue kernel");
    }
    off += len;
  }
  return MIXCOMM_SUCCESS;
}

static mixcomm_status_t epilogue_kernel(call_t* c, const void* s, const mixcomm__epilogue_args_t* a,
                                        int rows_only) {
  if (c->u != NULL && c->gather)
    return epilogue_kernel_blocks(c, s, a);
  mixcomm__epilogue_launch_t l;
  memset(&l, 0, sizeof l);
  l.s = s;
  l.rows_only = rows_only;
  l.x_out = c->x_out;
  l.vecs = c->shape.out_bytes / 16 / (c->gather ? (uint64_t)c->h->topo.dp_size : 1u);
  l.blocks = c->gather ? c->h->topo.dp_size : 1;
  l.dtype = (int)c->h->config.dtype;
  l.e = *a;
  const int err = mixcomm__launch_epilogue(&l, c->stream);
  if (err != cudaSuccess)
    return mixcomm__cuda_error(err, "launching the epilogue kernel");
  return MIXCOMM_SUCCESS;
}

/* One rank: every op is the identity, S = x_in. */
static mixcomm_status_t run_alone(call_t* c) {
  mixcomm__epilogue_args_t a;
  MIXCOMM_CHECK(epilogue_args(c, &a));
  a.add_at_output = c->e->residual_in != NULL;
  a.write_s = c->x_out != NULL;
  return epilogue_kernel(c, c->x_in, &a, 0);
}

static mixcomm_status_t run_fused(call_t* c) {
  mixcomm_handler_t* h = c->h;
  const int residual = c->e->residual_in != NULL;
  if (c->gather && residual && c->x_out != NULL) {
    /* S itself is asked for, and the epilogue collective produces S + residual: one plain
     * collective for x_out first. */
    MIXCOMM_CHECK(mixcomm__run_fused_v(h, c->op, c->mode, c->x_in, c->x_out,
                                       c->shape.numel_block, c->row_elems, NULL, c->u, c->stream));
  }
  mixcomm__epilogue_args_t a;
  MIXCOMM_CHECK(epilogue_args(c, &a));
  a.add_at_source = c->gather && residual && h->topo.tp_rank == 0;
  a.add_at_output = !c->gather && residual;
  a.write_s = c->x_out != NULL && !(c->gather && residual);
  if (!a.normalize)
    return mixcomm__run_fused_v(h, c->op, c->mode, c->x_in, c->x_out, c->shape.numel_block,
                                c->row_elems, &a, c->u, c->stream);
  /* The row pass runs in the collective's CTAs when their rows are few; past
   * EPILOGUE_PASS_MAX_BYTES of output per CTA the collective's grid is too small to stream them
   * (ranks sharing a GPU have a few dozen CTAs each), so the kernel only stores P and a kernel of
   * its own, on the whole GPU, runs the pass. Every rank takes the same branch: it depends on
   * shapes and the plan only. */
  /* Uneven blocks always take the in-kernel pass: a pass of its own would need the counts on
   * the host, which the device form does not have. */
  a.row_aligned = c->u != NULL;
  if (!a.row_aligned) {
    mixcomm__geometry_t g;
    MIXCOMM_CHECK(
        mixcomm__handler_geometry(h, c->op, c->mode, c->shape.numel_block, c->row_elems, &g));
    const uint64_t blocks = c->gather ? (uint64_t)h->topo.dp_size : 1u;
    a.row_aligned = (uint64_t)g.span * 16u * blocks <= EPILOGUE_PASS_MAX_BYTES;
  }
  if (a.row_aligned)
    return mixcomm__run_fused_v(h, c->op, c->mode, c->x_in, c->x_out, c->shape.numel_block,
                                c->row_elems, &a, c->u, c->stream);
  mixcomm__epilogue_args_t store_only = a;
  store_only.normalize = 0;
  MIXCOMM_CHECK(mixcomm__run_fused(h, c->op, c->mode, c->x_in, c->x_out, c->shape.numel_block,
                                   c->row_elems, &store_only, c->stream));
  return epilogue_kernel(c, NULL, &a, 1);
}

/* The NCCL exchange of the call: equal blocks or uneven ones. */
static mixcomm_status_t exchange(call_t* c, const void* src, void* dst) {
  if (c->u != NULL)
    return mixcomm__nccl_run_v(c->h, c->op, c->mode, src, dst, c->u, c->stream);
  return mixcomm__nccl_run(c->h, c->op, c->mode, src, dst, c->shape.numel_block, c->stream);
}

static mixcomm_status_t run_nccl(call_t* c) {
  mixcomm_handler_t* h = c->h;
  const int residual = c->e->residual_in != NULL;
  mixcomm__epilogue_args_t a;
  MIXCOMM_CHECK(epilogue_args(c, &a));
  const void* src = c->x_in;
  void* in_temp = NULL;
  void* out_temp = NULL;
  mixcomm_status_t st = MIXCOMM_SUCCESS;
  if (c->gather && residual) {
    if (c->x_out != NULL)
      MIXCOMM_CHECK_GOTO(exchange(c, c->x_in, c->x_out), st, out);
    if (h->topo.tp_rank == 0) {
      /* Like the fused kernels: tp rank 0 contributes input + residual, NCCL's result is P. */
      MIXCOMM_CUDA_CHECK_GOTO(cudaMallocAsync(&in_temp, (size_t)c->shape.in_bytes, c->stream),
                              "allocating the epilogue's input temporary", st, out);
      const int err = mixcomm__launch_add_residual(c->x_in, c->e->residual_in, in_temp,
                                                   (int64_t)(c->shape.in_bytes / 16),
                                                   (int)h->config.dtype, c->stream);
      if (err != cudaSuccess) {
        st = mixcomm__cuda_error(err, "launching the residual add before NCCL");
        goto out;
      }
      src = in_temp;
    }
  } else {
    a.add_at_output = residual;
  }
  /* Where NCCL leaves its result: x_out when that is S; else norm_out (overwritten by the row
   * pass); else a temporary. Never residual_out, which may be residual_in. */
  void* dst = c->x_out != NULL && !(c->gather && residual) ? c->x_out
              : c->e->norm_out != NULL                     ? c->e->norm_out
              : a.stash != NULL && a.stash == c->temp        ? c->temp
                                                             : NULL;
  if (dst == NULL) {
    MIXCOMM_CUDA_CHECK_GOTO(cudaMallocAsync(&out_temp, (size_t)c->shape.out_bytes, c->stream),
                            "allocating the epilogue's output temporary", st, out);
    dst = out_temp;
  }
  MIXCOMM_CHECK_GOTO(exchange(c, src, dst), st, out);
  st = epilogue_kernel(c, dst, &a, 0);
out:
  free_temp(in_temp, c->stream, "freeing the epilogue's input temporary", &st);
  free_temp(out_temp, c->stream, "freeing the epilogue's output temporary", &st);
  return st;
}

static mixcomm_status_t check_pointers(const call_t* c) {
  const mixcomm_epilogue_t* e = c->e;
  const struct {
    const void* p;
    const char* name;
  } ptrs[] = {{c->x_in, "x_in"},
              {c->x_out, "x_out"},
              {e->residual_in, "residual_in"},
              {e->residual_out, "residual_out"},
              {e->rms_gamma, "rms_gamma"},
              {e->norm_out, "norm_out"},
              {e->quant_out, "quant_out"},
              {e->quant_scale, "quant_scale"}};
  for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
    if (ptrs[i].p != NULL)
      MIXCOMM_CHECK(mixcomm__check_device_pointer(c->h, ptrs[i].p, ptrs[i].name));
  return MIXCOMM_SUCCESS;
}

mixcomm_status_t mixcomm__run_epilogue_call(mixcomm_handler_t* h, mixcomm_op_t op,
                                           mixcomm_mode_t mode, const void* x_in, void* x_out,
                                           int64_t row_elems, const mixcomm__run_shape_t* shape,
                                           const mixcomm_epilogue_t* epilogue,
                                           const mixcomm__uneven_t* uneven, cudaStream_t stream) {
  call_t c = {.h = h,
              .op = op,
              .mode = mode,
              .x_in = x_in,
              .x_out = x_out,
              .row_elems = row_elems,
              .shape = *shape,
              .e = epilogue,
              .stream = stream,
              .gather = mixcomm__op_is_gather(op),
              .u = uneven};
  MIXCOMM_CHECK(check_pointers(&c));
  mixcomm_status_t st;
  if (uneven == NULL && h->topo.world_size == 1)
    st = run_alone(&c);
  else if (mixcomm__mode_is_fused(c.mode))
    st = run_fused(&c);
  else
    st = run_nccl(&c);
  free_temp(c.temp, stream, "freeing the epilogue's temporary", &st);
  return st;
}
